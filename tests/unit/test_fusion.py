"""Unit tests for retrieval.fusion: every formula against hand-computed values."""

from __future__ import annotations

import math

import pytest

from retrieval.documents import Hit
from retrieval.fusion import (
    COMBINATIONS,
    NORMALIZATIONS,
    FusionSpec,
    ScoredSegment,
    SignalScore,
    fuse,
    group_by_video,
    normalize,
)


def hits(*pairs: tuple[str, float], video: str = "v") -> list[Hit]:
    """Build a ranked hit list from (segment_id, score) pairs."""
    return [Hit(segment_id, video, score) for segment_id, score in pairs]


def scores(result: list[ScoredSegment]) -> dict[str, float]:
    """Map segment id to fused score."""
    return {segment.segment_id: segment.score for segment in result}


def order(result: list[ScoredSegment]) -> list[str]:
    """Return the segment ids in ranked order."""
    return [segment.segment_id for segment in result]


# --- normalize -------------------------------------------------------------


def test_min_max_basic() -> None:
    # min=1, max=4: (4-1)/3=1, (2-1)/3=1/3, (1-1)/3=0
    assert normalize([4.0, 2.0, 1.0], "min_max") == pytest.approx([1.0, 1 / 3, 0.0])


def test_min_max_tied_scores_normalize_equally() -> None:
    # min=1, max=3: (3-1)/2=1 for both tied scores, (1-1)/2=0
    assert normalize([3.0, 3.0, 1.0], "min_max") == pytest.approx([1.0, 1.0, 0.0])


def test_min_max_single_hit_is_one() -> None:
    # max == min -> 1.0
    assert normalize([0.37], "min_max") == [1.0]


def test_min_max_all_equal_scores_are_one() -> None:
    assert normalize([2.0, 2.0, 2.0], "min_max") == [1.0, 1.0, 1.0]


def test_min_max_lower_bound_replaces_min_and_zeroes_scores_below() -> None:
    # lb=0.5, max=0.9: (0.9-0.5)/0.4=1, (0.6-0.5)/0.4=0.25, 0.3 < 0.5 -> 0
    assert normalize([0.9, 0.6, 0.3], "min_max", 0.5) == pytest.approx([1.0, 0.25, 0.0])


def test_min_max_lower_bound_below_window_keeps_lowest_hit_positive() -> None:
    # lb=0, max=0.8: 0.8/0.8=1, 0.4/0.8=0.5 (without lb the 0.4 would be 0)
    assert normalize([0.8, 0.4], "min_max", 0.0) == pytest.approx([1.0, 0.5])


def test_min_max_lower_bound_at_or_above_max_zeroes_everything() -> None:
    # max=0.3 <= lb=0.5 -> all 0; max == lb -> all 0
    assert normalize([0.3, 0.2], "min_max", 0.5) == [0.0, 0.0]
    assert normalize([0.5, 0.1], "min_max", 0.5) == [0.0, 0.0]


def test_min_max_lower_bound_single_hit_above_bound_is_one() -> None:
    # (0.7-0.2)/(0.7-0.2) = 1
    assert normalize([0.7], "min_max", 0.2) == [1.0]


def test_z_score_uses_population_std() -> None:
    # mean=(2+4+4+4+5+5+7+9)/8=5; var=(9+1+1+1+0+0+4+16)/8=4; std=2
    # z = (s-5)/2 -> -1.5, -0.5, -0.5, -0.5, 0, 0, 1, 2  (sample std would give 2.138)
    expected = [-1.5, -0.5, -0.5, -0.5, 0.0, 0.0, 1.0, 2.0]
    assert normalize([2, 4, 4, 4, 5, 5, 7, 9], "z_score") == pytest.approx(expected)


def test_z_score_zero_std_gives_zeros() -> None:
    assert normalize([0.1, 0.1, 0.1], "z_score") == [0.0, 0.0, 0.0]
    assert normalize([3.0], "z_score") == [0.0]


def test_l2() -> None:
    # norm = sqrt(3^2 + 4^2) = 5 -> 3/5, 4/5
    assert normalize([3.0, 4.0], "l2") == pytest.approx([0.6, 0.8])


