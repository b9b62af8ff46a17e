"""Sentence units from word timestamps and query-conditioned moment localisation (pure)."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.moments import TermPatterns, Unit, attention_pool, localize, term_overlap
from workers.pipeline.asr import Word
from workers.pipeline.segment import sentence_units


def words_of(text: str, start: float = 0.0, step: float = 0.4) -> list[Word]:
    """One word every `step` seconds, each lasting 0.3 s."""
    return [Word(round(start + n * step, 3), round(start + n * step + 0.3, 3), token)
            for n, token in enumerate(text.split())]


def test_sentence_units_end_at_sentence_ends_and_hug_the_words() -> None:
    words = words_of("Knead the dough for ten minutes. Then leave it to rise for an hour.")
    units = sentence_units(words)
    assert [u.text for u in units] == ["Knead the dough for ten minutes.",
                                      "Then leave it to rise for an hour."]
    assert units[0].start == words[0].start and units[0].end == words[5].end
    assert units[1].start == words[6].start and units[1].end == words[-1].end


def test_a_short_sentence_joins_its_neighbour() -> None:
    words = words_of("Yes. Knead the dough for ten whole minutes today.")
    units = sentence_units(words, min_len=2.0, max_len=8.0)
    assert len(units) == 1 and units[0].text.startswith("Yes. Knead")


def test_a_long_run_without_full_stops_is_cut_within_max_len() -> None:
    words = words_of(" ".join(f"w{n}" for n in range(60)))  # 24 s, no punctuation
    units = sentence_units(words, max_len=8.0)
    assert len(units) >= 3
    assert all(u.end - u.start <= 8.0 for u in units)
    assert " ".join(u.text for u in units).split() == [w.text for w in words]


def test_a_pause_ends_a_unit() -> None:
    words = words_of("first part goes here") + words_of("second part after gap", start=10)
    units = sentence_units(words, min_len=0.5)
    assert [u.text for u in units] == ["first part goes here", "second part after gap"]


def units(sims: list[float], length: float = 4.0, gap: float = 0.2) -> list[Unit]:
    return [Unit(f"u{n}", n * (length + gap), n * (length + gap) + length, s)
            for n, s in enumerate(sims)]


def test_localize_returns_one_sentence_when_one_stands_out() -> None:
    found = localize(units([0.1, 0.15, 0.2, 0.8, 0.25, 0.1, 0.12]))
    assert found is not None and found.segment_id == "u3"
    assert (found.start, found.end) == (3 * 4.2, 3 * 4.2 + 4.0)


def test_localize_spans_a_run_of_relevant_sentences() -> None:
    sims = [0.05, 0.1, 0.55, 0.6, 0.5, 0.58, 0.1, 0.08, 0.12]
    found = localize(units(sims))
    assert found is not None
    assert found.start == pytest.approx(2 * 4.2) and found.end == pytest.approx(5 * 4.2 + 4)


def test_localize_does_not_cross_a_long_pause() -> None:
    spans = [Unit("a", 0, 4, 0.6), Unit("b", 4.2, 8, 0.62), Unit("c", 8.2, 12, 0.1),
             Unit("d", 12.2, 16, 0.1), Unit("e", 16.2, 20, 0.12), Unit("f", 40, 44, 0.61)]
    found = localize(spans, max_gap=3.0)
    assert found is not None and (found.start, found.end) == (0, 8)
    spans[1] = Unit("b", 30, 34, 0.62)  # now a pause separates a from b
    found = localize(sorted(spans, key=lambda u: u.start), max_gap=3.0)
    assert found is not None and (found.start, found.end) == (30, 34)


def test_localize_of_nothing_is_none() -> None:
    assert localize([]) is None


def test_attention_pool_leans_to_the_best_similarity() -> None:
    sims = np.array([0.2, 0.8])
    pooled = attention_pool(sims, temperature=0.1)
    assert 0.5 < pooled < 0.8
    assert attention_pool(np.array([0.4, 0.4])) == pytest.approx(0.4)


def test_term_overlap_matches_crude_stems() -> None:
    assert term_overlap("Bake it in two ovens", ["ovens", "baking"]) == 1.0
    assert term_overlap("a microwave", ["oven"]) == 0.0
    assert term_overlap("anything", []) == 0.0


def test_the_tail_of_a_sentence_cut_at_max_len_joins_it() -> None:
    words = words_of(" ".join(f"w{n}" for n in range(21)) + " rock.")  # 8.8 s, one sentence
    units = sentence_units(words, min_len=2.0, max_len=8.0)
    assert all(u.end - u.start >= 2.0 for u in units)
    assert units[-1].text.endswith("rock.")


def test_overlaps_of_many_texts_are_each_texts_term_overlap() -> None:
    texts = ["Bake it in two ovens", "a microwave", "", "OVEN baking, baked", "ovenbird",
             "the baker's oven", "Cakes bake slowly"]
    for terms in (["ovens", "baking"], ["oven"], ["cake", "bake", "slow"], []):
        patterns = TermPatterns(terms)
        assert patterns.overlaps(texts) == [term_overlap(t, terms) for t in texts]
        assert patterns.overlaps(iter(texts)) == [term_overlap(t, patterns) for t in texts]
