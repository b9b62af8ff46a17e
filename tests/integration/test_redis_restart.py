"""A Redis restart under a real `celery worker`: queued work survives, lost work is recovered.

The broker is a private Redis started by `deploy/services redis-up` (append-only file, on a
free port, data under this test's tmp directory) so that restarting it disturbs nobody
else's tests. The worker's visibility timeout is an hour: the only way a task that was
running when Redis went away comes back within the test is the reconciler
(`reelsearch.recover_stuck_videos`, sent here as Celery beat would send it).
"""

from __future__ import annotations

import shutil
import uuid
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from catalog.models import Video, VideoStatus
from retrieval.backends import get_backend, reset_backends
from tests.celery_worker import CeleryWorker, celery_broker, wait_until, worker_env
from tests.conftest import require, storage_settings
from tests.integration.test_celery_worker import (
    HARD_LIMIT,
    LONG_TEXT,
    SHORT_TEXTS,
    SOFT_LIMIT,
    clip,
    finished,
    submit,
)
from tests.services import PrivateRedis, free_port

pytestmark = [pytest.mark.models, pytest.mark.redis]

IDLE = 5  # seconds without activity that make a video stuck, for this worker


@pytest.fixture(scope="module")
def shared_restart(media_tools, tmp_path_factory, django_db_setup, django_db_blocker):
    """A private Redis and one worker on it, with this process sending tasks there."""
    import redis as redis_client

    require(shutil.which("redis-server") is not None, "redis-server")
    root = tmp_path_factory.mktemp("restart")
    server = PrivateRedis(free_port(), root / "redis")
    server.up()
    prefix = f"reelsearch-test-{uuid.uuid4().hex[:8]}:"
    overrides = storage_settings(root)
    overrides["RETRIEVAL_BACKENDS"]["default"]["BACKEND"] = (
        "retrieval.backends.embedded.EmbeddedBackend")
    transport = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "global_keyprefix": prefix,
                 "visibility_timeout": 3600}
    try:
        with override_settings(**overrides), django_db_blocker.unblock():
            env = worker_env(
                broker_url=server.url, key_prefix=prefix,
                database=connection.settings_dict, media_root=settings.MEDIA_ROOT,
                index_dir=root / "index", work_dir=root / "work", var_dir=root / "var",
                CELERY_TASK_SOFT_TIME_LIMIT=str(SOFT_LIMIT),
                CELERY_TASK_TIME_LIMIT=str(HARD_LIMIT), CELERY_VISIBILITY_TIMEOUT="3600",
                CELERY_UNACKED_RESTORE_INTERVAL="2",
                REELSEARCH_STUCK_AFTER_MIN_SECONDS=str(IDLE), REELSEARCH_STUCK_AFTER_FACTOR="0",
                REELSEARCH_CONCEPT_MODEL="", REELSEARCH_OCR="0",
            )
            (root / "logs").mkdir()
            worker = CeleryWorker(env, root / "logs")
            reset_backends()
            get_backend().ensure_index()
            with celery_broker(server.url, transport):
                try:
                    worker.start()
                    yield SimpleNamespace(worker=worker, root=root, server=server,
                                          redis=redis_client.Redis.from_url(server.url),
                                          queue=f"{prefix}default", unacked=f"{prefix}unacked")
                finally:
                    worker.stop()
                    reset_backends()
    finally:
        server.down()


@pytest.mark.django_db(transaction=True)
def test_a_redis_restart_loses_no_video(shared_restart):
    from deploy.celery import app

    worker, broker = shared_restart.worker, shared_restart.redis
    # Three times the long narration (~90 s): its ASR must outlast stopping Redis and the
    # worker noticing it, which a ~30 s clip's ASR (a few seconds) did not always do.
    running = submit(clip(shared_restart.root, "tyre", " ".join([LONG_TEXT] * 3)),
                     "Tyre (running)")
    waiting = submit(clip(shared_restart.root, "bees", SHORT_TEXTS[0]), "Bees (queued)")
    row = wait_until(lambda: (v := Video.objects.get(pk=running.pk)).stage == "asr"
                     or v.is_done and v, timeout=300, interval=0.02, what="ASR to start")
    assert row is True or not row.is_done, row.error
    assert broker.llen(shared_restart.queue) >= 1, "the second video should be waiting"

    shared_restart.server.down()  # the worker loses the broker mid-ASR and cancels the task
    shared_restart.server.up()
    assert broker.llen(shared_restart.queue) >= 1, "the append-only file kept the queued tasks"
    wait_until(lambda: worker.log.count("Connected to redis://") >= 2, timeout=60,
               what="the worker to reconnect")

    waiting = finished(waiting, timeout=300)  # its queued tasks survived: no help needed
    assert waiting.status == VideoStatus.READY, waiting.error
    row = Video.objects.get(pk=running.pk)
    # The visual branch may have gone on meanwhile; the audio branch is still at ASR.
    assert row.status == VideoStatus.PROCESSING and row.audio_stage == "asr", (
        row.status, row.stage, row.audio_stage)

    # Celery beat's job: once the video has been idle past its timeout, requeue it.
    wait_until(lambda: broker.llen(shared_restart.queue) == 0, timeout=60, what="an idle worker")
    # The visual branch's stages count as activity: wait until that, too, is IDLE s ago.
    wait_until(lambda: (timezone.now() - Video.objects.get(pk=running.pk).updated_at)
               .total_seconds() > IDLE + 1, timeout=IDLE + 60, what="the video to be idle")
    app.send_task("reelsearch.recover_stuck_videos")
    running = finished(running, timeout=300)
    assert running.status == VideoStatus.READY, running.error
    assert f"({running.pk}): processing with no activity" in worker.logs()
    assert running.segments.filter(kind="speech").count() >= 2
