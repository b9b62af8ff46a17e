"""Reproducible test media: narrated videos, silent videos, audio-only files and broken files.

Standard library only; the work is done by the ``ffmpeg``, ``ffprobe`` and ``espeak-ng``
programs (Debian packages ``ffmpeg``, ``espeak-ng`` and, for on-screen text, a font such as
``fonts-dejavu-core``).  Used by the tests, ``demo/make_media.py`` and the benchmarks.

Every function writes to the path it is given and is deterministic for a given input and
toolchain: no timestamps, encoder version strings or random numbers end up in the files,
and the encoders run single-threaded.  The bytes can still differ between ffmpeg / x264 /
espeak-ng versions.

Any failing command raises :class:`MediaError` (a ``RuntimeError``) carrying the tail of
the program's stderr.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import struct
import subprocess
import tempfile
import wave
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MediaError",
    "NarrationPart",
    "audio_packet_gaps",
    "concat_narrations",
    "make_audio_only",
    "make_narrated_video",
    "make_not_a_video",
    "make_silent_video",
    "make_truncated",
    "make_video",
    "make_video_with_audio_gaps",
    "make_zero_byte",
    "media_duration",
    "missing_tools",
    "part_spans",
    "probe",
    "speak",
    "wav_duration",
]

Caption = tuple[float, float, str]

#: Sample rate of the audio tracks written (what Whisper wants anyway).
AUDIO_RATE = 16000
#: AAC / MP3 bitrate of the audio tracks: small files, speech still clear.
AUDIO_BITRATE = "32k"
#: x264 constant rate factor: high, the pictures are flat colour and text.
VIDEO_CRF = 30
#: Fontconfig pattern (or ``fc-match`` query) for on-screen text.
FONT_PATTERN = "DejaVu Sans:style=Bold"

_REQUIRED_TOOLS = ("ffmpeg", "ffprobe", "espeak-ng")


class MediaError(RuntimeError):
    """A media tool failed or is missing."""


@dataclass(frozen=True)
class NarrationPart:
    """Where one part of a concatenated narration lies in the audio, in seconds."""

    key: str
    text: str
    start: float
    end: float

    def as_dict(self) -> dict[str, object]:
        """Return a JSON-ready dict (times rounded to milliseconds)."""
        return {
            "key": self.key,
            "text": self.text,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
        }


# --------------------------------------------------------------------------- tools


def missing_tools() -> list[str]:
    """Return the names of the required programs that are not on PATH (empty when all are)."""
    return [tool for tool in _REQUIRED_TOOLS if shutil.which(tool) is None]


def _run(cmd: Sequence[str], *, cwd: str | os.PathLike[str] | None = None) -> str:
    """Run ``cmd``; return its stdout, or raise MediaError with the end of its stderr."""
    exe = cmd[0]
    if shutil.which(exe) is None:
        raise MediaError(f"{exe} not found on PATH (install the Debian package providing it)")
    proc = subprocess.run(
        list(cmd),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise MediaError(f"{exe} failed with exit status {proc.returncode}: {tail}")
    return proc.stdout


def _ffmpeg(args: Sequence[str], *, cwd: str | os.PathLike[str] | None = None) -> None:
    _run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], cwd=cwd)


# Options that keep the output identical from run to run (no encoder strings, no
# creation times, one thread so x264 makes the same decisions on any machine).
_BITEXACT = [
    "-map_metadata",
    "-1",
    "-threads",
    "1",
    "-fflags",
    "+bitexact",
    "-flags:v",
    "+bitexact",
    "-flags:a",
    "+bitexact",
]


def _prepare(path: str | os.PathLike[str]) -> Path:
    out = Path(path).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


# --------------------------------------------------------------------------- speech


def speak(text: str, path: str | os.PathLike[str], voice: str = "en-us", wpm: int = 160) -> Path:
    """Synthesise ``text`` with espeak-ng into a WAV file (22.05 kHz mono) and return its path."""
    if not text.strip():
        raise ValueError("speak() needs some text")
    out = _prepare(path)
    with tempfile.TemporaryDirectory(prefix="media-") as tmp:
        text_file = Path(tmp, "text.txt")
        text_file.write_text(text, encoding="utf-8")
        _run(["espeak-ng", "-v", voice, "-s", str(int(wpm)), "-w", str(out), "-f", str(text_file)])
    return out


def wav_duration(path: str | os.PathLike[str]) -> float:
    """Return the length of a PCM WAV file in seconds."""
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


def concat_narrations(
    parts: Iterable[tuple[str, str]],
    path: str | os.PathLike[str],
    *,
    gap: float = 0.6,
    lead_in: float = 0.3,
    voice: str = "en-us",
    wpm: int = 160,
) -> tuple[Path, list[NarrationPart]]:
    """Speak each ``(key, text)`` part and join them, with ``gap`` seconds of silence between.

    Returns the WAV path and where each part starts and ends in it.  The times are counted
    from the synthesised samples (espeak-ng's own leading/trailing silence included), so they
    are exact for the WAV and for any video made from it with :func:`make_video`.
    """
    parts = list(parts)
    if not parts:
        raise ValueError("concat_narrations() needs at least one part")
    out = _prepare(path)
    timings: list[NarrationPart] = []
    with tempfile.TemporaryDirectory(prefix="media-") as tmp:
        clips = []
        for i, (_key, text) in enumerate(parts):
            clip = speak(text, Path(tmp, f"part{i:03d}.wav"), voice=voice, wpm=wpm)
            with wave.open(str(clip), "rb") as wav:
                clips.append((wav.getparams(), wav.readframes(wav.getnframes())))
        params = clips[0][0]
        for other, _frames in clips[1:]:
            if other[:3] != params[:3]:
                raise MediaError("espeak-ng produced WAV parts with different formats")
        frame_size = params.sampwidth * params.nchannels

        def silence(seconds: float) -> bytes:
            return b"\x00" * (round(seconds * params.framerate) * frame_size)

        with wave.open(str(out), "wb") as joined:
            joined.setnchannels(params.nchannels)
            joined.setsampwidth(params.sampwidth)
            joined.setframerate(params.framerate)
            position = 0  # in frames
            for i, ((key, text), (_p, frames)) in enumerate(zip(parts, clips, strict=True)):
                pad = silence(lead_in if i == 0 else gap)
                joined.writeframes(pad)
                position += len(pad) // frame_size
                start = position / params.framerate
                joined.writeframes(frames)
                position += len(frames) // frame_size
                timings.append(NarrationPart(key, text, start, position / params.framerate))
    return out, timings


def part_spans(
    timings: Sequence[NarrationPart], end: float | None = None
) -> list[tuple[float, float]]:
    """Return, per part, the span a caption for it covers: gap midpoint to gap midpoint.

    The first span starts at 0 and the last ends at ``end`` (default: the last part's end
    plus 0.5 s, the length :func:`make_video` gives a narrated video), so spans of
    consecutive parts touch without overlapping.  Times are rounded to milliseconds.
    """
    spans = []
    for i, part in enumerate(timings):
        start = (timings[i - 1].end + part.start) / 2 if i else 0.0
        if i + 1 < len(timings):
            stop = (part.end + timings[i + 1].start) / 2
        else:
            stop = part.end + 0.5 if end is None else end
        spans.append((round(start, 3), round(stop, 3)))
    return spans


# --------------------------------------------------------------------------- on-screen text


@functools.cache
def _font_option() -> str:
    """Return the drawtext option choosing the font, looked up at run time.

    ``fc-match`` gives the bold font's file; failing that, an ffmpeg built with fontconfig
    is asked for the family by name (regular weight: drawtext's ``font=`` takes a family
    only).  No font path is hard-coded.
    """
    if shutil.which("fc-match"):
        try:
            found = _run(["fc-match", "--format=%{file}", FONT_PATTERN]).strip()
        except MediaError:
            found = ""
        if found and Path(found).is_file() and not set(found) & set("'\\"):
            return f"fontfile='{found}'"
    try:
        buildconf = _run(["ffmpeg", "-hide_banner", "-buildconf"])
    except MediaError:
        buildconf = ""
    if "--enable-libfontconfig" in buildconf:
        return "font='" + FONT_PATTERN.split(":")[0] + "'"
    raise MediaError(
        "no font for ffmpeg drawtext: fc-match found none and this ffmpeg lacks fontconfig "
        "(install fonts-dejavu-core and fontconfig)"
    )


def _caption_filters(
    captions: Sequence[Caption], size: tuple[int, int], workdir: Path
) -> list[str]:
    """Write each caption line to a text file in ``workdir``; return drawtext filters.

    Text goes through ``textfile=`` (relative to ``workdir``, where ffmpeg runs) so that no
    character of it needs filtergraph escaping.  Lines are white on an opaque black box,
    centred, sized to fit the frame width, words two spaces apart: large, high-contrast and
    easy for OCR.
    """
    width, height = size
    font = _font_option() if captions else ""
    filters: list[str] = []
    for n, (start, end, text) in enumerate(captions):
        if end <= start:
            raise ValueError(f"caption {text!r} ends ({end}) before it starts ({start})")
        # Words two spaces apart: at one space rapidocr runs them together ("FIXAFLATTIRE").
        lines = ["  ".join(line.split()) for line in text.splitlines() if line.strip()]
        if not lines:
            continue
        longest = max(len(line) for line in lines)
        # DejaVu Sans Bold advances ~0.72 em per capital; keep 8% margins and some room
        # between lines for the boxes.
        fontsize = int(
            min(height * 0.16, width * 0.84 / (0.72 * longest), height * 0.8 / (1.45 * len(lines)))
        )
        fontsize = max(fontsize, 8)
        line_height = fontsize * 1.45
        top = (height - line_height * len(lines)) / 2 + fontsize * 0.2
        for i, line in enumerate(lines):
            name = f"caption{n:03d}_{i}.txt"
            (workdir / name).write_text(line, encoding="utf-8")
            filters.append(
                f"drawtext={font}:textfile={name}:expansion=none:fontsize={fontsize}"
                f":fontcolor=white:box=1:boxcolor=black:boxborderw={max(fontsize // 4, 2)}"
                f":x=(w-text_w)/2:y={round(top + i * line_height)}"
                f":enable='gte(t,{start:.3f})*lt(t,{end:.3f})'"
            )
    return filters


# --------------------------------------------------------------------------- videos


def make_video(
    path: str | os.PathLike[str],
    *,
    narration: str | None,
    duration: float | None = None,
    captions: Sequence[Caption] = (),
    size: tuple[int, int] = (320, 180),
    fps: int = 5,
    background: str = "color=c=navy",
    audio: bool = True,
    narration_wav: str | os.PathLike[str] | None = None,
    voice: str = "en-us",
    wpm: int = 160,
    tail: float = 0.5,
) -> Path:
    """Write an MP4 (H.264 yuv420p + AAC mono 16 kHz) and return its path.

    ``narration`` is spoken with espeak-ng as the audio track (or pass a prepared WAV, e.g.
    from :func:`concat_narrations`, as ``narration_wav``).  ``duration`` defaults to the
    narration's length plus ``tail`` seconds; without narration it is required and the audio
    track is silence (``audio=False`` leaves the audio stream out).  ``captions`` are
    ``(start, end, text)``, shown while ``start <= t < end`` over the ``background`` (an
    ffmpeg lavfi source, e.g. ``color=c=navy`` or ``testsrc2``); a ``\\n`` in the text
    starts a new line.

    The moov atom stays at the end of the file (no ``+faststart``), which
    :func:`make_truncated` relies on.
    """
    if narration is not None and narration_wav is not None:
        raise ValueError("give narration or narration_wav, not both")
    out = _prepare(path)
    width, height = size
    if width % 2 or height % 2:
        raise ValueError("size must be even in both dimensions (yuv420p)")
    with tempfile.TemporaryDirectory(prefix="media-") as tmp:
        workdir = Path(tmp)
        wav: Path | None = None
        if narration is not None:
            wav = speak(narration, workdir / "narration.wav", voice=voice, wpm=wpm)
        elif narration_wav is not None:
            wav = Path(narration_wav).resolve()
        if wav is not None and not audio:
            raise ValueError("narration given but audio=False")
        if duration is None:
            if wav is None:
                raise ValueError("duration is required for a video without narration")
            duration = round(wav_duration(wav) + tail, 3)
        if duration <= 0:
            raise ValueError("duration must be positive")

        sep = ":" if "=" in background else "="
        inputs = ["-f", "lavfi", "-i", f"{background}{sep}s={width}x{height}:r={fps}:d={duration}"]
        if wav is not None:
            inputs += ["-i", str(wav)]
        elif audio:
            inputs += ["-f", "lavfi", "-i", f"anullsrc=r={AUDIO_RATE}:cl=mono:d={duration}"]

        vchain = ",".join([*_caption_filters(captions, size, workdir), "format=yuv420p"])
        graph = f"[0:v]{vchain}[v]"
        maps = ["-map", "[v]"]
        if audio:
            graph += f";[1:a]aresample={AUDIO_RATE},apad[a]"
            maps += ["-map", "[a]"]
        video_opts = [
            "-c:v",
            "libx264",
            "-preset",
            "medium",
            "-tune",
            "stillimage",
            "-crf",
            str(VIDEO_CRF),
            "-pix_fmt",
            "yuv420p",
            "-g",
            str(fps * 5),
            "-r",
            str(fps),
        ]
        audio_opts = (
            ["-c:a", "aac", "-b:a", AUDIO_BITRATE, "-ac", "1", "-ar", str(AUDIO_RATE)]
            if audio
            else ["-an"]
        )
        _ffmpeg(
            [
                *inputs,
                "-filter_complex",
                graph,
                *maps,
                *video_opts,
                *audio_opts,
                "-t",
                f"{duration:.3f}",
                *_BITEXACT,
                str(out),
            ],
            cwd=workdir,
        )
    return out


def make_narrated_video(
    path: str | os.PathLike[str],
    parts: Iterable[tuple[str, str]],
    *,
    gap: float = 0.6,
    lead_in: float = 0.3,
    voice: str = "en-us",
    wpm: int = 160,
    captions: Sequence[Caption] = (),
    part_captions: Mapping[str, str] | None = None,
    **video_options: object,
) -> tuple[Path, list[NarrationPart]]:
    """Make a video narrated by several ``(key, text)`` parts; return it and each part's times.

    The times (seconds from the start of the video) come from the synthesised WAV, see
    :func:`concat_narrations`.  ``part_captions`` maps a part's key to on-screen text shown
    over the part's :func:`part_spans` span, in addition to the fixed ``captions``.
    Other keyword arguments go to :func:`make_video`.
    """
    out = _prepare(path)
    with tempfile.TemporaryDirectory(prefix="media-") as tmp:
        wav, timings = concat_narrations(
            parts, Path(tmp, "narration.wav"), gap=gap, lead_in=lead_in, voice=voice, wpm=wpm
        )
        shown = list(captions)
        end = video_options.get("duration") or timings[-1].end + video_options.get("tail", 0.5)
        keys = [part.key for part in timings]
        spans = dict(zip(keys, part_spans(timings, float(end)), strict=True))  # type: ignore[arg-type]
        for key, text in (part_captions or {}).items():
            if key not in spans:
                raise ValueError(f"part_captions names {key!r}, which is not a part key")
            shown.append((*spans[key], text))
        make_video(
            out,
            narration=None,
            narration_wav=wav,
            voice=voice,
            wpm=wpm,
            captions=shown,
            **video_options,  # type: ignore[arg-type]
        )
    return out, timings


def make_silent_video(
    path: str | os.PathLike[str],
    duration: float,
    captions: Sequence[Caption] = (),
    **video_options: object,
) -> Path:
    """Write an MP4 with on-screen text only and no audio stream at all."""
    return make_video(
        path,
        narration=None,
        duration=duration,
        captions=captions,
        audio=False,
        **video_options,  # type: ignore[arg-type]
    )


def make_audio_only(
    path: str | os.PathLike[str], text: str, voice: str = "en-us", wpm: int = 160
) -> Path:
    """Write spoken ``text`` as an audio file with no video stream (.m4a AAC, or .mp3)."""
    out = _prepare(path)
    suffix = out.suffix.lower()
    if suffix in {".m4a", ".mp4", ".aac"}:
        codec = ["-c:a", "aac"]
    elif suffix == ".mp3":
        codec = ["-c:a", "libmp3lame", "-write_xing", "0", "-id3v2_version", "0"]
    else:
        raise ValueError(f"make_audio_only() writes .m4a or .mp3, not {suffix!r}")
    with tempfile.TemporaryDirectory(prefix="media-") as tmp:
        wav = speak(text, Path(tmp, "speech.wav"), voice=voice, wpm=wpm)
        _ffmpeg(
            [
                "-i",
                str(wav),
                "-vn",
                *codec,
                "-b:a",
                AUDIO_BITRATE,
                "-ac",
                "1",
                "-ar",
                str(AUDIO_RATE),
                *_BITEXACT,
                str(out),
            ]
        )
    return out


def make_video_with_audio_gaps(
    path: str | os.PathLike[str],
    parts: Iterable[tuple[str, str]],
    gaps: Sequence[float],
    *,
    audio_delay: float = 0.0,
    gap: float = 0.6,
    lead_in: float = 0.3,
    voice: str = "en-us",
    wpm: int = 160,
    tail: float = 0.5,
    **video_options: object,
) -> tuple[Path, list[NarrationPart]]:
    """Make a narrated MP4 whose audio track has holes; return it and each part's times.

    The parts are spoken as in :func:`make_narrated_video`, encoded as one AAC track, and
    its packets are then re-stamped (``setts`` bitstream filter, no re-encoding): the whole
    track starts ``audio_delay`` seconds into the video, and before part ``i + 1`` the
    timestamps jump by ``gaps[i]`` seconds, so the container has no audio packets at all
    for that long while the video goes on (as in an edited or concatenated file).  Decoding
    the packets back to back therefore gives ``audio_delay + sum(gaps)`` seconds less audio
    than the container's timeline.  The video lasts until the last part ends plus ``tail``.

    The returned times are on the container's timeline (where a player says each part is
    spoken).  Other keyword arguments go to :func:`make_silent_video` (size, fps, captions,
    background).
    """
    parts = list(parts)
    gaps = [float(g) for g in gaps]
    if len(gaps) != len(parts) - 1:
        raise ValueError(f"give one gap per boundary between parts ({len(parts) - 1}), "
                         f"not {len(gaps)}")
    if audio_delay < 0 or any(g < 0 for g in gaps):
        raise ValueError("gaps and audio_delay cannot be negative")
    out = _prepare(path)
    with tempfile.TemporaryDirectory(prefix="media-") as tmp:
        wav, timings = concat_narrations(
            parts, Path(tmp, "narration.wav"), gap=gap, lead_in=lead_in, voice=voice, wpm=wpm
        )
        # Cut in the middle of the silence between parts; each packet from there on moves.
        cuts = [(timings[i].end + timings[i + 1].start) / 2 for i in range(len(gaps))]
        shifts = [audio_delay + sum(gaps[:i]) for i in range(len(parts))]
        shifted = [
            NarrationPart(t.key, t.text, t.start + shift, t.end + shift)
            for t, shift in zip(timings, shifts, strict=True)
        ]
        duration = round(shifted[-1].end + tail, 3)
        track = Path(tmp, "narration.m4a")
        _ffmpeg(["-i", str(wav), "-vn", "-c:a", "aac", "-b:a", AUDIO_BITRATE, "-ac", "1",
                 "-ar", str(AUDIO_RATE), *_BITEXACT, str(track)])
        picture = make_silent_video(Path(tmp, "picture.mp4"), duration, **video_options)
        # TS is in the track's time base; TS*TB is the time in the narration WAV.
        # Commas inside the expression are escaped from the bitstream filter list's parser.
        expr = f"TS+{audio_delay}/TB" + "".join(
            f"+if(gte(TS*TB\\,{cut:.4f})\\,{g}/TB\\,0)"
            for cut, g in zip(cuts, gaps, strict=True)
        )
        _ffmpeg(
            [
                "-i",
                str(picture),
                "-i",
                str(track),
                "-map",
                "0:v",
                "-map",
                "1:a",
                "-c",
                "copy",
                "-bsf:a",
                f"setts=ts={expr}",
                *_BITEXACT,
                str(out),
            ]
        )
    return out, shifted


# --------------------------------------------------------------------------- broken files


def make_zero_byte(path: str | os.PathLike[str]) -> Path:
    """Write an empty file."""
    out = _prepare(path)
    out.write_bytes(b"")
    return out


def make_not_a_video(path: str | os.PathLike[str]) -> Path:
    """Write a plain text file (whatever the name, e.g. ``notes.mp4``)."""
    out = _prepare(path)
    out.write_text(
        "This is not a video. It is a plain text file with a video's name.\n" * 20,
        encoding="utf-8",
    )
    return out


def _top_level_atoms(data: bytes) -> list[tuple[str, int, int]]:
    """Return ``(type, offset, size)`` of the top-level boxes of an ISO-BMFF file."""
    atoms = []
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            if offset + 16 > len(data):
                break
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        elif size == 0:
            size = len(data) - offset
        if size < 8:
            break
        atoms.append((kind.decode("latin-1"), offset, size))
        offset += size
    return atoms


def make_truncated(
    path: str | os.PathLike[str], source: str | os.PathLike[str], fraction: float = 0.4
) -> Path:
    """Write the first ``fraction`` of ``source``'s bytes: an MP4 cut before its moov atom.

    Raises ValueError when the cut would keep the moov atom (e.g. a ``+faststart`` source),
    since such a file may still open.
    """
    if not 0 < fraction < 1:
        raise ValueError("fraction must be between 0 and 1")
    data = Path(source).read_bytes()
    cut = int(len(data) * fraction)
    moov = [offset for kind, offset, _size in _top_level_atoms(data) if kind == "moov"]
    if not moov:
        raise ValueError(f"{source} has no moov atom: not an MP4 made by make_video()")
    if moov[0] < cut:
        raise ValueError(
            f"the moov atom of {source} starts at byte {moov[0]}, before the cut at {cut}: "
            "the truncated file would still be playable"
        )
    out = _prepare(path)
    out.write_bytes(data[:cut])
    return out


# --------------------------------------------------------------------------- inspection


def probe(path: str | os.PathLike[str]) -> dict:
    """Return ffprobe's JSON (``format`` and ``streams``) for a media file."""
    out = _run(
        [
            "ffprobe",
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            str(path),
        ]
    )
    return json.loads(out)