def test_l2_all_zero_gives_zeros() -> None:
    assert normalize([0.0, 0.0], "l2") == [0.0, 0.0]


def test_normalize_empty_is_empty() -> None:
    assert all(normalize([], method) == [] for method in NORMALIZATIONS)


def test_normalize_rejects_unknown_method_and_misplaced_bound() -> None:
    with pytest.raises(ValueError, match="'softmax'.*'min_max', 'z_score', 'l2'"):
        normalize([1.0], "softmax")
    with pytest.raises(ValueError, match="lower_bound"):
        normalize([1.0], "l2", 0.5)


# --- fuse: arithmetic --------------------------------------------------------


def weighted_signals() -> dict[str, list[Hit]]:
    """Text: a 10, b 6, c 2; vector: b 0.9, d 0.5."""
    return {
        "text": hits(("a", 10.0), ("b", 6.0), ("c", 2.0)),
        "vector": hits(("b", 0.9), ("d", 0.5)),
    }


def test_weighted_arithmetic() -> None:
    # text min_max: a=(10-2)/8=1, b=(6-2)/8=0.5, c=0; vector: b=1, d=0
    # weights text=1, vector=3, sum=4; missing -> 0
    # a=(1*1+3*0)/4=0.25  b=(1*0.5+3*1)/4=0.875  c=0  d=0
    spec = FusionSpec(weights={"text": 1.0, "vector": 3.0})
    result = fuse(weighted_signals(), spec)
    assert scores(result) == pytest.approx({"a": 0.25, "b": 0.875, "c": 0.0, "d": 0.0})
    # c and d tie at 0: d's best rank is 2 (vector), c's is 3 (text) -> d first
    assert order(result) == ["b", "a", "d", "c"]


def test_unweighted_arithmetic_is_plain_mean() -> None:
    # a=(1+0)/2=0.5  b=(0.5+1)/2=0.75
    result = scores(fuse(weighted_signals()))
    assert result["a"] == pytest.approx(0.5)
    assert result["b"] == pytest.approx(0.75)


def test_weights_need_not_sum_to_one() -> None:
    # weights 2 and 6 give the same as 1 and 3: b=(2*0.5+6*1)/8=0.875
    spec = FusionSpec(weights={"text": 2.0, "vector": 6.0})
    assert scores(fuse(weighted_signals(), spec))["b"] == pytest.approx(0.875)


def test_empty_signal_has_no_weight() -> None:
    # vector returned nothing: a = (1*1)/1 = 1.0, not (1+0)/2 = 0.5
    # text: a=(10-0)/10=1, b=0
    result = fuse({"text": hits(("a", 10.0), ("b", 0.0)), "vector": []})
    assert scores(result) == pytest.approx({"a": 1.0, "b": 0.0})
    assert all("vector" not in segment.signals for segment in result)


def test_all_signals_empty_gives_nothing() -> None:
    assert fuse({"text": [], "vector": []}) == []
    assert fuse({}) == []


def test_zero_weight_is_ignored_but_explained() -> None:
    # text (w=0): a=1, b=0; vector (w=1): b=(5-1)/4=1, a=0
    # a=(0*1+1*0)/1=0  b=(0*0+1*1)/1=1
    signals = {"text": hits(("a", 3.0), ("b", 1.0)), "vector": hits(("b", 5.0), ("a", 1.0))}
    result = fuse(signals, FusionSpec(weights={"text": 0.0}))
    assert scores(result) == pytest.approx({"a": 0.0, "b": 1.0})
    a = next(segment for segment in result if segment.segment_id == "a")
    assert a.signals["text"] == SignalScore(raw=3.0, normalized=1.0, rank=1)


def test_only_zero_weights_score_zero() -> None:
    result = fuse({"text": hits(("a", 3.0), ("b", 1.0))}, FusionSpec(weights={"text": 0.0}))
    assert scores(result) == {"a": 0.0, "b": 0.0}


