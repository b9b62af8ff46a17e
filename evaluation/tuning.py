"""Fit fusion to a catalog's own labelled queries, with k-fold cross-validation.

Each query's signals are asked once (``collect``: the same fixed window ``search()`` uses),
so a fusion profile — method, normalization, signal weights, per-kind weights, re-scorer —
is scored by fusing those hits again in-process (``rank_videos``), which is fast enough to
search a grid of a few hundred profiles. ``cross_validate`` picks the best profile on k-1
folds and measures it on the held-out fold, so the gain it reports is what a catalog can
expect on queries it has not seen. No anchor engine (OpenSearch, Elasticsearch, Vespa) fits
fusion to the user's data.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from retrieval import search as search_service
from retrieval.backends import get_backend
from retrieval.documents import Hit
from retrieval.fusion import FusionSpec, fuse, group_by_video
from retrieval.profiles import Profile
from retrieval.rescore import coverage_gate

from . import metrics

Log = Callable[[str], None]


@dataclass(frozen=True)
class Labelled:
    """A query, the videos that answer it, and its signals' hits (plain and re-scored)."""

    text: str
    targets: tuple[str, ...]
    hits: Mapping[str, Sequence[Hit]]
    rescored_text: Sequence[Hit] = ()
    coverage: Mapping[str, float] = field(default_factory=dict)  # BM25 hit -> terms matched


def collect(queries: Iterable[tuple[str, Sequence[str]]], backend: str = "default",
            signals: Sequence[str] = ("bm25", "text")) -> list[Labelled]:
    """Ask every query's signals once and keep the raw hits."""
    engine = get_backend(backend)
    labelled = []
    for text, targets in queries:
        request = search_service.SearchRequest(query=text, signals=tuple(signals),
                                               backend=backend)
        vectors = search_service.query_vectors(request, engine, lambda step: None)
        hits = search_service.run_signals(request, engine, vectors, lambda step: None)
        rescored = search_service.dual_softmax_hits(hits["text"]) if hits.get("text") else []
        coverage = search_service.bm25_coverage(hits.get("bm25", []), text)
        labelled.append(Labelled(text, tuple(targets), hits, rescored, coverage))
    return labelled


def rank_videos(query: Labelled, profile: Profile) -> list[tuple[str, float]]:
    """Return the fused (video_id, score) ranking of one query under a profile."""
    hits = dict(query.hits)
    if profile.fusion.rescore == "dual_softmax" and query.rescored_text:
        hits["text"] = query.rescored_text
    gates = {}
    if profile.fusion.coverage > 0:
        gates["bm25"] = coverage_gate(query.coverage, profile.fusion.coverage)
    signals = {name: hits[name] for name in hits if profile.fusion.weight(name) > 0}
    fused = search_service.weigh_kinds(fuse(signals, profile.fusion, gates),
                                       profile.kind_weights)
    return [(v.video_id, v.score) for v in group_by_video(fused, moments=1)]


def first_ranks(queries: Sequence[Labelled], profile: Profile, n_catalog: int) -> list[int]:
    """Return each query's first relevant rank under a profile (absent: n_catalog)."""
    ranks = []
    for query in queries:
        ranking = rank_videos(query, profile)[:n_catalog]
        ranks.append(min(metrics.rank_of(ranking, target, n_catalog)
                         for target in query.targets))
    return ranks


def objective(ranks: Sequence[int]) -> tuple[float, float]:
    """Return what tuning maximises: R@1, then MRR (as a tie-break)."""
    return (metrics.recall_at(ranks, 1), sum(1 / r for r in ranks) / len(ranks))


def grid(kinds: Sequence[str] = ("metadata", "sentence")) -> list[Profile]:
    """Return the profiles tuning tries: methods x BM25 weight and coverage x kind weights.

    Dual softmax is tried on the dense-only and on one gated hybrid spec (it is costly and
    rarely helps with a synthetic query bank; README, "Evaluation").
    """
    specs = []
    for bm25 in (0.0, 0.1, 0.2, 0.3, 0.5, 1.0):
        weights = {"bm25": bm25, "text": 1.0}
        for coverage in ((0.0,) if bm25 == 0 else (0.0, 3.0)):
            specs += [FusionSpec("arithmetic", "min_max", weights, coverage=coverage),
                      FusionSpec("arithmetic", "z_score", weights, coverage=coverage),
                      FusionSpec("arithmetic", "min_max", weights, coverage=coverage,
                                 lower_bounds={"bm25": 0.0, "text": 0.0})]
            if bm25 > 0:
                specs.append(FusionSpec("rrf", weights=weights, coverage=coverage))
    specs += [FusionSpec("arithmetic", "min_max", {"bm25": 0.0, "text": 1.0},
                         rescore="dual_softmax"),
              FusionSpec("arithmetic", "min_max", {"bm25": 0.3, "text": 1.0}, coverage=3.0,
                         rescore="dual_softmax")]
    kind_options = [dict(zip(kinds, values, strict=True))
                    for values in itertools.product((1.0, 0.8), repeat=len(kinds))]
    return [Profile(spec, kw) for spec in specs for kw in kind_options]


def best_profile(queries: Sequence[Labelled], profiles: Sequence[Profile], n_catalog: int,
                 prefer: Profile | None = None) -> tuple[Profile, tuple[float, float]]:
    """Return the profile with the best objective (ties keep `prefer`, then grid order)."""
    scored = [(objective(first_ranks(queries, p, n_catalog)), p) for p in profiles]
    top = max(score for score, _ in scored)
    winners = [p for score, p in scored if score == top]
    return (prefer if prefer in winners else winners[0]), top


def folds(n: int, k: int, seed: int = 0) -> list[list[int]]:
    """Split range(n) into k shuffled folds of near-equal size."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return [order[i::k] for i in range(k)]


@dataclass(frozen=True)
class FoldResult:
    """One held-out fold: the profile fitted without it, and both R@1s on it."""

    profile: str
    tuned_r1: float
    default_r1: float
    size: int


def cross_validate(queries: Sequence[Labelled], profiles: Sequence[Profile], default: Profile,
                   n_catalog: int, k: int = 5, log: Log = print) -> list[FoldResult]:
    """Fit on k-1 folds, measure on the held-out one; return one result per fold."""
    results = []
    for number, held in enumerate(folds(len(queries), min(k, len(queries))), start=1):
        held_set = set(held)
        train = [q for i, q in enumerate(queries) if i not in held_set]
        test = [queries[i] for i in held]
        fitted, _ = best_profile(train, profiles, n_catalog, prefer=default)
        tuned = metrics.recall_at(first_ranks(test, fitted, n_catalog), 1)
        base = metrics.recall_at(first_ranks(test, default, n_catalog), 1)
        log(f"fold {number}: {len(test)} queries, tuned R@1 {tuned:.3f} "
            f"(default {base:.3f}) with {fitted.key}")
        results.append(FoldResult(fitted.key, tuned, base, len(test)))
    return results
