"""The reconciler (workers/recover.py) and crash counting (pipeline.run_stage), eager Celery.

Stages are replaced by stand-ins, so no media tools or models are needed. A worker dying
mid-stage is a forked child killing itself with SIGKILL inside the stage: nothing after
that point runs, exactly as when the kernel kills a pool process for memory.
"""

from __future__ import annotations

import base64
import json
import os
import signal
from datetime import timedelta
from io import StringIO
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.db import connections
from django.utils import timezone

from catalog.models import Video, VideoStatus
from workers import pipeline, recover, tasks
from workers.pipeline import STAGE_NAMES, run_stage, stages

MIN_IDLE = 600.0


@pytest.fixture(autouse=True)
def recovery_settings(settings):
    settings.REELSEARCH = {**settings.REELSEARCH, "STUCK_AFTER_MIN_SECONDS": MIN_IDLE,
                           "STUCK_AFTER_DURATION_FACTOR": 3.0, "MAX_ATTEMPTS": 3}
    settings.CELERY_TASK_TIME_LIMIT = 2100


@pytest.fixture()
def queued(monkeypatch) -> list[tuple[str, str]]:
    """Replace every stage task with one that records (stage, video id) instead of running."""
    sent: list[tuple[str, str]] = []
    for stage in STAGE_NAMES:
        fake = SimpleNamespace(delay=lambda video_id, stage=stage: sent.append((stage, video_id)))
        monkeypatch.setitem(tasks.STAGE_TASKS, stage, fake)
    return sent


@pytest.fixture()
def ran(monkeypatch) -> list[str]:
    """Replace every stage with a stand-in that records its name."""
    names: list[str] = []
    for stage in STAGE_NAMES:
        monkeypatch.setitem(stages.STAGES, stage, lambda ctx, stage=stage: names.append(stage))
    monkeypatch.setattr(pipeline, "cleanup", lambda ctx: None)
    return names


def make_video(title: str, status: str = VideoStatus.PROCESSING, stage: str = "",
               idle: float = 0.0, duration: float | None = None, attempts: int = 0) -> Video:
    """Create a video without queueing it (bulk_create sends no post_save), idle for `idle` s."""
    (video,) = Video.objects.bulk_create([Video(
        title=title, source=f"videos/{title}.mp4", status=status, stage=stage,
        duration=duration, attempts=attempts)])
    Video.objects.filter(pk=video.pk).update(updated_at=timezone.now() - timedelta(seconds=idle))
    return Video.objects.get(pk=video.pk)


@pytest.mark.django_db
def test_only_videos_idle_longer_than_their_timeout_are_requeued_from_their_stage(queued):
    pending = make_video("pending", VideoStatus.PENDING, "", idle=MIN_IDLE + 60)
    crashed = make_video("crashed", stage="asr", idle=MIN_IDLE + 60, duration=30.0, attempts=1)
    busy = make_video("busy", stage="asr", idle=MIN_IDLE - 60, duration=30.0, attempts=1)
    long_running = make_video("long", stage="asr", idle=1000, duration=400.0)  # 1200 s
    long_stuck = make_video("long stuck", stage="embed", idle=1300, duration=400.0)
    capped = make_video("capped", stage="ocr", idle=2200, duration=7200.0)  # 2100 + 60 s
    make_video("ready", VideoStatus.READY, "done", idle=10_000)
    make_video("failed", VideoStatus.FAILED, "probe", idle=10_000)

    found = recover.recover()

    # "capped" is a row of the linear pipeline stuck in the visual branch: its audio branch,
    # which never started, is requeued beside it.
    assert sorted(queued) == sorted([("probe", str(pending.pk)), ("asr", str(crashed.pk)),
                                     ("embed", str(long_stuck.pk)), ("ocr", str(capped.pk)),
                                     ("audio", str(capped.pk))])
    assert all(recovery.requeued for recovery in found)
    assert {busy.pk, long_running.pk}.isdisjoint({r.video_id for r in found})
    crashed.refresh_from_db()
    assert (crashed.status, crashed.stage, crashed.attempts) == ("processing", "asr", 1)
    assert (timezone.now() - crashed.updated_at).total_seconds() < 5, "activity is stamped"


