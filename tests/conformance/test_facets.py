"""Facet counts: videos (not segments) per tag, language and duration bucket, every backend."""

from __future__ import annotations

from retrieval.backends.base import SearchBackend
from retrieval.facets import BACKEND_FACETS

from .corpus import VIDEOS, filter_corpus


def reference(video_ids: list[str]) -> dict[str, dict[str, int]]:
    """Count the corpus videos by hand: lowercased tags, languages, duration buckets."""
    buckets = {30.0: "under_1m", 50.0: "under_1m", 100.0: "1m_5m", 600.0: "5m_20m",
               1200.0: "over_20m"}
    counts: dict[str, dict[str, int]] = {name: {} for name in BACKEND_FACETS}
    for video_id in video_ids:
        meta = VIDEOS[video_id]
        for tag in {t.lower() for t in meta["tags"]}:
            counts["tags"][tag] = counts["tags"].get(tag, 0) + 1
        for name, value in (("language", meta["language"]),
                            ("duration", buckets[meta["duration"]])):
            counts[name][value] = counts[name].get(value, 0) + 1
    return counts


def test_counts_are_per_video_over_the_given_videos(backend: SearchBackend) -> None:
    backend.index(filter_corpus())  # two segments per video, so segment counts would double
    chosen = ["v1", "v2", "v3", "v4"]
    assert backend.facet_counts(chosen, BACKEND_FACETS) == reference(chosen)


def test_only_the_result_set_is_counted(backend: SearchBackend) -> None:
    backend.index(filter_corpus())
    counts = backend.facet_counts(["v1", "v3"], ["tags", "duration"])
    assert counts == {"tags": {"cooking": 2, "bread": 1},
                      "duration": {"under_1m": 1, "1m_5m": 1}}


def test_bucket_bounds_include_the_low_end(backend: SearchBackend) -> None:
    backend.index(filter_corpus())  # v4 lasts exactly 1200 s: the "> 20 min" bucket
    assert backend.facet_counts(["v4"], ["duration"]) == {"duration": {"over_20m": 1}}


def test_no_videos_count_nothing(backend: SearchBackend) -> None:
    backend.index(filter_corpus())
    assert backend.facet_counts([], ["language"]) == {"language": {}}
    assert backend.facet_counts(["no-such-video"], ["language"]) == {"language": {}}
