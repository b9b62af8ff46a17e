"""catalog.prepared.RowsByKey: compiled once per key count, the same rows as the ORM."""

from __future__ import annotations

import uuid

import pytest

from catalog.models import Segment, Video, VideoStatus
from catalog.prepared import RowsByKey

pytestmark = pytest.mark.django_db


def videos(n: int) -> list[Video]:
    return [Video.objects.create(title=f"Video {i}", source=f"videos/{i}.mp4",
                                 tags=["pasta", f"t{i}"], duration=10.0 + i,
                                 status=VideoStatus.READY) for i in range(n)]


def test_rows_match_the_orm_with_values_converted() -> None:
    made = videos(3)
    rows = RowsByKey(Video, ("id", "title", "tags", "updated_at", "duration"))
    keys = [str(made[2].pk), made[0].pk]  # strings from an index, or UUIDs
    got = sorted(rows.rows(keys), key=lambda row: row[1])
    expected = sorted(Video.objects.filter(pk__in=keys)
                      .values_list("id", "title", "tags", "updated_at", "duration"),
                      key=lambda row: row[1])
    assert got == expected
    assert isinstance(got[0][0], uuid.UUID) and got[0][2] == ["pasta", "t0"]
    assert rows._compiled and all(v is not None for v in rows._compiled.values())


def test_each_key_count_gets_its_own_compiled_query() -> None:
    made = videos(4)
    rows = RowsByKey(Video, ("id", "title"))
    for n in (1, 3, 2, 3, 1):
        found = {str(pk) for pk, _ in rows.rows([v.pk for v in made[:n]])}
        assert found == {str(v.pk) for v in made[:n]}
    assert sorted(n for _, n in rows._compiled) == [1, 2, 3]


def test_missing_and_repeated_keys() -> None:
    video, = videos(1)
    Segment.objects.create(id=Segment.make_id(video.pk, "speech", 0), video=video,
                           kind="speech", start=0.0, end=2.0, text="Roll the dough.",
                           box=[0.1, 0.2, 0.3, 0.4])
    rows = RowsByKey(Segment, ("id", "text", "box"))
    sid = Segment.make_id(video.pk, "speech", 0)
    assert rows.rows([sid, sid, "no-such-segment"]) == [(sid, "Roll the dough.",
                                                          [0.1, 0.2, 0.3, 0.4])]
    assert rows.rows([]) == []
    assert rows.rows(["no-such-segment"]) == []


def test_search_pages_load_their_videos_field_by_field() -> None:
    """Hydration builds Video instances from these rows: every shown field is its own."""
    from retrieval.search import MATCH_FIELDS, match_videos

    made = videos(2)
    loaded = match_videos([str(v.pk) for v in made])
    for video in made:
        fresh = Video.objects.get(pk=video.pk)
        for name in MATCH_FIELDS:
            assert getattr(loaded[str(video.pk)], name) == getattr(fresh, name), name


def test_rows_by_another_key_with_fixed_filters_and_an_order() -> None:
    """The sentence units of a page's videos: by video id, one kind, vectors only, by time."""
    first, second = videos(2)
    for video in (first, second):
        for n, start in enumerate((9.0, 1.0, 5.0)):
            Segment.objects.create(id=Segment.make_id(video.pk, "sentence", n), video=video,
                                   kind="sentence", start=start, end=start + 1.0,
                                   text=f"s{n}", text_vector=b"\0\0\0\0" if n != 2 else None)
        Segment.objects.create(id=Segment.make_id(video.pk, "speech", 0), video=video,
                               kind="speech", start=0.0, end=9.0, text="all of it",
                               text_vector=b"\0\0\0\0")
    fields = ("id", "video_id", "start", "text")
    rows = RowsByKey(Segment, fields, key="video_id", order_by=("start",),
                     where={"kind": "sentence", "text_vector__isnull": False})
    for keys in ([str(first.pk)], [first.pk, str(second.pk)], [str(second.pk)]):
        got = rows.rows(keys)
        expected = list(Segment.objects.filter(video_id__in=keys, kind="sentence")
                        .exclude(text_vector=None).order_by("start").values_list(*fields))
        assert got == expected
        assert [row[3] for row in got] == sorted(["s0", "s1"] * len(keys),
                                                 key=lambda t: t == "s0")  # 1.0, then 9.0
    assert rows._compiled and all(v is not None for v in rows._compiled.values())
    assert rows.rows([]) == [] and rows.rows([uuid.uuid4()]) == []
