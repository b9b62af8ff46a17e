"""BM25 + vector rankings fused by retrieval/fusion.py, pagination, and server-side fusion."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.backends.base import SearchBackend
from retrieval.documents import Filters
from retrieval.fusion import FusionSpec, fuse, group_by_video

from .conftest import skip_unless
from .corpus import HYBRID, HYBRID_BM25, HYBRID_KNN, as_lucene_knn, doc, ids, unit

WINDOW = 20


def signals(backend: SearchBackend, text: str, vector: np.ndarray,
            filters: Filters = Filters(), window: int = WINDOW) -> dict:
    """Ask a backend for both signals, the way retrieval/search.py does."""
    return {"bm25": backend.bm25(text, window, filters),
            "text": backend.knn("text", vector, window, filters)}


def test_each_signal_ranks_the_hybrid_corpus_its_own_way(backend: SearchBackend) -> None:
    backend.index(HYBRID)
    assert ids(backend.bm25("volcano", WINDOW)) == HYBRID_BM25
    assert ids(backend.knn("text", unit(0), WINDOW)) == HYBRID_KNN


@pytest.mark.parametrize(("spec", "expected"), [
    (FusionSpec("arithmetic", weights={"bm25": 0.4, "text": 0.6}),
     ["h2", "h4", "h3", "h5", "h1"]),
    (FusionSpec("arithmetic", weights={"bm25": 0.8, "text": 0.2}),
     ["h5", "h1", "h2", "h4", "h3"]),
    (FusionSpec("rrf"), ["h2", "h1", "h3", "h4", "h5"]),
    (FusionSpec("harmonic", "l2"), ["h4", "h5", "h2", "h3", "h1"]),
], ids=["min_max text-heavy", "min_max bm25-heavy", "rrf", "l2 harmonic"])
def test_hybrid_ranking_is_the_same_on_every_backend(
    backend: SearchBackend, spec: FusionSpec, expected: list[str]
) -> None:
    backend.index(HYBRID)
    fused = fuse(signals(backend, "volcano", unit(0)), spec)
    assert ids(fused) == expected
    assert [v.video_id for v in group_by_video(fused)] == [f"v{'_abcde'[int(s[1])]}"
                                                          for s in expected]


def test_hybrid_scores_match_across_backends(backend: SearchBackend) -> None:
    """Single-term BM25 over equal-length docs min-max-normalizes to the same values."""
    backend.index(HYBRID)
    fused = fuse(signals(backend, "volcano", unit(0)),
                 FusionSpec("arithmetic", weights={"bm25": 0.4, "text": 0.6}))
    # bm25 tf/(tf + 1.2): 4 -> 1, 3 -> 0.825, 2 -> 0.540, 1 -> 0; cosine 1, .95, .9, .2 -> 1,
    # .9375, .875, 0
    expected = {"h2": 0.4 * 0.5403 + 0.6 * 0.9375, "h4": 0.6, "h3": 0.6 * 0.875, "h5": 0.4,
                "h1": 0.4 * 0.8252}
    assert {s.segment_id: s.score for s in fused} == pytest.approx(expected, abs=2e-3)


def test_hybrid_with_filters_fuses_only_allowed_segments(backend: SearchBackend) -> None:
    backend.index(HYBRID)
    filters = Filters(exclude_video_ids=("vb",))
    fused = fuse(signals(backend, "volcano", unit(0), filters), FusionSpec("rrf"))
    assert ids(fused) == ["h1", "h3", "h4", "h5"]


# --- pagination ---------------------------------------------------------------------------------


def paging_corpus() -> list:
    """Sixty segments over twenty videos with distinct BM25 and cosine scores."""
    rng = np.random.default_rng(5)
    docs = []
    for i in range(60):
        words = ["harbor"] * (1 + i % 7) + ["filler"] * (7 - i % 7)
        vector = unit(0) + rng.uniform(0.05, 2.0) * unit(1 + i % 7)
        docs.append(doc(f"p{i:02d}", f"pv{i % 20:02d}", " ".join(words), vector=vector,
                        start=float(i), end=float(i) + 5.0))
    return docs + [doc(f"q{i}", "pq", f"quiet meadow {i}") for i in range(20)]


def test_smaller_k_is_a_prefix_of_larger_k(backend: SearchBackend) -> None:
    backend.index(paging_corpus())
    full_bm25, full_knn = backend.bm25("harbor", 60), backend.knn("text", unit(0), 60)
    assert len(full_bm25) == len(full_knn) == 60
    for k in (1, 5, 17, 30):
        assert ids(backend.bm25("harbor", k)) == ids(full_bm25)[:k]
        assert ids(backend.knn("text", unit(0), k)) == ids(full_knn)[:k]


def test_pages_of_the_fused_list_are_disjoint_and_complete(backend: SearchBackend) -> None:
    backend.index(paging_corpus())
    videos = group_by_video(fuse(signals(backend, "harbor", unit(0), window=60)))
    assert len(videos) == 20
    pages = [videos[start:start + 6] for start in range(0, len(videos), 6)]
    again = group_by_video(fuse(signals(backend, "harbor", unit(0), window=60)))
    assert [v.video_id for page in pages for v in page] == [v.video_id for v in again]
    assert len({v.video_id for page in pages for v in page}) == 20


def test_the_same_query_twice_gives_the_same_order_with_ties(backend: SearchBackend) -> None:
    backend.index([doc(f"t{i}", f"vt{i}", "anchor", vector=unit(0)) for i in range(8)]
                  + [doc(f"q{i}", "pq", f"quiet meadow {i}") for i in range(8)])
    first = ids(backend.bm25("anchor", 8))
    assert first == sorted(first)  # equal scores: ordered by segment id
    assert ids(backend.bm25("anchor", 8)) == first
    assert ids(backend.bm25("anchor", 3)) == first[:3]


# --- server-side fusion -------------------------------------------------------------------------

SERVER_SPECS = {
    "min_max arithmetic": FusionSpec("arithmetic", weights={"bm25": 0.4, "text": 0.6}),
    "min_max arithmetic equal": FusionSpec("arithmetic"),
    "l2 arithmetic": FusionSpec("arithmetic", "l2", weights={"bm25": 0.3, "text": 0.7}),
    "l2 geometric": FusionSpec("geometric", "l2"),
    "l2 harmonic": FusionSpec("harmonic", "l2", weights={"bm25": 2, "text": 1}),
    "rrf": FusionSpec("rrf"),
    "rrf rank constant": FusionSpec("rrf", rank_constant=5),
    "rrf weighted": FusionSpec("rrf", weights={"bm25": 0.5, "text": 2.0}),
}


QUERY_TERMS = ("lava", "crater", "magma")


def _bm25_scores(texts: list[str]) -> list[float]:
    """Lucene's BM25 (k1 1.2, b 0.75) of the query terms in each text."""
    tokens = [text.split() for text in texts]
    avgdl = sum(map(len, tokens)) / len(tokens)
    scores = []
    for words in tokens:
        score = 0.0
        for term in QUERY_TERMS:
            df = sum(term in other for other in tokens)
            tf = words.count(term)
            if tf:
                idf = np.log(1 + (len(tokens) - df + 0.5) / (df + 0.5))
                score += idf * tf / (tf + 1.2 * (0.25 + 0.75 * len(words) / avgdl))
        scores.append(score)
    return scores


