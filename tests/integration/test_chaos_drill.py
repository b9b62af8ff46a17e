"""Chaos drill: a batch ingested through a real worker into a real OpenSearch node, while the
worker is SIGKILLed, Redis restarts and the OpenSearch node is killed and brought back.

Everything runs on services of the drill's own (tests/services.py): a Redis with its
append-only file and an OpenSearch node, each on a free port with a data directory under
this test's tmp directory, so no other test sees the outages. The worker runs Celery beat,
so the reconciler (workers/recover.py) runs on its schedule as in production; the broker's
visibility timeout is an hour, so only the reconciler can bring back what a dead worker or
a lost broker connection dropped. API searches run in a thread all along.

Afterwards every video is ready (once: one catalog row per file, no duplicated segment),
and for each video the catalog's segment ids, the index's document ids and the ids of the
documents that hold a text vector are the same set; no search failed after one retry, and
the only failures at all were clean 503s while the node was down. With
REELSEARCH_CHAOS_REPORT set, the counts (lost, stuck, duplicated...) are also written there
as JSON (bench/chaos_loop.py runs the drill in a loop).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client, override_settings

from catalog.models import Video, VideoStatus
from retrieval.backends import get_backend, reset_backends
from tests.celery_worker import CeleryWorker, celery_broker, wait_until, worker_env
from tests.conftest import require, storage_settings
from tests.integration.test_celery_worker import (
    DONE,
    HARD_LIMIT,
    LONG_TEXT,
    SHORT_TEXTS,
    SOFT_LIMIT,
    clip,
    submit,
    unfinished_tasks,
)
from tests.services import PrivateNode, PrivateRedis, free_port

pytestmark = [pytest.mark.chaos, pytest.mark.models, pytest.mark.redis, pytest.mark.opensearch]

STUCK_AFTER = 20  # seconds without activity that make a video stuck, for this worker
NODE_DOWN = 8  # seconds the OpenSearch node stays dead
QUERIES = ["honey from the hive", "ships at night", "hot melted rock", "repair a bicycle tyre"]


@dataclass
class Searches:
    """API searches run in a thread during the drill, each retried once when it fails."""

    client: Client
    outage: threading.Event  # set while the node is known to be down
    stop: threading.Event = field(default_factory=threading.Event)
    answered: Counter = field(default_factory=Counter)
    failed: list[str] = field(default_factory=list)  # failed after one retry, node up

    def run(self) -> None:
        try:
            n = 0
            while not self.stop.is_set():
                try:
                    self.one(QUERIES[n % len(QUERIES)])
                except Exception as exc:  # e.g. an error page that is not JSON
                    self.failed.append(f"{QUERIES[n % len(QUERIES)]!r}: {exc!r}")
                n += 1
                time.sleep(0.2)
        finally:
            connection.close()

    def one(self, query: str) -> None:
        during_outage = self.outage.is_set()
        for attempt in range(2):
            response = self.client.get("/api/search", {"q": query, "k": 3})
            self.answered[response.status_code] += 1
            if response.status_code == 200:
                return
            during_outage = during_outage or self.outage.is_set()
            if response.status_code != 503 or not response.json().get("error"):
                self.failed.append(f"{query!r}: {response.status_code} "
                                   f"{response.content[:300]!r}")  # never anything but 503
                return
            if attempt == 0:
                time.sleep(1.0)
        if not during_outage:
            self.failed.append(f"{query!r}: 503 twice while the node was up: {response.json()}")


@pytest.fixture(scope="module")
def shared_drill(media_tools, tmp_path_factory, django_db_setup, django_db_blocker):
    """A private Redis, a private OpenSearch node and one worker (with beat) on them."""
    import shutil

    require(shutil.which("redis-server") is not None, "redis-server")
    require(all(shutil.which(tool) for tool in ("java", "mvn")), "java and mvn (OpenSearch)")
    root = tmp_path_factory.mktemp("chaos")
    redis_server = PrivateRedis(free_port(), root / "redis")
    node = PrivateNode(free_port(), root / "opensearch")
    redis_server.up()
    try:
        node.start()
        yield from _drill_worker(root, redis_server, node, django_db_blocker)
    finally:
        node.stop()
        redis_server.down()


def _drill_worker(root, redis_server, node, django_db_blocker):
    prefix = f"reelsearch-chaos-{uuid.uuid4().hex[:8]}:"
    index = f"chaos-{uuid.uuid4().hex[:8]}"
    overrides = storage_settings(root)
    overrides["RETRIEVAL_BACKENDS"] = {"default": {
        "BACKEND": "retrieval.backends.opensearch.OpenSearchBackend", "URL": node.url,
        "INDEX": index, "REPLICAS": 0, "TIMEOUT": 10}}
    transport = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "global_keyprefix": prefix,
                 "visibility_timeout": 3600}
    with override_settings(**overrides), django_db_blocker.unblock():
        env = worker_env(
            broker_url=redis_server.url, key_prefix=prefix,
            database=connection.settings_dict, media_root=settings.MEDIA_ROOT,
            index_dir=root / "index", work_dir=root / "work", var_dir=root / "var",
            REELSEARCH_BACKEND="opensearch", OPENSEARCH_URL=node.url, OPENSEARCH_INDEX=index,
            OPENSEARCH_REPLICAS="0",
            REELSEARCH_MAX_RETRIES="20", REELSEARCH_RETRY_BACKOFF_SECONDS="1",
            REELSEARCH_RETRY_BACKOFF_MAX="4",
            CELERY_TASK_SOFT_TIME_LIMIT=str(SOFT_LIMIT), CELERY_TASK_TIME_LIMIT=str(HARD_LIMIT),
            CELERY_VISIBILITY_TIMEOUT="3600", CELERY_UNACKED_RESTORE_INTERVAL="2",
            REELSEARCH_STUCK_AFTER_MIN_SECONDS=str(STUCK_AFTER),
            REELSEARCH_STUCK_AFTER_FACTOR="0", REELSEARCH_RECOVER_EVERY_SECONDS="5",
            REELSEARCH_CONCEPT_MODEL="", REELSEARCH_OCR="0",
        )
        (root / "logs").mkdir()
        worker = CeleryWorker(env, root / "logs", beat=True)
        reset_backends()
        backend = get_backend()
        backend.ensure_index()
        with celery_broker(redis_server.url, transport):
            try:
                worker.start()
                yield SimpleNamespace(worker=worker, root=root, redis=redis_server, node=node,
                                      backend=backend)
            finally:
                worker.stop()
                backend.drop_index()
                reset_backends()


def _index_documents(backend) -> list[dict]:
    """Return every document in the index: id, video id and text-vector dimension."""
    backend.client.indices.refresh(index=backend.read_alias)
    hits = backend.client.search(index=backend.read_alias, body={
        "size": 10_000, "query": {"match_all": {}},
        "_source": ["video_id", "vectors.text"]})["hits"]["hits"]
    return [{"id": hit["_id"], "video_id": hit["_source"]["video_id"],
             "vector": len(hit["_source"].get("vectors", {}).get("text") or [])}
            for hit in hits]


def _all_done(videos: list[Video], timeout: float) -> list[Video]:
    """Wait (up to timeout) until no video is in flight; return the rows as they are then."""
    deadline = time.monotonic() + timeout
    while True:
        rows = list(Video.objects.filter(pk__in=[v.pk for v in videos]))
        if all(row.status in DONE for row in rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


def tally(videos: list[Video], rows: list[Video], documents: list[dict],
          searches: Searches) -> dict:
    """Count what the drill lost, left stuck or duplicated, and the searches that failed."""
    by_video = Counter(doc["video_id"] for doc in documents)
    ids = Counter(doc["id"] for doc in documents)
    lost, mismatched = len(videos) - len(rows), []
    for row in rows:
        catalog = set(row.segments.values_list("id", flat=True))
        with_vectors = set(row.segments.filter(text_vector__isnull=False).exclude(
            text_vector=b"").values_list("id", flat=True))
        indexed = {doc["id"] for doc in documents if doc["video_id"] == str(row.pk)}
        vectors = {doc["id"] for doc in documents if doc["video_id"] == str(row.pk)
                   and doc["vector"] == settings.REELSEARCH["TEXT_DIM"]}
        if row.status in DONE and row.status != VideoStatus.READY:
            lost += 1
        elif row.status == VideoStatus.READY and not (
                catalog and catalog == with_vectors == indexed == vectors):
            lost += 1
            mismatched.append(f"{row.title}: catalog {sorted(catalog)}, index "
                              f"{sorted(indexed)}, vectors {sorted(vectors)}")
    known = {str(row.pk) for row in rows}
    return {
        "videos": len(videos), "ready": sum(row.status == VideoStatus.READY for row in rows),
        "lost": lost, "stuck": sum(row.status not in DONE for row in rows),
        "duplicated_segments": sum(n - 1 for n in ids.values()),
        "orphan_documents": sum(n for video, n in by_video.items() if video not in known),
        "search_failures": len(searches.failed), "searches": dict(searches.answered),
        "problems": mismatched + searches.failed + [
            f"{row.title}: {row.status} at {row.stage}: {row.error}"
            for row in rows if row.status != VideoStatus.READY],
    }


@pytest.mark.django_db(transaction=True)
def test_a_batch_survives_a_killed_worker_a_redis_restart_and_a_dead_node(shared_drill):
    drill, worker = shared_drill, shared_drill.worker
    texts = {"bees": SHORT_TEXTS[0], "lighthouse": SHORT_TEXTS[1], "volcano": SHORT_TEXTS[2],
             "tyre": LONG_TEXT, "origami": None, "clouds": None}
    videos = [submit(clip(drill.root, name, text), name.title()) for name, text in texts.items()]
    tyre = videos[3]

    outage = threading.Event()
    searches = Searches(Client(), outage)
    thread = threading.Thread(target=searches.run, daemon=True)
    thread.start()
    try:
        # 1. SIGKILL the worker (and its pool) in the middle of a stage; start a new one.
        wait_until(lambda: Video.objects.get(pk=tyre.pk).stage == "asr", timeout=300,
                   interval=0.02, what="the ASR stage of the long clip")
        worker.kill()
        killed = unfinished_tasks(worker.log)
        assert killed, "the worker was killed between tasks: the drill proved nothing"
        worker.start()

        # 2. Restart Redis while the new worker runs a stage.
        wait_until(lambda: any(task.startswith("reelsearch.stage.")
                               for task in unfinished_tasks(worker.log)),
                   timeout=300, interval=0.02, what="the new worker to run a stage")
        drill.redis.down()
        time.sleep(1)
        drill.redis.up()

        # 3. Kill the OpenSearch node while an index stage writes to it (searches are
        # running too); bring it back after a while.
        indexed_before = worker.log.count("Task reelsearch.stage.index[")
        wait_until(lambda: worker.log.count("Task reelsearch.stage.index[") > indexed_before
                   and any(task.startswith("reelsearch.stage.index[")
                           for task in unfinished_tasks(worker.log)),
                   timeout=300, interval=0.02, what="an index stage to start")
        outage.set()
        drill.node.kill()
        time.sleep(NODE_DOWN)
        drill.node.start()
        outage.clear()

        rows = _all_done(videos, timeout=600)
        time.sleep(2)  # searches on the healthy stack after the drill
    finally:
        searches.stop.set()
        thread.join(timeout=60)

    counts = tally(videos, rows, _index_documents(drill.backend), searches)
    if os.environ.get("REELSEARCH_CHAOS_REPORT"):  # bench/chaos_loop.py reads it
        Path(os.environ["REELSEARCH_CHAOS_REPORT"]).write_text(json.dumps(counts))
    assert counts["problems"] == [], counts["problems"]
    assert (counts["ready"], counts["lost"], counts["stuck"]) == (len(videos), 0, 0), counts
    assert (counts["duplicated_segments"], counts["orphan_documents"]) == (0, 0), counts
    assert Video.objects.count() == len(texts), "a file was registered twice"
    assert all((row.stage, row.error) == ("done", "") for row in rows)
    assert drill.backend.count() == sum(row.segments.count() for row in rows)

    # The drill really hit work in progress, and each part of the product had to act.
    logs = worker.logs()
    assert worker.log.count("Connected to redis://") >= 2, "the worker never lost Redis"
    assert f"Task {killed.pop()} succeeded" not in logs  # the killed task itself never ended
    assert "requeued from" in logs, "the reconciler never had to act"
    assert ": retry 1 of" in logs, "no index stage met the dead node"
    assert searches.answered[200] >= 10 and searches.answered[503] >= 1, searches.answered
