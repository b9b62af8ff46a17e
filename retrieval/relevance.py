"""How sure we are that a result answers the query: a relevance score and its tier.

A result's relevance is the best cosine similarity between the query (text model) and any
of the video's segments that the text signal returned, or its localised spoken moment; a
moment's is its own similarity. Cosine is comparable across queries and catalogs, unlike a
fused score (whose scale depends on the fusion method and the result window). The tiers'
thresholds (REELSEARCH['RELEVANCE_TIERS']) were fitted on the shipped benchmarks' answerable
and no-answer queries (README, "Evaluation").
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from django.conf import settings

TIERS = ("high", "medium", "low")
_DEFAULT_THRESHOLDS = {"high": 0.4, "medium": 0.3}


def thresholds() -> Mapping[str, float]:
    """Return the lowest relevance of the high and medium tiers."""
    return {**_DEFAULT_THRESHOLDS, **(settings.REELSEARCH.get("RELEVANCE_TIERS") or {})}


def tier(relevance: float | None) -> str:
    """Return "high", "medium" or "low" for a relevance score."""
    if relevance is None:
        return "low"
    bounds = thresholds()
    if relevance >= bounds["high"]:
        return "high"
    return "medium" if relevance >= bounds["medium"] else "low"


def tier_rank(name: str) -> int:
    """Return 0 for high, 1 for medium, 2 for low (ValueError on anything else)."""
    if name not in TIERS:
        raise ValueError(f"unknown tier {name!r}: choose one of {', '.join(TIERS)}.")
    return TIERS.index(name)


def passes(relevance: float | None, min_score: float | None, min_tier: str | None) -> bool:
    """Return True when a relevance clears both the score and the tier floor."""
    if min_score is not None and (relevance or 0.0) < min_score:
        return False
    return min_tier is None or tier_rank(tier(relevance)) <= tier_rank(min_tier)


def cosine(vector: bytes | None, query: np.ndarray | None) -> float | None:
    """Return the cosine of a stored unit vector (float32 bytes) and a unit query vector."""
    if not vector or query is None:
        return None
    row = np.frombuffer(bytes(vector), dtype=np.float32)
    return float(row @ query) if row.shape == query.shape else None