@pytest.mark.django_db
def test_each_unfinished_branch_is_requeued_from_its_own_stage(queued):
    both = make_video("both", stage="asr", idle=MIN_IDLE * 2)
    Video.objects.filter(pk=both.pk).update(visual_stage="ocr", audio_stage="asr")
    one = make_video("one", stage="ocr", idle=MIN_IDLE * 2)
    Video.objects.filter(pk=one.pk).update(visual_stage="ocr", audio_stage="done")
    joined = make_video("joined", stage="clip", idle=MIN_IDLE * 2)
    Video.objects.filter(pk=joined.pk).update(visual_stage="done", audio_stage="done")

    found = {r.video_id: r.stage for r in recover.recover()}

    assert found == {str(both.pk): "ocr+asr", str(one.pk): "ocr", str(joined.pk): "embed"}
    assert sorted(queued) == sorted([("ocr", str(both.pk)), ("asr", str(both.pk)),
                                     ("ocr", str(one.pk)), ("embed", str(joined.pk))])


@pytest.mark.django_db
def test_a_second_run_right_after_requeues_nothing(queued):
    make_video("stuck", stage="segments", idle=MIN_IDLE * 2)
    assert len(recover.recover()) == 1
    assert recover.recover() == []
    assert len(queued) == 1


@pytest.mark.django_db
def test_dry_run_and_a_task_still_waiting_in_the_broker_queue_leave_a_video_alone(
        queued, monkeypatch):
    waiting = make_video("waiting", VideoStatus.PENDING, idle=MIN_IDLE * 2)
    listed = recover.recover(dry_run=True)
    assert [(r.video_id, r.requeued) for r in listed] == [(str(waiting.pk), False)]
    monkeypatch.setattr(recover, "queued_video_ids", lambda: {str(waiting.pk)})
    assert recover.recover() == []
    assert queued == []


def test_a_queued_stage_message_names_its_video():
    body = base64.b64encode(json.dumps([["0f0e-video"], {}, {}]).encode()).decode()
    message = json.dumps({"body": body, "headers": {"task": "reelsearch.stage.asr"}})
    assert recover._stage_task_video(message) == "0f0e-video"
    other = json.dumps({"body": body, "headers": {"task": "reelsearch.unindex_video"}})
    assert recover._stage_task_video(other) is None
    assert recover._stage_task_video(b"not json") is None


