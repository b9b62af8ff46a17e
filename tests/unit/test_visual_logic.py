"""Unit tests for the visual stream's pure logic: keyframe rule, windows, concepts, OCR merging."""

from __future__ import annotations

import numpy as np
import pytest

from workers.pipeline.concepts import (
    auto_tags,
    concept_text,
    concept_vector,
    imagenet_classes,
    parse_concept_text,
    pool,
    visual_windows,
)
from workers.pipeline.frames import KeyframeRule, parse_selected
from workers.pipeline.ocr import (
    Reading,
    TextSpan,
    fingerprint,
    merge_readings,
    same_picture,
    similar,
)

# --- keyframe rule ----------------------------------------------------------------------------


def test_select_expression_encodes_first_frame_min_and_max_rate() -> None:
    rule = KeyframeRule(threshold=0.2, min_interval=1.0, max_interval=4.0)
    expression = rule.select_expression(duration=60.0)
    assert expression == (
        "if(isnan(prev_selected_t),gte(t,0.500),"
        "st(1,gte(t-prev_selected_t,1)*(gt(scene,0.2)+ld(0))+gte(t-prev_selected_t,4));"
        "st(0,if(ld(1),0,gt(ld(0)+gt(scene,0.2),0)));ld(1))")


@pytest.mark.parametrize("duration,first", [(60.0, 0.5), (2.0, 0.5), (0.6, 0.3), (0.0, 0.0)])
def test_first_keyframe_comes_early_enough_for_short_clips(duration, first) -> None:
    assert KeyframeRule().first_at(duration) == pytest.approx(first)


@pytest.mark.parametrize("low,high", [(0.0, 4.0), (5.0, 4.0), (-1.0, 1.0)])
def test_rule_rejects_impossible_intervals(low, high) -> None:
    with pytest.raises(ValueError, match="min_interval"):
        KeyframeRule(min_interval=low, max_interval=high)


def test_parse_selected_reads_times_and_scene_scores() -> None:
    text = ("frame:0    pts:6656    pts_time:0.52\nlavfi.scene_score=0.000593\n"
            "frame:1    pts:38400   pts_time:3\nlavfi.scene_score=0.207909\n"
            "frame:2    pts:51200   pts_time:4\n")
    assert parse_selected(text) == [(0.52, 0.000593), (3.0, 0.207909), (4.0, 0.0)]
    assert parse_selected("") == []


# --- visual windows ---------------------------------------------------------------------------


def test_windows_start_at_keyframes_and_last_at_least_the_minimum() -> None:
    windows = visual_windows([0.5, 1.2, 3.0, 6.1, 6.5], duration=8.0, min_seconds=3.0)
    assert [(w.start, w.end, w.frames) for w in windows] == [
        (0.0, 3.0, (0, 1)), (3.0, 6.1, (2,)), (6.1, 8.0, (3, 4))]


def test_a_short_last_window_joins_the_previous_one() -> None:
    windows = visual_windows([0.5, 3.5], duration=4.0, min_seconds=3.0)
    assert [(w.start, w.end, w.frames) for w in windows] == [(0.0, 4.0, (0, 1))]


def test_one_keyframe_covers_a_short_clip_and_no_keyframe_no_window() -> None:
    assert [(w.start, w.end, w.frames) for w in visual_windows([0.5], 2.0, 3.0)] == [
        (0.0, 2.0, (0,))]
    assert visual_windows([], 10.0, 3.0) == []


def test_windows_tile_the_video_without_gaps() -> None:
    times = list(np.round(np.cumsum(np.random.default_rng(3).uniform(0.5, 5, 40)), 3))
    windows = visual_windows(times, duration=times[-1] + 2, min_seconds=3.0)
    assert windows[0].start == 0.0 and windows[-1].end == pytest.approx(times[-1] + 2)
    assert all(a.end == b.start for a, b in zip(windows, windows[1:], strict=False))
    assert sorted(i for w in windows for i in w.frames) == list(range(len(times)))
    assert all(times[w.frames[0]] == w.start for w in windows[1:])


# --- concept aggregation ----------------------------------------------------------------------


def test_pool_averages_frames_and_keeps_the_top_classes_above_the_floor() -> None:
    probs = np.zeros((2, 6), dtype=np.float32)
    probs[0, [1, 2, 3]] = [0.6, 0.3, 0.1]
    probs[1, [1, 2, 4]] = [0.2, 0.7, 0.1]
    concepts = pool(probs, top_k=3, min_probability=0.08)
    assert [i for i, _ in concepts] == [2, 1]  # means 0.5, 0.4; 0.05 and 0.05 are below
    assert [p for _, p in concepts] == pytest.approx([0.5, 0.4])


