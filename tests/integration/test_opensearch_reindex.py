"""`manage.py reindex --backend opensearch` from the catalog, on a real OpenSearch node.

The catalog is written directly (videos and segments with 8-d text vectors), so no media
tool or model is needed; the node comes from `opensearch_url` (tests/conftest.py).
"""

from __future__ import annotations

import io
import threading
import uuid

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from catalog.models import Segment, Video, VideoStatus
from retrieval.backends import get_backend, reset_backends
from retrieval.documents import Filters, SegmentDoc
from retrieval.fusion import FusionSpec
from retrieval.search import SearchRequest, search
from tests.catalog_rows import add_speech_segments

pytestmark = [pytest.mark.opensearch, pytest.mark.django_db]

TOPICS = ["volcano lava eruption", "bread flour oven", "rocket orbit launch"]
BACKEND = "retrieval.backends.opensearch.OpenSearchBackend"


def opensearch_settings(url: str, index: str) -> dict:
    return {"BACKEND": BACKEND, "URL": url, "INDEX": index, "REPLICAS": 0,
            "DIMENSIONS": {"text": 8}, "REFRESH": "true"}


@pytest.fixture
def backend(settings, opensearch_url):
    """Configure RETRIEVAL_BACKENDS['opensearch'] on a fresh index; return the backend."""
    index = f"it-reindex-{uuid.uuid4().hex[:10]}"
    settings.RETRIEVAL_BACKENDS = {**settings.RETRIEVAL_BACKENDS,
                                   "opensearch": opensearch_settings(opensearch_url, index)}
    reset_backends()
    instance = get_backend("opensearch")
    yield instance
    instance.drop_index()
    reset_backends()


def make_catalog(videos: int = 3, segments: int = 4) -> list[Video]:
    """Create ready videos with segments (topic text, random 8-d vectors), plus a pending one."""
    rng = np.random.default_rng(1)
    made = []
    for v in range(videos):
        video = Video.objects.create(
            title=f"Video {v}", source=f"videos/{v}.mp4", status=VideoStatus.READY,
            duration=60.0 * (v + 1), tags=[f"Topic{v % 3}"], language="en")
        add_speech_segments(video, TOPICS[v % 3], segments, rng)
        made.append(video)
    pending = Video.objects.create(title="Not processed", source="videos/p.mp4")
    Segment.objects.create(id=Segment.make_id(pending.pk, "speech", 0), video=pending,
                           kind="speech", start=0.0, end=1.0, text="volcano never indexed")
    return made