def media_duration(path: str | os.PathLike[str]) -> float:
    """Return a media file's duration in seconds, as ffprobe reports it."""
    return float(probe(path)["format"]["duration"])


def audio_packet_gaps(
    path: str | os.PathLike[str], min_gap: float = 0.2
) -> list[tuple[float, float]]:
    """Return ``(from, to)`` for every hole in the first audio stream's packet timestamps.

    A hole is time on the container's timeline that no audio packet covers: before the first
    packet (from 0) or between one packet's nominal end and the next packet's start, when
    longer than ``min_gap`` seconds.  A packet's nominal length is the shortest step between
    packet timestamps (an AAC frame: 1024 samples), since a muxer may stretch the stored
    duration of the packet before a hole over the whole hole.
    """
    out = _run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-show_entries",
            "packet=pts_time",
            "-print_format",
            "json",
            str(path),
        ]
    )
    times = sorted(
        float(p["pts_time"])
        for p in json.loads(out).get("packets", [])
        if p.get("pts_time") not in (None, "N/A")
    )
    if not times:
        return []
    steps = [b - a for a, b in zip(times, times[1:], strict=False) if b - a > 1e-6]
    frame = min(steps) if steps else 0.0
    holes = []
    if max(times[0], 0.0) > min_gap:
        holes.append((0.0, times[0]))
    for a, b in zip(times, times[1:], strict=False):
        if b - (a + frame) > min_gap:
            holes.append((round(a + frame, 6), b))
    return holes


