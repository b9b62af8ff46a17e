"""Fuse several signals' ranked hits into one ranking of segments and videos.

Pure functions over plain values (stdlib and ``retrieval.documents`` only).
The rules follow OpenSearch's ``normalization-processor`` and
``score-ranker-processor`` (RRF):

Input
    Each signal maps to its ranked answer, best first. Duplicate segment ids
    within one signal keep only the first (best) occurrence; ranks are the
    1-based positions in that de-duplicated list, and normalization only sees
    the de-duplicated scores. Tied raw scores still get distinct ranks (their
    list order). A signal whose list is empty is dropped entirely: it carries
    no weight anywhere. If every signal is empty the result is ``[]``.

Normalization (per signal; ``rrf`` ignores it and the lower bounds)
    ``min_max``: ``(s - min) / (max - min)``; if ``max == min`` every score is
    1.0 (so a single hit is 1.0).
    ``min_max`` with a lower bound ``lb`` for that signal (OpenSearch's
    ``clip`` mode): ``min`` is replaced by ``lb``, so ``(s - lb) / (max - lb)``
    clipped to ``[0, 1]``; scores below ``lb`` become 0.0, and if
    ``max <= lb`` every score becomes 0.0 (nothing cleared the bar). An
    ``lb`` below the window's minimum keeps the lowest hit above 0.
    ``z_score``: ``(s - mean) / std`` with the population std; if std is 0
    every score is 0.0.
    ``l2``: ``s / sqrt(sum(s**2))``; if every score is 0 all stay 0.0.

Combination (``w_i`` = weight of signal ``i``, default 1.0; ``n_i`` = the
segment's normalized score in signal ``i``)
    A segment a signal did not return gets ``n_i = 0`` for ``min_max`` and
    ``l2``, and that signal's lowest z-score for ``z_score`` (it ranked below
    everything the signal returned).
    ``arithmetic``: ``sum(w_i * n_i) / sum(w_i)`` over every non-empty signal.
    ``geometric``: ``exp(sum(w_i * ln n_i) / sum(w_i))`` over only the signals
    with ``n_i > 0``; 0.0 if there are none.
    ``harmonic``: ``sum(w_i) / sum(w_i / n_i)`` over only the signals with
    ``n_i > 0``; 0.0 if there are none.
    ``rrf``: ``sum(w_i / (rank_constant + rank_i))`` over the signals that
    returned the segment; raw scores are not used.
    A gate (``fuse(..., gates={signal: {segment_id: factor}})``) moves each normalized value
    of that signal towards its missing value: ``missing + (n - missing) * factor``, factor
    clipped to [0, 1] and 0 for a segment the gate does not name; SignalScore.normalized
    shows the gated value.
    A weight of 0 removes the signal from the combination (the result is 0.0
    when no positive weight is left) but it still appears in the explain data.
    Weights need not sum to 1. ``z_score`` is only valid with ``arithmetic``
    because z-scores can be negative.

Output
    Segments sorted by fused score descending, ties broken by the best rank the
    segment got in any signal that returned it (ascending), then by segment id.
    A segment's video id is taken from its first hit (signals in mapping
    order). ``SignalScore.normalized`` is the normalized score, or for ``rrf``
    the contribution ``w / (rank_constant + rank)``.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter, mul
from types import MappingProxyType
from typing import NamedTuple

from retrieval.documents import Hit

NORMALIZATIONS = ("min_max", "z_score", "l2")
COMBINATIONS = ("arithmetic", "geometric", "harmonic", "rrf")
RESCORERS = ("", "dual_softmax")  # applied by retrieval/search.py before fusion

_ALIASES = {
    "arithmetic_mean": "arithmetic",
    "geometric_mean": "geometric",
    "harmonic_mean": "harmonic",
    "reciprocal_rank_fusion": "rrf",
    "minmax": "min_max",
    "zscore": "z_score",
}


def _allowed(values: Sequence[str]) -> str:
    """Format the allowed values for an error message."""
    return ", ".join(repr(value) for value in values)


def _check_choice(kind: str, value: str, allowed: Sequence[str]) -> None:
    """Raise ValueError unless value is one of allowed."""
    if value not in allowed:
        raise ValueError(f"unknown {kind} {value!r}; expected one of {_allowed(allowed)}")


def _check_number(kind: str, name: str, value: float) -> None:
    """Raise ValueError unless value is a finite real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{kind} for signal {name!r} must be a finite number, got {value!r}")


def _check_weights(weights: Mapping[str, float]) -> None:
    """Raise ValueError on a non-numeric or negative weight."""
    for name, weight in weights.items():
        _check_number("weight", name, weight)
        if weight < 0:
            raise ValueError(f"weight for signal {name!r} must be >= 0, got {weight!r}")


