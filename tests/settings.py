"""Test settings: the project's settings with every writable path in a throwaway directory."""

import os
import tempfile

os.environ.setdefault("REELSEARCH_VAR_DIR", tempfile.mkdtemp(prefix="reelsearch-test-"))
# deploy/settings.py defaults to DEBUG off and refuses to start without a key there. Tests run
# as in development (media served by Django, no HTTPS-only cookies), with a key of their own;
# set in the environment so that `manage.py` and `celery worker` subprocesses get them too.
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-key-" + "x" * 50)

from deploy.settings import *  # noqa: E402,F403

# The catalog: SQLite unless REELSEARCH_TEST_DATABASE_URL names a PostgreSQL server (`make
# test` runs the catalog, API and worker tests a second time that way; the user needs
# CREATEDB, as Django creates and drops a test_<NAME> database).
# An `evaluate` child (REELSEARCH_EVAL_WORKDIR set) keeps its throwaway SQLite catalog.
TEST_DATABASE_URL = os.environ.get("REELSEARCH_TEST_DATABASE_URL", "").strip()
if TEST_DATABASE_URL and not os.environ.get("REELSEARCH_EVAL_WORKDIR"):
    DATABASES = {"default": database_from_url(TEST_DATABASE_URL)}  # noqa: F405
else:
    # A file, not SQLite's in-memory test database, so that a `celery worker` subprocess
    # started by the integration tests (tests/celery_worker.py) sees the same data.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}  # noqa: F405

# Throttle counters stay in this process, even when REELSEARCH_CACHE_URL or a Redis
# CELERY_BROKER_URL is set: tests clear the cache, which would flush a shared Redis database.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Suggestions see catalog changes at once, built in the request (no background thread that
# would read the catalog outside the test's transaction).
REELSEARCH = {**REELSEARCH, "SUGGEST_CHECK_SECONDS": 0.0,  # noqa: F405
              "SUGGEST_BUILD_IN_BACKGROUND": False}
