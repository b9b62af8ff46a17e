"""Typo tolerance in BM25: one edit from 5 characters, two from 9, on every backend."""

from __future__ import annotations

from retrieval.backends.base import SearchBackend
from retrieval.documents import Filters

from .corpus import FILLER, doc, ids

DOCS = [
    doc("lava", "v1", "the volcano erupted and lava reached the village"),
    doc("pasta", "v2", "roll the tagliatelle dough and cut ribbons"),
    doc("bike", "v3", "patch the bicycle tube after the puncture", language="fr"),
    doc("cake", "v4", "bake a cake with butter and sugar"),
    *FILLER,
]


def test_exact_terms_ignore_typos_unless_asked(backend: SearchBackend) -> None:
    backend.index(DOCS)
    assert backend.bm25("vlocano", 10) == []
    assert backend.bm25("bicycel", 10) == []
    # Porter stemming alone already forgives a stray final e (both index "volcano").
    assert ids(backend.bm25("volcanoe", 10)) == ["lava"]


def test_one_edit_from_five_characters(backend: SearchBackend) -> None:
    backend.index(DOCS)
    assert ids(backend.bm25("vlocano", 10, fuzzy=["vlocano"])) == ["lava"]  # swapped letters
    assert ids(backend.bm25("bicycel", 10, fuzzy=["bicycel"])) == ["bike"]


def test_two_edits_from_nine_characters(backend: SearchBackend) -> None:
    backend.index(DOCS)
    assert ids(backend.bm25("taglitele", 10, fuzzy=["taglitele"])) == ["pasta"]
    assert backend.bm25("bicyxxe", 10, fuzzy=["bicyxxe"]) == []  # 7 letters: one edit only


def test_short_terms_get_no_edits(backend: SearchBackend) -> None:
    backend.index(DOCS)
    assert backend.bm25("cak", 10, fuzzy=["cak"]) == []


def test_exact_matches_still_count_with_typo_tolerance(backend: SearchBackend) -> None:
    backend.index(DOCS)
    assert set(ids(backend.bm25("butter vlocano", 10, fuzzy=["vlocano"]))) == {"lava", "cake"}


def test_fuzzy_matches_respect_filters(backend: SearchBackend) -> None:
    backend.index(DOCS)
    assert backend.bm25("bicycel", 10, Filters(language="en"), fuzzy=["bicycel"]) == []


def test_term_counts_follow_analysis_and_filters(backend: SearchBackend) -> None:
    backend.index(DOCS)
    counts = backend.term_counts(["volcanoes", "bicycle", "nothing"])
    assert counts == {"volcanoes": 1, "bicycle": 1, "nothing": 0}
    assert backend.term_counts(["bicycle"], Filters(language="en")) == {"bicycle": 0}
    assert backend.term_counts(["orbit"], cap=1) == {"orbit": 1}  # two docs, capped


def test_a_stem_the_stemmer_would_change_is_still_found(backend: SearchBackend) -> None:
    backend.index([doc("fire", "v5", "the cause of the fire was never found"), *DOCS])
    assert ids(backend.bm25("cuase", 10, fuzzy=["cuase"])) == ["fire"]  # index term "caus"
