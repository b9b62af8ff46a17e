"""Thin Celery tasks: one per pipeline stage, each handing the video to the next stage."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import MaxRetriesExceededError
from django.conf import settings

from catalog.models import Video, VideoStatus
from retrieval.backends import BackendUnavailable, get_backend

from . import pipeline
from .pipeline.errors import PermanentError, TransientError

logger = logging.getLogger("reelsearch.tasks")
MAX_RETRIES = 8


def backoff(retries: int) -> int:
    """Return the delay before retry number `retries` (exponential, capped at 5 minutes)."""
    return min(5 * 2**retries, 300)


@shared_task(name="reelsearch.run_stage", bind=True, acks_late=True,
             reject_on_worker_lost=True, max_retries=MAX_RETRIES,
             soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
             time_limit=settings.CELERY_TASK_TIME_LIMIT)
def run_stage(self, video_id: str, stage: str) -> str:
    """Run one stage; on success enqueue the next one."""
    try:
        if not pipeline.run_stage(video_id, stage):
            return "gone"
    except PermanentError:
        return "failed"
    except TransientError as exc:
        try:
            raise self.retry(exc=exc, countdown=backoff(self.request.retries))
        except MaxRetriesExceededError:
            give_up(video_id, stage, exc)
            return "gave-up"
    following = pipeline.STAGE_NAMES.index(stage) + 1
    if following < len(pipeline.STAGE_NAMES):
        run_stage.delay(video_id, pipeline.STAGE_NAMES[following])
    return "ok"


def give_up(video_id: str, stage: str, exc: Exception) -> None:
    """Record that retries are exhausted: index problems wait for `reindex --pending`."""
    if stage == "index":
        status, error = VideoStatus.INDEX_PENDING, (
            f"index: {exc} Run `manage.py reindex --pending` once the search backend is back.")
    else:
        status, error = VideoStatus.FAILED, f"{stage}: gave up after {MAX_RETRIES} retries: {exc}"
    Video.objects.filter(pk=video_id).update(status=status, error=error)


@shared_task(name="reelsearch.unindex_video", bind=True, acks_late=True, max_retries=MAX_RETRIES)
def unindex_video(self, video_id: str) -> None:
    """Remove a deleted video's documents from the search backend."""
    try:
        get_backend().delete_video(video_id)
    except BackendUnavailable as exc:
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from exc


def enqueue_video(video_id: str, first_stage: str | None = None) -> None:
    """Queue (or, without a broker, run) the pipeline for a video."""
    run_stage.delay(str(video_id), first_stage or pipeline.STAGE_NAMES[0])


def enqueue_unindex(video_id: str) -> None:
    """Queue removal of a video's documents from the index."""
    unindex_video.delay(str(video_id))
