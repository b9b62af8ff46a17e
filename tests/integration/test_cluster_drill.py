"""Losing a data node, and a reindex, on a real 3-node OpenSearch cluster under searches.

The cluster comes from `cluster_url` (REELSEARCH_TEST_CLUSTER_URL, or `deploy/services
cluster-up`). The index has 3 primaries and 1 replica; the backend talks to the node at that
URL, and the drill SIGKILLs another data node while 4 clients search and the pipeline's index
step (retrieval.indexing.index_video) stores a batch of videos, then brings the node back
with `deploy/services cluster-up`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from catalog.models import Segment, Video, VideoStatus
from retrieval.backends import get_backend, reset_backends
from retrieval.backends.base import BackendUnavailable
from retrieval.documents import Filters
from retrieval.fusion import FusionSpec
from retrieval.indexing import index_video, iter_catalog_docs
from tests.catalog_rows import add_speech_segments
from tests.conftest import running_service

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]
BACKEND = "retrieval.backends.opensearch.OpenSearchBackend"
TOPICS = ["volcano lava eruption", "bread flour oven", "rocket orbit launch", "harbor boat sail"]
CLIENTS = 4


def cluster_answers(url: str) -> bool:
    """Return True when three nodes have joined the cluster at url."""
    try:
        with urllib.request.urlopen(f"{url}/_cluster/health", timeout=10) as response:  # noqa: S310
            return b'"number_of_nodes":3,' in response.read()
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def cluster_url() -> Iterator[str]:
    ports = os.environ.get("REELSEARCH_CLUSTER_HTTP_PORTS", "9261,9262,9263").split(",")
    yield from running_service("REELSEARCH_TEST_CLUSTER_URL", f"http://127.0.0.1:{ports[0]}",
                               cluster_answers, ("mvn",), "cluster", "a 3-node OpenSearch cluster")


@pytest.fixture
def backend(settings, cluster_url):
    index = f"it-drill-{uuid.uuid4().hex[:10]}"
    settings.RETRIEVAL_BACKENDS = {**settings.RETRIEVAL_BACKENDS, "cluster": {
        "BACKEND": BACKEND, "URL": cluster_url, "INDEX": index, "SHARDS": 3, "REPLICAS": 1,
        "DIMENSIONS": {"text": 8}, "TIMEOUT": 60}}
    reset_backends()
    instance = get_backend("cluster")
    instance.ensure_index()
    yield instance
    instance.drop_index()
    reset_backends()


def make_videos(count: int, segments: int = 6, first: int = 0) -> list[Video]:
    """Create ready videos with topic segments and random 8-d text vectors."""
    rng = np.random.default_rng(first)
    made = []
    for v in range(first, first + count):
        video, = Video.objects.bulk_create([Video(  # bulk: no signal, so no pipeline run
            title=f"Drill {v}", source=f"videos/drill-{v}.mp4", status=VideoStatus.READY,
            duration=60.0, language="en")])
        add_speech_segments(video, TOPICS[v % 4], segments, rng)
        made.append(video)
    return made


class Searchers:
    """CLIENTS threads searching in a loop; each failed search is retried once."""

    def __init__(self, backend) -> None:
        self.backend, self.stop = backend, threading.Event()
        self.ok = self.retried = 0
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(CLIENTS)]

    def _query(self, i: int) -> None:
        vector = np.random.default_rng(i).standard_normal(8)
        if i % 2:
            self.backend.hybrid(TOPICS[i % 4], {"text": vector}, 20, Filters(), FusionSpec())
        else:
            self.backend.bm25(TOPICS[i % 4], 20)
            self.backend.knn("text", vector, 20)

    def _run(self, n: int) -> None:
        i = n
        while not self.stop.is_set():
            i += CLIENTS
            try:
                self._query(i)
                outcome = "ok"
            except BackendUnavailable:
                try:
                    self._query(i)
                    outcome = "retried"
                except Exception as exc:  # noqa: BLE001 (recorded and asserted on)
                    outcome = f"failed after a retry: {exc!r}"
            except Exception as exc:  # noqa: BLE001
                outcome = f"failed: {exc!r}"
            with self.lock:
                if outcome == "ok":
                    self.ok += 1
                elif outcome == "retried":
                    self.retried += 1
                else:
                    self.failures.append(outcome)

    def __enter__(self) -> Searchers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)


def victim(backend) -> tuple[str, int]:
    """Return the name and pid of a data node other than the one the backend talks to."""
    port = backend.url.rstrip("/").rsplit(":", 1)[1]
    nodes = backend.client.nodes.info(metric="process,http")["nodes"].values()
    for node in sorted(nodes, key=lambda n: n["name"], reverse=True):
        if not node["http"]["publish_address"].endswith(f":{port}") and "data" in node["roles"]:
            return node["name"], int(node["process"]["id"])
    raise AssertionError("no other data node in the cluster")


def index_with_retries(video: Video) -> None:
    """Index a video like the pipeline's index stage: a transient failure is retried."""
    for attempt in range(10):
        try:
            report = index_video(video, "cluster")
        except BackendUnavailable:
            time.sleep(1 + attempt)
            continue
        if report.ok:
            return
        time.sleep(1 + attempt)
    raise AssertionError(f"video {video.pk} was never acknowledged")


