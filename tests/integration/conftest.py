"""Fixtures for tests against real services: a Redis server for the Celery broker."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.celery_worker import redis_answers
from tests.conftest import running_service

DEFAULT_REDIS_URL = "redis://127.0.0.1:{port}/0"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """Return the URL of a running Redis (REELSEARCH_TEST_REDIS_URL, as `make test` sets).

    Without that variable, a private server is started with `deploy/services redis-up`
    (when redis-server is installed) and stopped after the session.
    """
    port = os.environ.get("REELSEARCH_REDIS_PORT", "6390")
    yield from running_service("REELSEARCH_TEST_REDIS_URL", DEFAULT_REDIS_URL.format(port=port),
                               redis_answers, ("redis-server",), "redis", "Redis")
