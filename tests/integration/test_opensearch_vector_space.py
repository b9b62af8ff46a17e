"""The OpenSearch backend's vector space: unit vectors in lucene's inner-product space, and
indices an earlier version built in the cosinesimil space, read correctly until a reindex.

k-NN hits must carry the exact cosine in both spaces, and the server-side hybrid query must
fuse like retrieval/fusion.py in both (lucene's inner-product score is not an affine map of
the cosine below 0, so min-max over it would rank differently without the conversion).
"""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest

from retrieval.backends import opensearch
from retrieval.backends.opensearch import OpenSearchBackend
from retrieval.documents import Filters, SegmentDoc
from retrieval.fusion import FusionSpec, fuse

pytestmark = pytest.mark.opensearch

WORDS = ["lava", "crater", "magma", "ash", "steam", "rock", "ocean"]
SPEC = FusionSpec("arithmetic", weights={"bm25": 0.4, "text": 0.6})


def docs(count: int = 30) -> list[SegmentDoc]:
    """Segments with random, not unit-length 8-d vectors (many cosines to a query below 0)."""
    rng = np.random.default_rng(5)
    return [SegmentDoc(f"s{i:02d}", f"v{i % 6}", "speech", float(i), i + 1.0,
                       " ".join(rng.choice(WORDS, 6)), {"text": 3.0 * rng.standard_normal(8)})
            for i in range(count)]


def exact_cosines(corpus: list[SegmentDoc], query: np.ndarray) -> dict[str, float]:
    unit = query / np.linalg.norm(query)
    return {d.id: float(d.vectors["text"] @ unit / np.linalg.norm(d.vectors["text"]))
            for d in corpus}


def backend_for(url: str, index: str) -> OpenSearchBackend:
    return OpenSearchBackend("opensearch", {"URL": url, "INDEX": index, "REPLICAS": 0,
                                            "DIMENSIONS": {"text": 8}, "REFRESH": "true"})


def space_of(backend: OpenSearchBackend) -> str:
    (index,) = backend.client.indices.get_alias(name=backend.read_alias)
    mapping = backend.client.indices.get_mapping(index=index)[index]["mappings"]
    return mapping["properties"]["vectors"]["properties"]["text"]["method"]["space_type"]


def assert_reads_cosines(backend: OpenSearchBackend, corpus: list[SegmentDoc]) -> None:
    query = np.random.default_rng(9).standard_normal(8)
    cosines = exact_cosines(corpus, query)
    hits = backend.knn("text", query, len(corpus))
    assert len(hits) == len(corpus) and min(h.score for h in hits) < -0.3
    assert {h.segment_id: h.score for h in hits} == pytest.approx(cosines, abs=1e-4)
    client = fuse({"bm25": backend.bm25("lava magma", len(corpus)), "text": hits}, SPEC)
    server = backend.hybrid("lava magma", {"text": query}, len(corpus), Filters(), SPEC)
    expected = {s.segment_id: s.score for s in client}
    # the node floors each signal's lowest hit at 0.001 where fusion.py has 0.0
    assert [expected[s.segment_id] for s in server] == pytest.approx(
        [s.score for s in server], abs=1e-3)
    assert [s.score for s in server] == pytest.approx([s.score for s in client], abs=1e-3)


@pytest.fixture
def legacy_template(monkeypatch):
    """Make the backend create indices as earlier versions did: the cosinesimil space."""
    template = json.loads(opensearch.TEMPLATE.read_text(encoding="utf-8"))
    template["vector_field"]["method"]["space_type"] = "cosinesimil"
    monkeypatch.setattr(opensearch, "_template", lambda: json.dumps(template))


def test_new_indices_store_unit_vectors_in_the_inner_product_space(opensearch_url) -> None:
    backend = backend_for(opensearch_url, f"it-space-{uuid.uuid4().hex[:10]}")
    try:
        corpus = docs()
        backend.index(corpus)
        assert space_of(backend) == "innerproduct"
        assert_reads_cosines(backend, corpus)
        stored = backend.vectors_for_video("v0")
        assert np.linalg.norm(stored, axis=1) == pytest.approx(1.0, abs=1e-6)
    finally:
        backend.drop_index()


def test_an_index_built_in_the_cosine_space_is_read_right_and_reindex_replaces_it(
    opensearch_url, legacy_template, monkeypatch
) -> None:
    index = f"it-space-{uuid.uuid4().hex[:10]}"
    writer, reader = backend_for(opensearch_url, index), backend_for(opensearch_url, index)
    try:
        corpus = docs()
        writer.index(corpus)
        assert space_of(writer) == "cosinesimil"
        assert_reads_cosines(reader, corpus)  # the reader now remembers the legacy index

        monkeypatch.undo()  # this version's template again
        writer.rebuild(iter(corpus))
        assert space_of(writer) == "innerproduct"
        # the reader's hybrid query first assumes the old index; its hits show the new one
        assert_reads_cosines(reader, corpus)
        assert_reads_cosines(writer, corpus)
    finally:
        writer.drop_index()