def random_corpus(n: int = 80) -> list:
    """Segments with random 8-d vectors and texts whose BM25 scores never tie.

    Texts have at most 20 tokens (lucene stores such lengths exactly); texts that would tie
    with another on BM25 are dropped, so client and server rank BM25 hits the same way.
    """
    rng = np.random.default_rng(21)
    texts = []
    for _ in range(2 * n):
        counts = rng.integers(0, 4, size=3)
        length = int(counts.sum() + rng.integers(1, 21 - counts.sum()))
        words = [w for w, c in zip(QUERY_TERMS, counts, strict=True) for _ in range(c)]
        words += list(rng.choice(["ash", "steam", "rock", "ocean"], length - len(words)))
        texts.append(" ".join(rng.permutation(words)))
    spare, texts = texts[n:], texts[:n]
    while True:
        scores = _bm25_scores(texts)
        tied = {j for i, a in enumerate(scores) for j, b in enumerate(scores)
                if j > i and a > 0 and abs(a - b) <= 1e-5 * a}
        if not tied:
            break
        texts = [text for i, text in enumerate(texts) if i not in tied]
        spare, texts = spare[len(tied):], texts + spare[:len(tied)]
    assert len(texts) == n, "not enough distinct texts: raise the spare count"
    vectors = rng.standard_normal((n, 8)).astype(np.float32)
    return [doc(f"r{i:03d}", f"rv{i % 25:02d}", text, vector=vectors[i],
                kind=("speech", "ocr")[i % 2]) for i, text in enumerate(texts)]


