"""On-screen text: PP-OCR (rapidocr-onnxruntime) on keyframes, deduplicated over time.

Each keyframe is read once, as cheaply as possible: a frame that looks the same as the
previous one reuses its reading whole (a static slide costs one OCR call), and a text box
whose position and pixels did not change reuses its recognised text (a caption over moving
footage is recognised once; only detection runs again). Consecutive keyframes whose text is
nearly the same (``similar``) become one ``ocr`` segment, from the first keyframe that shows
the text to the next keyframe that does not (or the end of the video).
"""

from __future__ import annotations

import difflib
import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata

import numpy as np
from django.conf import settings
from django.db import transaction

from catalog.models import Segment, SegmentKind

from .frames import iter_frames

logger = logging.getLogger("reelsearch.ocr")

OCR_MODEL = "PP-OCRv4"
SIMILARITY = 0.8
#: A frame is "the same picture" as the previous one when no cell of a 6x8 grid of its
#: 64x36 grey thumbnail differs by more than this (mean absolute difference, 0-255).
SAME_PICTURE_CELL_DIFF = 3.0
#: A text box is unchanged when its pixels differ from the previous frame's by at most this
#: on average (grey levels, 0-255).
BOX_PIXEL_DIFF = 6.0
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Reading:
    """The text OCR found in one keyframe."""

    time: float
    text: str
    confidence: float = 1.0


@dataclass(frozen=True)
class TextSpan:
    """Text shown on screen from start to end."""

    start: float
    end: float
    text: str


def normalized(text: str) -> str:
    """Return text lowered with words joined by single spaces (for comparisons)."""
    return " ".join(_WORD.findall(text.casefold()))


def similar(a: str, b: str, threshold: float = SIMILARITY) -> bool:
    """Return True when two readings are the same text up to OCR noise."""
    left, right = normalized(a), normalized(b)
    if not left or not right:
        return left == right
    return difflib.SequenceMatcher(None, left, right, autojunk=False).ratio() >= threshold


def merge_readings(readings: Sequence[Reading], times: Sequence[float],
                   duration: float) -> list[TextSpan]:
    """Merge consecutive similar readings into spans.

    ``times`` are every keyframe's time (sorted); a span ends at the first keyframe after
    its last reading, or at ``duration``. A span's text is its most confident reading.
    """
    ordered = sorted(times)
    spans: list[TextSpan] = []
    run: list[Reading] = []

    def close(last: Reading) -> None:
        later = [t for t in ordered if t > last.time]
        end = later[0] if later else max(duration, last.time)
        best = max(run, key=lambda r: (r.confidence, len(r.text)))
        spans.append(TextSpan(run[0].time, end, best.text))

    for reading in sorted(readings, key=lambda r: r.time):
        if run and not (reading.text.strip() and similar(run[-1].text, reading.text)):
            close(run[-1])
            run = []
        if reading.text.strip():
            run.append(reading)
    if run:
        close(run[-1])
    return spans


def fingerprint(frame: np.ndarray) -> np.ndarray:
    """Return a 36x64 grey thumbnail of an RGB frame (float32) for same-picture checks."""
    grey = frame.astype(np.float32).mean(axis=2)
    rows = np.linspace(0, grey.shape[0], 37).astype(int)
    cols = np.linspace(0, grey.shape[1], 65).astype(int)
    return np.add.reduceat(np.add.reduceat(grey, rows[:-1], axis=0), cols[:-1], axis=1) / (
        np.diff(rows)[:, None] * np.diff(cols)[None, :])


def same_picture(a: np.ndarray, b: np.ndarray, cell_diff: float = SAME_PICTURE_CELL_DIFF) -> bool:
    """Return True when two fingerprints differ nowhere by more than cell_diff."""
    if a.shape != b.shape:
        return False
    diff = np.abs(a - b)
    cells = diff.reshape(6, 6, 8, 8).mean(axis=(1, 3)) if diff.shape == (36, 64) else diff
    return float(cells.max()) <= cell_diff


@dataclass(frozen=True)
class FrameText:
    """What OCR saw in one frame: text boxes (full-frame pixels) with their readings
    (text, confidence) in reading order, and the frame in grey (to spot unchanged boxes)."""

    boxes: tuple[np.ndarray, ...] = ()
    lines: tuple[tuple[str, float], ...] = ()
    grey: np.ndarray | None = field(default=None, repr=False)

    def text(self, min_confidence: float) -> tuple[str, float]:
        """Return the confident lines joined in reading order, and their mean confidence."""
        kept = [(t, c) for t, c in self.lines if c >= min_confidence and t.strip()]
        if not kept:
            return "", 0.0
        return " ".join(t for t, _ in kept), float(np.mean([c for _, c in kept]))


def _bounds(box: np.ndarray) -> tuple[float, float, float, float]:
    (x0, y0), (x1, y1) = box.min(axis=0), box.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ax0, ay0, ax1, ay1 = _bounds(a)
    bx0, by0, bx1, by1 = _bounds(b)
    inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return inter / union if union > 0 else 0.0


