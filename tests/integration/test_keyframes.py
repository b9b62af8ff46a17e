"""Keyframe selection through real ffmpeg on tiny generated clips (no models)."""

from __future__ import annotations

import pytest

from tests import media
from workers.pipeline.frames import KeyframeRule, extract_keyframes, frame_rate

# Caption changes on a flat background score about 0.075 (ffmpeg scene), above 0.05.
CHANGES = [(0.0, 3.0, "FIRST STEP MIX"), (3.0, 3.4, "SECOND STEP KNEAD"),
           (3.4, 7.0, "THIRD STEP REST"), (7.0, 10.0, "FOURTH STEP BAKE")]
FRAME = 0.2  # 5 fps


@pytest.fixture(scope="module")
def changing_clip(media_tools, tmp_path_factory):
    root = tmp_path_factory.mktemp("keyframes")
    return media.make_silent_video(root / "changes.mp4", 10.0, captions=CHANGES)


def times(clip, tmp_path, rule: KeyframeRule, duration: float = 10.0) -> list[float]:
    return [f.time for f in extract_keyframes(clip, tmp_path, rule, duration)]


def test_scene_changes_respect_the_maximum_rate_without_being_lost(changing_clip, tmp_path):
    rule = KeyframeRule(threshold=0.05, min_interval=1.0, max_interval=5.0)
    # 3.0: a change; 3.4: too soon, taken at 4.0 when the rate allows; 7.0: a change.
    assert times(changing_clip, tmp_path, rule) == pytest.approx([0.6, 3.0, 4.0, 7.0],
                                                                 abs=FRAME + 0.01)


def test_the_minimum_rate_adds_periodic_keyframes(changing_clip, tmp_path):
    rule = KeyframeRule(threshold=0.05, min_interval=1.0, max_interval=2.0)
    found = times(changing_clip, tmp_path, rule)
    assert found == pytest.approx([0.6, 2.6, 3.6, 5.6, 7.0, 9.0], abs=FRAME + 0.01)


def test_a_high_threshold_leaves_only_periodic_keyframes(changing_clip, tmp_path):
    rule = KeyframeRule(threshold=0.9, min_interval=1.0, max_interval=4.0)
    assert times(changing_clip, tmp_path, rule) == pytest.approx([0.6, 4.6, 8.6],
                                                                 abs=FRAME + 0.01)


def test_every_keyframe_has_a_thumbnail_and_an_analysis_frame(changing_clip, tmp_path):
    from PIL import Image

    extracted = extract_keyframes(changing_clip, tmp_path, KeyframeRule(), 10.0,
                                  thumb_width=160, max_side=240)
    for item in extracted:
        with Image.open(item.thumbnail) as thumb, Image.open(item.frame) as frame:
            assert thumb.size == (160, 90) and max(frame.size) == 240
    assert frame_rate(changing_clip) == pytest.approx(5.0)


@pytest.mark.parametrize("duration", [2.0, 0.4])
def test_very_short_clips_get_one_keyframe(media_tools, tmp_path, duration):
    clip = media.make_silent_video(tmp_path / "short.mp4", duration, captions=[(0, duration, "HI")])
    found = times(clip, tmp_path / "frames", KeyframeRule(), duration)
    assert len(found) == 1 and 0 <= found[0] < duration