@pytest.mark.parametrize("spec", SERVER_SPECS.values(), ids=SERVER_SPECS.keys())
@pytest.mark.parametrize("filters", [Filters(), Filters(kinds=("speech",))],
                         ids=["unfiltered", "filtered"])
def test_server_side_fusion_ranks_like_client_side_fusion(
    backend: SearchBackend, spec: FusionSpec, filters: Filters
) -> None:
    skip_unless(backend, backend.supports_server_fusion,
                "no server-side fusion (retrieval/fusion.py fuses its signals)")
    assert backend.server_fusion_problem(spec, ["bm25", "text"]) == ""
    backend.index(random_corpus())
    query, vector = "lava crater magma", np.random.default_rng(3).standard_normal(8)
    # OpenSearch's hybrid query fuses (1 + cos) / 2 k-NN scores: feed fusion.py those.
    client = fuse({"bm25": backend.bm25(query, WINDOW, filters),
                   "text": as_lucene_knn(backend.knn("text", vector, WINDOW, filters))}, spec)
    server = backend.hybrid(query, {"text": vector}, WINDOW, filters, spec)
    assert len(server) == WINDOW
    # The same ranking up to ties (rrf ties rank 1 of one signal with rank 1 of the other; the
    # two sides break ties differently): every segment the server returns has the score
    # fusion.py gives it, and the server's scores are fusion.py's top scores in order.
    # min_max: the server floors a signal's lowest hit at 0.001 where fusion.py has 0.0.
    tolerance = 1e-3 if spec.normalization == "min_max" and spec.method != "rrf" else 1e-5
    client_scores = {segment.segment_id: segment.score for segment in client}
    assert [client_scores.get(s.segment_id) for s in server] == pytest.approx(
        [s.score for s in server], abs=tolerance)
    assert [s.score for s in server] == pytest.approx([s.score for s in client[:WINDOW]],
                                                      abs=tolerance)
    distinct = [s for i, s in enumerate(client[:WINDOW])
                if all(abs(s.score - o.score) > tolerance for o in client[:i] + client[i + 1:])]
    positions = {s.segment_id: i for i, s in enumerate(server)}
    assert all(positions[s.segment_id] == client.index(s) for s in distinct)


@pytest.mark.parametrize("bounds", [{"text": 0.1}, {"bm25": 0.4, "text": -0.2}],
                         ids=["text", "both"])
