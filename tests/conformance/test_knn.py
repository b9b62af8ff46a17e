"""Vector search: exact-cosine rankings and scores, k, fields and dimensions on every backend."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.backends.base import SearchBackend

from .corpus import cosine, doc, ids, unit

VECTORS = {
    "same": np.array([2, 0, 0, 0, 0, 0, 0, 0], dtype=np.float32),  # same direction, longer
    "close": np.array([3, 1, 0, 0, 0, 0, 0, 0], dtype=np.float32),
    "diag": np.ones(8, dtype=np.float32),
    "ortho": np.array([0, 0, 5, 0, 0, 0, 0, 0], dtype=np.float32),
    "opposite": np.array([-1, 0.5, 0, 0, 0, 0, 0, 0], dtype=np.float32),
    "mixed": np.array([0.3, -0.2, 0.1, 0.7, -0.4, 0.2, 0.0, 0.5], dtype=np.float32),
}


def test_ranking_and_scores_are_cosine(backend: SearchBackend) -> None:
    backend.index([doc(name, vector=vector) for name, vector in VECTORS.items()])
    query = np.array([0.9, 0.1, 0.0, 0.05, 0.0, 0.0, 0.0, 0.02], dtype=np.float32)
    expected = sorted(VECTORS, key=lambda name: -cosine(VECTORS[name], query))
    hits = backend.knn("text", query, 10)
    assert ids(hits) == expected
    for hit in hits:
        assert hit.score == pytest.approx(cosine(VECTORS[hit.segment_id], query), abs=1e-5)
    assert hits[-1].score < 0  # negative similarities are returned, not clipped


def test_k_limits_the_answer_best_first(backend: SearchBackend) -> None:
    backend.index([doc(f"d{i}", vector=unit(0) + 0.2 * i * unit(1)) for i in range(6)])
    hits = backend.knn("text", unit(0), 2)
    assert ids(hits) == ["d0", "d1"]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert backend.knn("text", unit(0), 0) == []


def test_vector_fields_are_separate(backend: SearchBackend) -> None:
    backend.index([
        doc("text-only", vector=unit(0)),
        doc("both", vector=unit(1), visual=unit(0, 4)),
    ])
    assert ids(backend.knn("visual", unit(0, 4), 5)) == ["both"]
    assert ids(backend.knn("text", unit(0), 5)) == ["text-only", "both"]


def test_docs_without_a_vector_are_not_returned(backend: SearchBackend) -> None:
    backend.index([doc("v", text="bread", vector=unit(0)), doc("t", text="bread")])
    assert ids(backend.knn("text", unit(0), 5)) == ["v"]


def test_a_query_vector_of_another_dimension_raises_a_clear_value_error(
    backend: SearchBackend,
) -> None:
    backend.index([doc("a", vector=np.ones(8, dtype=np.float32))])
    with pytest.raises(ValueError, match=r"dimension 4.*holds 8"):
        backend.knn("text", np.ones(4, dtype=np.float32), 3)


def test_larger_corpus_ranks_like_exact_cosine(backend: SearchBackend) -> None:
    rng = np.random.default_rng(11)
    vectors = rng.standard_normal((300, 8)).astype(np.float32)
    backend.index([doc(f"r{i:03d}", f"v{i % 30}", vector=vector)
                   for i, vector in enumerate(vectors)])
    for query in rng.standard_normal((5, 8)).astype(np.float32):
        exact = sorted(range(300), key=lambda i: -cosine(vectors[i], query))[:10]
        assert ids(backend.knn("text", query, 10)) == [f"r{i:03d}" for i in exact]