def test_pool_keeps_the_strongest_class_even_when_all_are_weak() -> None:
    probs = np.full((1, 100), 0.01, dtype=np.float32)
    probs[0, 42] = 0.02
    assert pool(probs, top_k=5, min_probability=0.05) == [(42, pytest.approx(0.02))]
    assert pool(np.zeros((0, 10)), 5, 0.05) == []


def test_concept_vector_is_the_normalized_probability_weighted_mean() -> None:
    embeddings = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=np.float32)
    vector = concept_vector([(7, 0.75), (9, 0.25)], embeddings)
    assert vector == pytest.approx(np.array([0.75, 0.25, 0.0]) / np.hypot(0.75, 0.25))
    assert np.linalg.norm(vector) == pytest.approx(1.0)
    assert vector.dtype == np.float32


def test_concept_vector_of_one_concept_is_its_embedding() -> None:
    embedding = np.array([[0.6, 0.8]], dtype=np.float32)
    assert concept_vector([(3, 0.2)], embedding) == pytest.approx([0.6, 0.8])


def test_concept_text_round_trips() -> None:
    pairs = [("black swan, Cygnus atratus", 0.62), ("goose", 0.04)]
    text = concept_text(pairs)
    assert text == "black swan, Cygnus atratus (62%); goose (4%)"
    assert parse_concept_text(text) == [("black swan, Cygnus atratus", 0.62), ("goose", 0.04)]
    assert parse_concept_text("no concepts here") == []


def test_auto_tags_weight_windows_by_length() -> None:
    windows = [(8.0, [("dog", 0.5), ("cat", 0.1)]), (2.0, [("cat", 0.9)])]
    # dog: 0.5 * 0.8 = 0.40; cat: 0.1 * 0.8 + 0.9 * 0.2 = 0.26
    assert auto_tags(windows, count=5, min_score=0.1) == ["dog", "cat"]
    assert auto_tags(windows, count=1, min_score=0.1) == ["dog"]
    assert auto_tags(windows, count=5, min_score=0.3) == ["dog"]
    assert auto_tags([], count=5, min_score=0.0) == []


def test_imagenet_classes_come_in_classifier_order() -> None:
    classes = imagenet_classes()
    assert len(classes) == 1000
    assert classes[0].name == "tench"
    assert classes[100].label == "black swan, Cygnus atratus"
    assert classes[100].definition


# --- OCR deduplication ------------------------------------------------------------------------


def test_similar_tolerates_ocr_noise_but_not_new_text() -> None:
    assert similar("STEP TWO REMOVE THE WHEEL 00:00:04.000",
                   "STEP TWO REMOVE THE WHEEL 00:00:08.000")
    assert similar("FIX A FLAT TIRE", "FIX A FLAT TIRF")
    assert not similar("STEP ONE", "STEP TWO")
    assert not similar("FIX A FLAT TIRE", "")


def test_merge_readings_joins_consecutive_repeats_and_ends_at_the_next_keyframe() -> None:
    times = [0.5, 2.0, 4.0, 6.0, 8.0, 9.0]
    readings = [Reading(0.5, "FIX A FLAT TIRE", 0.9), Reading(2.0, "FIX A FLAT TIRF", 0.7),
                Reading(4.0, "PUMP THE TYRE", 0.95), Reading(6.0, "PUMP THE TYRE", 0.99),
                Reading(8.0, "", 0.0), Reading(9.0, "FIX A FLAT TIRE", 0.9)]
    assert merge_readings(readings, times, duration=10.0) == [
        TextSpan(0.5, 4.0, "FIX A FLAT TIRE"), TextSpan(4.0, 8.0, "PUMP THE TYRE"),
        TextSpan(9.0, 10.0, "FIX A FLAT TIRE")]


def test_merge_readings_of_no_text_is_empty() -> None:
    assert merge_readings([Reading(0.5, ""), Reading(3.0, "  ")], [0.5, 3.0], 5.0) == []


def test_same_picture_ignores_noise_but_sees_a_new_caption() -> None:
    rng = np.random.default_rng(0)
    frame = np.full((180, 320, 3), 40, dtype=np.uint8)
    noisy = np.clip(frame + rng.integers(-2, 3, frame.shape), 0, 255).astype(np.uint8)
    captioned = frame.copy()
    captioned[120:150, 100:220] = 255  # a white caption box appears
    assert same_picture(fingerprint(frame), fingerprint(noisy))
    assert not same_picture(fingerprint(frame), fingerprint(captioned))
    assert fingerprint(frame).shape == (36, 64)
