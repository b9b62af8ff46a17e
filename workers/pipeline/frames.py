"""Keyframes: scene changes sampled at a capped rate, kept as thumbnails and analysis frames.

One ffmpeg pass decodes the video once and keeps a frame when

* it is the first frame at or after ``first`` (``min(0.5 s, duration / 2)``: skips a fade-in
  yet gives even a 1-second clip one keyframe), or
* ``max_interval`` seconds have passed since the last kept frame (the minimum rate), or
* its scene score (ffmpeg's ``scene``, 0..1) exceeds ``threshold`` and ``min_interval``
  seconds have passed since the last kept frame (the maximum rate). A change that comes
  sooner is not lost: the first frame once ``min_interval`` has passed is kept instead.

Streams of 20 fps or more are decoded without their B-frames (``-skip_frame bidir``): scene
changes are then seen within a tenth of a second, at about half the decoding cost.

Each kept frame is written twice: a small JPEG thumbnail (``Keyframe.image``, shown in the
admin and with search results) and an analysis JPEG of at most ``FRAME_MAX_SIDE`` pixels in
the video's scratch directory, which the concepts, OCR and CLIP stages read. When the scratch
directory is gone (another worker, a later backfill) the analysis frames are cut again from
the source at the keyframes' times.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import ffmpeg
import numpy as np
from django.conf import settings
from django.core.files import File
from django.db import transaction
from PIL import Image

from catalog.models import Keyframe

from .errors import PermanentError, TransientError, ffmpeg_detail
from .media import REEXPORT_HINT, count_decode_errors, probe_streams, run_graph, tool

logger = logging.getLogger("reelsearch.frames")

FRAME_LINE = re.compile(r"^frame:\s*(\d+)\s+pts:\s*(-?\d+)\s+pts_time:\s*(-?[\d.eE+-]+)")
SCENE_LINE = re.compile(r"^lavfi\.scene_score=\s*([\d.eE+-]+)")
INDEX_FILE = "index.json"
#: From this frame rate on, B-frames are not decoded for keyframe selection (scene changes
#: are still seen on 1 frame in 2 or 3): it halves the decoding cost of typical H.264.
SKIP_B_FRAMES_FPS = 20.0


@dataclass(frozen=True)
class KeyframeRule:
    """When a frame becomes a keyframe (see the module docstring)."""

    threshold: float = 0.05
    min_interval: float = 2.0
    max_interval: float = 4.0

    def __post_init__(self) -> None:
        if not 0 < self.min_interval <= self.max_interval:
            raise ValueError(f"need 0 < min_interval ({self.min_interval}) <= max_interval "
                             f"({self.max_interval})")

    @classmethod
    def from_settings(cls) -> KeyframeRule:
        """Build the rule from REELSEARCH settings."""
        conf = settings.REELSEARCH
        return cls(conf["KEYFRAME_SCENE_THRESHOLD"], conf["KEYFRAME_MIN_INTERVAL"],
                   conf["KEYFRAME_MAX_INTERVAL"])

    def first_at(self, duration: float) -> float:
        """Return the earliest time of the first keyframe."""
        return max(0.0, min(0.5, duration / 2)) if duration > 0 else 0.0

    def select_expression(self, duration: float) -> str:
        """Return the ffmpeg ``select`` expression of this rule.

        Variable 0 remembers a scene change that came too soon after the last keyframe, so
        that it is taken as soon as the maximum rate allows; variable 1 is the decision.
        """
        gap = "t-prev_selected_t"
        change = f"gt(scene,{self.threshold:g})"
        return (f"if(isnan(prev_selected_t),gte(t,{self.first_at(duration):.3f}),"
                f"st(1,gte({gap},{self.min_interval:g})*({change}+ld(0))"
                f"+gte({gap},{self.max_interval:g}));"
                f"st(0,if(ld(1),0,gt(ld(0)+{change},0)));ld(1))")

    @property
    def label(self) -> str:
        """Describe the rule for model_versions."""
        return (f"scene>{self.threshold:g} every {self.min_interval:g}-{self.max_interval:g}s")


@dataclass(frozen=True)
class ExtractedFrame:
    """A keyframe written by ffmpeg: its time, scene score, thumbnail and analysis frame."""

    time: float
    scene: float
    thumbnail: Path
    frame: Path


def parse_selected(text: str) -> list[tuple[float, float]]:
    """Parse ffmpeg ``metadata=print`` output into (time, scene score) per kept frame."""
    frames: list[tuple[float, float]] = []
    for line in text.splitlines():
        line = line.strip()
        if match := FRAME_LINE.match(line):
            frames.append((max(0.0, float(match.group(3))), 0.0))
        elif (match := SCENE_LINE.match(line)) and frames:
            frames[-1] = (frames[-1][0], float(match.group(1)))
    return frames


def _ffmpeg(graph: ffmpeg.nodes.OutputStream, source: Path, timeout: float,
            cwd: Path | None = None) -> str:
    """Run a picture graph; return its log (decoding errors it went past), or fail the stage."""
    try:
        return run_graph(graph, timeout, cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        raise TransientError(f"Reading the picture of {source.name} took longer than "
                             f"{timeout:.0f} s; the worker may be overloaded.") from exc
    except ffmpeg.Error as exc:
        raise PermanentError(f"The picture of {source.name} could not be decoded "
                             f"({ffmpeg_detail(exc, source)}): {REEXPORT_HINT}.") from exc


def picture_warnings(stderr: str, source: Path) -> list[str]:
    """Return an editor-facing notice when ffmpeg went past damaged video data (or [])."""
    packets, other = count_decode_errors(stderr)
    if not packets and not other:
        return []
    return [f"Parts of the picture of {source.name} could not be decoded ({packets + other} "
            "decoding errors): keyframes, thumbnails and on-screen text from there may be "
            f"missing or garbled; if the original is intact, {REEXPORT_HINT}."]


def _scale(stream: ffmpeg.nodes.FilterableStream, max_width: int,
           max_side: int | None = None) -> ffmpeg.nodes.FilterableStream:
    """Shrink to at most max_width wide (even height), or to fit a max_side square."""
    if max_side is None:
        return stream.filter("scale", w=f"min(iw,{max_width})", h=-2)
    return stream.filter("scale", w=f"min(iw,{max_side})", h=f"min(ih,{max_side})",
                         force_original_aspect_ratio="decrease")


def _jpegs(stream: ffmpeg.nodes.FilterableStream, pattern: str,
           quality: int) -> ffmpeg.nodes.OutputStream:
    """Write every frame of a stream as a numbered JPEG, at its own time (no duplicates)."""
    return stream.output(pattern, fps_mode="passthrough", **{"q:v": quality})


def extract_keyframes(source: Path, out_dir: Path, rule: KeyframeRule, duration: float,
                      thumb_width: int = 320, max_side: int = 960,
                      warnings: list[str] | None = None) -> list[ExtractedFrame]:
    """Decode the video once and write the keyframes the rule keeps (at least one).

    Damaged video data does not stop it (ffmpeg skips what it cannot decode); when
    ``warnings`` is given, a notice saying so is appended to it (``picture_warnings``).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    times_file = out_dir / "selected.txt"
    skip = {"skip_frame": "bidir"} if frame_rate(source) >= SKIP_B_FRAMES_FPS else {}
    kept = (ffmpeg.input(str(source.resolve()), **skip).video
            .filter("select", expr=rule.select_expression(duration))
            .filter("metadata", mode="print", file=times_file.name)
            .split())
    graph = ffmpeg.merge_outputs(_jpegs(_scale(kept[0], thumb_width), "thumb_%05d.jpg", 4),
                                 _jpegs(_scale(kept[1], max_side, max_side), "frame_%05d.jpg", 2))
    log = _ffmpeg(graph, source, 120 + 3 * duration, cwd=out_dir)
    if warnings is not None:
        warnings.extend(picture_warnings(log, source))
    selected = parse_selected(times_file.read_text()) if times_file.exists() else []
    frames = [ExtractedFrame(t, scene, out_dir / f"thumb_{n:05d}.jpg",
                             out_dir / f"frame_{n:05d}.jpg")
              for n, (t, scene) in enumerate(selected, start=1)]
    frames = _distinct([f for f in frames if f.thumbnail.exists() and f.frame.exists()])
    if not frames:  # too short for the rule, or timestamps ffmpeg could not read
        frames = [_extract_one(source, out_dir, 0.0, thumb_width, max_side)]
    return frames


