"""Several OpenSearch hosts in URL: with one of them down, every call still succeeds.

The second host is the real test node; the first is a loopback port nobody listens on, as a
node of a cluster that has just died would be. The client marks it dead and sends each
request (and the retry of one that hit the dead host) to the live node.
"""

from __future__ import annotations

import socket
import uuid

import pytest

from retrieval.backends.opensearch import OpenSearchBackend
from tests.conformance.corpus import FILLER, doc, ids

pytestmark = [pytest.mark.opensearch]


def closed_port() -> int:
    """Return a loopback port with no listener (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_dead_host_in_the_list_costs_no_failed_call(opensearch_url):
    url = f"http://127.0.0.1:{closed_port()},{opensearch_url}"
    backend = OpenSearchBackend("hosts", {
        "URL": url, "INDEX": f"hosts-{uuid.uuid4().hex[:12]}", "REPLICAS": 0,
        "DIMENSIONS": {"text": 8}, "REFRESH": "true", "TIMEOUT": 10})
    assert len(backend.client.transport.connection_pool.connections) == 2
    try:
        backend.ensure_index()
        report = backend.index([doc("bread", text="knead the dough and bake the bread"),
                                *FILLER])
        assert not report.failed
        for _ in range(10):  # requests round-robin over the hosts that are alive
            assert ids(backend.bm25("bread", 5)) == ["bread"]
    finally:
        backend.drop_index()
        backend.close()