def test_z_score_missing_segment_gets_signal_minimum() -> None:
    # text: a 3, b 1 -> mean 2, std 1 -> a=+1, b=-1 (min -1); c missing -> -1
    # vector: c 9, b 5 -> mean 7, std 2 -> c=+1, b=-1 (min -1); a missing -> -1
    # weights text=3, vector=1, sum=4
    # a=(3*1+1*-1)/4=0.5  b=(3*-1+1*-1)/4=-1  c=(3*-1+1*1)/4=-0.5
    # (a missing value of 0 would give a=0.75, c=0.25)
    signals = {"text": hits(("a", 3.0), ("b", 1.0)), "vector": hits(("c", 9.0), ("b", 5.0))}
    spec = FusionSpec(normalization="z_score", weights={"text": 3.0, "vector": 1.0})
    result = fuse(signals, spec)
    assert scores(result) == pytest.approx({"a": 0.5, "b": -1.0, "c": -0.5})
    assert order(result) == ["a", "c", "b"]


def test_l2_fusion() -> None:
    # text: a 3, b 4 -> norm 5 -> a=0.6, b=0.8; vector: a 1 -> a=1
    # a=(0.6+1)/2=0.8  b=(0.8+0)/2=0.4
    signals = {"text": hits(("b", 4.0), ("a", 3.0)), "vector": hits(("a", 1.0))}
    result = fuse(signals, FusionSpec(normalization="l2"))
    assert scores(result) == pytest.approx({"a": 0.8, "b": 0.4})


# --- fuse: geometric / harmonic ----------------------------------------------


def mean_signals() -> dict[str, list[Hit]]:
    """Text: a 3, b 2, c 1; vector: b 5, a 3, d 2, c 1."""
    return {
        "text": hits(("a", 3.0), ("b", 2.0), ("c", 1.0)),
        "vector": hits(("b", 5.0), ("a", 3.0), ("d", 2.0), ("c", 1.0)),
    }


MEAN_WEIGHTS = {"text": 1.0, "vector": 2.0}


def test_geometric_skips_zero_scores() -> None:
    # text min_max: a=1, b=0.5, c=0; vector (min 1, max 5): b=1, a=0.5, d=0.25, c=0
    # a = exp((1*ln 1 + 2*ln 0.5)/3) = 0.5^(2/3) = 0.629960...
    # b = exp((1*ln 0.5 + 2*ln 1)/3) = 0.5^(1/3) = 0.793700...
    # d: text missing (0) skipped -> exp(2*ln 0.25 / 2) = 0.25 (not 0)
    # c: no positive score -> 0
    result = fuse(mean_signals(), FusionSpec(method="geometric", weights=MEAN_WEIGHTS))
    expected = {"a": 0.5 ** (2 / 3), "b": 0.5 ** (1 / 3), "d": 0.25, "c": 0.0}
    assert scores(result) == pytest.approx(expected)
    assert order(result) == ["b", "a", "d", "c"]


def test_harmonic_skips_zero_scores() -> None:
    # a = (1+2)/(1/1 + 2/0.5) = 3/5 = 0.6
    # b = (1+2)/(1/0.5 + 2/1) = 3/4 = 0.75
    # d = 2/(2/0.25) = 0.25 (text skipped);  c = 0
    result = fuse(mean_signals(), FusionSpec(method="harmonic", weights=MEAN_WEIGHTS))
    assert scores(result) == pytest.approx({"a": 0.6, "b": 0.75, "d": 0.25, "c": 0.0})


# --- fuse: rrf ----------------------------------------------------------------


def rrf_signals() -> dict[str, list[Hit]]:
    """Text ranks a, b, c; vector ranks b, d (raw scores deliberately odd)."""
    return {
        "text": hits(("a", 0.01), ("b", 0.009), ("c", 0.001)),
        "vector": hits(("b", 900.0), ("d", 800.0)),
    }


def test_rrf_default() -> None:
    # k=60: a=1/61, b=1/62+1/61, c=1/63, d=1/62
    result = fuse(rrf_signals(), FusionSpec(method="rrf"))
    expected = {"a": 1 / 61, "b": 1 / 62 + 1 / 61, "c": 1 / 63, "d": 1 / 62}
    assert scores(result) == pytest.approx(expected)
    assert order(result) == ["b", "a", "d", "c"]


