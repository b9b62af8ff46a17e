"""Facet names and duration buckets: counts of videos per value over a search's result set.

The result set is every video a search ranks (``SearchResponse.total`` of them): videos that
pass the filters, have a segment in some signal's window (BM25 or nearest neighbours, see
SIGNAL_WINDOW) and clear the relevance floors (min_score, min_tier). A facet counts videos,
not segments, over all pages. ``tags``, ``language`` and ``duration`` come from the backend
(aggregations on OpenSearch, GROUP BY on the embedded index); ``kind`` counts the videos
with a ranked segment of each kind. Pure: no Django, no backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

FACETS = ("tags", "language", "kind", "duration")
BACKEND_FACETS = ("tags", "language", "duration")
MAX_VALUES = 50  # values per facet, most frequent first


@dataclass(frozen=True)
class Bucket:
    """A duration range in seconds, [low, high) (high None: no upper bound)."""

    key: str
    label: str
    low: float
    high: float | None


DURATION_BUCKETS = (
    Bucket("under_1m", "< 1 min", 0.0, 60.0),
    Bucket("1m_5m", "1–5 min", 60.0, 300.0),
    Bucket("5m_20m", "5–20 min", 300.0, 1200.0),
    Bucket("over_20m", "> 20 min", 1200.0, None),
)


def bucket_of(seconds: float) -> str:
    """Return the key of the duration bucket a video of this length falls in."""
    for bucket in DURATION_BUCKETS:
        if seconds >= bucket.low and (bucket.high is None or seconds < bucket.high):
            return bucket.key
    return DURATION_BUCKETS[0].key  # negative or NaN: treated as unknown, the shortest


def parse_facets(raw: str) -> tuple[str, ...]:
    """Return the facet names of a comma-separated list, refusing unknown ones."""
    names = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    unknown = [name for name in names if name not in FACETS]
    if unknown:
        raise ValueError(f"Unknown facet(s) {unknown} in facets: choose from {list(FACETS)}.")
    return names


def top_values(counts: Mapping[str, int]) -> list[dict]:
    """Return [{"value", "count"}] most frequent first (ties by value), at most MAX_VALUES."""
    ranked = sorted(((v, c) for v, c in counts.items() if c > 0), key=lambda p: (-p[1], p[0]))
    return [{"value": value, "count": count} for value, count in ranked[:MAX_VALUES]]


def duration_values(counts: Mapping[str, int]) -> list[dict]:
    """Return every duration bucket in order with its count and the filter that selects it."""
    return [{"value": b.key, "label": b.label, "count": int(counts.get(b.key, 0)),
             "min_duration": b.low, "max_duration": b.high} for b in DURATION_BUCKETS]


def kind_counts(segments: Iterable[tuple[str, str]], videos: set[str]) -> dict[str, int]:
    """Count the videos of a result set with a ranked segment of each kind."""
    seen: dict[str, set[str]] = {}
    for video_id, kind in segments:
        if video_id in videos and kind:
            seen.setdefault(kind, set()).add(video_id)
    return {kind: len(ids) for kind, ids in seen.items()}