def frame_rate(source: Path) -> float:
    """Return the average frame rate of the first video stream (0.0 when unknown)."""
    try:
        rate = probe_streams(source, select_streams="v:0")["streams"][0]["avg_frame_rate"]
        numerator, _, denominator = rate.partition("/")
        return float(numerator) / float(denominator or 1)
    except (ffmpeg.Error, KeyError, IndexError, ValueError, ZeroDivisionError):
        return 0.0


def _distinct(frames: list[ExtractedFrame]) -> list[ExtractedFrame]:
    """Drop frames whose time (to the millisecond) repeats an earlier one."""
    seen: set[float] = set()
    kept = []
    for frame in frames:
        key = round(frame.time, 3)
        if key not in seen:
            seen.add(key)
            kept.append(frame)
    return kept


def _extract_one(source: Path, out_dir: Path, time: float, thumb_width: int,
                 max_side: int) -> ExtractedFrame:
    thumb, frame = out_dir / "thumb_first.jpg", out_dir / "frame_first.jpg"
    _ffmpeg(_one_frame(source, time, thumb_width, None, thumb, 4), source, 120)
    if not thumb.exists():
        raise PermanentError(f"No picture could be read from {source.name}: {REEXPORT_HINT}.")
    extract_frame(source, time, frame, max_side)
    return ExtractedFrame(time, 0.0, thumb, frame)


def extract_frame(source: Path, time: float, target: Path, max_side: int) -> Path:
    """Write the frame at `time` as an analysis JPEG (accurate seek)."""
    _ffmpeg(_one_frame(source, time, max_side, max_side, target, 2), source, 120)
    return target