def test_rrf_with_weights_and_rank_constant() -> None:
    # k=1, text w=2, vector w=1: a=2/2=1, b=2/3+1/2=7/6, c=2/4=0.5, d=1/3
    spec = FusionSpec(method="rrf", rank_constant=1, weights={"text": 2.0})
    result = fuse(rrf_signals(), spec)
    assert scores(result) == pytest.approx({"a": 1.0, "b": 7 / 6, "c": 0.5, "d": 1 / 3})
    assert order(result) == ["b", "a", "c", "d"]
    b = result[0]
    assert b.signals["text"] == SignalScore(raw=0.009, normalized=pytest.approx(2 / 3), rank=2)
    assert b.signals["vector"] == SignalScore(raw=900.0, normalized=pytest.approx(1 / 2), rank=1)


# --- duplicates, ties, explain ----------------------------------------------


def test_duplicate_segment_keeps_first_occurrence() -> None:
    # de-duplicated text: a 10, b 8, c 2 -> a=1, b=(8-2)/8=0.75, c=0
    # (keeping the duplicate a=1 would make min=1 and b=(8-1)/9)
    signals = {"text": hits(("a", 10.0), ("b", 8.0), ("a", 1.0), ("c", 2.0))}
    result = fuse(signals)
    assert scores(result) == pytest.approx({"a": 1.0, "b": 0.75, "c": 0.0})
    assert len(result) == 3
    c = result[-1]
    assert c.signals["text"].rank == 3
    assert result[0].signals["text"].raw == 10.0


def test_duplicate_segment_rank_in_rrf() -> None:
    # text de-duplicated: a (rank 1), c (rank 2): c = 1/(60+2)
    result = fuse({"text": hits(("a", 2.0), ("a", 1.5), ("c", 1.0))}, FusionSpec(method="rrf"))
    assert scores(result) == pytest.approx({"a": 1 / 61, "c": 1 / 62})


def test_tied_input_scores_keep_list_order() -> None:
    # b and a both normalize to (5-1)/4=1; b is rank 1, a rank 2 -> b first
    result = fuse({"text": hits(("b", 5.0), ("a", 5.0), ("c", 1.0))})
    assert scores(result) == pytest.approx({"b": 1.0, "a": 1.0, "c": 0.0})
    assert order(result) == ["b", "a", "c"]


def test_full_ties_break_by_segment_id_whatever_the_input_order() -> None:
    # every segment: score 1/61 and best rank 1 -> segment id ascending
    forward = {"s1": hits(("z", 1.0)), "s2": hits(("y", 1.0)), "s3": hits(("x", 1.0))}
    backward = dict(reversed(list(forward.items())))
    spec = FusionSpec(method="rrf")
    assert order(fuse(forward, spec)) == ["x", "y", "z"]
    assert order(fuse(backward, spec)) == ["x", "y", "z"]


def test_explain_carries_raw_normalized_rank_of_returning_signals_only() -> None:
    # text: a=1 (rank 1), b=0.5 (rank 2), c=0 (rank 3); vector: b=1 (rank 1), d=0 (rank 2)
    result = {segment.segment_id: segment for segment in fuse(weighted_signals())}
    assert dict(result["b"].signals) == {
        "text": SignalScore(raw=6.0, normalized=0.5, rank=2),
        "vector": SignalScore(raw=0.9, normalized=1.0, rank=1),
    }
    assert dict(result["d"].signals) == {"vector": SignalScore(raw=0.5, normalized=0.0, rank=2)}
    assert set(result["a"].signals) == {"text"}


def test_video_id_comes_from_hit() -> None:
    signals = {"text": [Hit("a", "v1", 2.0), Hit("b", "v2", 1.0)]}
    assert {s.segment_id: s.video_id for s in fuse(signals)} == {"a": "v1", "b": "v2"}


# --- validation ----------------------------------------------------------------


def test_unknown_method_names_value_and_choices() -> None:
    with pytest.raises(ValueError, match="'borda'.*'arithmetic', 'geometric', 'harmonic', 'rrf'"):
        FusionSpec(method="borda")


