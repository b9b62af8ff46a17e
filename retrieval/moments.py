"""Pick a video's best moments: drop near-duplicates from overlapping chunks, make snippets."""

from __future__ import annotations

import re
from dataclasses import dataclass

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