def reindex(*args: str) -> str:
    out = io.StringIO()
    call_command("reindex", "--backend", "opensearch", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def live_indices(backend) -> set[str]:
    return set(backend.client.indices.get_alias(name=backend.read_alias))


def all_indices(backend) -> set[str]:
    return set(backend.client.indices.get(index=f"{backend.index_name}-*"))


def test_reindex_builds_a_new_index_from_the_catalog_and_swaps_the_alias(backend) -> None:
    videos = make_catalog()
    backend.index([SegmentDoc("stale", "gone", "speech", 0, 1, "volcano stale")])
    (old,) = live_indices(backend)

    assert "Rebuilt the 'opensearch' index: 12 segments." in reindex()
    (new,) = live_indices(backend)
    assert new != old
    assert all_indices(backend) == {new}  # the old index is deleted
    assert backend.count() == 12
    volcano = backend.bm25("volcano", 20)
    assert {hit.video_id for hit in volcano} == {str(videos[0].pk)}
    assert len(volcano) == 4  # the pending video and the stale doc are not there
    tagged = backend.knn("text", np.ones(8), 20, Filters(tags=("topic1",)))
    assert {hit.video_id for hit in tagged} == {str(videos[1].pk)}
    assert backend.client.indices.get_alias(name=backend.write_alias)[new]["aliases"][
        backend.write_alias] == {"is_write_index": True}


def test_searches_while_reindex_runs_all_succeed(backend) -> None:
    make_catalog(videos=30, segments=10)
    reindex()
    expected = {hit.segment_id for hit in backend.bm25("volcano", 500)}
    assert len(expected) == 100
    reader = type(backend)("reader", backend.params)  # like another process
    answers, failures, done = [], [], threading.Event()

    def search_loop() -> None:
        while not done.is_set():
            try:
                answers.append({hit.segment_id for hit in reader.bm25("volcano", 500)})
                answers.append(len(reader.knn("text", np.ones(8), 500)))
            except Exception as exc:  # noqa: BLE001 - every failure counts
                failures.append(exc)

    thread = threading.Thread(target=search_loop)
    thread.start()
    try:
        reindex()
        reindex()
    finally:
        done.set()
        thread.join(timeout=30)
        reader.close()
    assert not failures, failures[:3]
    assert len(answers) >= 4
    assert all(answer in (expected, 300) for answer in answers)


def test_an_interrupted_reindex_leaves_the_old_index_serving(backend, monkeypatch) -> None:
    make_catalog()
    reindex()
    (old,) = live_indices(backend)
    from retrieval.indexing import iter_catalog_docs
    from retrieval.management.commands import reindex as command

    def interrupted():
        for number, doc in enumerate(iter_catalog_docs()):
            if number == 5:
                raise RuntimeError("database connection lost")
            yield doc

    monkeypatch.setattr(command, "iter_catalog_docs", interrupted)
    with pytest.raises(RuntimeError, match="database connection lost"):
        reindex()
    assert live_indices(backend) == {old}
    assert all_indices(backend) == {old}
    assert not backend.client.indices.exists_alias(name=backend.building_alias)
    assert backend.count() == 12
    assert len(backend.bm25("volcano", 20)) == 4


def test_pending_videos_are_indexed_into_the_live_index(backend) -> None:
    videos = make_catalog()
    reindex()
    Video.objects.filter(pk=videos[2].pk).update(status=VideoStatus.INDEX_PENDING)
    Segment.objects.filter(video=videos[2]).update(text="rocket orbit relaunch")
    assert "Indexed 1 pending video(s)." in reindex("--pending")
    assert Video.objects.get(pk=videos[2].pk).status == VideoStatus.READY
    assert len(backend.bm25("relaunch", 20)) == 4
    assert backend.count() == 12


def test_search_service_ranks_the_same_with_server_side_fusion(backend) -> None:
    if not backend.supports_server_fusion:
        pytest.skip(reason="the node has no neural-search plugin (hybrid query)")
    make_catalog(videos=6)
    reindex()
    plain = FusionSpec()  # a spec the server can run (the default profile gates BM25)
    request = SearchRequest("volcano eruption bread", signals=("bm25",), backend="opensearch",
                            server_fusion=False, fusion=plain)
    client = search(request)
    server = search(SearchRequest("volcano eruption bread", signals=("bm25",),
                                  backend="opensearch", fusion=plain))  # the node's default
    assert set(server.signal_sizes) == {"hybrid"} and set(client.signal_sizes) == {"bm25"}
    assert [m.video.pk for m in server.results] == [m.video.pk for m in client.results]
    assert len(client.results) == 4
    explained = search(SearchRequest("volcano", signals=("bm25",), backend="opensearch",
                                     server_fusion=True, explain=True, fusion=plain))
    assert set(explained.signal_sizes) == {"bm25"}  # explain needs per-signal scores
    gated = search(SearchRequest("volcano eruption bread", signals=("bm25",),
                                 backend="opensearch", server_fusion=True))
    assert set(gated.signal_sizes) == {"bm25"}  # coverage gating runs in retrieval/fusion.py


def test_an_unreachable_node_is_a_command_error(settings) -> None:
    settings.RETRIEVAL_BACKENDS = {**settings.RETRIEVAL_BACKENDS, "opensearch": {
        **opensearch_settings("http://127.0.0.1:9", "unreachable"), "TIMEOUT": 2}}
    reset_backends()
    with pytest.raises(CommandError, match="unavailable.*did not answer"):
        reindex()
    reset_backends()
