"""Ingestion through a real `celery worker` on Redis: durable, idempotent, never loses an upload.

One worker subprocess (prefork, concurrency 1, queue "default") serves the module. It shares
this test's SQLite file, media root, index and scratch directories, and uses a private key
prefix on the Redis server, so parallel runs never share queues. Retries use a small backoff
and Redis hands a dead worker's unacknowledged message to another one after a short
visibility timeout (both through the same settings as production, set from the environment).
The worker runs every stage, with concept tagging and OCR switched off so that each clip's
segments are known exactly (speech and metadata); tests of those stages live elsewhere.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis
from django.conf import settings
from django.core.files import File
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings

from catalog.models import Video, VideoStatus
from retrieval.backends import get_backend, reset_backends
from retrieval.params import parse_request
from retrieval.search import search
from tests import media
from tests.celery_worker import REPO, CeleryWorker, celery_broker, wait_until, worker_env
from tests.conftest import storage_settings
from workers.pipeline import STAGE_NAMES

pytestmark = [pytest.mark.models, pytest.mark.redis]

MAX_RETRIES = 4
SOFT_LIMIT, HARD_LIMIT = 90, 100  # seconds; a fresh worker's first embed loads torch (slow)
VISIBILITY = HARD_LIMIT + 10  # a dead worker's message is redelivered after this
DONE = (VideoStatus.READY, VideoStatus.FAILED, VideoStatus.INDEX_PENDING)

SHORT_TEXTS = [
    "Bees carry pollen from flower to flower and make honey in the hive.",
    "A lighthouse warns ships at night with a bright rotating lamp.",
    "Volcanoes erupt when hot melted rock rises through the crust.",
    "Knit a warm scarf with thick wool and two long needles.",
    "The violin has four strings and is played with a bow.",
    "Penguins slide on the ice and dive for fish in cold seas.",
    "A compass needle always points to the magnetic north.",
    "Sourdough bread rises slowly with wild yeast from a starter.",
    "Tides rise and fall twice a day because of the moon.",
    "Chess players open the game by moving a pawn two squares.",
]
LONG_TEXT = (
    "Welcome to a short guide to repairing a bicycle tyre. First remove the wheel from the "
    "frame and let out any air that is left. Use two plastic levers to lift the tyre off the "
    "rim, then pull out the inner tube. Pump a little air into the tube and listen for the "
    "hiss of the leak. Roughen the area with sandpaper, spread the glue, and press the patch "
    "on firmly for a minute. Finally, put the tube back, refit the tyre and pump it up."
)


@pytest.fixture(scope="module")
def shared_worker(media_tools, redis_url, tmp_path_factory, django_db_setup, django_db_blocker):
    """Start one worker for the module, with this process sending tasks to Redis."""
    root = tmp_path_factory.mktemp("celery")
    prefix = f"reelsearch-test-{uuid.uuid4().hex[:8]}:"
    overrides = storage_settings(root)
    overrides["RETRIEVAL_BACKENDS"]["default"]["BACKEND"] = (
        "retrieval.backends.embedded.EmbeddedBackend")
    transport = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "global_keyprefix": prefix,
                 "visibility_timeout": VISIBILITY}
    client = redis.Redis.from_url(redis_url)
    with override_settings(**overrides), django_db_blocker.unblock():
        env = worker_env(
            broker_url=redis_url, key_prefix=prefix, database=connection.settings_dict,
            media_root=settings.MEDIA_ROOT, index_dir=root / "index", work_dir=root / "work",
            var_dir=root / "var",
            REELSEARCH_MAX_RETRIES=str(MAX_RETRIES), REELSEARCH_RETRY_BACKOFF_SECONDS="1",
            REELSEARCH_RETRY_BACKOFF_MAX="4", CELERY_TASK_SOFT_TIME_LIMIT=str(SOFT_LIMIT),
            CELERY_TASK_TIME_LIMIT=str(HARD_LIMIT), CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY),
            CELERY_UNACKED_RESTORE_INTERVAL="2",
            # Concept tags and OCR off (their own tests cover them): exact segment counts.
            REELSEARCH_CONCEPT_MODEL="", REELSEARCH_OCR="0",
        )
        (root / "logs").mkdir()
        worker = CeleryWorker(env, root / "logs")
        reset_backends()
        get_backend().ensure_index()
        with celery_broker(redis_url, transport):
            try:
                worker.start()
                yield SimpleNamespace(worker=worker, root=root, env=env, redis=client,
                                      queue=f"{prefix}default", unacked=f"{prefix}unacked")
            finally:
                worker.stop()
                for key in client.scan_iter(f"{prefix}*"):
                    client.delete(key)
                reset_backends()


def clip(root: Path, name: str, text: str | None) -> Path:
    """Return a narrated clip (or, without text, a 2-second silent one), made once."""
    path = root / "clips" / f"{name}.mp4"
    if not path.exists():
        if text is None:
            media.make_silent_video(path, 2.0, captions=[(0.0, 2.0, name.upper())])
        else:
            media.make_video(path, narration=text)
    return path


def submit(path: Path, title: str | None = None) -> Video:
    """Save a video as the admin or the API would; processing is queued on commit."""
    video = Video(title=title or path.stem, original_name=path.name)
    with path.open("rb") as handle:
        video.source.save(path.name, File(handle), save=False)
    video.save()
    return video


def finished(video: Video, timeout: float) -> Video:
    """Wait until a video is ready, failed or waiting for the index."""
    def check() -> Video | None:
        row = Video.objects.get(pk=video.pk)
        return row if row.status in DONE else None

    return wait_until(check, timeout, what=f"{video.title!r} to finish")


def segment_ids(video: Video) -> list[str]:
    """Return a video's segment ids without the video part, e.g. ["metadata:0", ...]."""
    ids = video.segments.values_list("id", flat=True)
    return sorted(segment_id.removeprefix(f"{video.pk}:") for segment_id in ids)