def _one_frame(source: Path, time: float, width: int, side: int | None, target: Path,
               quality: int) -> ffmpeg.nodes.OutputStream:
    """Return the graph that writes the frame at `time` as one scaled JPEG."""
    picture = ffmpeg.input(str(source), ss=f"{time:.3f}").video
    return _scale(picture, width, side).output(str(target), vframes=1, **{"q:v": quality})


@cache
def ffmpeg_version() -> str:
    """Return ffmpeg's version number (e.g. "5.1.6-0+deb12u1")."""
    proc = subprocess.run([tool("ffmpeg"), "-version"], capture_output=True, text=True,
                          timeout=30, check=False)
    words = (proc.stdout.splitlines() or [""])[0].split()
    return words[2] if len(words) > 2 else "unknown"


# --------------------------------------------------------------------------- the stage


def frames_dir(work_dir: Path) -> Path:
    """Return the scratch folder of a video's analysis frames."""
    return work_dir / "frames"


def replace_keyframes(video, extracted: Sequence[ExtractedFrame], frames: Path) -> int:
    """Store thumbnails as the video's Keyframe rows (replacing old ones); return the count."""
    rows = []
    for n, item in enumerate(extracted):
        with Image.open(item.thumbnail) as picture:
            width, height = picture.size
        row = Keyframe(video=video, time=round(item.time, 3), width=width, height=height)
        with item.thumbnail.open("rb") as handle:
            row.image.save(f"{video.pk}-{n:04d}.jpg", File(handle), save=False)
        rows.append(row)
    old = list(Keyframe.objects.filter(video=video))
    try:
        with transaction.atomic():
            Keyframe.objects.filter(video=video).delete()
            Keyframe.objects.bulk_create(rows)
    except BaseException:
        _delete_files(rows)
        raise
    _delete_files(old)
    index = [{"time": row.time, "frame": item.frame.name}
             for row, item in zip(rows, extracted, strict=True)]
    (frames / INDEX_FILE).write_text(json.dumps(index))
    return len(rows)


def _delete_files(rows: Iterable[Keyframe]) -> None:
    for row in rows:
        if row.image:
            row.image.storage.delete(row.image.name)


def delete_keyframes(video) -> None:
    """Remove a video's keyframes and their thumbnails."""
    old = list(Keyframe.objects.filter(video=video))
    Keyframe.objects.filter(video=video).delete()
    _delete_files(old)


def keyframes(ctx) -> None:
    """Pick keyframes at scene changes (capped rate) and store their thumbnails."""
    video = ctx.video
    if not video.has_video:
        delete_keyframes(video)
        return
    conf = settings.REELSEARCH
    rule = KeyframeRule.from_settings()
    out = frames_dir(ctx.work_dir)
    shutil.rmtree(out, ignore_errors=True)
    warnings: list[str] = []
    extracted = extract_keyframes(Path(video.source.path), out, rule, video.duration or 0.0,
                                  conf["THUMBNAIL_WIDTH"], conf["FRAME_MAX_SIDE"], warnings)
    for warning in warnings:
        ctx.notice(warning)
    count = replace_keyframes(video, extracted, out)
    ctx.record_model("keyframes", f"ffmpeg@{ffmpeg_version()} {rule.label}")
    logger.info("video %s: %d keyframes", video.pk, count)


def iter_frames(ctx, keyframes: Sequence[Keyframe]) -> Iterator[tuple[Keyframe, np.ndarray]]:
    """Yield each keyframe with its analysis frame (RGB uint8), re-cut from the source if gone."""
    folder = frames_dir(ctx.work_dir)
    known = _index(folder)
    max_side = settings.REELSEARCH["FRAME_MAX_SIDE"]
    for n, keyframe in enumerate(keyframes):
        path = known.get(round(keyframe.time, 3))
        if path is None or not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            path = extract_frame(Path(ctx.video.source.path), keyframe.time,
                                 folder / f"recut_{n:05d}.jpg", max_side)
        yield keyframe, load_rgb(path)


def _index(folder: Path) -> dict[float, Path]:
    try:
        entries = json.loads((folder / INDEX_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return {round(float(e["time"]), 3): folder / e["frame"] for e in entries}


def is_blank(frame: np.ndarray, max_std: float = 3.0) -> bool:
    """Return True for a near-uniform frame (black, a flat colour): nothing to recognise.

    The pixel standard deviation is taken per colour channel (on every 4th pixel of every
    4th row), so a flat navy frame is blank although its channels differ from each other.
    """
    pixels = np.asarray(frame)
    if pixels.size == 0:
        return True
    sample = pixels[::4, ::4].reshape(-1, pixels.shape[-1] if pixels.ndim == 3 else 1)
    return float(sample.astype(np.float32).std(axis=0).max()) < max_std


def load_rgb(path: Path) -> np.ndarray:
    """Read an image file as an RGB uint8 array."""
    with Image.open(path) as picture:
        return np.asarray(picture.convert("RGB"))
