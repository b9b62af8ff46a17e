"""Media through ffmpeg-python: probing, stream graphs and running them.

Every ffprobe/ffmpeg call goes through ffmpeg-python: `ffmpeg.probe` for what a file holds,
stream graphs (``ffmpeg.input(...).filter(...).output(...)``) for audio, frames and
thumbnails, run by `run_graph` (or `open_graph` for a pipe), and ``ffmpeg.Error`` with the
tool's stderr, which callers turn into editor-facing messages (`errors.ffmpeg_detail`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import ffmpeg
from django.conf import settings

from .errors import PermanentError, TransientError, ffmpeg_detail
from .errors import tool_detail as tool_detail  # re-exported: stderr to an editor message

REEXPORT_HINT = "re-export it as an MP4 (H.264 video, AAC audio) and upload it again"


#: One line per packet ffmpeg could not decode (it drops the packet and goes on).
PACKET_ERROR = re.compile(r"^Error while decoding stream", re.IGNORECASE)
#: ffmpeg folds identical log lines: "    Last message repeated 3 times".
REPEATED = re.compile(r"^\s*Last message repeated (\d+) times?", re.IGNORECASE)
#: Other signs of damaged data in a decoder's log (counted when no packet was dropped).
DAMAGE = re.compile(r"invalid data found|error while decoding|corrupt|concealing|"
                    r"non-existing pps|decode_slice", re.IGNORECASE)
#: Default REELSEARCH["MAX_DURATION_SECONDS"]: 4 hours.
DEFAULT_MAX_DURATION = 4 * 3600.0


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


def clock(seconds: float) -> str:
    """Return seconds as H:MM:SS, e.g. 18720 -> "5:12:00"."""
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}"


#: Options of every ffmpeg run: no console input, no banner, only errors in the log.
QUIET = ("-nostdin", "-hide_banner", "-v", "error")


def ffmpeg_args(graph: ffmpeg.nodes.OutputStream) -> list[str]:
    """Return the command line of a graph (quiet, overwriting its outputs)."""
    return ffmpeg.compile(graph.global_args(*QUIET), cmd=tool("ffmpeg"), overwrite_output=True)


def run_graph(graph: ffmpeg.nodes.OutputStream, timeout: float, cwd: Path | None = None) -> str:
    """Run a graph to its end; return its log, or raise ``ffmpeg.Error`` with its stderr.

    A run past `timeout` seconds is killed and raises ``subprocess.TimeoutExpired``.
    """
    proc = subprocess.Popen(ffmpeg_args(graph), stdin=subprocess.DEVNULL,  # noqa: S603
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    if proc.returncode != 0:
        raise ffmpeg.Error("ffmpeg", out, err)
    return err.decode(errors="replace")


def open_graph(graph: ffmpeg.nodes.OutputStream) -> subprocess.Popen:
    """Start a graph whose output is ``pipe:``; read its stdout, then its stderr."""
    return subprocess.Popen(ffmpeg_args(graph), stdin=subprocess.DEVNULL,  # noqa: S603
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def probe_streams(path: Path, **options: str) -> dict:
    """Return ffprobe's format and streams of a file (``ffmpeg.probe``; raises ffmpeg.Error)."""
    try:
        return ffmpeg.probe(str(path), cmd=tool("ffprobe"), v="error", **options)
    except ValueError as exc:  # not JSON: ffprobe printed nothing usable
        raise ffmpeg.Error("ffprobe", b"", str(exc).encode()) from exc


def max_duration() -> float:
    """Return REELSEARCH["MAX_DURATION_SECONDS"] (0 or less: no limit)."""
    return float(settings.REELSEARCH.get("MAX_DURATION_SECONDS", DEFAULT_MAX_DURATION) or 0)


def check_duration(found: ProbeResult, name: str, limit: float | None = None) -> None:
    """Refuse a file longer than the configured limit with an editor-facing message."""
    limit = max_duration() if limit is None else limit
    if limit > 0 and found.duration > limit:
        raise PermanentError(
            f"{name} is {clock(found.duration)} long; the limit is {clock(limit)} "
            "(REELSEARCH_MAX_DURATION_SECONDS): cut it into shorter parts and upload them, "
            "or ask an administrator to raise the limit.")


def probe(path: Path) -> ProbeResult:
    """Read duration and streams of a media file, failing with an editor-facing message.

    A file longer than REELSEARCH["MAX_DURATION_SECONDS"] is refused (PermanentError).
    """
    if not path.exists():
        raise PermanentError(
            f"The source file {path.name} is missing from storage: upload it again.")
    size = path.stat().st_size
    if size == 0:
        raise PermanentError(f"The file {path.name} is empty (0 bytes): upload it again.")
    try:
        data = probe_streams(path)
    except ffmpeg.Error as exc:
        raise PermanentError(f"{path.name} could not be read as a video "
                             f"({ffmpeg_detail(exc, path)}). The file may be truncated or not "
                             f"a video: {REEXPORT_HINT}.") from exc
    found = _parse_probe(data, path, size)
    check_duration(found, path.name)
    return found


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
    width = int(video["width"]) if video and video.get("width") else None
    height = int(video["height"]) if video and video.get("height") else None
    if video and rotation(video) % 180 == 90:  # shown turned (a phone held upright)
        width, height = height, width
    return ProbeResult(
        duration=duration,
        width=width,
        height=height,
        has_video=video is not None,
        has_audio=has_audio,
        format_name=str(data.get("format", {}).get("format_name", "")),
        size_bytes=size,
    )