def spoken_layout(video: Video) -> list[str]:
    """Return the kinds of a video's segments, sentence units counted once: a short spoken
    clip is ["metadata:0", "sentence", "speech:0"] (one chunk, one or more sentences)."""
    return sorted(dict.fromkeys("sentence" if i.startswith("sentence:") else i
                                for i in segment_ids(video)))


def indexed_count(video: Video) -> int:
    """Return how many vectors of the video the search index holds."""
    return get_backend().vectors_for_video(str(video.pk)).shape[0]


def unfinished_tasks(log: str) -> set[str]:
    """Return the tasks (`name[id]`) a worker log shows received but never finished."""
    task = r"Task (reelsearch\.[\w.]+\[[0-9a-f-]+\])"
    received = set(re.findall(task + " received", log))
    return received - set(re.findall(task + " (?:succeeded|retry|raised)", log))


@contextmanager
def index_unavailable(index_dir: Path) -> Iterator[None]:
    """Put a plain file where the embedded index directory is; put the directory back after."""
    away = index_dir.with_name(index_dir.name + ".away")
    index_dir.rename(away)
    index_dir.write_text("not a directory: the search index is down\n")
    try:
        yield
    finally:
        index_dir.unlink()
        away.rename(index_dir)


@pytest.mark.django_db(transaction=True)
def test_a_saved_video_goes_from_pending_to_ready_through_the_worker(shared_worker):
    path = clip(shared_worker.root, "bees", SHORT_TEXTS[0])
    with transaction.atomic():
        video = submit(path, "Bees")
        time.sleep(0.5)
        assert shared_worker.redis.llen(shared_worker.queue) == 0, "queued before the commit"
    assert Video.objects.get(pk=video.pk).status in (VideoStatus.PENDING, VideoStatus.PROCESSING)

    video = finished(video, timeout=600)
    assert video.status == VideoStatus.READY, video.error
    assert (video.stage, video.progress, video.error) == ("done", 1.0, "")
    assert set(video.stage_timings) == set(STAGE_NAMES)
    assert spoken_layout(video) == ["metadata:0", "sentence", "speech:0"]
    assert indexed_count(video) == video.segments.count()
    log = shared_worker.worker.log
    for stage in STAGE_NAMES:
        assert f"reelsearch.stage.{stage}[" in log, f"the worker did not run {stage}"
    results = search(parse_request({"q": "honey from the hive", "k": 1})).results
    assert results[0].video.pk == video.pk


@pytest.mark.django_db(transaction=True)
def test_b_ten_videos_submitted_at_once_all_end_ready(shared_worker):
    folder = shared_worker.root / "batch"
    silent = {"origami", "sunset", "clouds"}
    names = ["bees", "lighthouse", "volcano", "scarf", "violin", "penguins", "compass"]
    folder.mkdir()
    for name, text in zip(names, SHORT_TEXTS[:7], strict=True):
        shutil.copy(clip(shared_worker.root, name, text), folder / f"{name}.mp4")
    for name in silent:
        shutil.copy(clip(shared_worker.root, name, None), folder / f"{name}.mp4")

    proc = subprocess.run(
        [sys.executable, "manage.py", "ingest", str(folder), "--wait", "--timeout", "900",
         "--no-progress"],
        cwd=REPO, env=shared_worker.env, capture_output=True, text=True, timeout=960)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(": ready,") == 10, proc.stdout

    videos = list(Video.objects.all())
    assert len(videos) == 10
    for video in videos:
        assert video.status == VideoStatus.READY, (video.title, video.error)
        expected = (["metadata:0"] if video.title in silent
                    else ["metadata:0", "sentence", "speech:0"])
        assert spoken_layout(video) == expected, video.title
        assert indexed_count(video) == video.segments.count()

    out = _status_output()
    assert "10 ready" in out
    for video in videos:
        line = next(line for line in out.splitlines() if line.startswith(video.title))
        assert "ready" in line and "100%" in line and "done" in line


