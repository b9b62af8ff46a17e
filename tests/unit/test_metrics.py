"""Retrieval and moment metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from evaluation import metrics

LOG3 = math.log2(3)


def test_perfect_ranking():
    result = metrics.retrieval_metrics([[1], [1], [1], [1]])
    assert result == {"R@1": 1.0, "R@5": 1.0, "R@10": 1.0, "MdR": 1.0, "MnR": 1.0,
                      "mAP": 1.0, "nDCG@10": 1.0}


def test_reversed_ranking_puts_every_clip_last():
    # 12 queries over 12 videos, each query's clip ranked last.
    result = metrics.retrieval_metrics([[12]] * 12)
    assert result["R@1"] == result["R@5"] == result["R@10"] == 0.0
    assert result["MdR"] == 12 and result["MnR"] == 12
    assert result["mAP"] == pytest.approx(1 / 12)
    assert result["nDCG@10"] == 0.0


def test_mixed_ranks_by_hand():
    result = metrics.retrieval_metrics([[1], [2], [3], [20]])
    assert result["R@1"] == 0.25 and result["R@5"] == 0.75 and result["R@10"] == 0.75
    assert result["MdR"] == 2.5  # mean of the two middle ranks
    assert result["MnR"] == 6.5
    assert result["mAP"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 20) / 4)
    assert result["nDCG@10"] == pytest.approx((1 + 1 / LOG3 + 1 / 2 + 0) / 4)


def test_several_relevant_videos():
    assert metrics.average_precision([3, 1]) == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert metrics.ndcg_at([1, 3]) == pytest.approx((1 + 1 / 2) / (1 + 1 / LOG3))
    assert metrics.ndcg_at([1, 2]) == pytest.approx(1.0)
    assert metrics.ndcg_at([11, 12]) == 0.0
    # R@K and ranks use the best-ranked relevant video.
    assert metrics.retrieval_metrics([[7, 2]])["MdR"] == 2


RANKING = [("a", 0.9), ("b", 0.5), ("c", 0.5), ("d", 0.1)]


@pytest.mark.parametrize("target,rank", [("a", 1), ("b", 3), ("c", 3), ("d", 4), ("e", 6)])
def test_rank_of_is_pessimistic_about_ties_and_absence(target, rank):
    assert metrics.rank_of(RANKING, target, n_catalog=6) == rank


def test_rank_of_does_not_depend_on_the_order_of_ties():
    swapped = [("a", 0.9), ("c", 0.5), ("b", 0.5), ("d", 0.1)]
    for target in "abcd":
        assert metrics.rank_of(swapped, target, 6) == metrics.rank_of(RANKING, target, 6)
    all_tied = [(name, 0.0) for name in "wxyz"]
    assert {metrics.rank_of(all_tied, name, 4) for name in "wxyz"} == {4}


def test_absent_clip_ranks_last_of_the_catalog():
    assert metrics.rank_of([], "a", n_catalog=20) == 20
    assert metrics.rank_of([("b", 1.0)], "a", n_catalog=1) == 1
    with pytest.raises(ValueError, match="more than n_catalog"):
        metrics.rank_of(RANKING, "a", n_catalog=3)
    with pytest.raises(ValueError):
        metrics.rank_of([], "a", n_catalog=0)


def test_recall_curve_and_chance():
    assert metrics.recall_curve([1, 3, 3, 4], 4) == [0.25, 0.25, 0.75, 1.0]
    chance = metrics.chance_metrics(20)
    assert chance["R@1"] == 0.05 and chance["R@5"] == 0.25 and chance["R@10"] == 0.5
    assert chance["MdR"] == chance["MnR"] == 10.5
    assert chance["mAP"] == pytest.approx(sum(1 / r for r in range(1, 21)) / 20)
    assert metrics.chance_metrics(3)["R@10"] == 1.0


@pytest.mark.parametrize("predicted,truth,expected", [
    ((0, 10), (0, 10), 1.0),
    ((0, 10), (5, 15), 5 / 15),
    ((2, 4), (0, 10), 0.2),
    ((0, 5), (5, 10), 0.0),
    ((0, 2), (8, 9), 0.0),
    ((3, 3), (0, 10), 0.0),
])
def test_tiou(predicted, truth, expected):
    assert metrics.tiou(predicted, truth) == pytest.approx(expected)
    assert metrics.tiou(truth, predicted) == pytest.approx(expected)


def test_tiou_rejects_reversed_spans():
    with pytest.raises(ValueError, match="before it starts"):
        metrics.tiou((5, 1), (0, 10))


def test_moment_metrics():
    result = metrics.moment_metrics([1.0, 0.5, 0.31, 0.0])
    assert result == pytest.approx({"R1@0.3": 0.75, "R1@0.5": 0.5, "R1@0.7": 0.25,
                                    "mIoU": (1.0 + 0.5 + 0.31) / 4})


def test_percentile():
    assert metrics.percentile([4, 1, 3, 2], 50) == 2.5
    assert metrics.percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)
    assert metrics.percentile([1, 2, 3, 4], 0) == 1 and metrics.percentile([1, 2, 3, 4], 100) == 4
    assert metrics.percentile([7.0], 95) == 7.0


@pytest.mark.parametrize("call", [
    lambda: metrics.retrieval_metrics([]),
    lambda: metrics.moment_metrics([]),
    lambda: metrics.average_precision([]),
    lambda: metrics.percentile([], 50),
    lambda: metrics.percentile([1], 120),
])
def test_empty_or_bad_input_is_an_error_not_a_number(call):
    with pytest.raises(ValueError):
        call()


def test_word_error_rate_counts_substitutions_deletions_and_insertions():
    assert metrics.word_errors("The cat sat on the mat.", "the cat sat on the mat") == (0, 6)
    assert metrics.word_errors("the cat sat on the mat", "a cat sat the mat mat") == (3, 6)
    assert metrics.word_errors("don't stop", "dont stop now") == (2, 2)
    pairs = [("one two three four", "one two three four"), ("five six", "five")]
    assert metrics.word_error_rate(pairs) == pytest.approx(1 / 6)
    assert metrics.word_error_rate([]) == 0.0
