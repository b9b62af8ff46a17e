"""Visual embeddings: keyframes through a CLIP-family image tower, pooled per visual window.

Runs only when settings name a visual model (REELSEARCH['VISUAL_MODEL']); otherwise the stage
logs a notice and does nothing. Each ``visual`` segment (one per visual window, made by the
concepts stage) gets the normalized mean of its keyframes' image embeddings as its
``visual_vector``; the index stores it in the ``visual`` vector field, which queries reach
through the model's text tower.
"""

from __future__ import annotations

import logging

import numpy as np

from catalog.models import Segment, SegmentKind
from retrieval.encoders import get_visual_encoder, visual_model_name

from .frames import iter_frames

logger = logging.getLogger("reelsearch.clip")
BATCH = 16


def pooled(embeddings: np.ndarray, times: list[float], start: float, end: float,
           last: bool) -> np.ndarray | None:
    """Return the normalized mean of the embeddings whose time is in [start, end)."""
    chosen = [i for i, t in enumerate(times) if start <= t < end or (last and t == end)]
    if not chosen:
        return None
    mean = embeddings[chosen].mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return (mean / norm if norm > 0 else mean).astype(np.float32)


def clip(ctx) -> None:
    """Store CLIP image embeddings on the video's visual segments (if a model is configured)."""
    video = ctx.video
    segments = list(video.segments.filter(kind=SegmentKind.VISUAL).order_by("start"))
    if not visual_model_name():
        logger.info("video %s: no CLIP-family model configured (REELSEARCH_VISUAL_MODEL); "
                    "skipping visual embeddings", video.pk)
        _clear(segments)
        if "visual" in video.model_versions:
            ctx.record_model("visual", None)
        return
    encoder = get_visual_encoder()
    keyframes = list(video.keyframes.order_by("time"))
    if not video.has_video or not keyframes or not segments:
        return
    embeddings, batch = [], []
    for n, (_keyframe, frame) in enumerate(iter_frames(ctx, keyframes), start=1):
        batch.append(frame)
        if len(batch) == BATCH or n == len(keyframes):
            embeddings.append(encoder.encode_images(batch))
            batch = []
            ctx.progress(n / len(keyframes))
    matrix, times = np.concatenate(embeddings), [k.time for k in keyframes]
    for n, segment in enumerate(segments):
        vector = pooled(matrix, times, segment.start, segment.end, n == len(segments) - 1)
        segment.visual_vector = vector.tobytes() if vector is not None else None
        segment.visual_model = encoder.info.label if vector is not None else ""
    Segment.objects.bulk_update(segments, ["visual_vector", "visual_model"])
    ctx.record_model("visual", encoder.info.label)


def _clear(segments: list[Segment]) -> None:
    """Drop visual vectors left by a model that is no longer configured."""
    stale = [s for s in segments if s.visual_vector or s.visual_model]
    for segment in stale:
        segment.visual_vector, segment.visual_model = None, ""
    Segment.objects.bulk_update(stale, ["visual_vector", "visual_model"])
