"""What happens to an uploaded video: the stages, with status, progress and errors.

    probe -+-> keyframes -> concepts -> ocr -> clip -+-> embed -> chapters -> index
           +-> audio -> asr -> segments -------------+

After probe, the visual and the audio branch run concurrently (branches.py); the branch
that ends second queues embed. The visual stages (frames.py, concepts.py, ocr.py, clip.py)
skip a video with no picture; clip also skips, with a logged notice, when no CLIP-family
model is configured. chapters (chapters.py) finds the topic shifts of videos longer than
five minutes.

Each stage re-fetches the video, records its stage, progress and timing on the row (a
branch stage also its branch's place and progress), and is idempotent: it replaces what it
made (segments have stable ids, `<video>:<kind>:<n>`). A stage delivered again after its
branch, or the run, has moved past it (a worker died after queueing the next stage but
before acknowledging) is skipped. A PermanentError marks the video failed
with the stage's editor-facing message; a TransientError is left to the caller (the Celery
task) to retry, and `give_up` records what happens when retries run out. The source file is
never touched by a failure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, OperationalError
from django.db.models import F
from django.utils import timezone

from catalog.models import Video, VideoStatus

from . import branches
from .branches import AFTER, BEFORE, DONE, STAGE_NAMES, branch_of
from .errors import PermanentError, PipelineError, TransientError
from .stages import STAGES, StageContext, cleanup

logger = logging.getLogger("reelsearch.pipeline")

ProgressObserver = Callable[[str, str, float], None]  # (video_id, stage, overall 0..1)
observers: list[ProgressObserver] = []

__all__ = ("STAGE_NAMES", "PermanentError", "PipelineError", "TransientError", "following",
           "give_up", "observers", "process", "record_retry", "run_stage", "start_run")


def _reporter(ctx: StageContext, stage: str) -> Callable[[float], None]:
    last = [-1.0]
    branch = branch_of(stage)

    def report(fraction: float) -> None:
        if branch is None:
            overall = branches.overall(ctx.video, stage, fraction)
        else:  # the other branch's progress is read in the same UPDATE
            overall = branch.fraction(stage, fraction)
        if overall - last[0] >= 0.01 or fraction >= 1.0:
            last[0] = overall
            if branch is None:
                ctx.update(progress=overall)
            else:
                branches.report(ctx.video, stage, fraction)
            for observer in observers:
                observer(str(ctx.video.pk), stage, ctx.video.progress)

    return report


def following(video_id: str, stage: str, outcome: str) -> tuple[str, ...]:
    """Return the stages to queue after a stage ended with `outcome` ("ran", "skipped"...).

    After probe: the first stage of each branch. After a branch's last stage (also when a
    redelivery skipped it): embed, for the one caller that sees both branches ended.
    """
    branch = branch_of(stage)
    if branch is not None and stage == branch.stages[-1] and outcome in ("ran", "skipped"):
        return AFTER[:1] if branches.join(video_id) else ()
    if outcome != "ran":
        return ()
    if stage in BEFORE:
        return branches.branch_starts()
    order = branch.stages if branch is not None else AFTER
    position = order.index(stage) + 1
    return (order[position],) if position < len(order) else ()


def start_run(video_id: str, first_stage: str | None = None) -> None:
    """Mark a video pending before its stages are queued (a new run starts at first_stage)."""
    first = first_stage or STAGE_NAMES[0]
    places = branches.start_places(first)
    video = Video(stage="", **places)
    Video.objects.filter(pk=video_id).update(
        status=VideoStatus.PENDING, stage="", error="", attempts=0, updated_at=timezone.now(),
        progress=branches.overall(video, first, 0.0), **places)


def _already_done(video: Video, stage: str) -> bool:
    """Return True when this run no longer needs the stage (a redelivered task).

    A later stage of the same branch has started (so this one finished and queued it), the
    branch has ended, or the video is no longer in flight (ready, failed, waiting for the
    index). For probe, embed and index: a later stage has started.
    """
    if video.status not in (VideoStatus.PENDING, VideoStatus.PROCESSING):
        return True
    if branch_of(stage) is not None:
        return branches.is_past(video, stage)
    return (video.stage in STAGE_NAMES
            and STAGE_NAMES.index(video.stage) > STAGE_NAMES.index(stage))


def run_stage(video_id: str, stage: str) -> str:
    """Run one stage for a video; return "ran", "skipped" (already done) or "gone"."""
    if stage not in STAGES:
        raise ValueError(f"unknown pipeline stage {stage!r}; stages are {', '.join(STAGE_NAMES)}")
    video = Video.objects.filter(pk=video_id).first()
    if video is None:
        logger.info("video %s is gone; skipping %s", video_id, stage)
        return "gone"
    branches.settle(video)
    if _already_done(video, stage):
        logger.info("video %s is past %s (%s, %s); skipping a repeated delivery",
                    video_id, stage, video.status, video.stage or "-")
        return "skipped"
    ctx = StageContext(video, progress=lambda fraction: None)
    ctx.progress = _reporter(ctx, stage)
    branch = branch_of(stage)
    attempts = branch.attempts_field if branch else "attempts"
    _count_attempt(ctx, stage)
    place = {branch.stage_field: stage} if branch else {}
    if not Video.objects.filter(pk=video_id, status__in=branches.IN_FLIGHT).update(
            status=VideoStatus.PROCESSING, stage=stage, error="", **place):
        return "skipped"  # the other branch failed the video meanwhile
    ctx.video.status, ctx.video.stage, ctx.video.error = VideoStatus.PROCESSING, stage, ""
    for name, value in place.items():
        setattr(ctx.video, name, value)
    ctx.progress(0.0)
    started = time.monotonic()
    try:
        _run_guarded(ctx, stage)
    finally:  # the stage ended (ran, failed or will retry): the worker survived it
        ctx.update(**{attempts: 0})
    ctx.merge("stage_timings", {stage: round(time.monotonic() - started, 3)})
    ctx.progress(1.0)
    _advance(ctx, stage)
    if stage == STAGE_NAMES[-1]:
        # stamped: caches of a video's segments and keyframes (retrieval/video_cache.py)
        # are keyed by updated_at
        ctx.update(status=VideoStatus.READY, stage="done", progress=1.0, error="",
                   updated_at=timezone.now())
        cleanup(ctx)
    return "ran"


def _advance(ctx: StageContext, stage: str) -> None:
    """Record where the branches are once a stage has ended."""
    branch = branch_of(stage)
    if stage in BEFORE:  # both branches are about to be queued
        ctx.update(**{b.stage_field: b.stages[0] for b in branches.BRANCHES})
    elif branch is not None and stage == branch.stages[-1]:
        ctx.update(**{branch.stage_field: DONE})


def _count_attempt(ctx: StageContext, stage: str) -> None:
    """Count a start of the stage; fail the video when earlier starts never ended.

    The counter (`attempts`, or the branch's own for a branch stage) is reset whenever a
    stage ends, so a start that finds it above zero follows a start of the same stage whose
    worker died (SIGKILL, out of memory, a crash in a decoder, the hard time limit) and was
    redelivered or requeued by the reconciler.
    """
    branch = branch_of(stage)
    field = branch.attempts_field if branch else "attempts"
    at = getattr(ctx.video, branch.stage_field) if branch else ctx.video.stage
    same = at == stage  # else a different stage started last: start afresh
    Video.objects.filter(pk=ctx.video.pk).update(
        **{field: F(field) + 1 if same else 1}, updated_at=timezone.now())
    attempts = Video.objects.values_list(field, flat=True).get(pk=ctx.video.pk)
    setattr(ctx.video, field, attempts)
    crashes, limit = attempts - 1, settings.REELSEARCH["MAX_ATTEMPTS"]
    if crashes < limit:
        return
    message = (f"processing crashed the worker {crashes} times at stage {stage}: the worker "
               "process died each time (out of memory, a crash while decoding the file, or "
               "the hard time limit). The file is kept. Check the worker log, re-export the "
               "file (e.g. H.264/AAC MP4) or give the worker more memory, then reprocess it.")
    logger.error("video %s: %s", ctx.video.pk, message)
    ctx.update(status=VideoStatus.FAILED, stage=stage, error=message, **{field: 0})
    raise PermanentError(message)


def _run_guarded(ctx: StageContext, stage: str) -> None:
    """Run a stage, turning every failure into a PermanentError or a TransientError."""
    try:
        STAGES[stage](ctx)
    except PermanentError as exc:
        ctx.update(status=VideoStatus.FAILED, error=f"{stage}: {exc}")
        raise
    except TransientError as exc:
        ctx.update(error=f"{stage} (will retry): {exc}")
        raise
    except SoftTimeLimitExceeded as exc:
        message = ("took longer than the worker's time limit: split the file, or raise "
                   "CELERY_TASK_SOFT_TIME_LIMIT and CELERY_TASK_TIME_LIMIT.")
        ctx.update(status=VideoStatus.FAILED, error=f"{stage}: {message}")
        raise PermanentError(message) from exc
    except (OperationalError, IntegrityError) as exc:  # database busy, concurrent rerun
        raise TransientError(f"database error ({exc}); will retry.") from exc
    except Exception as exc:
        logger.exception("unexpected error in stage %s of video %s", stage, ctx.video.pk)
        message = f"unexpected error ({type(exc).__name__}: {exc}); tell an operator."
        ctx.update(status=VideoStatus.FAILED, error=f"{stage}: {message}")
        raise PermanentError(message) from exc


def record_retry(video_id: str, stage: str, exc: Exception, attempt: int, limit: int,
                 delay: float) -> None:
    """Note on the video that a stage will be retried, and when."""
    Video.objects.filter(pk=video_id).update(
        error=f"{stage} (will retry, attempt {attempt} of {limit}, in {delay:g} s): {exc}",
        updated_at=timezone.now())  # activity, for the reconciler (workers/recover.py)


def give_up(video_id: str, stage: str, exc: Exception, retries: int) -> None:
    """Record that retries are exhausted: index problems wait for `reindex --pending`."""
    if stage == STAGE_NAMES[-1]:
        status, error = VideoStatus.INDEX_PENDING, (
            f"{stage}: {exc} Run `manage.py reindex --pending` once the search backend is back.")
    else:
        status, error = VideoStatus.FAILED, f"{stage}: gave up after {retries} retries: {exc}"
    Video.objects.filter(pk=video_id).update(status=status, error=error)


def process(video_id: str, stages: tuple[str, ...] = STAGE_NAMES) -> str:
    """Run stages in-process (no Celery), one after the other; return the final status."""
    start_run(video_id, stages[0])
    for stage in stages:
        try:
            if run_stage(video_id, stage) == "gone":
                return "gone"
        except PipelineError as exc:
            logger.warning("video %s failed at %s: %s", video_id, stage, exc)
            break
    video = Video.objects.filter(pk=video_id).first()
    return video.status if video else "gone"
