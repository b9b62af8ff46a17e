"""The embedded backend's HNSW path: filters inside the walk, new rows, saved graphs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval.backends.embedded import EmbeddedBackend
from retrieval.documents import Filters, SegmentDoc

DIM = 32


def unit(rng: np.random.Generator, count: int) -> np.ndarray:
    vectors = rng.standard_normal((count, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def docs(vectors: np.ndarray, start: int = 0) -> list[SegmentDoc]:
    return [SegmentDoc(f"v{n // 10}:{'ocr' if n % 5 == 0 else 'speech'}:{n}", f"v{n // 10}",
                       "ocr" if n % 5 == 0 else "speech", 0.0, 5.0, f"text {n}",
                       {"text": vector}, {"published": True})
            for n, vector in enumerate(vectors, start)]


def backend(path: Path, min_size: int = 500, background: bool = False) -> EmbeddedBackend:
    return EmbeddedBackend("ann", {"PATH": str(path), "ANN_MIN_SIZE": min_size,
                                   "ANN_EF_SEARCH": 64, "ANN_BUILD_IN_BACKGROUND": background})


@pytest.fixture
def corpus(tmp_path: Path):
    rng = np.random.default_rng(3)
    vectors = unit(rng, 2000)
    instance = backend(tmp_path / "index")
    instance.index(docs(vectors))
    yield instance, vectors, rng
    instance.close()


def exact(vectors: np.ndarray, query: np.ndarray, k: int, rows=None) -> list[int]:
    rows = np.arange(len(vectors)) if rows is None else np.asarray(rows)
    scores = vectors[rows] @ query
    return list(rows[np.argsort(-scores)[:k]])


def test_the_graph_is_used_above_the_threshold_only(tmp_path: Path, corpus):
    instance, vectors, _ = corpus
    instance.knn("text", vectors[0], 10)
    assert instance._stores["text"].ann is not None
    small = backend(tmp_path / "small", min_size=5000)
    small.index(docs(vectors[:100]))
    small.knn("text", vectors[0], 10)
    assert small._stores["text"].ann is None


def test_recall_at_10_against_exact_and_scores_are_exact(corpus):
    instance, vectors, rng = corpus
    recalls = []
    for query in unit(rng, 50):
        hits = instance.knn("text", query, 10)
        truth = {f"text {n}" for n in exact(vectors, query, 10)}
        found = {f"text {int(h.segment_id.rsplit(':', 1)[1])}" for h in hits}
        recalls.append(len(truth & found) / 10)
        for hit in hits:
            row = int(hit.segment_id.rsplit(":", 1)[1])
            assert hit.score == pytest.approx(float(vectors[row] @ query), abs=1e-5)
    assert np.mean(recalls) >= 0.98


def test_filters_apply_inside_the_graph_walk(corpus):
    instance, vectors, rng = corpus
    query = unit(rng, 1)[0]
    hits = instance.knn("text", query, 50, Filters(kinds=("ocr",)))
    assert len(hits) == 50 and all(":ocr:" in h.segment_id for h in hits)
    hits = instance.knn("text", query, 50, Filters(video_ids=("v3", "v7")))
    assert len(hits) == 20 and {h.video_id for h in hits} == {"v3", "v7"}


def test_rows_added_after_the_graph_are_found(corpus):
    instance, vectors, rng = corpus
    instance.knn("text", vectors[0], 10)  # builds the graph
    fresh = unit(rng, 3)
    instance.index(docs(fresh, start=5000))
    hits = instance.knn("text", fresh[1], 1)
    assert hits[0].segment_id.endswith(":5001") and hits[0].score == pytest.approx(1.0)
    assert instance._stores["text"].ann.size == 2003


def test_the_graph_keeps_a_byte_a_dimension_and_finds_rows_outside_its_range(corpus):
    import faiss

    instance, vectors, _ = corpus
    instance.knn("text", vectors[0], 10)
    graph = instance._stores["text"].ann.graph
    assert faiss.downcast_index(graph.storage).code_size == DIM  # not 4 bytes a dimension
    axes = np.eye(DIM, dtype=np.float32)[:4]  # far outside every trained range but one
    instance.index(docs(axes, start=6000))
    for n, axis in enumerate(axes):
        hit = instance.knn("text", axis, 1)[0]
        assert hit.segment_id.endswith(f":{6000 + n}") and hit.score == pytest.approx(1.0)
    assert instance._stores["text"].ann.size == 2004  # found through the graph


def test_deleted_and_replaced_rows(corpus):
    instance, vectors, rng = corpus
    instance.knn("text", vectors[0], 10)
    instance.delete_video("v0")
    assert all(h.video_id != "v0" for h in instance.knn("text", vectors[3], 20))
    moved = unit(rng, 1)[0]
    instance.index(docs(np.stack([moved]), start=25))  # replaces v2's row 25 vector
    hit = instance.knn("text", moved, 1)[0]
    assert hit.segment_id.endswith(":25") and hit.score == pytest.approx(1.0)


def test_the_graph_is_saved_and_loaded_by_the_next_process(tmp_path: Path, corpus,
                                                           monkeypatch):
    instance, vectors, _ = corpus
    first = instance.knn("text", vectors[7], 10)
    assert list((tmp_path / "index").glob("*.text.hnsw"))
    monkeypatch.setattr(EmbeddedBackend, "_build_ann", lambda *a: pytest.fail("graph rebuilt"))
    again = backend(tmp_path / "index")
    assert again.knn("text", vectors[7], 10) == first
    again.close()


def test_a_saved_graph_of_other_rows_is_not_used(tmp_path: Path, corpus):
    instance, vectors, _ = corpus
    instance.knn("text", vectors[0], 10)
    instance.delete_video("v1")  # a new process loads other rows: the saved graph is stale
    again = backend(tmp_path / "index")
    hits = again.knn("text", vectors[12], 5)
    assert hits[0].video_id != "v1" and again._stores["text"].ann.size == 1990
    again.close()


def test_a_background_build_keeps_searches_exact_until_the_graph_is_in(tmp_path: Path):
    rng = np.random.default_rng(5)
    vectors = unit(rng, 1500)
    instance = backend(tmp_path / "bg", background=True)
    instance.index(docs(vectors))
    first = instance.knn("text", vectors[4], 5)  # answered while the graph is being built
    assert first[0].segment_id.endswith(":4")
    instance.wait_for_ann(timeout=120)
    store = instance._stores["text"]
    assert store.building is None and store.ann is not None and store.ann.size == 1500
    assert instance.knn("text", vectors[4], 1)[0].segment_id.endswith(":4")
    instance.close()
