"""HNSW candidates against exact cosine on real MiniLM vectors of the shipped benchmark texts."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from retrieval.backends.embedded import EmbeddedBackend
from retrieval.documents import SegmentDoc
from retrieval.encoders import get_text_encoder

pytestmark = [pytest.mark.models]
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))


def test_recall_at_10_is_at_least_0_98(tmp_path: Path):
    from encoder_speed import retrieval_pairs, sentences

    texts = sentences()
    queries = [query for query, _ in retrieval_pairs()[1]]
    encoder = get_text_encoder()
    vectors, query_vectors = encoder.encode(texts), encoder.encode(queries)
    docs = [SegmentDoc(f"v{n // 20}:speech:{n}", f"v{n // 20}", "speech", 0.0, 5.0, text,
                       {"text": vector}, {"published": True})
            for n, (text, vector) in enumerate(zip(texts, vectors, strict=True))]
    graph = EmbeddedBackend("ann", {"PATH": str(tmp_path / "ann"), "ANN_MIN_SIZE": 500,
                                     "ANN_BUILD_IN_BACKGROUND": False})
    exact = EmbeddedBackend("exact", {"PATH": str(tmp_path / "exact"), "ANN_MIN_SIZE": 0})
    for backend in (graph, exact):
        backend.index(docs)
    recalls = []
    for query in query_vectors:
        truth = {hit.segment_id for hit in exact.knn("text", query, 10)}
        found = {hit.segment_id for hit in graph.knn("text", query, 10)}
        recalls.append(len(truth & found) / 10)
    assert graph._stores["text"].ann is not None and len(texts) > 1000
    assert np.mean(recalls) >= 0.98, np.mean(recalls)