def test_server_side_min_max_lower_bounds_rank_like_client_side(
    backend: SearchBackend, bounds: dict
) -> None:
    """Lower bounds are in the client's units (cosine); the node gets them in lucene's.

    Bounds stay below each signal's best score: for a bound at or above it fusion.py zeros
    the signal and OpenSearch 3.6 gives its hits 1.0.
    """
    skip_unless(backend, backend.supports_server_fusion,
                "no server-side fusion (retrieval/fusion.py fuses its signals)")
    spec = FusionSpec("arithmetic", weights={"bm25": 0.4, "text": 0.6}, lower_bounds=bounds)
    assert backend.server_fusion_problem(spec, ["bm25", "text"]) == ""
    backend.index(random_corpus())
    query, vector = "lava crater magma", np.random.default_rng(3).standard_normal(8)
    client = fuse(signals(backend, query, vector), spec)
    server = backend.hybrid(query, {"text": vector}, WINDOW, Filters(), spec)
    client_scores = {segment.segment_id: segment.score for segment in client}
    assert len(server) == WINDOW
    # the node floors a clipped or lowest score at 0.001 where fusion.py has 0.0
    assert [client_scores.get(s.segment_id, 0.0) for s in server] == pytest.approx(
        [s.score for s in server], abs=1e-3)
    assert [s.score for s in server] == pytest.approx([s.score for s in client[:WINDOW]],
                                                      abs=1e-3)


def test_server_side_fusion_says_what_it_cannot_do(backend: SearchBackend) -> None:
    skip_unless(backend, backend.supports_server_fusion,
                "no server-side fusion (retrieval/fusion.py fuses its signals)")
    signals_ = ["bm25", "text"]
    assert "z_score" in backend.server_fusion_problem(FusionSpec(normalization="z_score"),
                                                      signals_)
    assert "coverage" in backend.server_fusion_problem(FusionSpec(coverage=3.0), signals_)
    assert backend.server_fusion_problem(FusionSpec("rrf", weights={"bm25": 0, "text": 0}),
                                         signals_)
    with pytest.raises(NotImplementedError, match="z_score"):
        backend.hybrid("lava", {"text": unit(0)}, 5, Filters(), FusionSpec(normalization="z_score"))


def test_server_side_fusion_of_bm25_alone_and_of_nothing(backend: SearchBackend) -> None:
    skip_unless(backend, backend.supports_server_fusion,
                "no server-side fusion (retrieval/fusion.py fuses its signals)")
    backend.index(HYBRID)
    assert ids(backend.hybrid("volcano", {}, WINDOW, Filters(), FusionSpec())) == HYBRID_BM25
    assert backend.hybrid("", {}, WINDOW, Filters(), FusionSpec()) == []
    assert backend.hybrid("submarine", {}, WINDOW, Filters(), FusionSpec()) == []


@pytest.mark.parametrize("spec", [FusionSpec("arithmetic", weights={"bm25": 0.2, "text": 1.0}),
                                  FusionSpec("rrf", weights={"bm25": 0.5, "text": 1.0})],
                         ids=["min_max", "rrf weighted"])
def test_one_round_trip_groups_and_pages_like_client_side(
    backend: SearchBackend, spec: FusionSpec
) -> None:
    """The node's fused window, grouped to videos, pages like fusion.py's grouped list."""
    skip_unless(backend, backend.supports_server_fusion,
                "no server-side fusion (retrieval/fusion.py fuses its signals)")
    backend.index(paging_corpus())
    vector = unit(0) + 0.3 * unit(2)
    server = group_by_video(backend.hybrid("harbor", {"text": vector}, 60, Filters(), spec))
    client = group_by_video(fuse({"bm25": backend.bm25("harbor", 60),
                                  "text": as_lucene_knn(backend.knn("text", vector, 60))}, spec))
    assert [v.video_id for v in server] == [v.video_id for v in client]
    assert [[m.segment_id for m in v.moments] for v in server] == \
        [[m.segment_id for m in v.moments] for v in client]
    pages = [server[start:start + 6] for start in range(0, len(server), 6)]
    assert len({v.video_id for page in pages for v in page}) == len(server) == 20