def unchanged_box(box: np.ndarray, grey: np.ndarray, previous: FrameText,
                  min_iou: float = 0.8, max_diff: float = BOX_PIXEL_DIFF) -> int | None:
    """Return the index of a previous box at the same place whose pixels did not change."""
    if previous.grey is None or previous.grey.shape != grey.shape:
        return None
    for index, other in enumerate(previous.boxes):
        if _iou(box, other) < min_iou:
            continue
        (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = _bounds(box), _bounds(other)
        rows = slice(max(0, int(min(ay0, by0))), int(np.ceil(max(ay1, by1))) + 1)
        cols = slice(max(0, int(min(ax0, bx0))), int(np.ceil(max(ax1, bx1))) + 1)
        now, before = grey[rows, cols], previous.grey[rows, cols]
        if now.size and float(np.abs(now - before).mean()) <= max_diff:
            return index
    return None


class TextReader:
    """PP-OCR (rapidocr-onnxruntime): detection on a reduced frame, recognition on crops of
    the full frame, and no angle classifier (video text is upright).

    A text box whose position and pixels match a box of the previous frame reuses that
    box's reading, so a caption that stays on screen over a moving picture is recognised
    once (only detection runs again).
    """

    def __init__(self, det_max_side: int = 512, threads: int = 0) -> None:
        from rapidocr_onnxruntime import RapidOCR

        options = {"intra_op_num_threads": threads, "inter_op_num_threads": 1} if threads else {}
        self.engine = RapidOCR(use_cls=False, det_limit_type="max", print_verbose=False,
                               **options)
        self.det_max_side = det_max_side
        self.label = f"{OCR_MODEL}@rapidocr-onnxruntime-{metadata.version('rapidocr-onnxruntime')}"
        self.recognised = 0  # boxes sent to the recogniser (for tests and benchmarks)
        self._lock = threading.Lock()

    def detect(self, bgr: np.ndarray) -> list[np.ndarray]:
        """Return text boxes (4x2 corner points, full-frame pixels) in reading order."""
        import cv2

        height, width = bgr.shape[:2]
        scale = min(1.0, self.det_max_side / max(height, width))
        small = bgr if scale == 1.0 else cv2.resize(
            bgr, (max(1, round(width * scale)), max(1, round(height * scale))),
            interpolation=cv2.INTER_AREA)
        engine = self.engine
        image, ratio_h, ratio_w = engine.preprocess(small)
        image, record = engine.maybe_add_letterbox(
            image, {"preprocess": {"ratio_h": ratio_h, "ratio_w": ratio_w}})
        boxes, _ = engine.auto_text_det(image)
        if boxes is None or len(boxes) == 0:
            return []
        points = engine._get_origin_points(boxes, record, *small.shape[:2]) / scale
        return [box.astype(np.float32) for box in points]

    def read(self, frame: np.ndarray, previous: FrameText | None = None) -> FrameText:
        """Read an RGB frame, reusing the readings of unchanged boxes of `previous`."""
        import cv2

        bgr = np.ascontiguousarray(frame[..., ::-1])
        grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY).astype(np.int16)
        with self._lock:
            boxes = self.detect(bgr)
            if not boxes:
                return FrameText(grey=grey)
            lines: list[tuple[str, float] | None] = []
            for box in boxes:
                match = unchanged_box(box, grey, previous) if previous else None
                lines.append(previous.lines[match] if match is not None else None)
            todo = [i for i, line in enumerate(lines) if line is None]
            if todo:
                crops = self.engine.get_crop_img_list(bgr, [boxes[i].copy() for i in todo])
                found, _ = self.engine.text_rec(crops)
                self.recognised += len(todo)
                for i, (text, score) in zip(todo, found, strict=True):
                    lines[i] = (str(text), float(score))
        return FrameText(tuple(boxes), tuple(lines), grey)


@cache
def get_reader() -> TextReader:
    """Return the process-wide OCR engine (loaded on first use)."""
    logger.info("loading OCR engine %s", OCR_MODEL)
    conf = settings.REELSEARCH
    return TextReader(conf["OCR_DET_MAX_SIDE"], conf.get("VISUAL_THREADS", 0))


def read_keyframes(ctx, keyframes: Sequence) -> list[Reading]:
    """OCR every keyframe; an unchanged picture reuses the previous frame's reading whole."""
    reader = get_reader()
    min_confidence = settings.REELSEARCH["OCR_MIN_CONFIDENCE"]
    readings: list[Reading] = []
    seen: FrameText | None = None
    last: np.ndarray | None = None
    for n, (keyframe, frame) in enumerate(iter_frames(ctx, keyframes), start=1):
        current = fingerprint(frame)
        if seen is None or last is None or not same_picture(last, current):
            seen = reader.read(frame, seen)
        readings.append(Reading(keyframe.time, *seen.text(min_confidence)))
        last = current
        ctx.progress(n / len(keyframes))
    return readings


def ocr(ctx) -> None:
    """Replace the video's on-screen text segments."""
    video = ctx.video
    keyframes = list(video.keyframes.order_by("time"))
    enabled = settings.REELSEARCH["OCR_ENABLED"]
    rows: list[Segment] = []
    if video.has_video and keyframes and enabled:
        reader = get_reader()
        spans = merge_readings(read_keyframes(ctx, keyframes), [k.time for k in keyframes],
                               video.duration or 0.0)
        rows = [Segment(id=Segment.make_id(video.pk, SegmentKind.OCR, n), video=video,
                        kind=SegmentKind.OCR, start=span.start, end=span.end, text=span.text,
                        source_model=reader.label)
                for n, span in enumerate(spans)]
        ctx.record_model("ocr", reader.label)
    with transaction.atomic():
        video.segments.filter(kind=SegmentKind.OCR).delete()
        Segment.objects.bulk_create(rows)