# --------------------------------------------------------------------------- damaged files


def make_corrupted_middle(
    path: str | os.PathLike[str], source: str | os.PathLike[str], fraction: float = 0.2
) -> Path:
    """Copy ``source`` with ``fraction`` of its mdat payload, in the middle, overwritten.

    The block is deterministic pseudo-random bytes (SHA-256 of a counter), so the container
    (ftyp, moov) stays intact and the file opens and probes as before, but the audio and
    video packets stored there no longer decode: a file damaged in transfer or on disk.
    Raises ValueError when ``source`` has no mdat atom.
    """
    import hashlib

    if not 0 < fraction < 1:
        raise ValueError("fraction must be between 0 and 1")
    data = bytearray(Path(source).read_bytes())
    mdat = [(offset, size) for kind, offset, size in _top_level_atoms(bytes(data))
            if kind == "mdat"]
    if not mdat:
        raise ValueError(f"{source} has no mdat atom: not an MP4 made by make_video()")
    offset, size = mdat[0]
    start, end = offset + 16, offset + size  # keep the box header (and a largesize field)
    length = int((end - start) * fraction)
    if length <= 0:
        raise ValueError(f"the mdat atom of {source} is too small to corrupt")
    begin = start + (end - start - length) // 2
    noise = b"".join(hashlib.sha256(str(n).encode()).digest() for n in range(length // 32 + 1))
    data[begin : begin + length] = noise[:length]
    out = _prepare(path)
    out.write_bytes(bytes(data))
    return out
