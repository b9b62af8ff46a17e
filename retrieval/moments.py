"""Pick a video's best moments: drop near-duplicates from overlapping chunks, make snippets."""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .text import query_terms


@dataclass(frozen=True)
class Span:
    """A scored time span of a video."""

    segment_id: str
    kind: str
    start: float
    end: float
    score: float


def overlap_ratio(a: Span, b: Span) -> float:
    """Return the intersection of two spans over the shorter one's length (0..1)."""
    inter = min(a.end, b.end) - max(a.start, b.start)
    shorter = min(a.end - a.start, b.end - b.start)
    if shorter <= 0:
        return 1.0 if a.start == b.start and a.end == b.end else 0.0
    return max(0.0, inter) / shorter


def distinct_moments(spans: list[Span], limit: int, max_overlap: float = 0.5) -> list[Span]:
    """Keep the best spans, skipping one that mostly overlaps a better one of the same kind."""
    kept: list[Span] = []
    if limit <= 0:
        return kept
    for span in sorted(spans, key=lambda span: -span.score):  # stable: ties keep their order
        if any(k.kind == span.kind and overlap_ratio(k, span) > max_overlap for k in kept):
            continue
        kept.append(span)
        if len(kept) == limit:
            break
    return kept


def snippet(text: str, query: str, width: int = 180) -> str:
    """Return about `width` characters of text centred on the first query term found."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    lowered = text.lower()
    positions = [m.start() for term in query_terms(query)
                 for m in [re.search(rf"\b{re.escape(term)}", lowered)] if m]
    centre = min(positions) if positions else 0
    start = max(0, min(centre - width // 3, len(text) - width))
    piece = text[start:start + width]
    return ("…" if start > 0 else "") + piece.strip() + ("…" if start + width < len(text) else "")


# --------------------------------------------------------------------------- localisation
# VLG-Net's idea, kept small: condition on the query, score every unit (a spoken sentence)
# of a top video, and return the contiguous run of units that answers it. A unit adds
# (similarity - threshold) to a window, where the threshold sits between the video's best
# and its typical similarity: units clearly about the query extend the window, the rest
# shorten it (the length prior). A pause longer than ``max_gap`` ends a window.


@dataclass(frozen=True)
class Unit:
    """A short span of a video (a sentence) and its similarity to the query."""

    segment_id: str
    start: float
    end: float
    similarity: float


@dataclass(frozen=True)
class Localized:
    """The span that answers a query inside one video."""

    segment_id: str  # the best unit of the span
    start: float
    end: float
    score: float  # attention-pooled similarity of the span's units


def attention_pool(similarities: np.ndarray, temperature: float = 0.1) -> float:
    """Return the softmax(similarity / temperature)-weighted mean similarity."""
    scaled = similarities / temperature
    weights = np.exp(scaled - scaled.max())
    return float((weights * similarities).sum() / weights.sum())


def localize(units: Sequence[Unit], *, sharpness: float = 0.5, max_seconds: float = 40.0,
             max_gap: float = 3.0) -> Localized | None:
    """Return the contiguous run of units (time order) that best answers the query."""
    if not units:
        return None
    units = sorted(units, key=lambda unit: unit.start)
    sims = np.array([unit.similarity for unit in units], dtype=np.float64)
    best = int(sims.argmax())
    threshold = sims[best] - sharpness * (sims[best] - statistics.median(sims.tolist()))
    gains = (sims - threshold).tolist()  # plain floats: _grow reads them one by one
    lo, hi = _grow(units, gains, best, max_seconds, max_gap)
    return Localized(units[best].segment_id, units[lo].start, units[hi].end,
                     attention_pool(sims[lo:hi + 1]))


def _grow(units: Sequence[Unit], gains: Sequence[float], best: int, max_seconds: float,
          max_gap: float) -> tuple[int, int]:
    """Extend [best, best] to the neighbouring run of units with the largest summed gain."""
    left = _best_extension(units, gains, best, -1, max_seconds, max_gap)
    right = _best_extension(units, gains, best, 1, max_seconds, max_gap)
    lo, hi = best - left, best + right
    while units[hi].end - units[lo].start > max_seconds and hi > lo:  # keep within bound
        if (hi - best) >= (best - lo):
            hi -= 1
        else:
            lo += 1
    return lo, hi


def _best_extension(units: Sequence[Unit], gains: Sequence[float], best: int, step: int,
                    max_seconds: float, max_gap: float) -> int:
    """Return how many units to add on one side of `best` (0 when none pays)."""
    total, chosen, top = 0.0, 0, 0.0
    n = best + step
    while 0 <= n < len(units):
        previous = units[n - step]
        pause = (units[n].start - previous.end) if step > 0 else (previous.start - units[n].end)
        span = abs(units[n].end - units[best].start) if step > 0 else \
            abs(units[best].end - units[n].start)
        if pause > max_gap or span > max_seconds:
            break
        total += gains[n]
        if total > top:
            top, chosen = total, abs(n - best)
        n += step
    return chosen


def _stem(word: str) -> str:
    """Return a crude English stem: enough to match "ovens" to "oven", "baking" to "bake"."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) - len(suffix) >= 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


class TermPatterns:
    """Query terms compiled once for scoring many texts: which terms does a text hold?

    A text holds a term when one of its words starts with the term's crude stem (a plain
    substring test first: most texts lack most terms).
    """

    def __init__(self, terms: Sequence[str]) -> None:
        self._stems = [(stem, re.compile(rf"\b{re.escape(stem)}"))
                       for stem in (_stem(term) for term in terms)]

    def __len__(self) -> int:
        return len(self._stems)

    def held(self, text: str) -> int:
        """Return how many of the terms the text holds."""
        lowered = text.lower()
        return sum(1 for stem, pattern in self._stems
                   if stem in lowered and pattern.search(lowered))

    def overlaps(self, texts: Iterable[str]) -> list[float]:
        """Return term_overlap() of each text (one loop for many texts)."""
        count, held = len(self._stems), self.held
        return [held(text) / count if count else 0.0 for text in texts]


def term_overlap(text: str, terms: Sequence[str] | TermPatterns) -> float:
    """Return the share of query terms (crudely stemmed) that occur in a text.

    ``terms`` may be compiled already (TermPatterns) when many texts are scored.
    """
    patterns = terms if isinstance(terms, TermPatterns) else TermPatterns(terms)
    return patterns.held(text) / len(patterns) if len(patterns) else 0.0
