"""Pure recommendation scoring: recency and completion weights, profiles and MMR."""

from __future__ import annotations

import math

import numpy as np
import pytest

from retrieval.recommend import (
    View,
    completion_weight,
    history_weights,
    mmr,
    recency_weight,
    weighted_profile,
)

DAY = 86400.0


def test_recency_halves_every_half_life():
    assert recency_weight(0, 14 * DAY) == 1.0
    assert recency_weight(14 * DAY, 14 * DAY) == pytest.approx(0.5)
    assert recency_weight(28 * DAY, 14 * DAY) == pytest.approx(0.25)
    assert recency_weight(-5.0, DAY) == 1.0  # clock skew counts as "now"
    with pytest.raises(ValueError, match="half_life"):
        recency_weight(1.0, 0)


def test_completion_weight_grows_with_the_watched_fraction():
    assert completion_weight(True, 0.1) == 1.0
    assert completion_weight(False, 0.0) == 0.25
    assert completion_weight(False, 0.5) == pytest.approx(0.625)
    assert completion_weight(False, 3.0) == 1.0  # position past the end
    assert completion_weight(False, math.nan) == 0.25


def test_history_weights_keep_each_videos_strongest_view():
    views = [View("a", 0, False, 0.1), View("a", 0, True, 1.0),
             View("b", 28 * DAY, True, 1.0), View("c", 0, False, 0.0)]
    weights = history_weights(views, 14 * DAY)
    assert weights["a"] == 1.0
    assert weights["b"] == pytest.approx(0.25)
    assert weights["c"] == pytest.approx(0.25)
    # a finished video today outweighs one finished a month ago
    assert weights["a"] > weights["b"]


def test_weighted_profile_leans_towards_heavier_videos():
    vectors = {"cooking": np.array([1.0, 0.0]), "stars": np.array([0.0, 2.0])}
    profile = weighted_profile(vectors, {"cooking": 0.9, "stars": 0.1})
    assert np.linalg.norm(profile) == pytest.approx(1.0)
    assert profile[0] > profile[1] > 0
    assert weighted_profile(vectors, {}) is None
    assert weighted_profile(vectors, {"missing": 1.0}) is None
    assert weighted_profile(vectors, {"cooking": 0.0}) is None


def test_mmr_without_diversity_keeps_the_relevance_order():
    vectors = np.eye(4)
    assert mmr([0.9, 0.8, 0.7, 0.1], vectors, 3, diversity=0.0) == [0, 1, 2]


def test_mmr_pushes_a_near_duplicate_down():
    base = np.array([1.0, 0.0, 0.0])
    vectors = np.stack([base, base + [0.0, 0.01, 0.0], np.array([0.6, 0.8, 0.0]),
                        np.array([0.0, 0.0, 1.0])])
    relevance = [1.0, 0.99, 0.85, 0.5]
    assert mmr(relevance, vectors, 2, diversity=0.0) == [0, 1]
    picked = mmr(relevance, vectors, 3, diversity=0.3)
    assert picked[0] == 0 and 1 not in picked[:2]
    assert sorted(mmr(relevance, vectors, 10, diversity=0.3)) == [0, 1, 2, 3]


def test_mmr_with_full_diversity_spreads_out():
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert mmr([1.0, 1.0, 0.1], vectors, 2, diversity=1.0) == [0, 2]


def test_mmr_edge_cases():
    assert mmr([], np.zeros((0, 3)), 5) == []
    assert mmr([0.5], np.zeros((1, 3)), 0) == []
    assert mmr([0.0, 0.0], np.zeros((2, 3)), 2) == [0, 1]  # zero vectors and scores
    with pytest.raises(ValueError, match="diversity"):
        mmr([1.0], np.ones((1, 2)), 1, diversity=1.5)
