"""Requeue videos whose processing stopped without an outcome (the reconciler).

A video is *stuck* when it is pending or processing and nothing has happened to it for
longer than `stuck_after(video)`: max(STUCK_AFTER_MIN_SECONDS, STUCK_AFTER_DURATION_FACTOR x
duration), at most the hard task time limit + 60 s (no stage can still be running by then).
Activity is `Video.updated_at`, which the pipeline stamps when a run is queued, when a stage
starts and when a retry is scheduled. A video gets stuck when its worker died mid-stage (the
broker would hand the message to another worker only after its visibility timeout, 40 min
by default), when a task was cancelled because the worker lost the broker, or when the
broker lost its queue (a Redis restart without persistence).

`recover()` requeues each stuck video from the stages recorded on it (the first stage when
none has started yet; while the branches run, the stage each branch is at, or embed when
both ended but embed was never queued), after stamping `updated_at` with a
compare-and-set, so a second run right after (or a concurrent one) requeues nothing. Its
`attempts` counters are kept: a file that kills the worker every time ends `failed` in
`pipeline.run_stage` after REELSEARCH["MAX_ATTEMPTS"] starts instead of being requeued
forever. A video whose next task is still waiting in the broker's queue (a backlog, not a
loss) is left alone.

Run by Celery beat (`reelsearch.recover_stuck_videos`, every RECOVER_EVERY_SECONDS) and on
demand by `manage.py recover`.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.utils import timezone

from catalog.models import Video, VideoStatus

from .pipeline.branches import resume_stages
from .tasks import queue_stages

logger = logging.getLogger("reelsearch.recover")
IN_FLIGHT = (VideoStatus.PENDING, VideoStatus.PROCESSING)


@dataclass(frozen=True)
class Recovery:
    """One stuck video and what was done about it."""

    video_id: str
    title: str
    status: str
    stage: str  # the stage(s) it was requeued from, e.g. "asr" or "ocr+asr"
    idle_seconds: float
    requeued: bool

    def describe(self) -> str:
        """Return a one-line summary for logs and the command."""
        verb = "requeued" if self.requeued else "would requeue"
        return (f"{self.title!r} ({self.video_id}): {self.status} with no activity for "
                f"{self.idle_seconds:.0f} s; {verb} from {self.stage}")


def stuck_after(video: Video) -> float:
    """Return how many idle seconds make this video stuck."""
    conf = settings.REELSEARCH
    wait = max(conf["STUCK_AFTER_MIN_SECONDS"],
               conf["STUCK_AFTER_DURATION_FACTOR"] * float(video.duration or 0.0))
    return min(wait, max(settings.CELERY_TASK_TIME_LIMIT + 60, conf["STUCK_AFTER_MIN_SECONDS"]))


def is_stuck(video: Video, now: datetime | None = None) -> bool:
    """Return True when the video is in flight but has been idle for too long."""
    now = now or timezone.now()
    return (video.status in IN_FLIGHT
            and (now - video.updated_at).total_seconds() > stuck_after(video))


def recover(now: datetime | None = None, dry_run: bool = False,
            video_ids: list[str] | None = None) -> list[Recovery]:
    """Requeue every stuck video (or report them, with dry_run); return what was found."""
    now = now or timezone.now()
    # The shortest timeout bounds the query; each candidate is then checked on its own.
    floor = min(settings.REELSEARCH["STUCK_AFTER_MIN_SECONDS"],
                settings.CELERY_TASK_TIME_LIMIT + 60)
    candidates = Video.objects.filter(status__in=IN_FLIGHT,
                                      updated_at__lt=now - timedelta(seconds=floor))
    if video_ids is not None:
        candidates = candidates.filter(pk__in=video_ids)
    stuck = [video for video in candidates.order_by("updated_at") if is_stuck(video, now)]
    if not stuck:
        return []
    queued = queued_video_ids()
    found = []
    for video in stuck:
        if queued and str(video.pk) in queued:
            logger.debug("video %s is idle but its next task is still queued", video.pk)
            continue
        found.append(_requeue(video, now, dry_run))
    for recovery in found:
        logger.warning("stuck video %s", recovery.describe())
    return found


def requeue_if_stuck(video: Video) -> Recovery | None:
    """Requeue one video if it is stuck (used by `ingest` for a file already in the catalog)."""
    found = recover(video_ids=[str(video.pk)])
    return found[0] if found else None


def _requeue(video: Video, now: datetime, dry_run: bool) -> Recovery:
    stages = resume_stages(video)
    idle = (now - video.updated_at).total_seconds()
    requeued = False
    if not dry_run:
        # Compare-and-set on updated_at: only one reconciler requeues a given idle spell.
        claimed = Video.objects.filter(pk=video.pk, status__in=IN_FLIGHT,
                                       updated_at=video.updated_at).update(updated_at=now)
        if claimed:
            queue_stages(str(video.pk), stages)
            requeued = True
    return Recovery(str(video.pk), video.title, video.status, "+".join(stages), idle, requeued)


def queued_video_ids() -> set[str] | None:
    """Return the ids of videos with a stage task waiting in the broker's queue.

    Only a Redis broker's ready queue is read (messages a worker holds are not "waiting":
    that worker may be dead). Returns an empty set without a broker, None when the queue
    cannot be read (then every stuck video is requeued; stages skip what is done).
    """
    app = current_app
    if app.conf.task_always_eager or not app.conf.broker_url:
        return set()
    queue = app.conf.task_default_queue
    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1)
            channel = conn.default_channel
            if not hasattr(channel, "_q_for_pri"):  # not the Redis transport
                return None
            with channel.conn_or_acquire() as client:
                prefix = getattr(client, "global_keyprefix", "")
                if "LRANGE" in getattr(client, "PREFIXED_SIMPLE_COMMANDS", ()):
                    prefix = ""  # the client prefixes the key itself
                raw = []
                for priority in channel.priority_steps:
                    name = f"{prefix}{channel._q_for_pri(queue, priority)}"
                    raw += client.lrange(name, 0, -1)
    except Exception as exc:  # an unreadable queue must not stop recovery
        logger.info("cannot read the broker queue %r (%s); requeueing every stuck video",
                    queue, exc)
        return None
    return {video_id for message in raw if (video_id := _stage_task_video(message))}


def _stage_task_video(message: bytes | str) -> str | None:
    """Return the video id a queued stage-task message carries, or None."""
    try:
        payload = json.loads(message)
        if not str(payload["headers"].get("task", "")).startswith("reelsearch.stage."):
            return None
        args = json.loads(base64.b64decode(payload["body"]))[0]
        return str(args[0])
    except (ValueError, KeyError, IndexError, TypeError):
        return None
