"""Unit tests for retrieval.moments: overlap, de-duplicated moments and snippets."""

from __future__ import annotations

import pytest

from retrieval.moments import Span, distinct_moments, overlap_ratio, snippet


def span(name: str, start: float, end: float, score: float = 1.0, kind: str = "speech") -> Span:
    return Span(name, kind, start, end, score)


# --- overlap_ratio -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ((0, 10), (5, 15), 0.5),  # 5 s shared, both 10 s long
        ((0, 10), (2, 4), 1.0),  # the shorter lies inside the longer
        ((0, 10), (8, 12), 0.5),  # 2 s shared over the shorter's 4 s
        ((0, 15), (12, 27), 0.2),  # 3 s over 15 s
        ((0, 5), (5, 10), 0.0),  # touching
        ((0, 5), (7, 10), 0.0),  # apart
        ((3, 3), (3, 3), 1.0),  # the same instant
        ((3, 3), (4, 4), 0.0),  # two different instants
    ],
)
def test_overlap_ratio(a: tuple, b: tuple, expected: float) -> None:
    first, second = span("a", *a), span("b", *b)
    assert overlap_ratio(first, second) == pytest.approx(expected)
    assert overlap_ratio(second, first) == pytest.approx(expected)  # symmetric


# --- distinct_moments --------------------------------------------------------------------------

BEST = span("best", 0, 15, 0.9)
NEAR_DUPLICATE = span("dup", 3, 18, 0.8)  # 12/15 = 0.8 of it overlaps BEST
OTHER_KIND = span("ocr", 0, 15, 0.7, kind="ocr")  # same time, different kind
LATER = span("later", 12, 27, 0.6)  # 3/15 = 0.2 overlap with BEST
HALF = span("half", 19.5, 34.5, 0.5)  # exactly half of LATER, apart from BEST


def test_drops_a_same_kind_span_that_mostly_overlaps_a_better_one() -> None:
    assert distinct_moments([BEST, NEAR_DUPLICATE], limit=5) == [BEST]


def test_keeps_a_span_of_another_kind_at_the_same_time() -> None:
    assert distinct_moments([BEST, OTHER_KIND], limit=5) == [BEST, OTHER_KIND]


def test_keeps_a_span_that_overlaps_a_little_or_exactly_half() -> None:
    spans = [BEST, NEAR_DUPLICATE, OTHER_KIND, LATER, HALF]
    assert distinct_moments(spans, limit=10) == [BEST, OTHER_KIND, LATER, HALF]
    assert distinct_moments(spans, limit=10, max_overlap=0.4) == [BEST, OTHER_KIND, LATER]


def test_respects_the_limit_in_score_order() -> None:
    spans = [BEST, NEAR_DUPLICATE, OTHER_KIND, LATER, HALF]
    assert distinct_moments(spans, limit=1) == [BEST]
    assert distinct_moments(spans, limit=2) == [BEST, OTHER_KIND]
    assert distinct_moments(spans, limit=3) == [BEST, OTHER_KIND, LATER]


def test_a_limit_of_zero_keeps_nothing() -> None:
    assert distinct_moments([BEST, LATER], limit=0) == []


def test_the_better_span_wins_whatever_the_input_order() -> None:
    assert distinct_moments([NEAR_DUPLICATE, LATER, BEST], limit=5) == [BEST, LATER]


def test_no_spans_no_moments() -> None:
    assert distinct_moments([], limit=3) == []


# --- snippet -----------------------------------------------------------------------------------


def test_short_text_is_returned_whole_with_whitespace_collapsed() -> None:
    assert snippet("  Knead   the\n dough  ", "dough") == "Knead the dough"
    text = "x" * 180
    assert snippet(text, "anything") == text


def long_text(word: str, before: int, after: int) -> str:
    """Filler words, then `word`, then more filler."""
    return " ".join(["alpha"] * before + [word] + ["omega"] * after)


def test_snippet_centres_on_the_query_term_with_ellipses() -> None:
    text = long_text("ROCKET", before=100, after=100)  # the term sits at character 600
    result = snippet(text, "rocket", width=180)
    assert result.startswith("…") and result.endswith("…")
    body = result[1:-1]
    assert len(body) <= 180
    assert body in text
    # about a third of the width before the term
    assert 50 <= body.index("ROCKET") <= 65


def test_snippet_uses_the_earliest_query_term_in_the_text() -> None:
    text = " ".join(["alpha"] * 100 + ["engine"] + ["beta"] * 100 + ["rocket"] + ["omega"] * 100)
    result = snippet(text, "rocket engine")
    assert "engine" in result
    assert "rocket" not in result


def test_snippet_ignores_stopwords_in_the_query() -> None:
    text = "the " + long_text("orbit", before=100, after=100)
    assert "orbit" in snippet(text, "the orbit")


def test_term_near_the_start_gives_no_leading_ellipsis() -> None:
    text = long_text("rocket", before=2, after=200)
    result = snippet(text, "rocket", width=120)
    assert not result.startswith("…") and result.endswith("…")
    assert result.startswith("alpha alpha rocket")


def test_term_near_the_end_gives_a_full_width_tail_without_trailing_ellipsis() -> None:
    text = long_text("rocket", before=200, after=2)
    result = snippet(text, "rocket", width=120)
    assert result.startswith("…") and not result.endswith("…")
    assert result.endswith("rocket omega omega")
    assert text.endswith(result[1:])
    assert len(result) >= 110


def test_no_matching_term_gives_the_beginning() -> None:
    text = long_text("rocket", before=100, after=100)
    result = snippet(text, "submarine", width=100)
    assert result == text[:100].strip() + "…"


def test_match_is_at_a_word_start() -> None:
    # "art" inside "start" must not be the centre; the word "artwork" later is
    text = " ".join(["start"] * 60 + ["omega"] * 60 + ["artwork"] + ["omega"] * 60)
    assert "artwork" in snippet(text, "art")
