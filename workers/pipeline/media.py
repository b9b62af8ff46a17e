"""Running ffmpeg and ffprobe."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import PermanentError, TransientError

REEXPORT_HINT = "re-export it as an MP4 (H.264 video, AAC audio) and upload it again"

# Put decoded samples where their timestamps say: silence before a late first packet
# (first_pts=0) and in gaps between packets (async=1: hard-fill gaps over 0.1 s, stretch
# smaller drift by at most 1 sample/s), then pad the end with silence (cut by -t).
AUDIO_TIMELINE_FILTER = "aresample=async=1:first_pts=0,apad"


@dataclass(frozen=True)
class ProbeResult:
    """What ffprobe found in a file."""

    duration: float
    width: int | None
    height: int | None
    has_video: bool
    has_audio: bool
    format_name: str
    size_bytes: int


def tool(name: str) -> str:
    """Return the path of ffmpeg/ffprobe or fail with an install hint."""
    path = shutil.which(name)
    if path is None:
        raise TransientError(f"{name} is not installed on this worker: install ffmpeg "
                             "(Debian: apt-get install ffmpeg) and retry.")
    return path


def probe(path: Path) -> ProbeResult:
    """Read duration and streams of a media file, failing with an editor-facing message."""
    if not path.exists():
        raise PermanentError(
            f"The source file {path.name} is missing from storage: upload it again.")
    size = path.stat().st_size
    if size == 0:
        raise PermanentError(f"The file {path.name} is empty (0 bytes): upload it again.")
    proc = subprocess.run(
        [tool("ffprobe"), "-v", "error", "-print_format", "json", "-show_format",
         "-show_streams", str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise PermanentError(f"{path.name} could not be read as a video ({detail}). The file "
                             f"may be truncated or not a video: {REEXPORT_HINT}.")
    return _parse_probe(json.loads(proc.stdout or "{}"), path, size)


def _parse_probe(data: dict, path: Path, size: int) -> ProbeResult:
    streams = data.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video"
                  and not s.get("disposition", {}).get("attached_pic")), None)
    has_audio = any(s.get("codec_type") == "audio" for s in streams)
    duration = float(data.get("format", {}).get("duration") or 0.0)
    if video is None and not has_audio:
        raise PermanentError(f"{path.name} has no video or audio stream: {REEXPORT_HINT}.")
    if duration <= 0:
        raise PermanentError(f"{path.name} has no readable duration; it may be truncated: "
                             f"{REEXPORT_HINT}.")
    return ProbeResult(
        duration=duration,
        width=int(video["width"]) if video and video.get("width") else None,
        height=int(video["height"]) if video and video.get("height") else None,
        has_video=video is not None,
        has_audio=has_audio,
        format_name=str(data.get("format", {}).get("format_name", "")),
        size_bytes=size,
    )


def extract_audio(source: Path, target: Path, sample_rate: int = 16000,
                  duration: float | None = None) -> Path:
    """Write the audio track as 16 kHz mono 16-bit WAV on the container's timeline.

    Sample n of the WAV is at n / sample_rate seconds of the video, whatever the audio
    packets do: a track that starts late is preceded by silence, gaps between packets
    (edited or concatenated files) are filled with silence from the packet timestamps
    (``aresample=async=1``), and the WAV is padded or cut to ``duration`` (default: the
    container's duration from ffprobe). Decoding samples back to back instead would shift
    every word after a gap early by the gap's length.
    """
    if duration is None or duration <= 0:
        duration = probe(source).duration
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".partial.wav")
    proc = subprocess.run(
        [tool("ffmpeg"), "-nostdin", "-v", "error", "-y", "-i", str(source), "-vn",
         "-af", AUDIO_TIMELINE_FILTER, "-t", f"{duration:.6f}", "-ac", "1",
         "-ar", str(sample_rate), "-c:a", "pcm_s16le", str(tmp)],
        capture_output=True, text=True, timeout=1800, check=False,
    )
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        tmp.unlink(missing_ok=True)
        raise PermanentError(f"The audio track of {source.name} could not be decoded ({detail}): "
                             f"{REEXPORT_HINT}.")
    tmp.replace(target)
    return target