def _check_rank_constant(rank_constant: int) -> None:
    """Raise ValueError unless rank_constant is an integer >= 1."""
    if isinstance(rank_constant, bool) or not isinstance(rank_constant, int) or rank_constant < 1:
        raise ValueError(f"rank_constant must be an integer >= 1, got {rank_constant!r}")


def _check_pairing(method: str, normalization: str, lower_bounds: Mapping[str, float]) -> None:
    """Raise ValueError on a normalization that cannot feed the method."""
    if normalization == "z_score" and method in ("geometric", "harmonic"):
        raise ValueError(
            f"normalization='z_score' cannot be combined with method={method!r} because "
            "z-scores can be negative; use method='arithmetic' or normalization='min_max'"
        )
    if lower_bounds and normalization != "min_max":
        raise ValueError(
            "lower_bounds apply only to normalization='min_max', "
            f"got normalization={normalization!r}"
        )


def _parse_weight(part: str) -> tuple[str, float]:
    """Parse one 'name=weight' pair."""
    name, sep, value = (piece.strip() for piece in part.partition("="))
    try:
        if not (sep and name):
            raise ValueError(part)
        return name, float(value)
    except ValueError:
        raise ValueError(f"bad weight {part!r}; expected 'name=number'") from None


def _parse_weights(text: str) -> dict[str, float]:
    """Parse 'name=weight,name=weight' into a dict."""
    return dict(_parse_weight(part) for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class FusionSpec:
    """How to normalize and combine signals (see the module docstring)."""

    method: str = "arithmetic"
    normalization: str = "min_max"
    weights: Mapping[str, float] = field(default_factory=dict)
    rank_constant: int = 60
    lower_bounds: Mapping[str, float] = field(default_factory=dict)
    rescore: str = ""  # "dual_softmax": CAMoE re-scoring of the text signal (rescore.py)
    # > 0: normalized BM25 values times (share of query terms matched) ** coverage; the
    # caller (retrieval/search.py) passes those factors to fuse() as the bm25 gate.
    coverage: float = 0.0

    def __post_init__(self) -> None:
        """Validate the spec and freeze its mappings."""
        _check_choice("fusion method", self.method, COMBINATIONS)
        _check_choice("re-scorer", self.rescore, RESCORERS)
        _check_number("coverage exponent", "bm25", self.coverage)
        if self.coverage < 0:
            raise ValueError(f"coverage must be >= 0, got {self.coverage!r}")
        _check_choice("normalization", self.normalization, NORMALIZATIONS)
        _check_weights(self.weights)
        _check_rank_constant(self.rank_constant)
        for name, bound in self.lower_bounds.items():
            _check_number("lower bound", name, bound)
        _check_pairing(self.method, self.normalization, self.lower_bounds)
        object.__setattr__(self, "weights", MappingProxyType(dict(self.weights)))
        object.__setattr__(self, "lower_bounds", MappingProxyType(dict(self.lower_bounds)))

    @classmethod
    def parse(
        cls,
        method: str,
        normalization: str = "min_max",
        weights: Mapping[str, float] | str | None = None,
        rank_constant: int = 60,
        lower_bounds: Mapping[str, float] | str | None = None,
        rescore: str = "",
        coverage: float = 0.0,
    ) -> FusionSpec:
        """Build a spec from loose user input (case, OpenSearch names, 'a=1,b=2')."""
        if isinstance(weights, str):
            weights = _parse_weights(weights)
        if isinstance(lower_bounds, str):
            lower_bounds = _parse_weights(lower_bounds)
        method, normalization = (_canonical(value) for value in (method, normalization))
        return cls(method, normalization, dict(weights or {}), rank_constant,
                   dict(lower_bounds or {}), _canonical(rescore) if rescore else "",
                   float(coverage))

    def weight(self, signal: str) -> float:
        """Return the weight of a signal (1.0 when not configured)."""
        return float(self.weights.get(signal, 1.0))


def _canonical(name: str) -> str:
    """Lower-case a method or normalization name and resolve aliases."""
    key = name.strip().lower().replace("-", "_")
    return _ALIASES.get(key, key)


class SignalScore(NamedTuple):
    """One signal's view of a segment (explain data)."""

    raw: float
    normalized: float
    rank: int


class ScoredSegment(NamedTuple):
    """A segment with its fused score and the signals that returned it.

    A named tuple (immutable, like the rest of the fusion values) because a query builds
    hundreds of them: change one with ``segment._replace(score=...)``.
    """

    segment_id: str
    video_id: str
    score: float
    signals: Mapping[str, SignalScore]


class VideoResult(NamedTuple):
    """A video ranked by its best segment, with its best moments."""

    video_id: str
    score: float
    moments: tuple[ScoredSegment, ...]


def _min_max(scores: Sequence[float], lower_bound: float | None) -> list[float]:
    """Scale scores into [0, 1] between the minimum (or lower bound) and maximum."""
    top = max(scores)
    if lower_bound is not None and top <= lower_bound:
        return [0.0] * len(scores)
    low = min(scores) if lower_bound is None else lower_bound
    if top == low:
        return [1.0] * len(scores)
    return [min(1.0, max(0.0, (score - low) / (top - low))) for score in scores]


def _z_score(scores: Sequence[float]) -> list[float]:
    """Standardize scores with the population standard deviation."""
    mean = math.fsum(scores) / len(scores)
    std = math.sqrt(math.fsum((score - mean) ** 2 for score in scores) / len(scores))
    if std == 0 or max(scores) == min(scores):
        return [0.0] * len(scores)
    return [(score - mean) / std for score in scores]


def _l2(scores: Sequence[float]) -> list[float]:
    """Divide scores by their Euclidean norm."""
    norm = math.sqrt(math.fsum(score * score for score in scores))
    if norm == 0:
        return [0.0] * len(scores)
    return [score / norm for score in scores]


def normalize(
    scores: Sequence[float], method: str, lower_bound: float | None = None
) -> list[float]:
    """Normalize one signal's scores with min_max, z_score or l2."""
    _check_choice("normalization", method, NORMALIZATIONS)
    if lower_bound is not None and method != "min_max":
        raise ValueError(f"lower_bound applies only to 'min_max', got normalization={method!r}")
    if not all(math.isfinite(score) for score in scores):
        raise ValueError(f"scores must be finite numbers, got {list(scores)!r}")
    if not scores:
        return []
    if method == "min_max":
        return _min_max(scores, lower_bound)
    return _z_score(scores) if method == "z_score" else _l2(scores)


@dataclass(frozen=True)
class _Signal:
    """One non-empty signal after de-duplication and normalization."""

    name: str
    weight: float
    hits: tuple[Hit, ...]
    values: tuple[float, ...]
    missing: float


def _dedupe(hits: Sequence[Hit]) -> tuple[Hit, ...]:
    """Keep the first occurrence of each segment id."""
    first: dict[str, Hit] = {}
    for hit in hits:
        first.setdefault(hit.segment_id, hit)
    return tuple(first.values())


def _values(name: str, hits: Sequence[Hit], spec: FusionSpec) -> list[float]:
    """Return each hit's normalized score (or rrf contribution) in one signal."""
    if spec.method == "rrf":
        weight = spec.weight(name)
        return [weight / (spec.rank_constant + rank) for rank in range(1, len(hits) + 1)]
    raw = [hit.score for hit in hits]
    return normalize(raw, spec.normalization, spec.lower_bounds.get(name))


def _prepare(name: str, hits: Sequence[Hit], spec: FusionSpec,
             gate: Mapping[str, float] | None = None) -> _Signal:
    """De-duplicate and normalize one non-empty signal (then apply its gate, if any)."""
    unique = _dedupe(hits)
    values = _values(name, unique, spec)
    z_scored = spec.method != "rrf" and spec.normalization == "z_score"
    missing = min(values) if z_scored else 0.0
    if gate is not None:
        values = [missing + (value - missing) * _factor(gate, hit.segment_id)
                  for hit, value in zip(unique, values, strict=True)]
    return _Signal(name, spec.weight(name), unique, tuple(values), missing)


def _factor(gate: Mapping[str, float], segment_id: str) -> float:
    """Return a segment's gate factor, clipped to [0, 1] (0 when the gate does not name it)."""
    return min(1.0, max(0.0, float(gate.get(segment_id, 0.0))))


def _arithmetic(pairs: Sequence[tuple[float, float]]) -> float:
    """Return the weighted arithmetic mean of (weight, value) pairs."""
    total = math.fsum(weight for weight, _ in pairs)
    if total == 0:
        return 0.0
    return math.fsum(weight * value for weight, value in pairs) / total


def _positive(pairs: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Keep the pairs with a positive weight and a positive value."""
    return [(weight, value) for weight, value in pairs if weight > 0 and value > 0]


def _geometric(pairs: Sequence[tuple[float, float]]) -> float:
    """Return the weighted geometric mean of the positive values."""
    kept = _positive(pairs)
    if not kept:
        return 0.0
    total = math.fsum(weight for weight, _ in kept)
    return math.exp(math.fsum(weight * math.log(value) for weight, value in kept) / total)


def _harmonic(pairs: Sequence[tuple[float, float]]) -> float:
    """Return the weighted harmonic mean of the positive values."""
    kept = _positive(pairs)
    if not kept:
        return 0.0
    total = math.fsum(weight for weight, _ in kept)
    return total / math.fsum(weight / value for weight, value in kept)


def _rrf(pairs: Sequence[tuple[float, float]]) -> float:
    """Sum the (already weighted) reciprocal-rank contributions."""
    return math.fsum(value for _, value in pairs)


_COMBINE = {"arithmetic": _arithmetic, "geometric": _geometric, "harmonic": _harmonic, "rrf": _rrf}


def _table(prepared: Sequence[_Signal]) -> dict[str, list]:
    """Return, per segment id: [video id, each signal's value (or its missing value),
    SignalScores by signal name, best rank].

    The video id comes from the segment's first hit (signals in order).
    """
    missing = [signal.missing for signal in prepared]
    table: dict[str, list] = {}
    get = table.get
    for column, signal in enumerate(prepared):
        name = signal.name
        for rank, (hit, value) in enumerate(zip(signal.hits, signal.values, strict=True),
                                            start=1):
            seen = SignalScore(hit.score, value, rank)
            row = get(hit.segment_id)
            if row is None:
                values = missing.copy()
                values[column] = value
                table[hit.segment_id] = [hit.video_id, values, {name: seen}, rank]
            else:
                if rank < row[3]:
                    row[3] = rank
                row[1][column] = value
                row[2][name] = seen
    return table


def _combiner(prepared: Sequence[_Signal], method: str) -> Callable[[list[float]], float]:
    """Return the function that combines one segment's values (one per prepared signal)."""
    weights = [signal.weight for signal in prepared]
    if method == "rrf":
        return math.fsum
    if method == "arithmetic":
        total = math.fsum(weights)
        if total == 0:
            return lambda values: 0.0
        if len(weights) == 2:  # one rounding, as fsum's of two terms: the same float
            first, second = weights
            return lambda values: (first * values[0] + second * values[1]) / total
        return lambda values: math.fsum(map(mul, weights, values)) / total
    combine = _COMBINE[method]
    return lambda values: combine(list(zip(weights, values, strict=True)))


_RANK = itemgetter(2)  # SignalScore.rank


def _order_key(segment: ScoredSegment) -> tuple[float, int, str]:
    """Sort by score desc, then best rank asc, then segment id asc."""
    best_rank = min(map(_RANK, segment.signals.values()), default=sys.maxsize)
    return (-segment.score, best_rank, segment.segment_id)


def fuse(
    signals: Mapping[str, Sequence[Hit]], spec: FusionSpec = FusionSpec(),
    gates: Mapping[str, Mapping[str, float]] | None = None,
) -> list[ScoredSegment]:
    """Fuse each signal's ranked hits into one ranking of segments.

    ``gates`` (optional) maps a signal to per-segment factors in [0, 1] applied to its
    normalized values (towards the signal's missing value), e.g. BM25 coverage.
    """
    gates = gates or {}
    prepared = [_prepare(name, hits, spec, gates.get(name))
                for name, hits in signals.items() if hits]
    combine = _combiner(prepared, spec.method)
    keyed = []
    for segment_id, (video_id, values, seen, best_rank) in _table(prepared).items():
        score = combine(values)
        keyed.append(((-score, best_rank, segment_id),
                      ScoredSegment(segment_id, video_id, score, MappingProxyType(seen))))
    keyed.sort(key=itemgetter(0))
    return [segment for _, segment in keyed]


def group_by_video(scored: Sequence[ScoredSegment], moments: int = 3,
                   ordered: bool = False) -> list[VideoResult]:
    """Group fused segments by video, keeping each video's best moments.

    ``ordered``: the segments are in fuse()'s order already (score, best rank, id), as
    fuse() returns them, so they need no sorting again.
    """
    if isinstance(moments, bool) or not isinstance(moments, int) or moments < 1:
        raise ValueError(f"moments must be an integer >= 1, got {moments!r}")
    by_video: dict[str, list[ScoredSegment]] = {}
    for segment in scored if ordered else sorted(scored, key=_order_key):
        by_video.setdefault(segment.video_id, []).append(segment)
    results = [
        VideoResult(video_id, segments[0].score, tuple(segments[:moments]))
        for video_id, segments in by_video.items()
    ]
    return sorted(results, key=lambda result: (-result.score, result.video_id))