def _status_output() -> str:
    from io import StringIO

    out = StringIO()
    call_command("status", "--watch", "0.1", stdout=out)  # returns at once: all are done
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_c_a_worker_killed_during_asr_is_replaced_and_the_video_completes_once(shared_worker):
    worker = shared_worker.worker
    path = clip(shared_worker.root, "tyre", LONG_TEXT)
    victim = submit(path, "Tyre (worker killed)")
    wait_until(lambda: Video.objects.get(pk=victim.pk).stage == "asr", timeout=300,
               interval=0.02, what="the ASR stage to start")
    worker.kill()
    at_kill = Video.objects.get(pk=victim.pk)
    assert at_kill.stage == "asr" and "asr" not in at_kill.stage_timings
    assert at_kill.status == VideoStatus.PROCESSING
    assert victim.segments.count() == 0
    assert shared_worker.redis.hlen(shared_worker.unacked) == 1, "the ASR message was lost"
    (killed,) = unfinished_tasks(worker.log)
    assert killed.startswith("reelsearch.stage.asr[")

    worker.start()
    # While Redis waits out the visibility timeout, the new worker makes a clean run of the
    # same file, for comparison.
    clean = finished(submit(path, "Tyre (clean run)"), timeout=VISIBILITY + 300)
    assert clean.status == VideoStatus.READY, clean.error
    expected = segment_ids(clean)
    assert len(expected) >= 3, expected  # several speech chunks and the metadata segment

    victim = finished(victim, timeout=VISIBILITY + 300)
    assert victim.status == VideoStatus.READY, victim.error
    assert f"Task {killed} succeeded" in worker.log, "the ASR message was not redelivered"
    ids = list(victim.segments.values_list("id", flat=True))
    assert len(ids) == len(set(ids))
    assert segment_ids(victim) == expected
    assert indexed_count(victim) == len(expected)
    wait_until(lambda: shared_worker.redis.hlen(shared_worker.unacked) == 0, timeout=30,
               what="the last message to be acknowledged")


@pytest.mark.django_db(transaction=True)
def test_d_index_outage_is_retried_with_backoff_until_the_backend_is_back(shared_worker):
    index_dir = shared_worker.root / "index"
    with index_unavailable(index_dir):
        video = submit(clip(shared_worker.root, "violin", SHORT_TEXTS[4]), "Violin")
        row = wait_until(
            lambda: (v := Video.objects.get(pk=video.pk)).error.startswith("index (will retry")
            and v, timeout=180, interval=0.05, what="a retry of the index stage")
        assert row.status == VideoStatus.PROCESSING
        assert "search index is unavailable" in row.error
    video = finished(video, timeout=60)
    assert video.status == VideoStatus.READY, video.error
    assert video.error == ""
    assert f"index {video.pk}: retry 1 of {MAX_RETRIES}" in shared_worker.worker.log
    assert indexed_count(video) == video.segments.count() >= 3


@pytest.mark.django_db(transaction=True)
def test_d_index_outage_past_the_retries_ends_index_pending_and_reindex_repairs(shared_worker):
    index_dir = shared_worker.root / "index"
    with index_unavailable(index_dir):
        video = finished(submit(clip(shared_worker.root, "tides", SHORT_TEXTS[8]), "Tides"),
                         timeout=240)
        assert video.status == VideoStatus.INDEX_PENDING, video.error
        assert "reindex --pending" in video.error
        log = shared_worker.worker.log
        assert f"index {video.pk}: retry {MAX_RETRIES} of {MAX_RETRIES}" in log
        assert f"index {video.pk}: giving up after {MAX_RETRIES} retries" in log
    call_command("reindex", "--pending")
    video.refresh_from_db()
    assert (video.status, video.stage, video.error) == (VideoStatus.READY, "done", "")
    assert indexed_count(video) == video.segments.count() >= 3
    results = search(parse_request({"q": "the moon pulls the sea", "k": 1})).results
    assert results[0].video.pk == video.pk


@pytest.mark.django_db(transaction=True)
def test_e_a_broken_file_fails_with_a_readable_error_and_is_not_retried(shared_worker):
    path = media.make_not_a_video(shared_worker.root / "clips" / "notes.mp4")
    video = finished(submit(path, "Notes"), timeout=120)
    assert video.status == VideoStatus.FAILED
    assert video.stage == "probe" and video.stage_timings == {}
    assert "could not be read as a video" in video.error and "re-export" in video.error
    assert Path(video.source.path).exists(), "a failure must keep the upload"
    time.sleep(3)  # nothing comes back for another try
    video.refresh_from_db()
    assert video.status == VideoStatus.FAILED
    log = shared_worker.worker.log
    assert f"probe {video.pk}: failed" in log
    assert f"{video.pk}: retry" not in log and f"{video.pk}: giving up" not in log
    assert shared_worker.redis.llen(shared_worker.queue) == 0
    assert shared_worker.redis.hlen(shared_worker.unacked) == 0
