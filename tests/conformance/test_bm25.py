"""BM25: rankings, analysis (stemming, stopwords, unicode) and very long text on every backend."""

from __future__ import annotations

import pytest

from retrieval.backends.base import SearchBackend

from .conftest import skip_unless
from .corpus import FILLER, doc, ids, unit


def test_the_doc_that_mentions_the_term_more_ranks_first(backend: SearchBackend) -> None:
    backend.index([
        doc("once", text="we bake bread in the oven today with friends"),
        doc("thrice", text="bread bread bread in the oven today with friends"),
        doc("never", text="we bake cakes in the oven today with friends"),
        *FILLER,
    ])
    assert ids(backend.bm25("bread", 10)) == ["thrice", "once"]


def test_only_docs_containing_a_query_term_are_returned(backend: SearchBackend) -> None:
    backend.index([doc("bread", text="flour water yeast salt"), *FILLER])
    assert ids(backend.bm25("yeast", 10)) == ["bread"]
    assert backend.bm25("submarine", 10) == []


def test_scores_are_positive_and_sorted_descending(backend: SearchBackend) -> None:
    backend.index([
        doc("a", text="orbit"),
        doc("b", text="orbit orbit rocket"),
        doc("c", text="a long sentence that mentions orbit only once among many other words"),
        doc("d", text="rocket rocket rocket orbit"),
        *FILLER,
    ])
    hits = backend.bm25("orbit rocket", 10)
    assert set(ids(hits)) == {"a", "b", "c", "d", "f1", "f3"}  # any of the terms
    scores = [hit.score for hit in hits]
    assert all(score > 0 for score in scores)
    assert scores == sorted(scores, reverse=True)
    assert ids(hits)[0] in {"b", "d"}  # both terms in a short doc
    assert ids(hits)[-1] == "c"  # one mention in a long doc


def test_k_limits_the_answer(backend: SearchBackend) -> None:
    backend.index([doc(f"d{i}", text="orbit " * (i + 1)) for i in range(6)] + FILLER)
    assert len(backend.bm25("orbit", 3)) == 3
    assert backend.bm25("orbit", 0) == []


def test_stemming_matches_inflections(backend: SearchBackend) -> None:
    backend.index([doc("knead", text="knead the dough for ten minutes"), *FILLER])
    assert ids(backend.bm25("kneading", 5)) == ["knead"]
    backend.index([doc("rising", text="the dough is rising slowly")])
    assert ids(backend.bm25("rises", 5)) == ["rising"]


def test_a_stopword_only_query_still_matches(backend: SearchBackend) -> None:
    backend.index([
        doc("hamlet", text="to be or not to be"),
        doc("other", text="rockets and tomatoes"),
    ])
    assert ids(backend.bm25("to be", 5)) == ["hamlet"]


@pytest.mark.parametrize("query", ["", "   ", "!!! ??? ...", "\n\t"])
def test_an_empty_query_returns_nothing(backend: SearchBackend, query: str) -> None:
    backend.index([doc("a", text="bread and butter")])
    assert backend.bm25(query, 5) == []


@pytest.mark.parametrize(
    "query", ['bread" OR', "bread AND NOT", "NEAR(bread)", "bread*", "text:bread", "-bread",
              '{"match": "bread"}', "bread~2 ^3 [a TO z]"]
)
def test_query_syntax_is_treated_as_words(backend: SearchBackend, query: str) -> None:
    backend.index([doc("a", text="bread and butter"), *FILLER])
    assert "a" in ids(backend.bm25(query, 5))


# --- unicode and very long text -----------------------------------------------------------------


def test_unicode_text_is_indexed_and_found(backend: SearchBackend) -> None:
    backend.index([
        doc("fr", text="Crème brûlée au caramel"),
        doc("ja", text="Visiting 東京 at night"),
        doc("de", text="Straße und Größe"),
        doc("emoji", text="pizza night 🍕 with friends"),
        *FILLER,
    ])
    assert ids(backend.bm25("brûlée", 5)) == ["fr"]
    assert ids(backend.bm25("creme brulee", 5)) == ["fr"]  # diacritics folded
    assert ids(backend.bm25("CRÈME", 5)) == ["fr"]
    assert ids(backend.bm25("東京", 5)) == ["ja"]
    assert ids(backend.bm25("größe", 5)) == ["de"]
    assert ids(backend.bm25("pizza 🍕", 5)) == ["emoji"]


def test_a_japanese_word_inside_unspaced_text_is_found(backend: SearchBackend) -> None:
    skip_unless(backend, not backend.conformance_name.startswith("embedded"),
                "its tokenizers (tantivy's simple one, SQLite's unicode61) do not split "
                "unspaced CJK text into words")
    backend.index([doc("ja", text="東京タワーの夜景"), *FILLER])
    assert ids(backend.bm25("東京", 5)) == ["ja"]


def test_very_long_text_is_indexed_and_found(backend: SearchBackend) -> None:
    text = " ".join(f"word{i % 997}" for i in range(8000))[:49_991] + " zeppelin"
    assert len(text) == 50_000 and text.endswith("zeppelin")
    report = backend.index([doc("long", text=text, vector=unit(0)), *FILLER])
    assert report.ok
    hits = backend.bm25("zeppelin", 5)
    assert ids(hits) == ["long"]
    assert hits[0].score > 0
    assert ids(backend.knn("text", unit(0), 5)) == ["long"]


def test_a_long_query_is_answered(backend: SearchBackend) -> None:
    backend.index([doc("a", text="bread and butter"), *FILLER])
    query = " ".join(f"term{i}" for i in range(300)) + " bread"
    assert ids(backend.bm25(query, 5)) == ["a"]
