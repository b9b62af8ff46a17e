"""One `backend` fixture for the whole suite, parametrized over every search backend.

Each test gets an empty index of its own: a directory under tmp_path for the embedded
backend, a uniquely named index (deleted afterwards) on the node at
REELSEARCH_TEST_OPENSEARCH_URL for OpenSearch. Vectors are small (text 8-d, visual 4-d), so
no model is needed. `backend.conformance_name` says which backend a test runs on; a test
that a backend cannot pass calls `skip_unless()` with the reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from retrieval.backends.base import SearchBackend
from retrieval.backends.embedded import EmbeddedBackend

# The embedded backend runs twice: with its default BM25 engine (tantivy) and with FTS5.
BACKENDS = ("embedded", "embedded-fts5", "opensearch")
DIMENSIONS = {"text": 8, "visual": 4}

Factory = Callable[[], SearchBackend]


def _embedded_factory(tmp_path: Path, engine: str) -> Factory:
    path = str(tmp_path / "index")
    return lambda: EmbeddedBackend("conformance", {"PATH": path, "BM25_ENGINE": engine})


def _opensearch_factory(url: str) -> Factory:
    from retrieval.backends.opensearch import OpenSearchBackend

    params = {"URL": url, "INDEX": f"conformance-{uuid.uuid4().hex[:12]}", "REPLICAS": 0,
              "DIMENSIONS": DIMENSIONS, "REFRESH": "true"}
    return lambda: OpenSearchBackend("conformance", params)


@pytest.fixture(params=BACKENDS)
def make_backend(request, tmp_path: Path) -> Iterator[Factory]:
    """Return a factory of backend instances that share one (initially empty) index."""
    if request.param.startswith("embedded"):
        factory = _embedded_factory(tmp_path, "fts5" if request.param == "embedded-fts5"
                                    else "tantivy")
    else:
        factory = _opensearch_factory(request.getfixturevalue("opensearch_url"))
    made: list[SearchBackend] = []

    def make() -> SearchBackend:
        instance = factory()
        instance.conformance_name = request.param
        made.append(instance)
        return instance

    yield make
    if request.param == "opensearch" and made:
        made[0].drop_index()
    for instance in made:
        instance.close()


@pytest.fixture
def backend(make_backend: Factory) -> SearchBackend:
    """Return an empty index on one backend."""
    return make_backend()


def skip_unless(backend: SearchBackend, supported: bool, reason: str) -> None:
    """Skip the test on this backend, stating why it cannot do what the test checks."""
    if not supported:
        pytest.skip(f"{backend.conformance_name}: {reason}")


def stored_indices(backend: SearchBackend) -> set[str]:
    """Return the backend's index units on disk or on the node (files, concrete indices)."""
    if backend.conformance_name.startswith("embedded"):
        return {path.name for path in backend.root.glob("index-*.sqlite3")}
    found = backend.client.indices.get(index=f"{backend.index_name}-*", expand_wildcards="all")
    return set(found)


def live_index(backend: SearchBackend) -> str:
    """Return the index unit that answers queries now."""
    if backend.conformance_name.startswith("embedded"):
        return (backend.root / "CURRENT").read_text().strip()
    (name,) = backend.client.indices.get_alias(name=backend.read_alias)
    return name


def rebuilding(backend: SearchBackend) -> bool:
    """Return True while a rebuild's second index receives writes."""
    if backend.conformance_name.startswith("embedded"):
        return (backend.root / "BUILDING").exists()
    return bool(backend.client.indices.exists_alias(name=backend.building_alias))
