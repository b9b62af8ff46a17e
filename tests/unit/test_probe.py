"""Unit tests for workers.pipeline.media probing: ffprobe JSON parsing and early file checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.pipeline import media
from workers.pipeline.errors import PermanentError
from workers.pipeline.media import REEXPORT_HINT, ProbeResult, _parse_probe

PATH = Path("uploads/holiday.mp4")


def video_stream(width: int = 1280, height: int = 720, **extra: object) -> dict:
    return {"index": 0, "codec_type": "video", "codec_name": "h264", "width": width,
            "height": height, "disposition": {"default": 1, "attached_pic": 0}, **extra}


def audio_stream() -> dict:
    return {"index": 1, "codec_type": "audio", "codec_name": "aac", "sample_rate": "44100",
            "channels": 2, "disposition": {"default": 1, "attached_pic": 0}}


def cover_art() -> dict:
    return {"index": 2, "codec_type": "video", "codec_name": "mjpeg", "width": 600,
            "height": 600, "disposition": {"default": 0, "attached_pic": 1}}


def probe_data(*streams: dict, duration: str | None = "12.480000",
               format_name: str = "mov,mp4,m4a,3gp,3g2,mj2") -> dict:
    fmt = {"filename": str(PATH), "nb_streams": len(streams), "format_name": format_name}
    if duration is not None:
        fmt["duration"] = duration
    return {"streams": list(streams), "format": fmt}


def test_video_and_audio() -> None:
    result = _parse_probe(probe_data(video_stream(), audio_stream()), PATH, 123_456)
    assert result == ProbeResult(duration=12.48, width=1280, height=720, has_video=True,
                                 has_audio=True, format_name="mov,mp4,m4a,3gp,3g2,mj2",
                                 size_bytes=123_456)


def test_video_only() -> None:
    result = _parse_probe(probe_data(video_stream(640, 360)), PATH, 10)
    assert (result.has_video, result.has_audio) == (True, False)
    assert (result.width, result.height) == (640, 360)
    assert result.duration == pytest.approx(12.48)


def test_audio_only() -> None:
    result = _parse_probe(probe_data(audio_stream(), format_name="mp3", duration="3.5"),
                          PATH, 10)
    assert (result.has_video, result.has_audio) == (False, True)
    assert (result.width, result.height) == (None, None)
    assert result.duration == 3.5
    assert result.format_name == "mp3"


def test_cover_art_is_not_counted_as_video() -> None:
    result = _parse_probe(probe_data(audio_stream(), cover_art()), PATH, 10)
    assert result.has_video is False
    assert result.has_audio is True
    assert (result.width, result.height) == (None, None)


def test_the_real_video_is_used_when_cover_art_comes_first() -> None:
    result = _parse_probe(probe_data(cover_art(), video_stream(1920, 1080), audio_stream()),
                          PATH, 10)
    assert result.has_video is True
    assert (result.width, result.height) == (1920, 1080)


def test_a_stream_without_disposition_still_counts() -> None:
    stream = video_stream()
    del stream["disposition"]
    assert _parse_probe(probe_data(stream), PATH, 10).has_video is True


def test_missing_width_and_height_become_none() -> None:
    stream = {"codec_type": "video", "codec_name": "h264"}
    result = _parse_probe(probe_data(stream), PATH, 10)
    assert result.has_video is True
    assert (result.width, result.height) == (None, None)


@pytest.mark.parametrize("data", [
    probe_data(),
    {"format": {"duration": "10.0"}},
    probe_data({"codec_type": "data", "codec_name": "bin_data"}),
    probe_data({"codec_type": "subtitle", "codec_name": "mov_text"}),
    probe_data(cover_art()),  # a picture alone is not a video
])
def test_no_video_or_audio_stream_is_a_permanent_error(data: dict) -> None:
    with pytest.raises(PermanentError) as caught:
        _parse_probe(data, PATH, 10)
    message = str(caught.value)
    assert "holiday.mp4" in message
    assert "no video or audio stream" in message
    assert REEXPORT_HINT in message  # says what to do


@pytest.mark.parametrize("duration", ["0.000000", "0", None, "", "-1.5"])
def test_no_positive_duration_is_a_permanent_error(duration: str | None) -> None:
    with pytest.raises(PermanentError) as caught:
        _parse_probe(probe_data(video_stream(), audio_stream(), duration=duration), PATH, 10)
    message = str(caught.value)
    assert "holiday.mp4" in message
    assert "duration" in message
    assert REEXPORT_HINT in message


def test_a_zero_byte_file_is_rejected_before_ffprobe(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(media, "tool", _no_tool)
    empty = tmp_path / "empty upload.mp4"
    empty.write_bytes(b"")
    with pytest.raises(PermanentError) as caught:
        media.probe(empty)
    message = str(caught.value)
    assert "empty upload.mp4" in message
    assert "0 bytes" in message
    assert "upload it again" in message


def test_a_missing_file_is_a_permanent_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(media, "tool", _no_tool)
    missing = tmp_path / "gone.mov"
    with pytest.raises(PermanentError) as caught:
        media.probe(missing)
    message = str(caught.value)
    assert "gone.mov" in message
    assert "missing" in message
    assert "upload it again" in message


def _no_tool(name: str) -> str:
    raise AssertionError(f"{name} must not run for a file that is empty or missing")
