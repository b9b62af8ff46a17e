"""DATABASE_URL: PostgreSQL and SQLite URLs, defaults, and clear errors for what cannot work."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from deploy.database import database_from_url
from tests.celery_worker import database_env

REPO = Path(__file__).resolve().parents[2]


def test_a_postgresql_url_gives_every_connection_setting():
    db = database_from_url("postgresql://app:s%40cret@db.internal:6543/catalog"
                           "?sslmode=verify-full&sslrootcert=/etc/ca.pem", conn_max_age=60)
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"]) == ("catalog", "app", "s@cret")
    assert (db["HOST"], db["PORT"]) == ("db.internal", "6543")
    assert db["OPTIONS"] == {"sslmode": "verify-full", "sslrootcert": "/etc/ca.pem"}
    assert db["CONN_MAX_AGE"] == 60 and db["CONN_HEALTH_CHECKS"] is True


def test_postgres_scheme_alias_and_defaults():
    db = database_from_url("postgres://localhost/reelsearch")
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["HOST"], db["PORT"], db["USER"], db["PASSWORD"]) == ("localhost", "", "", "")
    assert db["CONN_MAX_AGE"] == 0 and db["CONN_HEALTH_CHECKS"] is False


def test_sqlite_urls_relative_and_absolute():
    assert database_from_url("sqlite:///var/db.sqlite3")["NAME"] == "var/db.sqlite3"
    absolute = database_from_url("sqlite:////srv/reelsearch/db.sqlite3")
    assert absolute["NAME"] == "/srv/reelsearch/db.sqlite3"
    assert absolute["ENGINE"] == "django.db.backends.sqlite3"
    assert absolute["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


@pytest.mark.parametrize(("url", "message"), [
    ("mysql://app:pw@db/catalog", "the scheme mysql:// is not supported; use postgresql://"),
    ("db.internal/catalog", "the scheme (none) is not supported"),
    ("postgresql://app@db.internal", "names no database"),
    ("postgresql://app@db.internal/", "names no database"),
    ("postgresql://app@db.internal/a/b", "names no database"),
    ("postgresql://app@db.internal:port/catalog", "cannot be parsed"),
    ("sqlite://host/db.sqlite3", "a SQLite URL has no host"),
    ("sqlite:///", "names no file"),
])
def test_unusable_urls_fail_with_what_to_do(url, message):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL=") as error:
        database_from_url(url)
    assert message in str(error.value)


def test_an_error_never_shows_the_password():
    with pytest.raises(ImproperlyConfigured) as error:
        database_from_url("mysql://app:hunter2@db/catalog")
    assert "hunter2" not in str(error.value)
    assert "mysql://app:***@db/catalog" in str(error.value)


def settings_in_child(**env: str) -> str:
    """Return DATABASES['default'] as deploy/settings.py builds it in a fresh process."""
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "deploy.settings",
                   "DJANGO_DEBUG": "1", **env}
    code = ("import django.conf as c; d = c.settings.DATABASES['default']; "
            "print(d['ENGINE'], d['NAME'], d.get('HOST', ''), d.get('CONN_MAX_AGE'))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=environment,
                          capture_output=True, text=True, timeout=60)
    return proc.stdout.strip() or proc.stderr


def test_settings_default_to_sqlite_and_read_database_url(tmp_path):
    sqlite = settings_in_child(DATABASE_URL="", DATABASE_PATH=str(tmp_path / "c.sqlite3"))
    assert sqlite == f"django.db.backends.sqlite3 {tmp_path / 'c.sqlite3'}  60"
    postgres = settings_in_child(DATABASE_URL="postgresql://u:p@db:5432/catalog",
                                 DATABASE_CONN_MAX_AGE="30")
    assert postgres == "django.db.backends.postgresql catalog db 30"
    bad = settings_in_child(DATABASE_URL="mongodb://db/catalog")
    assert "ImproperlyConfigured" in bad and "mongodb:// is not supported" in bad


def test_worker_environment_names_the_same_database():
    db = database_from_url("postgresql://app:p%2Fw@127.0.0.1:5434/test_catalog?sslmode=disable")
    env = database_env(db)
    assert database_from_url(env["DATABASE_URL"]) == {**db, "CONN_MAX_AGE": 0,
                                                      "CONN_HEALTH_CHECKS": False}
    assert database_env({"ENGINE": "django.db.backends.sqlite3", "NAME": "/x/db.sqlite3"}) == {
        "DATABASE_URL": "", "DATABASE_PATH": "/x/db.sqlite3"}
