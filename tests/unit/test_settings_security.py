"""deploy/settings.py is safe by default: DEBUG off, no public secret key, a clean
`manage.py check --deploy`, and a throttle cache shared through Redis when there is one."""

from __future__ import annotations

import os
import runpy
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

REPO = Path(__file__).resolve().parents[2]
SETTINGS = REPO / "deploy" / "settings.py"
OUR_VARIABLES = ("DJANGO_", "REELSEARCH_", "CELERY_BROKER_URL")


def clean_env(tmp_path: Path, **values: str) -> dict[str, str]:
    """The environment without any of the project's settings variables, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(OUR_VARIABLES)}
    return {**env, "REELSEARCH_VAR_DIR": str(tmp_path / "var"), **values}


def load(monkeypatch, tmp_path: Path, **values: str) -> dict:
    """Execute deploy/settings.py afresh with only these variables set; return its names."""
    for name in list(os.environ):
        if name.startswith(OUR_VARIABLES):
            monkeypatch.delenv(name)
    for name, value in clean_env(tmp_path, **values).items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS))


def test_debug_is_off_and_a_key_is_required_by_default(monkeypatch, tmp_path):
    with pytest.raises(ImproperlyConfigured, match="set DJANGO_SECRET_KEY"):
        load(monkeypatch, tmp_path)
    with pytest.raises(ImproperlyConfigured, match="set DJANGO_SECRET_KEY"):
        load(monkeypatch, tmp_path, DJANGO_DEBUG="0", DJANGO_SECRET_KEY="")
    production = load(monkeypatch, tmp_path, DJANGO_SECRET_KEY="k" * 60)
    assert production["DEBUG"] is False and production["SECRET_KEY"] == "k" * 60
    assert production["SESSION_COOKIE_SECURE"] and production["CSRF_COOKIE_SECURE"]
    assert production["SECURE_HSTS_SECONDS"] > 0
    assert production["REELSEARCH"]["SERVE_MEDIA"] is False


def test_debug_runs_without_a_key_for_local_development(monkeypatch, tmp_path):
    development = load(monkeypatch, tmp_path, DJANGO_DEBUG="1")
    assert development["DEBUG"] is True and development["SECRET_KEY"]
    assert not development["SESSION_COOKIE_SECURE"] and not development["SECURE_HSTS_SECONDS"]


def test_plain_http_and_tls_proxy_toggles(monkeypatch, tmp_path):
    plain = load(monkeypatch, tmp_path, DJANGO_SECRET_KEY="k" * 60, DJANGO_HTTPS="0")
    assert not plain["SESSION_COOKIE_SECURE"] and not plain["SECURE_HSTS_SECONDS"]
    assert "SECURE_PROXY_SSL_HEADER" not in plain
    proxied = load(monkeypatch, tmp_path, DJANGO_SECRET_KEY="k" * 60, DJANGO_TLS_PROXY="1",
                   DJANGO_SECURE_SSL_REDIRECT="1")
    assert proxied["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    assert proxied["SECURE_SSL_REDIRECT"] is True


@pytest.mark.parametrize("values,backend,location", [
    ({}, "django.core.cache.backends.locmem.LocMemCache", None),
    ({"CELERY_BROKER_URL": "amqp://rabbit//"},
     "django.core.cache.backends.locmem.LocMemCache", None),
    ({"CELERY_BROKER_URL": "redis://redis:6379/0"},
     "django.core.cache.backends.redis.RedisCache", "redis://redis:6379/1"),
    ({"CELERY_BROKER_URL": "redis://:pw@redis:6379/0", "REELSEARCH_CACHE_DB": "5"},
     "django.core.cache.backends.redis.RedisCache", "redis://:pw@redis:6379/5"),
    ({"CELERY_BROKER_URL": "redis://redis:6379/0", "REELSEARCH_CACHE_URL": "redis://c:1/2"},
     "django.core.cache.backends.redis.RedisCache", "redis://c:1/2"),
])
def test_throttle_cache_is_shared_through_redis_when_configured(monkeypatch, tmp_path, values,
                                                                 backend, location):
    caches = load(monkeypatch, tmp_path, DJANGO_DEBUG="1", **values)["CACHES"]
    assert caches["default"]["BACKEND"] == backend
    assert caches["default"].get("LOCATION") == location


def test_ingest_roots_are_read_from_the_environment(monkeypatch, tmp_path):
    config = load(monkeypatch, tmp_path, DJANGO_DEBUG="1",
                  REELSEARCH_INGEST_ROOTS=" /srv/videos, /mnt/archive ,")["REELSEARCH"]
    assert config["INGEST_ROOTS"] == ["/srv/videos", "/mnt/archive"]
    assert load(monkeypatch, tmp_path, DJANGO_DEBUG="1")["REELSEARCH"]["INGEST_ROOTS"] == []


def check_deploy(tmp_path: Path, **values: str) -> subprocess.CompletedProcess:
    env = clean_env(tmp_path, DJANGO_SETTINGS_MODULE="deploy.settings",
                    DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
                    DJANGO_ALLOWED_HOSTS="search.example.com", **values)
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy",
                           "--fail-level", "WARNING"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = check_deploy(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (3 silenced)." in result.stdout, result.stdout
    # ...and it does warn when HTTPS is turned off (so the silence above is not blanket).
    plain = check_deploy(tmp_path, DJANGO_HTTPS="0")
    assert plain.returncode != 0
    assert "security.W012" in plain.stderr + plain.stdout
