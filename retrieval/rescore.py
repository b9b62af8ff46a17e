"""Re-scorers applied to one signal before fusion: CAMoE's dual softmax, BM25 coverage (pure).

Dual softmax, as a re-scorer of the text-dense signal:

A segment that is similar to every query (a generic sentence, a hub of the embedding space)
wins many queries it does not answer. Dual softmax re-normalises each query-segment
similarity over the query axis: the candidate's similarity to this query is compared, through
a softmax with temperature ``t``, with its similarity to a bank of other queries, and the
similarity is multiplied by that share. With one query there is no query axis, so the bank
supplies it: synthetic queries sampled from the catalog's own segments (their vectors), so the
re-scorer is safe for a single query and needs no query log.

    prior_j = exp(s_qj / t) / (exp(s_qj / t) + sum_b exp(s_bj / t))
    score_j = s_qj * prior_j

A bank query taken from the candidate's own video is left out of its sum (it is the candidate,
or its neighbour, not another query).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def dual_softmax(query_sims: np.ndarray, bank_sims: np.ndarray, temperature: float = 0.05,
                 exclude: np.ndarray | None = None) -> np.ndarray:
    """Return re-scored similarities of N candidates (bank_sims: B x N, one row per query).

    ``exclude`` (B x N, True = leave out) drops bank queries that cannot stand for another
    query of that candidate, e.g. the candidate's own video's segments.
    """
    query_sims = np.asarray(query_sims, dtype=np.float64)
    if query_sims.size == 0:
        return query_sims
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    bank_sims = np.asarray(bank_sims, dtype=np.float64).reshape(-1, query_sims.size)
    stacked = np.vstack([query_sims[None, :], bank_sims]) / temperature
    stacked -= stacked.max(axis=0, keepdims=True)
    weights = np.exp(stacked)
    if exclude is not None:
        weights[1:][np.asarray(exclude, dtype=bool).reshape(bank_sims.shape)] = 0.0
    prior = weights[0] / weights.sum(axis=0)
    return query_sims * prior


def sample_bank(vectors: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """Return `size` rows drawn without replacement (all rows when there are fewer)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if len(vectors) <= size:
        return vectors
    rng = np.random.default_rng(seed)
    return vectors[np.sort(rng.choice(len(vectors), size=size, replace=False))]



def coverage_gate(coverage: Mapping[str, float], exponent: float) -> dict[str, float]:
    """Return fuse()'s BM25 gate: (share of the query's terms a segment matched) ** exponent.

    BM25 ranks a segment that matches one incidental word of a long query at the top of its
    window, and min-max normalization then gives it the same 1.0 as a segment matching every
    word; gating the normalized value by coverage keeps such a hit from outvoting the dense
    signal.
    """
    return {segment_id: share ** exponent for segment_id, share in coverage.items()}
