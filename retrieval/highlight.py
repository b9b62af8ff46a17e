"""Snippets with highlights: where in a moment's text the query matched.

A BM25 match marks every word whose Porter stem is a query term's (or a typo correction's)
stem, as the indexes analyse text (retrieval/analysis.py). A moment found by the dense
signal alone marks the sentence of its best-scoring unit instead. Offsets are character
offsets into the snippet string, [start, end), in order and never overlapping. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .analysis import term_highlights

ELLIPSIS = "…"


@dataclass(frozen=True)
class Highlighted:
    """A snippet and the spans of it to mark."""

    text: str
    highlights: tuple[tuple[int, int], ...]
    match: str  # "terms" (BM25 words), "sentence" (the best unit, dense only) or "none"


def _sentence_span(text: str, sentence: str | None) -> tuple[int, int] | None:
    sentence = " ".join((sentence or "").split())
    at = text.find(sentence) if sentence else -1
    return (at, at + len(sentence)) if at >= 0 else None


def _window(length: int, centre: int, width: int) -> tuple[int, int]:
    start = max(0, min(centre - width // 3, length - width))
    return start, min(length, start + width)


def _clip(spans: list[tuple[int, int]], lo: int, hi: int, shift: int,
          whole: bool) -> tuple[tuple[int, int], ...]:
    """Move spans into snippet coordinates; keep whole ones only (or cut them, for a sentence)."""
    kept = []
    for start, end in spans:
        if whole and (start < lo or end > hi):
            continue
        start, end = max(start, lo), min(end, hi)
        if end > start:
            kept.append((start - lo + shift, end - lo + shift))
    return tuple(kept)


def highlighted_snippet(text: str, wanted: set[str], sentence: str | None = None,
                        width: int = 180, near: Sequence[tuple[str, int]] = ()
                        ) -> Highlighted:
    """Return about `width` characters of text around the match, with what to mark.

    ``wanted`` holds the stems to mark and ``near`` the (stem, edits) of typo-tolerant terms
    (see analysis.term_highlights); ``sentence`` is the best unit's text, marked when no
    wanted word is in the text (a dense-only match).
    """
    text = " ".join(text.split())
    terms = term_highlights(text, wanted, near)
    span = None if terms else _sentence_span(text, sentence)
    centre = terms[0][0] if terms else (span[0] if span else 0)
    lo, hi = (0, len(text)) if len(text) <= width else _window(len(text), centre, width)
    piece = text[lo:hi]
    stripped = len(piece) - len(piece.lstrip())
    lo, piece = lo + stripped, piece.strip()
    hi = lo + len(piece)
    prefix = ELLIPSIS if lo > 0 else ""
    suffix = ELLIPSIS if hi < len(text) else ""
    if terms:
        marks, match = _clip(terms, lo, hi, len(prefix), whole=True), "terms"
    elif span:
        marks, match = _clip([span], lo, hi, len(prefix), whole=False), "sentence"
    else:
        marks, match = (), "none"
    return Highlighted(prefix + piece + suffix, marks, match if marks else "none")
