"""The catalog database from DATABASE_URL: PostgreSQL (psycopg 3) or SQLite.

    postgresql://USER:PASSWORD@HOST:PORT/NAME?sslmode=require&connect_timeout=10
    sqlite:///relative/path.sqlite3        sqlite:////absolute/path.sqlite3

``postgres://`` is accepted as ``postgresql://``. Query parameters of a PostgreSQL URL are
libpq connection parameters (``sslmode``, ``sslrootcert``, ``connect_timeout``,
``application_name``, ...) and go to ``OPTIONS``; user, password and database name are
percent-decoded, so ``p%40ss`` is the password ``p@ss``. Without DATABASE_URL the catalog is
the SQLite file DATABASE_PATH.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

POSTGRES_SCHEMES = {"postgres", "postgresql"}
SQLITE_SCHEMES = {"sqlite"}
# SQLite waits this long for a lock; IMMEDIATE transactions take the write lock at BEGIN,
# so two writers never deadlock upgrading a read lock.
SQLITE_OPTIONS = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
EXAMPLE = "postgresql://reelsearch:PASSWORD@127.0.0.1:5432/reelsearch"


def sqlite_database(path: str | Path, conn_max_age: int = 0) -> dict[str, object]:
    """Return the DATABASES entry of a SQLite file (connections kept conn_max_age seconds)."""
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path),
            "OPTIONS": dict(SQLITE_OPTIONS), "CONN_MAX_AGE": conn_max_age,
            "CONN_HEALTH_CHECKS": conn_max_age > 0}


def database_from_url(url: str, conn_max_age: int = 0) -> dict[str, object]:
    """Return the DATABASES entry a DATABASE_URL describes."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise _bad(url, f"it cannot be parsed ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme in SQLITE_SCHEMES:
        return _sqlite(url, parts, conn_max_age)
    if scheme not in POSTGRES_SCHEMES:
        raise _bad(url, f"the scheme {scheme + '://' if scheme else '(none)'} is not supported; "
                        f"use postgresql:// (e.g. {EXAMPLE}) or sqlite:///PATH")
    name = unquote(parts.path.lstrip("/"))
    if not name or "/" in name:
        raise _bad(url, "it names no database: end it with /DATABASE_NAME")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(port or ""),
        "OPTIONS": options,
        "CONN_MAX_AGE": conn_max_age,
        "CONN_HEALTH_CHECKS": conn_max_age > 0,
    }


def _sqlite(url: str, parts, conn_max_age: int = 0) -> dict[str, object]:
    """Return the SQLite entry of sqlite:///relative or sqlite:////absolute."""
    if parts.netloc:
        raise _bad(url, "a SQLite URL has no host: write sqlite:///relative/path or "
                        "sqlite:////absolute/path")
    path = unquote(parts.path)[1:]  # the third slash separates the (empty) host from the path
    if not path:
        raise _bad(url, "it names no file: write sqlite:///relative/path or "
                        "sqlite:////absolute/path")
    return sqlite_database(path, conn_max_age)


def _bad(url: str, why: str) -> ImproperlyConfigured:
    """Build the error for a DATABASE_URL that cannot be used; never echo its password."""
    return ImproperlyConfigured(f"DATABASE_URL={_redacted(url)!r} cannot be used: {why}.")


def _redacted(url: str) -> str:
    """Return url with the password of its user part replaced by ***."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"
