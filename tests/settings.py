"""Test settings: the project's settings with every writable path in a throwaway directory."""

import os
import tempfile

os.environ.setdefault("REELSEARCH_VAR_DIR", tempfile.mkdtemp(prefix="reelsearch-test-"))

from deploy.settings import *  # noqa: E402,F403

# A file, not SQLite's in-memory test database, so that a `celery worker` subprocess started
# by the integration tests (tests/integration/test_celery_worker.py) sees the same data.
DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}  # noqa: F405
