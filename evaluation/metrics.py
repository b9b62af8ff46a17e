"""Retrieval and moment metrics: ranks and spans in, numbers out (pure; no Django).

Ranks
    A query's *ranking* is the fused video list ``search()`` returns, best first, as
    ``(video_id, score)`` pairs. The rank of a relevant video is pessimistic about ties:
    ``1 + (videos scoring higher) + (other videos scoring the same)``, so a video tied with
    others is placed after all of them, whatever order the tie-break happened to give. A
    relevant video missing from the list (no signal returned any of its segments) ranks as
    if every unreturned video were tied at the bottom of the catalog: rank ``n_catalog``,
    the worst possible. Ranks are therefore always in ``1..n_catalog``.

Per query (``ranks`` = the ranks of its relevant videos; usually exactly one)
    first rank = ``min(ranks)``; R@K = 1 if first rank <= K; AP = the mean over relevant
    videos, in rank order, of ``(relevant videos ranked at or above it) / its rank``, which
    is ``1 / rank`` for one relevant video (so mAP = MRR); nDCG@K uses binary relevance and
    ``1 / log2(rank + 1)`` gains, divided by the ideal DCG of that many relevant videos.

Over queries
    R@K, mAP and nDCG@K are means; median rank (MdR) and mean rank (MnR) are over first
    ranks (the median of an even count is the mean of the two middle values).

Moments
    tIoU = ``|intersection| / |union|`` of two ``(start, end)`` spans, 0 when they do not
    overlap. R1@tIoU=m is the share of moment queries whose top moment has tIoU >= m; a
    query with no top moment (or the wrong video) counts as tIoU 0.

Speech
    WER = (substituted + deleted + inserted words) / reference words, on words lowercased
    with punctuation dropped (digits and inner apostrophes kept), summed over clips.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Sequence

RECALL_KS = (1, 5, 10)
NDCG_K = 10
TIOU_THRESHOLDS = (0.3, 0.5, 0.7)


def rank_of(ranking: Sequence[tuple[str, float]], target: str, n_catalog: int) -> int:
    """Return the target's 1-based rank in a scored ranking (ties and absence: see above)."""
    if n_catalog < 1:
        raise ValueError(f"n_catalog must be at least 1 (got {n_catalog}).")
    if len(ranking) > n_catalog:
        raise ValueError(f"the ranking has {len(ranking)} videos, more than n_catalog "
                         f"({n_catalog}).")
    scores = {video_id: score for video_id, score in ranking}
    if target not in scores:
        return n_catalog
    mine = scores[target]
    return sum(1 for _, score in ranking if score >= mine)


def recall_at(first_ranks: Sequence[int], k: int) -> float:
    """Return the share of queries whose first relevant video is in the top k."""
    _check_nonempty(first_ranks)
    return sum(1 for rank in first_ranks if rank <= k) / len(first_ranks)


def median_rank(first_ranks: Sequence[int]) -> float:
    """Return the median first rank."""
    _check_nonempty(first_ranks)
    return float(statistics.median(first_ranks))


def mean_rank(first_ranks: Sequence[int]) -> float:
    """Return the mean first rank."""
    _check_nonempty(first_ranks)
    return statistics.fmean(first_ranks)


def average_precision(ranks: Iterable[int]) -> float:
    """Return the average precision of one query from the ranks of its relevant videos."""
    ordered = sorted(ranks)
    if not ordered:
        raise ValueError("a query needs at least one relevant video.")
    precisions = [sum(1 for other in ordered if other <= rank) / rank for rank in ordered]
    return statistics.fmean(precisions)


def ndcg_at(ranks: Iterable[int], k: int = NDCG_K) -> float:
    """Return nDCG@k of one query with binary relevance."""
    ordered = sorted(ranks)
    if not ordered:
        raise ValueError("a query needs at least one relevant video.")
    dcg = math.fsum(1 / math.log2(rank + 1) for rank in ordered if rank <= k)
    ideal = math.fsum(1 / math.log2(position + 1)
                      for position in range(1, min(len(ordered), k) + 1))
    return dcg / ideal