def rotation(stream: dict) -> int:
    """Return how far a video stream is turned when shown (0, 90, 180 or 270 degrees).

    From the display matrix side data (``rotation``, ffmpeg 5+) or the older ``rotate``
    tag. ffmpeg applies it when decoding (autorotate), so keyframes and thumbnails come out
    upright; the stored width and height are the coded ones and are swapped by the caller.
    """
    for item in stream.get("side_data_list") or []:
        if "rotation" in item:
            try:
                return round(float(item["rotation"])) % 360
            except (TypeError, ValueError):
                break
    try:
        return round(float((stream.get("tags") or {}).get("rotate", 0))) % 360
    except (TypeError, ValueError):
        return 0


def extract_audio(source: Path, target: Path, sample_rate: int = 16000,
                  duration: float | None = None, warnings: list[str] | None = None) -> Path:
    """Write the audio track as 16 kHz mono 16-bit WAV on the container's timeline.

    Sample n of the WAV is at n / sample_rate seconds of the video, whatever the audio
    packets do: a track that starts late is preceded by silence, gaps between packets
    (edited or concatenated files) are filled with silence from the packet timestamps
    (``aresample=async=1``), and the WAV is padded or cut to ``duration`` (default: the
    container's duration from ffprobe). Decoding samples back to back instead would shift
    every word after a gap early by the gap's length.

    Damaged packets do not stop the extraction (ffmpeg drops them; the timeline filter puts
    silence in their place); when ``warnings`` is given, an editor-facing sentence saying
    how much of the audio could not be decoded is appended to it (see ``decode_warnings``).
    """
    if duration is None or duration <= 0:
        duration = probe(source).duration
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".partial.wav")
    graph = (audio_on_timeline(ffmpeg.input(str(source)).audio)
             .output(str(tmp), t=f"{duration:.6f}", ac=1, ar=sample_rate, acodec="pcm_s16le"))
    try:
        log = run_graph(graph, timeout=1800)
    except ffmpeg.Error as exc:
        tmp.unlink(missing_ok=True)
        raise PermanentError(f"The audio track of {source.name} could not be decoded "
                             f"({ffmpeg_detail(exc, source, tmp)}): {REEXPORT_HINT}.") from exc
    tmp.replace(target)
    if warnings is not None:
        warnings.extend(decode_warnings(log, source))
    return target


def audio_on_timeline(stream: ffmpeg.nodes.FilterableStream) -> ffmpeg.nodes.FilterableStream:
    """Put decoded samples where their timestamps say, then pad the end with silence.

    Silence before a late first packet (first_pts=0) and in gaps between packets (async=1:
    hard-fill gaps over 0.1 s, stretch smaller drift by at most 1 sample/s); the padding
    is cut by the output's duration.
    """
    return stream.filter("aresample", **{"async": 1, "first_pts": 0}).filter("apad")


def count_decode_errors(stderr: str) -> tuple[int, int]:
    """Return (dropped packets, other damage lines) in an ffmpeg log."""
    packets = other = 0
    last = None
    for line in stderr.splitlines():
        if match := REPEATED.match(line):
            if last == "packet":
                packets += int(match.group(1))
            elif last == "other":
                other += int(match.group(1))
            continue
        if PACKET_ERROR.match(line.strip()):
            packets, last = packets + 1, "packet"
        elif DAMAGE.search(line):
            other, last = other + 1, "other"
        else:
            last = None
    return packets, other


def audio_packet_seconds(source: Path) -> float | None:
    """Return the length of one packet of the first audio stream (None when unknown)."""
    try:
        stream = probe_streams(source, select_streams="a:0")["streams"][0]
    except (ffmpeg.Error, KeyError, IndexError):
        return None
    try:
        seconds = float(stream["duration"]) / int(stream["nb_frames"])
        if seconds > 0:
            return seconds
    except (KeyError, ValueError, ZeroDivisionError):
        pass
    try:  # AAC's usual 1024 samples per packet
        return 1024 / float(stream["sample_rate"])
    except (KeyError, ValueError, ZeroDivisionError):
        return None


def decode_warnings(stderr: str, source: Path) -> list[str]:
    """Return editor-facing notices for the damaged audio an ffmpeg log reports (or [])."""
    packets, other = count_decode_errors(stderr)
    if not packets and not other:
        return []
    advice = ("words spoken there are missing from the transcript; if the original is "
              f"intact, {REEXPORT_HINT}.")
    seconds = audio_packet_seconds(source) if packets else None
    if seconds:
        return [f"{packets * seconds:.1f} s of the audio of {source.name} could not be decoded "
                f"({packets} damaged packets, silence in their place): {advice}"]
    count = packets or other
    return [f"Parts of the audio of {source.name} could not be decoded ({count} decoding "
            f"errors): {advice}"]