def test_unknown_normalization_names_value_and_choices() -> None:
    with pytest.raises(ValueError, match="'softmax'.*'min_max', 'z_score', 'l2'"):
        FusionSpec(normalization="softmax")


@pytest.mark.parametrize("method", ["geometric", "harmonic"])
def test_z_score_needs_arithmetic(method: str) -> None:
    with pytest.raises(ValueError, match="use method='arithmetic' or normalization='min_max'"):
        FusionSpec(method=method, normalization="z_score")


def test_z_score_with_arithmetic_and_rrf_is_allowed() -> None:
    assert FusionSpec(normalization="z_score").normalization == "z_score"
    assert FusionSpec(method="rrf", normalization="z_score").method == "rrf"


def test_negative_weight_rejected() -> None:
    with pytest.raises(ValueError, match=r"'vector'.*>= 0.*-0\.5"):
        FusionSpec(weights={"text": 1.0, "vector": -0.5})


@pytest.mark.parametrize("weight", [math.nan, math.inf, "1"])
def test_non_finite_weight_rejected(weight: object) -> None:
    with pytest.raises(ValueError, match="finite"):
        FusionSpec(weights={"text": weight})  # type: ignore[dict-item]


@pytest.mark.parametrize("rank_constant", [0, -1])
def test_rank_constant_must_be_positive(rank_constant: int) -> None:
    with pytest.raises(ValueError, match="rank_constant"):
        FusionSpec(method="rrf", rank_constant=rank_constant)


def test_lower_bounds_only_with_min_max() -> None:
    with pytest.raises(ValueError, match="lower_bounds"):
        FusionSpec(normalization="l2", lower_bounds={"text": 0.1})


def test_lower_bound_used_per_signal_in_fuse() -> None:
    # text lb=0.5: a=(0.9-0.5)/0.4=1, b=(0.6-0.5)/0.4=0.25, c (0.3<0.5)=0
    # vector (no bound): c 1 -> 1.0; a=(1+0)/2=0.5 b=(0.25+0)/2=0.125 c=(0+1)/2=0.5
    signals = {
        "text": hits(("a", 0.9), ("b", 0.6), ("c", 0.3)),
        "vector": hits(("c", 1.0)),
    }
    result = fuse(signals, FusionSpec(lower_bounds={"text": 0.5}))
    assert scores(result) == pytest.approx({"a": 0.5, "b": 0.125, "c": 0.5})


def test_spec_is_frozen_against_caller_mutation() -> None:
    weights = {"text": 1.0}
    spec = FusionSpec(weights=weights)
    weights["text"] = -5.0
    assert spec.weight("text") == 1.0
    assert spec.weight("unknown") == 1.0


def test_parse_accepts_loose_input() -> None:
    spec = FusionSpec.parse("Geometric_Mean", "MIN_MAX", weights="text=0.3, vector=0.7")
    assert (spec.method, spec.normalization) == ("geometric", "min_max")
    assert dict(spec.weights) == {"text": 0.3, "vector": 0.7}
    with pytest.raises(ValueError, match="'text'"):
        FusionSpec.parse("rrf", weights="text")
    with pytest.raises(ValueError, match="'borda'"):
        FusionSpec.parse("borda")


def test_every_declared_combination_is_usable() -> None:
    signals = {"text": hits(("a", 2.0), ("b", 1.0))}
    for method in COMBINATIONS:
        assert order(fuse(signals, FusionSpec(method=method))) == ["a", "b"]


# --- group_by_video --------------------------------------------------------------


def seg(segment_id: str, video_id: str, score: float, rank: int = 1) -> ScoredSegment:
    """Build a ScoredSegment with one explain entry."""
    return ScoredSegment(segment_id, video_id, score, {"text": SignalScore(score, score, rank)})


