"""Two real Celery workers writing status, progress and segments of videos at the same time.

Two `celery worker` processes (prefork, concurrency 1 each) take stage tasks from one Redis
queue, so consecutive stages of a video often run in different processes, and both write
their videos' rows and segments at once. `make test` runs this module on SQLite and again
with the catalog on PostgreSQL (REELSEARCH_TEST_DATABASE_URL), the database production uses.
Concept tagging and OCR are off, so each clip's segments are known exactly.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from datetime import timedelta
from types import SimpleNamespace

import pytest
import redis
from django.conf import settings
from django.db import connection, connections, transaction
from django.test import override_settings
from django.utils import timezone

from catalog.models import Segment, Video, VideoStatus
from retrieval.backends import get_backend, reset_backends
from tests.celery_worker import CeleryWorker, celery_broker, wait_until, worker_env
from tests.conftest import storage_settings
from tests.integration.test_celery_worker import (
    SHORT_TEXTS,
    clip,
    finished,
    indexed_count,
    spoken_layout,
    submit,
)
from workers import recover
from workers.pipeline import STAGE_NAMES

pytestmark = [pytest.mark.models, pytest.mark.redis]

SOFT_LIMIT, HARD_LIMIT = 150, 160
NARRATED = {"bees": SHORT_TEXTS[0], "lighthouse": SHORT_TEXTS[1], "volcano": SHORT_TEXTS[2],
            "compass": SHORT_TEXTS[6]}
SILENT = ("origami", "clouds")


@pytest.fixture(scope="module")
def shared_workers(media_tools, redis_url, tmp_path_factory, django_db_setup,
                   django_db_blocker):
    """Start two workers on one queue, with this process sending tasks to Redis."""
    root = tmp_path_factory.mktemp("workers")
    prefix = f"reelsearch-test-{uuid.uuid4().hex[:8]}:"
    overrides = storage_settings(root)
    overrides["RETRIEVAL_BACKENDS"]["default"]["BACKEND"] = (
        "retrieval.backends.embedded.EmbeddedBackend")
    transport = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "global_keyprefix": prefix}
    client = redis.Redis.from_url(redis_url)
    with override_settings(**overrides), django_db_blocker.unblock():
        env = worker_env(
            broker_url=redis_url, key_prefix=prefix, database=connection.settings_dict,
            media_root=settings.MEDIA_ROOT, index_dir=root / "index", work_dir=root / "work",
            var_dir=root / "var", CELERY_TASK_SOFT_TIME_LIMIT=str(SOFT_LIMIT),
            CELERY_TASK_TIME_LIMIT=str(HARD_LIMIT), REELSEARCH_CONCEPT_MODEL="",
            REELSEARCH_OCR="0", REELSEARCH_ASR_THREADS="1", OMP_NUM_THREADS="1")
        workers = []
        for name in ("one", "two"):
            (root / name).mkdir()
            workers.append(CeleryWorker(env, root / name))
        reset_backends()
        get_backend().ensure_index()
        with celery_broker(redis_url, transport):
            try:
                for worker in workers:
                    worker.start()
                yield SimpleNamespace(workers=workers, root=root, redis=client,
                                      queue=f"{prefix}default")
            finally:
                for worker in workers:
                    worker.stop()
                for key in client.scan_iter(f"{prefix}*"):
                    client.delete(key)
                reset_backends()


def stage_runs(worker: CeleryWorker) -> Counter:
    """Count the stage tasks a worker finished, by stage."""
    return Counter(line.split("reelsearch.stage.")[1].split("[")[0]
                   for line in worker.logs().splitlines()
                   if "reelsearch.stage." in line and "succeeded" in line)


@pytest.mark.django_db(transaction=True)
def test_six_videos_on_two_workers_all_end_ready_with_every_status_write_kept(shared_workers):
    root = shared_workers.root
    with transaction.atomic():  # queued together, on commit
        videos = [submit(clip(root, name, text), name) for name, text in NARRATED.items()]
        videos += [submit(clip(root, name, None), name) for name in SILENT]
    done = [finished(video, timeout=900) for video in videos]

    for video in done:
        assert video.status == VideoStatus.READY, (video.title, video.error)
        assert (video.stage, video.progress, video.error, video.attempts) == ("done", 1.0, "", 0)
        # Stages of one video ran in both processes: a lost update would drop a timing.
        assert set(video.stage_timings) == set(STAGE_NAMES), video.title
        assert video.model_versions, video.title
        expected = (["metadata:0"] if video.title in SILENT
                    else ["metadata:0", "sentence", "speech:0"])
        assert spoken_layout(video) == expected, video.title
        assert indexed_count(video) == video.segments.count()
    ids = list(Segment.objects.values_list("id", flat=True))
    assert len(ids) == len(set(ids))
    runs = [stage_runs(worker) for worker in shared_workers.workers]
    assert all(sum(count.values()) > 0 for count in runs), f"one worker did nothing: {runs}"
    assert sum(runs, Counter()) == Counter({stage: len(videos) for stage in STAGE_NAMES})
    assert shared_workers.redis.llen(shared_workers.queue) == 0


@pytest.mark.django_db(transaction=True)
def test_reconcilers_racing_for_one_stuck_video_requeue_it_once(shared_workers):
    video = submit(clip(shared_workers.root, "sunset", None), "sunset")
    video = finished(video, timeout=300)
    # Make it look like a video whose worker died at the first stage ten minutes ago.
    idle_since = timezone.now() - timedelta(minutes=10)
    Video.objects.filter(pk=video.pk).update(status=VideoStatus.PROCESSING, stage="probe",
                                             updated_at=idle_since)
    gate = threading.Barrier(6)
    found: list = []

    def reconcile() -> None:
        try:
            gate.wait()
            found.extend(recover.recover())
        finally:
            connections.close_all()

    conf = {**settings.REELSEARCH, "STUCK_AFTER_MIN_SECONDS": 60.0,
            "STUCK_AFTER_DURATION_FACTOR": 0.0}
    with override_settings(REELSEARCH=conf):
        threads = [threading.Thread(target=reconcile) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert [r.requeued for r in found].count(True) == 1, found
    video = finished(video, timeout=300)  # the requeued run completes it again
    assert video.status == VideoStatus.READY, video.error
    assert video.updated_at > idle_since
    wait_until(lambda: shared_workers.redis.llen(shared_workers.queue) == 0, timeout=30,
               what="the queue to drain")
