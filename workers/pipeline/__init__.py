"""What happens to an uploaded video: the stages in order, with status, progress and errors.

    probe -> audio -> asr -> segments -> embed -> index

Each stage re-fetches the video, records its stage, progress and timing on the row, and is
idempotent. A PermanentError marks the video failed with the stage's editor-facing message;
a TransientError is left to the caller (the Celery task) to retry. The source file is never
touched by a failure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from catalog.models import Video, VideoStatus

from .errors import PermanentError, PipelineError, TransientError
from .stages import STAGES, StageContext, cleanup

logger = logging.getLogger("reelsearch.pipeline")

STAGE_NAMES: tuple[str, ...] = tuple(STAGES)
ProgressObserver = Callable[[str, str, float], None]  # (video_id, stage, overall 0..1)
observers: list[ProgressObserver] = []

__all__ = ("STAGE_NAMES", "PermanentError", "PipelineError", "TransientError", "observers",
           "process", "run_stage")


def _overall(stage: str, fraction: float) -> float:
    position = STAGE_NAMES.index(stage)
    return round((position + max(0.0, min(fraction, 1.0))) / len(STAGE_NAMES), 4)


def _reporter(ctx: StageContext, stage: str) -> Callable[[float], None]:
    last = [0.0]

    def report(fraction: float) -> None:
        overall = _overall(stage, fraction)
        if overall - last[0] >= 0.01 or fraction >= 1.0:
            last[0] = overall
            ctx.update(progress=overall)
            for observer in observers:
                observer(str(ctx.video.pk), stage, overall)

    return report


def run_stage(video_id: str, stage: str) -> bool:
    """Run one stage for a video; return False when the video no longer exists."""
    video = Video.objects.filter(pk=video_id).first()
    if video is None:
        logger.info("video %s is gone; skipping %s", video_id, stage)
        return False
    ctx = StageContext(video, progress=lambda fraction: None)
    ctx.progress = _reporter(ctx, stage)
    ctx.update(status=VideoStatus.PROCESSING, stage=stage, error="")
    ctx.progress(0.0)
    started = time.monotonic()
    try:
        STAGES[stage](ctx)
    except PermanentError as exc:
        ctx.update(status=VideoStatus.FAILED, error=f"{stage}: {exc}")
        raise
    except TransientError as exc:
        ctx.update(error=f"{stage} (will retry): {exc}")
        raise
    except Exception as exc:
        logger.exception("unexpected error in stage %s of video %s", stage, video_id)
        message = f"unexpected error ({type(exc).__name__}: {exc}); tell an operator."
        ctx.update(status=VideoStatus.FAILED, error=f"{stage}: {message}")
        raise PermanentError(message) from exc
    timings = {**ctx.video.stage_timings, stage: round(time.monotonic() - started, 3)}
    ctx.update(stage_timings=timings)
    ctx.progress(1.0)
    if stage == STAGE_NAMES[-1]:
        ctx.update(status=VideoStatus.READY, stage="done", progress=1.0, error="")
        cleanup(ctx)
    return True


def process(video_id: str, stages: tuple[str, ...] = STAGE_NAMES) -> str:
    """Run stages in-process (no Celery) and return the final status."""
    for stage in stages:
        try:
            if not run_stage(video_id, stage):
                return "gone"
        except PipelineError as exc:
            logger.warning("video %s failed at %s: %s", video_id, stage, exc)
            break
    video = Video.objects.filter(pk=video_id).first()
    return video.status if video else "gone"
