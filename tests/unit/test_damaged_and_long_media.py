"""Damaged, overlong and blank media: notices and messages an editor can act on.

* a file whose middle is corrupted still becomes ready, with a notice saying how much of
  its audio could not be decoded;
* a file over REELSEARCH["MAX_DURATION_SECONDS"] fails at probe with its length and the limit;
* blank (black or flat) keyframes get no concept segments;
* tool messages name the file, never the server's storage paths.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from django.conf import settings
from django.test import override_settings

from catalog.models import Video
from tests import media as test_media
from workers.pipeline import concepts, frames, media, stages
from workers.pipeline.errors import PermanentError
from workers.pipeline.media import ProbeResult

SPEECH = ("The harbour master checks every mooring line before the storm arrives. "
          "Then the crew folds the sails and ties them down with short ropes. ") * 2


@pytest.fixture(scope="module")
def narrated(media_tools, tmp_path_factory) -> Path:
    return test_media.make_video(tmp_path_factory.mktemp("narrated") / "harbour.mp4",
                                 narration=SPEECH)


@pytest.fixture(scope="module")
def corrupted(narrated, tmp_path_factory) -> Path:
    return test_media.make_corrupted_middle(
        tmp_path_factory.mktemp("damaged") / "harbour-damaged.mp4", narrated)


@pytest.fixture(scope="module")
def damaged_picture(narrated, tmp_path_factory) -> Path:
    """The narrated clip with its video stream corrupted in the middle and its audio intact."""
    import subprocess

    root = tmp_path_factory.mktemp("damaged-picture")
    picture = root / "picture.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(narrated), "-an",
                    "-c", "copy", str(picture)], check=True)
    broken = test_media.make_corrupted_middle(root / "picture-damaged.mp4", picture, 0.3)
    out = root / "harbour-bad-picture.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(broken), "-i",
                    str(narrated), "-map", "0:v", "-map", "1:a", "-c", "copy", str(out)],
                   check=True)
    return out


# --------------------------------------------------------------------------- finding 1


def test_the_corrupted_file_still_probes_like_the_original(narrated, corrupted):
    assert media.probe(corrupted).duration == pytest.approx(media.probe(narrated).duration)


def test_extract_audio_reports_how_much_audio_could_not_be_decoded(corrupted, tmp_path):
    warnings: list[str] = []
    wav = media.extract_audio(corrupted, tmp_path / "audio.wav", warnings=warnings)
    assert wav.exists()
    assert len(warnings) == 1, warnings
    found = re.match(r"(\d+\.\d) s of the audio of harbour-damaged\.mp4 could not be decoded",
                     warnings[0])
    assert found, warnings[0]
    # a fifth of the payload of a ~10 s clip: seconds, not a packet or the whole file
    assert 0.5 <= float(found.group(1)) <= media.probe(corrupted).duration / 2
    assert "missing from the transcript" in warnings[0]
    assert str(corrupted.parent) not in warnings[0]


def test_an_intact_file_gives_no_warning_and_the_old_call_still_works(narrated, tmp_path):
    warnings: list[str] = []
    media.extract_audio(narrated, tmp_path / "a.wav", warnings=warnings)
    assert warnings == []
    assert media.extract_audio(narrated, tmp_path / "b.wav") == tmp_path / "b.wav"


def test_the_audio_stage_records_the_decode_warning_as_a_notice(corrupted, tmp_path):
    notices: list[str] = []
    video = SimpleNamespace(has_audio=True, duration=media.probe(corrupted).duration,
                            source=SimpleNamespace(path=str(corrupted)))
    ctx = SimpleNamespace(video=video, work_dir=tmp_path, notice=notices.append)
    stages.audio(ctx)
    assert (tmp_path / "audio.wav").exists()
    assert len(notices) == 1 and "could not be decoded" in notices[0], notices


def test_a_damaged_picture_with_intact_audio_gets_a_picture_notice_only(damaged_picture,
                                                                        tmp_path):
    rule = frames.KeyframeRule.from_settings()
    duration = media.probe(damaged_picture).duration
    warnings: list[str] = []
    found = frames.extract_keyframes(damaged_picture, tmp_path / "frames", rule, duration,
                                     warnings=warnings)
    assert found, "the intact parts still give keyframes"
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("Parts of the picture of harbour-bad-picture.mp4 could not "
                                  "be decoded (")
    assert "re-export" in warnings[0] and str(tmp_path) not in warnings[0]
    audio_warnings: list[str] = []
    media.extract_audio(damaged_picture, tmp_path / "audio.wav", warnings=audio_warnings)
    assert audio_warnings == []  # the audio is fine: no audio notice


def test_an_intact_picture_gives_no_picture_notice(narrated, tmp_path):
    warnings: list[str] = []
    frames.extract_keyframes(narrated, tmp_path / "frames", frames.KeyframeRule.from_settings(),
                             media.probe(narrated).duration, warnings=warnings)
    assert warnings == []


def test_decode_error_counting_follows_repeated_lines() -> None:
    log = ("[aac @ 0x1] Number of bands (20) exceeds limit (15).\n"
           "[h264 @ 0x2] corrupted macroblock 3 4 (total_coeff=-1)\n"
           "Error while decoding stream #0:1: Invalid data found when processing input\n"
           "    Last message repeated 2 times\n"
           "Error while decoding stream #0:1: Operation not permitted\n"
           "size=N/A time=00:00:10.00\n")
    assert media.count_decode_errors(log) == (4, 1)
    assert media.count_decode_errors("") == (0, 0)


# --------------------------------------------------------------------------- finding 2


def probe_result(duration: float) -> ProbeResult:
    return ProbeResult(duration=duration, width=320, height=180, has_video=True,
                       has_audio=True, format_name="mp4", size_bytes=1)


def test_a_file_over_the_duration_limit_is_refused_with_both_lengths() -> None:
    with pytest.raises(PermanentError) as caught:
        media.check_duration(probe_result(5 * 3600 + 12 * 60), "night.mp4", 4 * 3600)
    assert str(caught.value).startswith(
        "night.mp4 is 5:12:00 long; the limit is 4:00:00 (REELSEARCH_MAX_DURATION_SECONDS)")
    media.check_duration(probe_result(4 * 3600), "night.mp4", 4 * 3600)  # at the limit: fine
    media.check_duration(probe_result(99 * 3600), "night.mp4", 0)  # 0: no limit


def test_the_limit_defaults_to_four_hours_and_probe_applies_it(narrated) -> None:
    assert settings.REELSEARCH["MAX_DURATION_SECONDS"] == 4 * 3600
    limit = {**settings.REELSEARCH, "MAX_DURATION_SECONDS": 5}
    message = r"harbour\.mp4 is 0:00:\d\d long; the limit is 0:00:05 \(REELSEARCH_MAX_DURATION"
    with override_settings(REELSEARCH=limit), pytest.raises(PermanentError, match=message):
        media.probe(narrated)
    assert media.probe(narrated).duration > 5


def test_near_uniform_frames_are_blank_and_pictures_are_not() -> None:
    rng = np.random.default_rng(0)
    black = np.zeros((180, 320, 3), np.uint8)
    navy = np.tile(np.array([0, 0, 128], np.uint8), (180, 320, 1))
    noisy_black = np.clip(rng.normal(2, 0.8, (180, 320, 3)), 0, 255).astype(np.uint8)
    captioned = navy.copy()
    captioned[70:110, 40:280] = 255
    pattern = rng.integers(0, 256, (180, 320, 3), dtype=np.uint8)
    assert frames.is_blank(black) and frames.is_blank(navy) and frames.is_blank(noisy_black)
    assert not frames.is_blank(captioned) and not frames.is_blank(pattern)


class FakeClassifier:
    info = SimpleNamespace(dim=4, label="fake")

    def __init__(self) -> None:
        self.seen = 0

    def probabilities(self, batch, threads=0):
        self.seen += len(batch)
        return np.tile(np.array([0.7, 0.1, 0.1, 0.1], np.float32), (len(batch), 1))


def test_blank_keyframes_are_not_classified_and_get_no_segment(monkeypatch) -> None:
    black = np.zeros((90, 160, 3), np.uint8)
    picture = np.random.default_rng(1).integers(0, 256, (90, 160, 3), dtype=np.uint8)
    pictures = [black, black, picture, black, black]
    fake = FakeClassifier()
    monkeypatch.setattr(concepts, "get_classifier", lambda: fake)
    monkeypatch.setattr(concepts, "iter_frames",
                        lambda ctx, keyframes: zip(keyframes, pictures, strict=True))
    ctx = SimpleNamespace(progress=lambda fraction: None)
    blank: list[bool] = []
    rows = concepts.classify(ctx, list(range(5)), blank)
    assert blank == [True, True, False, True, True]
    assert fake.seen == 1
    assert rows.shape == (5, 4) and rows[2, 0] == pytest.approx(0.7) and not rows[0].any()

    classes = [SimpleNamespace(label=f"class {i}", name=f"class {i}") for i in range(4)]
    monkeypatch.setattr(concepts, "imagenet_classes", lambda: classes)
    monkeypatch.setattr(concepts, "get_text_encoder",
                        lambda: SimpleNamespace(info=SimpleNamespace(label="text")))
    monkeypatch.setattr(concepts, "class_embeddings",
                        lambda indices, encoder=None: np.eye(4, dtype=np.float32)[indices])
    windows = [concepts.Window(0.0, 4.0, (0, 1)), concepts.Window(4.0, 8.0, (2, 3)),
               concepts.Window(8.0, 12.0, (4,))]
    video = Video(title="Night", source="videos/night.mp4")  # unsaved: no database needed
    with override_settings(REELSEARCH={**settings.REELSEARCH, "CONCEPTS_PER_WINDOW": 2,
                                       "CONCEPT_MIN_PROBABILITY": 0.05, "AUTO_TAGS": 3,
                                       "AUTO_TAG_MIN_SCORE": 0.0}):
        segments, tags = concepts.window_segments(video, windows, rows, "fake", blank)
    assert [(s.start, s.end) for s in segments] == [(4.0, 8.0)]
    assert segments[0].text.startswith("class 0 (70%)"), segments[0].text
    assert tags and tags[0] == "class 0"


# --------------------------------------------------------------------------- finding 4


def test_probe_errors_name_the_file_not_the_storage_path(media_tools, tmp_path) -> None:
    bad = test_media.make_not_a_video(tmp_path / "storage" / "videos" / "notes.mp4")
    with pytest.raises(PermanentError) as caught:
        media.probe(bad)
    assert "notes.mp4" in str(caught.value)
    assert str(tmp_path) not in str(caught.value), str(caught.value)


def test_picture_errors_name_the_file_not_the_storage_path(media_tools, tmp_path) -> None:
    bad = test_media.make_not_a_video(tmp_path / "storage" / "videos" / "notes.mp4")
    with pytest.raises(PermanentError) as caught:
        frames.extract_frame(bad, 0.0, tmp_path / "work" / "frame.jpg", 320)
    assert "notes.mp4" in str(caught.value)
    assert str(tmp_path) not in str(caught.value), str(caught.value)


def test_audio_errors_name_the_file_not_the_storage_path(media_tools, tmp_path) -> None:
    bad = test_media.make_not_a_video(tmp_path / "storage" / "videos" / "notes.mp4")
    with pytest.raises(PermanentError) as caught:
        media.extract_audio(bad, tmp_path / "work" / "audio.wav", duration=3.0)
    assert "notes.mp4" in str(caught.value)
    assert str(tmp_path) not in str(caught.value), str(caught.value)


def test_tool_detail_cuts_every_absolute_path_to_its_name() -> None:
    source = Path("/srv/reelsearch/media/videos/2026/12/my clip.mp4")
    log = ("[mov,mp4] moov atom not found\n"
           "/srv/reelsearch/media/videos/2026/12/my clip.mp4: Invalid data found when "
           "processing input; output /data/scratch/12/frames/frame_00001.jpg")
    detail = media.tool_detail(log, source)
    assert detail == ("my clip.mp4: Invalid data found when processing input; output "
                      "frame_00001.jpg")


# --------------------------------------------------------------------------- rotation


@pytest.mark.parametrize(("stream_extra", "size"), [
    ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]}, (180, 320)),
    ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": 90}]}, (180, 320)),
    ({"tags": {"rotate": "270"}}, (180, 320)),
    ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": 180}]}, (320, 180)),
    ({}, (320, 180)),
])
def test_probe_reports_the_size_a_turned_video_is_shown_at(stream_extra, size) -> None:
    stream = {"codec_type": "video", "width": 320, "height": 180, **stream_extra}
    data = {"streams": [stream], "format": {"duration": "3.0", "format_name": "mp4"}}
    found = media._parse_probe(data, Path("phone.mp4"), 10)
    assert (found.width, found.height) == size


def test_keyframes_of_a_turned_video_are_upright(narrated, tmp_path) -> None:
    turned = tmp_path / "phone.mp4"
    test_media._ffmpeg(["-i", str(narrated), "-c", "copy", "-metadata:s:v:0", "rotate=90",
                        str(turned)])
    found = media.probe(turned)
    assert (found.width, found.height) == (180, 320)
    rule = frames.KeyframeRule(0.05, 2.0, 4.0)
    extracted = frames.extract_keyframes(turned, tmp_path / "frames", rule, found.duration)
    from PIL import Image

    with Image.open(extracted[0].thumbnail) as thumb, Image.open(extracted[0].frame) as frame:
        assert thumb.width < thumb.height and frame.width < frame.height