def test_group_by_video_orders_videos_and_moments() -> None:
    segments = [
        seg("s3", "v1", 0.4),
        seg("s0", "v2", 0.9),
        seg("s1", "v1", 0.9),
        seg("s4", "v1", 0.3),
        seg("s6", "v3", 0.95),
        seg("s2", "v1", 0.5),
    ]
    result = group_by_video(segments, moments=2)
    # v3 0.95; v1 and v2 tie at 0.9 -> video id ascending (although v2's s0 sorts before s1)
    assert [(video.video_id, video.score) for video in result] == [
        ("v3", 0.95),
        ("v1", 0.9),
        ("v2", 0.9),
    ]
    assert [m.segment_id for m in result[1].moments] == ["s1", "s2"]
    assert [m.segment_id for m in result[2].moments] == ["s0"]


def test_group_by_video_default_keeps_three_moments() -> None:
    segments = [seg(f"s{i}", "v1", 1.0 - i / 10) for i in range(5)]
    (video,) = group_by_video(segments)
    assert [m.segment_id for m in video.moments] == ["s0", "s1", "s2"]


def test_group_by_video_moment_ties_use_rank_then_id() -> None:
    # equal scores: rank 1 beats rank 2; equal rank -> id ascending
    segments = [seg("c", "v", 0.5, rank=2), seg("b", "v", 0.5, rank=1), seg("a", "v", 0.5, rank=2)]
    (video,) = group_by_video(segments, moments=3)
    assert [m.segment_id for m in video.moments] == ["b", "a", "c"]


@pytest.mark.parametrize("moments", [0, -3])
def test_group_by_video_rejects_fewer_than_one_moment(moments: int) -> None:
    with pytest.raises(ValueError, match="moments"):
        group_by_video([seg("a", "v", 1.0)], moments=moments)


def test_group_by_video_of_fused_results() -> None:
    # weighted arithmetic from above: b=0.875 (v2), a=0.25 (v1), d=0 (v2), c=0 (v1)
    signals = {
        "text": [Hit("a", "v1", 10.0), Hit("b", "v2", 6.0), Hit("c", "v1", 2.0)],
        "vector": [Hit("b", "v2", 0.9), Hit("d", "v2", 0.5)],
    }
    result = group_by_video(fuse(signals, FusionSpec(weights={"vector": 3.0})))
    assert [(video.video_id, video.score) for video in result] == [
        ("v2", pytest.approx(0.875)),
        ("v1", pytest.approx(0.25)),
    ]
    assert [m.segment_id for m in result[0].moments] == ["b", "d"]
    assert [m.segment_id for m in result[1].moments] == ["a", "c"]


@pytest.mark.parametrize("names", [("bm25", "text"), ("bm25", "text", "visual")])
def test_arithmetic_scores_are_the_exact_weighted_mean_of_many_random_windows(names):
    """The two-signal shortcut and fsum give the very same float as the formula."""
    import random

    rng = random.Random(5)
    for _ in range(50):
        signals = {name: sorted(
            (Hit(f"s{rng.randrange(200)}", f"v{rng.randrange(20)}", rng.uniform(-1, 30))
             for _ in range(rng.randrange(1, 60))), key=lambda h: -h.score) for name in names}
        weights = {name: rng.choice([0.0, 0.1, 0.35, 1.0, 2.5]) for name in names}
        spec = FusionSpec(weights=weights)
        result = fuse(signals, spec)
        for segment in result:
            values = [(weights[name], segment.signals[name].normalized
                       if name in segment.signals else 0.0) for name in names]
            total = math.fsum(w for w, _ in values)
            expected = math.fsum(w * v for w, v in values) / total if total else 0.0
            assert segment.score == expected


def test_grouping_fuse_output_needs_no_second_sort():
    signals = {"bm25": hits(("a", 3.0), ("b", 2.0), ("c", 2.0), ("d", 1.0), video="v1")
               + hits(("e", 2.0), video="v2"),
               "text": hits(("c", 0.9), ("e", 0.9), ("a", 0.1), video="v1")}
    signals["text"][1] = Hit("e", "v2", 0.9)
    fused = fuse(signals, FusionSpec())
    for moments in (1, 2, 3):
        assert group_by_video(fused, moments, ordered=True) == group_by_video(fused, moments)
    shuffled = list(reversed(fused))
    assert group_by_video(shuffled, 2) == group_by_video(fused, 2, ordered=True)