def retrieval_metrics(per_query_ranks: Sequence[Sequence[int]]) -> dict[str, float]:
    """Return R@1/5/10, MdR, MnR, mAP and nDCG@10 over queries (each a list of ranks)."""
    _check_nonempty(per_query_ranks)
    first = [min(ranks) for ranks in per_query_ranks]
    metrics = {f"R@{k}": recall_at(first, k) for k in RECALL_KS}
    metrics.update({
        "MdR": median_rank(first),
        "MnR": mean_rank(first),
        "mAP": statistics.fmean(average_precision(ranks) for ranks in per_query_ranks),
        f"nDCG@{NDCG_K}": statistics.fmean(ndcg_at(ranks, NDCG_K) for ranks in per_query_ranks),
    })
    return metrics


def recall_curve(first_ranks: Sequence[int], max_k: int) -> list[float]:
    """Return R@1 .. R@max_k (for plots)."""
    return [recall_at(first_ranks, k) for k in range(1, max_k + 1)]


def chance_metrics(n_catalog: int) -> dict[str, float]:
    """Return the expected metrics of a uniformly random ranking (one relevant video)."""
    if n_catalog < 1:
        raise ValueError(f"n_catalog must be at least 1 (got {n_catalog}).")
    n = n_catalog
    metrics = {f"R@{k}": min(k, n) / n for k in RECALL_KS}
    metrics.update({
        "MdR": (n + 1) / 2,
        "MnR": (n + 1) / 2,
        "mAP": math.fsum(1 / rank for rank in range(1, n + 1)) / n,
        f"nDCG@{NDCG_K}": math.fsum(1 / math.log2(rank + 1)
                                    for rank in range(1, min(NDCG_K, n) + 1)) / n,
    })
    return metrics


def tiou(predicted: tuple[float, float], truth: tuple[float, float]) -> float:
    """Return the temporal intersection over union of two (start, end) spans."""
    for start, end in (predicted, truth):
        if end < start:
            raise ValueError(f"a span ends ({end}) before it starts ({start}).")
    inter = min(predicted[1], truth[1]) - max(predicted[0], truth[0])
    union = max(predicted[1], truth[1]) - min(predicted[0], truth[0])
    if inter <= 0 or union <= 0:
        return 0.0
    return inter / union


def moment_metrics(ious: Sequence[float],
                   thresholds: Sequence[float] = TIOU_THRESHOLDS) -> dict[str, float]:
    """Return R1@tIoU=m for each threshold and the mean IoU of the top moments."""
    _check_nonempty(ious)
    metrics = {f"R1@{m:g}": sum(1 for iou in ious if iou >= m) / len(ious) for m in thresholds}
    metrics["mIoU"] = statistics.fmean(ious)
    return metrics


def percentile(values: Sequence[float], q: float) -> float:
    """Return the q-th percentile (0-100) by linear interpolation between closest ranks."""
    _check_nonempty(values)
    if not 0 <= q <= 100:
        raise ValueError(f"q must be between 0 and 100 (got {q}).")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _check_nonempty(values: Sequence) -> None:
    if not values:
        raise ValueError("no queries to compute a metric over.")


WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")


def words_of(text: str) -> list[str]:
    """Return a text's words for WER: lowercased, without punctuation."""
    return WORD.findall(text.lower())


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """Return (word edits, reference words) between two texts (Levenshtein over words)."""
    ref, hyp = words_of(reference), words_of(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, start=1):
        current = [i]
        for j, other in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (word != other)))
        previous = current
    return previous[-1], len(ref)


def word_error_rate(pairs: Iterable[tuple[str, str]]) -> float:
    """Return the WER of (reference, hypothesis) pairs, errors over all reference words."""
    edits = total = 0
    for reference, hypothesis in pairs:
        errors, words = word_errors(reference, hypothesis)
        edits, total = edits + errors, total + words
    return edits / total if total else 0.0