def wait_green(backend, nodes: int = 3) -> None:
    health = backend.client.cluster.health(wait_for_status="green", wait_for_nodes=str(nodes),
                                           params={"timeout": "180s"}, request_timeout=200)
    assert not health["timed_out"], health


def stored_ids(backend) -> set[str]:
    backend.client.indices.refresh(index=backend.read_alias)
    body = {"size": 10_000, "query": {"match_all": {}}, "_source": False}
    return {hit["_id"] for hit in backend.client.search(index=backend.read_alias, body=body)
            ["hits"]["hits"]}


def test_losing_a_data_node_loses_no_acknowledged_segment(backend) -> None:
    before = make_videos(10)
    for video in before:
        index_with_retries(video)
    batch = make_videos(20, first=10)
    name, pid = victim(backend)
    with Searchers(backend) as searchers:
        time.sleep(1.0)
        for n, video in enumerate(batch):
            if n == 4:
                os.kill(pid, signal.SIGKILL)
            index_with_retries(video)
        time.sleep(2.0)
    assert searchers.failures == []
    assert searchers.ok > 0
    # the node comes back and the cluster turns green again
    subprocess.run([str(REPO / "deploy" / "services"), "cluster-up"], check=True,
                   capture_output=True, timeout=400)
    wait_green(backend)
    assert name in {node["name"] for node in backend.client.nodes.info()["nodes"].values()}
    expected = {segment.pk for segment in Segment.objects.filter(video__in=before + batch)}
    assert backend.count() == len(expected) == 180
    assert stored_ids(backend) == expected


def test_a_reindex_during_searches_fails_no_search(backend) -> None:
    make_videos(12)
    backend.rebuild(iter_catalog_docs())
    wait_green(backend)
    with Searchers(backend) as searchers:
        time.sleep(0.5)
        report = backend.rebuild(iter_catalog_docs())
        time.sleep(1.0)
    assert report.ok and report.indexed == 72
    assert searchers.failures == [] and searchers.retried == 0
    assert searchers.ok > 0
    assert backend.count() == 72
    assert len(backend.client.indices.get(index=f"{backend.index_name}-*")) == 1
    # the rebuilt index was committed before its replicas were added: they copied its files
    # and replayed no operation (an uncommitted primary makes them index every document again)
    (index,) = backend.client.indices.get_alias(name=backend.read_alias)
    replicas = [shard for shard in backend.client.indices.recovery(index=index)[index]["shards"]
                if not shard["primary"]]
    assert len(replicas) == 3
    assert all(shard["index"]["files"]["recovered"] > 0 for shard in replicas)
    assert sum(shard["translog"]["recovered"] for shard in replicas) == 0
