"""Fixtures for tests against real services: a Redis server for the Celery broker."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.celery_worker import REPO, redis_answers
from tests.conftest import require

DEFAULT_REDIS_URL = "redis://127.0.0.1:{port}/0"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """Return the URL of a running Redis (REELSEARCH_TEST_REDIS_URL, as `make test` sets).

    Without that variable, a private server is started with `deploy/services redis-up`
    (when redis-server is installed) and stopped after the session.
    """
    url = os.environ.get("REELSEARCH_TEST_REDIS_URL", "")
    started = False
    if not url:
        port = os.environ.get("REELSEARCH_REDIS_PORT", "6390")
        url = DEFAULT_REDIS_URL.format(port=port)
        if not redis_answers(url) and shutil.which("redis-server"):
            result = subprocess.run([str(REPO / "deploy" / "services"), "redis-up"],
                                    capture_output=True, text=True, check=False)
            started = result.returncode == 0
    require(redis_answers(url), f"Redis at {url} (set REELSEARCH_TEST_REDIS_URL)")
    yield url
    if started:
        subprocess.run([str(REPO / "deploy" / "services"), "redis-down"],
                       capture_output=True, check=False)
