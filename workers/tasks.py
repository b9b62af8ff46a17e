"""Thin Celery tasks: one per pipeline stage, each handing the video to the next stage(s).

    reelsearch.stage.probe -> group(visual branch, audio branch) -> ... embed -> chapters -> index

After probe, the first stage of each branch is queued as a Celery group; each branch then
queues its own next stage, and the branch that ends second queues embed (the join is a
compare-and-set on the video row, workers/pipeline/branches.py). Without a broker the
branches run eagerly in two threads of the caller, which waits for both.

A task takes a video id, re-fetches the row (returning quietly when it is gone) and runs
its stage through `workers.pipeline`, which records stage, progress, timings and errors on
the video. Tasks are acknowledged late, so a worker that dies mid-stage leaves the message
to be delivered again; stages are idempotent, and a stage the video is already past is
skipped. Transient errors retry with exponential backoff; permanent ones fail the video.
Without a broker (CELERY_BROKER_URL unset) the chain runs eagerly in the caller.

    reelsearch.recover_stuck_videos   (Celery beat, every REELSEARCH["RECOVER_EVERY_SECONDS"])

requeues videos left pending or processing by a dead worker or a lost message
(workers/recover.py); a stage started REELSEARCH["MAX_ATTEMPTS"] times without ending fails
the video instead (workers/pipeline run_stage).
"""

from __future__ import annotations

import logging
import threading

from celery import current_app, group, shared_task
from django.conf import settings
from django.db import OperationalError, connection, connections

from retrieval.backends import BackendUnavailable, get_backend

from . import pipeline
from .pipeline.errors import PermanentError, TransientError

logger = logging.getLogger("reelsearch.tasks")
TASK_OPTIONS = {"bind": True, "acks_late": True, "reject_on_worker_lost": True,
                "soft_time_limit": settings.CELERY_TASK_SOFT_TIME_LIMIT,
                "time_limit": settings.CELERY_TASK_TIME_LIMIT}


def backoff(retries: int) -> float:
    """Return the delay before retry number `retries + 1` (exponential, capped)."""
    conf = settings.REELSEARCH
    return min(conf["RETRY_BACKOFF_SECONDS"] * 2**retries, conf["RETRY_BACKOFF_MAX_SECONDS"])


def _task(stage: str):
    """Build the task that runs one stage, then queues the next one."""

    @shared_task(name=f"reelsearch.stage.{stage}", **TASK_OPTIONS)
    def run(self, video_id: str) -> str:
        try:
            outcome = pipeline.run_stage(video_id, stage)
        except PermanentError:
            outcome = "failed"
        except (TransientError, OperationalError) as exc:
            return retry_or_give_up(self, video_id, stage, exc)
        logger.log(logging.DEBUG if outcome == "ran" else logging.INFO, "%s %s: %s", stage,
                   video_id, outcome)
        queue_stages(video_id, pipeline.following(video_id, stage, outcome))
        return outcome

    run.__doc__ = f"Run the {stage} stage of a video, then queue the next stage(s)."
    return run


def queue_stages(video_id: str, stages: tuple[str, ...]) -> None:
    """Queue stages that run concurrently (one: a plain task; several: a Celery group)."""
    if len(stages) == 1:
        STAGE_TASKS[stages[0]].delay(video_id)
    elif stages and current_app.conf.task_always_eager:
        run_eagerly(video_id, stages)
    elif stages:
        group(STAGE_TASKS[stage].si(video_id) for stage in stages).apply_async()


def run_eagerly(video_id: str, stages: tuple[str, ...]) -> None:
    """Run stages without a broker: each after the first in its own thread; wait for all.

    Inside a transaction (a thread's own connection would not see the uncommitted video),
    or with REELSEARCH["EAGER_BRANCH_THREADS"] off, they run one after the other.
    """
    if connection.in_atomic_block or not settings.REELSEARCH.get("EAGER_BRANCH_THREADS", True):
        for stage in stages:
            STAGE_TASKS[stage].delay(video_id)
        return
    threads = [threading.Thread(target=_run_in_thread, args=(stage, video_id),
                                name=f"reelsearch-{stage}", daemon=True) for stage in stages[1:]]
    for thread in threads:
        thread.start()
    STAGE_TASKS[stages[0]].delay(video_id)
    for thread in threads:
        thread.join()


def _run_in_thread(stage: str, video_id: str) -> None:
    try:
        STAGE_TASKS[stage].delay(video_id)
    finally:
        connections.close_all()  # the thread's own database connections


def retry_or_give_up(task, video_id: str, stage: str, exc: Exception) -> str:
    """Retry a stage after a transient error, or record that retries ran out."""
    limit, done = settings.REELSEARCH["MAX_RETRIES"], task.request.retries
    if done >= limit:
        logger.error("%s %s: giving up after %d retries: %s", stage, video_id, done, exc)
        pipeline.give_up(video_id, stage, exc, done)
        return "gave-up"
    delay = backoff(done)
    logger.warning("%s %s: retry %d of %d in %gs: %s", stage, video_id, done + 1, limit,
                   delay, exc)
    pipeline.record_retry(video_id, stage, exc, done + 1, limit, delay)
    raise task.retry(exc=exc, countdown=delay, max_retries=limit)


STAGE_TASKS = {stage: _task(stage) for stage in pipeline.STAGE_NAMES}  # "reelsearch.stage.<name>"


@shared_task(name="reelsearch.unindex_video", **TASK_OPTIONS)
def unindex_video(self, video_id: str) -> None:
    """Remove a deleted video's documents from the search backend."""
    try:
        get_backend().delete_video(video_id)
    except BackendUnavailable as exc:
        limit = settings.REELSEARCH["MAX_RETRIES"]
        raise self.retry(exc=exc, countdown=backoff(self.request.retries),
                         max_retries=limit) from exc


@shared_task(name="reelsearch.recover_stuck_videos", **TASK_OPTIONS)
def recover_stuck_videos(self) -> int:
    """Requeue videos stuck in pending/processing (Celery beat runs this; workers/recover.py)."""
    from .recover import recover  # recover.py queues stage tasks, so it imports this module

    return sum(found.requeued for found in recover())


def enqueue_video(video_id: str, first_stage: str | None = None) -> None:
    """Queue (or, without a broker, run) the pipeline for a video from its first stage."""
    first = first_stage or pipeline.STAGE_NAMES[0]
    if first not in pipeline.STAGE_NAMES:
        raise ValueError(f"unknown pipeline stage {first!r}; stages are "
                         f"{', '.join(pipeline.STAGE_NAMES)}")
    pipeline.start_run(str(video_id), first)
    queue_stages(str(video_id), pipeline.branches.entry_stages(first))


def enqueue_unindex(video_id: str) -> None:
    """Queue removal of a video's documents from the index."""
    unindex_video.delay(str(video_id))
