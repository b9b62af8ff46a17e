"""Parse search parameters from strings (query strings, command options) with clear errors."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from catalog.models import SegmentKind

from .documents import Filters
from .facets import parse_facets
from .fusion import FusionSpec
from .profiles import DEFAULT as DEFAULT_PROFILE
from .profiles import get_profile
from .search import MAX_K, SIGNALS, SearchRequest


class ParameterError(ValueError):
    """A user-supplied parameter is invalid; the message says how to fix it."""


MAX_MOMENTS = 20
MAX_PAGE = 10**6
MAX_RANK_CONSTANT = 10_000
MAX_COVERAGE = 10.0
KINDS: tuple[str, ...] = tuple(SegmentKind.values)


def _number(params: Mapping[str, str], name: str, kind: type, default=None):
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        return kind(raw)
    except (TypeError, ValueError):
        noun = {"int": "an integer", "float": "a number"}.get(kind.__name__, kind.__name__)
        raise ParameterError(f"{name} must be {noun} (got {raw!r}).") from None


def _bool(params: Mapping[str, str], name: str, default: bool | None) -> bool | None:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    lowered = str(raw).lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ParameterError(f"{name} must be true or false (got {raw!r}).")


def _csv(params: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in str(params.get(name) or "").split(",") if part.strip())


def _kinds(params: Mapping[str, str]) -> tuple[str, ...]:
    """Return the segment kinds asked for, refusing one that does not exist."""
    kinds = _csv(params, "kinds")
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ParameterError(f"Unknown segment kind(s) {unknown} in kinds: choose from "
                             f"{list(KINDS)}.")
    return kinds


def _seconds(params: Mapping[str, str], name: str) -> float | None:
    """Return a duration bound in seconds, refusing a negative one (inf means no bound)."""
    value = _number(params, name, float)
    if value is not None and value < 0:
        raise ParameterError(f"{name} must be a number of seconds, 0 or more (got {value:g}).")
    return value


def parse_filters(params: Mapping[str, str], published_default: bool | None) -> Filters:
    """Build Filters from tags, language, min_duration, max_duration, published and kinds."""
    filters = Filters(
        tags=_csv(params, "tags"), language=params.get("language") or None,
        min_duration=_seconds(params, "min_duration"),
        max_duration=_seconds(params, "max_duration"),
        published=_bool(params, "published", published_default), kinds=_kinds(params),
    )
    if (filters.min_duration is not None and filters.max_duration is not None
            and filters.min_duration > filters.max_duration):
        raise ParameterError("min_duration is larger than max_duration.")
    return filters


FUSION_PARAMS = ("fusion", "normalization", "weights", "rank_constant", "rescore", "coverage")


def parse_fusion(params: Mapping[str, str]) -> FusionSpec | None:
    """Build a FusionSpec from fusion, normalization, weights, rank_constant and rescore.

    None when the request names none of them: the fusion profile then decides.
    """
    if not any(params.get(name) not in (None, "") for name in FUSION_PARAMS):
        return None
    _check_rrf_only(params)
    coverage = _number(params, "coverage", float, 0.0)
    if not 0 <= coverage <= MAX_COVERAGE:
        raise ParameterError(f"coverage must be between 0 and {MAX_COVERAGE:g} (got {coverage}).")
    try:
        return FusionSpec.parse(
            params.get("fusion") or "arithmetic",
            normalization=params.get("normalization") or "min_max",
            weights=params.get("weights") or {},
            rank_constant=_number(params, "rank_constant", int, 60),
            rescore=params.get("rescore") or "",
            coverage=coverage,
        )
    except ValueError as exc:
        raise ParameterError(str(exc)) from None


def _check_rrf_only(params: Mapping[str, str]) -> None:
    """Refuse the parameters that one fusion method would silently ignore.

    rank_constant only shapes reciprocal rank fusion; rrf uses ranks, so a normalization
    does not apply to it.
    """
    rank_constant = _number(params, "rank_constant", int, 60)
    if rank_constant > MAX_RANK_CONSTANT:
        raise ParameterError(f"rank_constant must be between 1 and {MAX_RANK_CONSTANT} "
                             f"(got {rank_constant}).")
    fusion = str(params.get("fusion") or "").strip().lower().replace("-", "_")
    rrf = fusion in ("rrf", "reciprocal_rank_fusion")
    if params.get("rank_constant") not in (None, "") and not rrf:
        raise ParameterError("rank_constant applies only to fusion=rrf: add fusion=rrf, or "
                             "leave rank_constant out.")
    if rrf and params.get("normalization") not in (None, ""):
        raise ParameterError("normalization does not apply to fusion=rrf (it fuses ranks): "
                             "leave normalization out, or choose another fusion.")


def _check_weights(spec: FusionSpec | None) -> None:
    """Weights name known signals only, and at least one of them is above zero."""
    if spec is None or not spec.weights:
        return
    unknown = sorted(set(spec.weights) - set(SIGNALS))
    if unknown:
        raise ParameterError(f"Unknown signal(s) in weights {unknown}: choose from "
                             f"{list(SIGNALS)}.")
    if not any(weight > 0 for weight in spec.weights.values()):
        raise ParameterError("weights are all zero: give at least one signal a weight above 0.")


def parse_like(params: Mapping[str, str]) -> str:
    """Return the reference video id of a composed query ("" for a plain search)."""
    raw = str(params.get("like") or "").strip()
    if not raw:
        return ""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise ParameterError(f"like must be the id (a UUID) of the video to start from "
                             f"(got {raw!r}).") from None


def _bounded(name: str, value: int, low: int, high: int) -> int:
    if value < low:
        raise ParameterError(f"{name} must be {low} or more (got {value}).")
    if value > high:
        raise ParameterError(f"{name} must be between {low} and {high} (got {value}).")
    return value


def parse_request(params: Mapping[str, str], published_default: bool | None = True,
                  **overrides: object) -> SearchRequest:
    """Build a SearchRequest from string parameters, raising ParameterError on bad input."""
    k = _number(params, "k", int, 10)
    if not 1 <= k <= MAX_K:
        raise ParameterError(f"k must be between 1 and {MAX_K} (got {k}).")
    page = _bounded("page", _number(params, "page", int, 1), 1, MAX_PAGE)
    moments = _bounded("moments", _number(params, "moments", int, 3), 1, MAX_MOMENTS)
    signals = _csv(params, "signals") or SIGNALS
    fusion = parse_fusion(params)
    _check_weights(fusion)
    try:
        get_profile(params.get("profile") or DEFAULT_PROFILE)
        return SearchRequest(
            query=str(params.get("q") or ""), k=k, page=page,
            fusion=fusion, filters=parse_filters(params, published_default),
            signals=signals, moments=moments,
            explain=bool(_bool(params, "explain", False)),
            server_fusion=_bool(params, "server_fusion", None),
            min_score=_number(params, "min_score", float),
            min_tier=(params.get("min_tier") or None),
            profile=params.get("profile") or DEFAULT_PROFILE, like=parse_like(params),
            facets=parse_facets(str(params.get("facets") or "")),
            typos=bool(_bool(params, "typos", True)), **overrides,
        )
    except ValueError as exc:
        raise ParameterError(str(exc)) from None
