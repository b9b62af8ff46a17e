"""Filters (tags, language, duration, published, videos, kinds) inside both signals' top-k."""

from __future__ import annotations

import pytest

from retrieval.backends.base import SearchBackend
from retrieval.documents import Filters, Hit

from .corpus import FILTER_CASES, RANKED, allowed, doc, filter_corpus, ids, unit


@pytest.mark.parametrize("filters", FILTER_CASES.values(), ids=FILTER_CASES.keys())
@pytest.mark.parametrize("signal", ["bm25", "knn"])
def test_filters_apply_inside_the_signal_before_top_k(
    backend: SearchBackend, filters: Filters, signal: str
) -> None:
    backend.index(filter_corpus())

    def run(k: int, flt: Filters = Filters()) -> list[Hit]:
        if signal == "bm25":
            return backend.bm25("bread", k, flt)
        return backend.knn("text", unit(0), k, flt)

    # Unfiltered, the ranking is RANKED (BM25: pad docs lack the term; kNN: they lack a vector).
    assert ids(run(20)) == [f"{v}-{kind}" for v, kind in RANKED]
    expected = allowed(filters)
    assert expected, "every case keeps at least one doc"
    assert ids(run(20, filters)) == expected  # filtered-out docs never appear, order kept
    k = min(2, len(expected))
    # The unfiltered top-k holds filtered-out docs, so filtering after top-k would return fewer.
    assert ids(run(k)) != expected[:k]
    assert ids(run(k, filters)) == expected[:k]


def test_filters_that_match_nothing_return_nothing(backend: SearchBackend) -> None:
    backend.index(filter_corpus())
    none = Filters(language="xx")
    assert backend.bm25("bread", 5, none) == []
    assert backend.knn("text", unit(0), 5, none) == []


def test_filters_see_metadata_written_by_a_reindex(backend: SearchBackend) -> None:
    backend.index([doc("a", "v1", "bread", vector=unit(0), published=False)])
    published = Filters(published=True)
    assert backend.bm25("bread", 5, published) == []
    assert backend.knn("text", unit(0), 5, published) == []
    backend.index([doc("a", "v1", "bread", vector=unit(0), published=True)])
    assert ids(backend.bm25("bread", 5, published)) == ["a"]
    assert ids(backend.knn("text", unit(0), 5, published)) == ["a"]


def test_missing_filter_values_default_like_the_catalog(backend: SearchBackend) -> None:
    backend.index([doc("bare", "v1", "bread", vector=unit(0))])  # no tags, language, ...
    for filters, found in [(Filters(published=True), True), (Filters(published=False), False),
                           (Filters(max_duration=0.0), True), (Filters(min_duration=1.0), False),
                           (Filters(tags=("x",)), False), (Filters(language="en"), False)]:
        expected = ["bare"] if found else []
        assert ids(backend.bm25("bread", 5, filters)) == expected, filters
        assert ids(backend.knn("text", unit(0), 5, filters)) == expected, filters


def test_a_filter_keeps_k_results_when_most_of_the_corpus_is_excluded(
    backend: SearchBackend,
) -> None:
    docs = [doc(f"n{i:03d}", "vn", "bread", vector=unit(0) + 0.001 * i * unit(1), language="fr")
            for i in range(200)]
    docs += [doc(f"e{i}", "ve", "bread crumbs", vector=unit(1) + 0.1 * i * unit(2),
                 language="en") for i in range(5)]
    backend.index(docs)
    english = Filters(language="en")
    assert ids(backend.knn("text", unit(0), 5, english)) == [f"e{i}" for i in range(5)]
    assert len(backend.bm25("bread", 5, english)) == 5