@pytest.mark.django_db
def test_the_recover_command_and_the_beat_task_run_the_reconciler(queued):
    video = make_video("stuck", stage="index", idle=MIN_IDLE * 2)
    out = StringIO()
    call_command("recover", "--dry-run", stdout=out)
    assert f"({video.pk})" in out.getvalue() and "nothing requeued" in out.getvalue()
    assert queued == []
    call_command("recover", stdout=out)
    assert "1 stuck video(s) requeued." in out.getvalue()
    assert queued == [("index", str(video.pk))]

    Video.objects.filter(pk=video.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    assert tasks.recover_stuck_videos.apply().get() == 1
    assert tasks.recover_stuck_videos.name == "reelsearch.recover_stuck_videos"
    assert tasks.recover_stuck_videos.acks_late


def test_beat_runs_the_reconciler_periodically():
    from deploy.celery import RECOVER_ENTRY, app

    entry = app.conf.beat_schedule[RECOVER_ENTRY]
    assert entry["task"] == tasks.recover_stuck_videos.name
    assert 0 < float(entry["schedule"]) <= 300
    assert entry["options"]["expires"] == entry["schedule"]


@pytest.mark.django_db
def test_a_requeued_video_resumes_from_its_stage_and_ends_ready(ran):
    video = make_video("stuck at asr", stage="asr", idle=MIN_IDLE * 2, attempts=1)
    assert [r.stage for r in recover.recover()] == ["asr"]  # eager: the chain runs here
    video.refresh_from_db()
    assert (video.status, video.stage, video.attempts) == (VideoStatus.READY, "done", 0)
    assert ran == list(STAGE_NAMES[STAGE_NAMES.index("asr"):])


@pytest.mark.django_db
def test_a_stage_that_ends_resets_its_attempts_and_a_retry_is_not_a_crash(ran, monkeypatch):
    video = make_video("flaky", VideoStatus.PENDING)
    seen = []

    def flaky(ctx):
        seen.append(Video.objects.get(pk=ctx.video.pk).attempts)
        if len(seen) < 5:
            raise pipeline.TransientError("database busy")

    monkeypatch.setitem(stages.STAGES, "probe", flaky)
    for _ in range(4):
        with pytest.raises(pipeline.TransientError):
            run_stage(str(video.pk), "probe")
        assert Video.objects.get(pk=video.pk).attempts == 0
    assert run_stage(str(video.pk), "probe") == "ran"
    assert seen == [1, 1, 1, 1, 1]  # each start counted once, never carried over
    assert Video.objects.get(pk=video.pk).status == VideoStatus.PROCESSING


def die_in_stage(video_id: str, stage: str) -> int:
    """Run a stage in a forked "worker" that is SIGKILLed inside it; return the exit signal."""
    connections.close_all()  # the child opens its own connection
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child never returns)
        try:
            stages.STAGES[stage] = lambda ctx: os.kill(os.getpid(), signal.SIGKILL)
            run_stage(video_id, stage)
        finally:
            os._exit(0)  # the stage was not even started (the video failed before it)
    _, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0


@pytest.mark.django_db(transaction=True)
def test_a_file_that_kills_the_worker_every_time_ends_failed_after_max_attempts(monkeypatch):
    video = make_video("poison", VideoStatus.PENDING, idle=0)
    pipeline.start_run(str(video.pk))
    deaths = []

    def worker(video_id: str) -> None:  # what the broker would deliver the stage task to
        deaths.append(die_in_stage(video_id, "probe"))

    monkeypatch.setitem(tasks.STAGE_TASKS, "probe", SimpleNamespace(delay=worker))
    worker(str(video.pk))  # the first delivery
    for _ in range(5):  # then the reconciler, each time the video has been idle long enough
        Video.objects.filter(pk=video.pk).update(
            updated_at=timezone.now() - timedelta(seconds=MIN_IDLE * 2))
        recover.recover()

    assert deaths == [signal.SIGKILL] * 3 + [0], "three deaths, then it fails without running"
    video.refresh_from_db()
    assert video.status == VideoStatus.FAILED
    assert video.error.startswith("processing crashed the worker 3 times at stage probe:")
    assert "re-export" in video.error and video.attempts == 0
    assert recover.recover() == []  # failed videos are not requeued


@pytest.mark.django_db
def test_ingest_of_a_stuck_video_requeues_it_instead_of_skipping_it(queued, tmp_path):
    from workers.ingest import register, sha256_of

    path = tmp_path / "talk.mp4"
    path.write_bytes(b"not really a video, but a file with a digest")
    video = make_video("talk", stage="asr", idle=MIN_IDLE * 2)
    Video.objects.filter(pk=video.pk).update(sha256=sha256_of(path))

    outcome = register(path)
    assert (outcome.action, outcome.video.pk) == ("requeued", video.pk), outcome.message
    assert "requeued from asr" in outcome.message
    assert queued == [("asr", str(video.pk))]

    again = register(path)  # now it has just been requeued: busy, not stuck
    assert again.action == "skipped" and "already in the catalog" in again.message
    assert len(queued) == 1
