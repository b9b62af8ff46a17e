"""Real Celery workers for tests and benchmarks: a `celery worker` subprocess, a broker switch."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import quote, urlencode

REPO = Path(__file__).resolve().parents[1]


def redis_answers(url: str) -> bool:
    """Return True when a Redis server answers PING at url."""
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=2).ping())
    except (redis.RedisError, OSError):
        return False


@contextmanager
def celery_broker(url: str, transport_options: Mapping[str, object]) -> Iterator[None]:
    """Make this process send tasks to a broker instead of running them eagerly."""
    import kombu.pools

    from deploy.celery import app

    names = ("broker_url", "task_always_eager", "broker_transport_options")
    saved = {name: app.conf[name] for name in names}

    def reset_pools() -> None:
        # kombu keeps connection and producer pools in a global registry keyed by broker
        # connection: closing only the app's pool would leave a closed pool there for the
        # next (eager) publish to the same broker URL. reset() closes and forgets them all.
        kombu.pools.reset()
        app._pool = None
        app.amqp._producer_pool = None

    reset_pools()
    app.conf.update(broker_url=url, task_always_eager=False,
                    broker_transport_options=dict(transport_options))
    try:
        yield
    finally:
        reset_pools()
        app.conf.update(saved)


class CeleryWorker:
    """A `celery -A deploy worker` subprocess in its own process group, logging to a file."""

    def __init__(self, env: Mapping[str, str], log_dir: Path, concurrency: int = 1,
                 beat: bool = False) -> None:
        self.env = dict(env)
        self.log_dir = log_dir
        self.concurrency = concurrency
        self.beat = beat  # also run Celery beat (the reconciler's schedule) in the worker
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self.runs = 0

    def command(self) -> list[str]:
        """Return the worker's command line."""
        beat = ["-B", f"--schedule={self.log_dir / 'beat-schedule'}"] if self.beat else []
        return [sys.executable, "-m", "celery", "-A", "deploy", "worker", "--pool=prefork",
                f"--concurrency={self.concurrency}", "-Q", "default", "--loglevel=INFO",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "-n", f"test-{uuid.uuid4().hex[:8]}@%h", *beat]

    def start(self, timeout: float = 90.0) -> CeleryWorker:
        """Start the worker and wait until it consumes from the queue."""
        self.runs += 1
        self.log_path = self.log_dir / f"worker-{self.runs}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(self.command(), cwd=REPO, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        self.wait_for_log(r"\bready\.", timeout)
        return self

    @property
    def log(self) -> str:
        """Return everything this run of the worker has logged."""
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def logs(self) -> str:
        """Return the logs of every run so far."""
        return "\n".join(p.read_text(errors="replace")
                         for p in sorted(self.log_dir.glob("worker-*.log")))

    def wait_for_log(self, pattern: str, timeout: float) -> None:
        """Wait until the current log matches a regular expression."""
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.log):
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"the worker exited ({self.proc.returncode}):\n{self.log}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} in the worker log after {timeout}s:\n"
                                     f"{self.log[-4000:]}")
            time.sleep(0.2)

    def pids(self) -> list[int]:
        """Return the main process and its pool processes."""
        if self.proc is None:
            return []
        found: list[int] = []
        for children in Path(f"/proc/{self.proc.pid}/task").glob("*/children"):
            with suppress(OSError):
                found += [int(pid) for pid in children.read_text().split()]
        return [self.proc.pid, *sorted(set(found))]

    def kill(self) -> None:
        """SIGKILL the whole process group (the worker and its pool), as a crash would."""
        if self.proc is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def stop(self, timeout: float = 30.0) -> None:
        """Ask for a warm shutdown; kill the process group if it does not end in time."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        except ProcessLookupError:
            pass
        self.proc = None


def wait_until(check: Callable[[], object], timeout: float, interval: float = 0.2,
               what: str = "condition") -> object:
    """Poll check() until it returns something truthy; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def database_env(database: Mapping[str, object]) -> dict[str, str]:
    """Return DATABASE_URL / DATABASE_PATH naming a database (a connection's settings_dict)."""
    if database["ENGINE"] == "django.db.backends.sqlite3":
        return {"DATABASE_URL": "", "DATABASE_PATH": str(database["NAME"])}
    user = quote(str(database.get("USER") or ""), safe="")
    password = quote(str(database.get("PASSWORD") or ""), safe="")
    credentials = f"{user}:{password}@" if password else f"{user}@" if user else ""
    port = f":{database['PORT']}" if database.get("PORT") else ""
    name = quote(str(database["NAME"]), safe="")
    query = urlencode(dict(database.get("OPTIONS") or {}))
    url = f"postgresql://{credentials}{database.get('HOST') or ''}{port}/{name}"
    return {"DATABASE_URL": f"{url}?{query}" if query else url, "DATABASE_CONN_MAX_AGE": "0"}


def worker_env(*, broker_url: str, key_prefix: str, database: Mapping[str, object],
               media_root: str | Path, index_dir: str | Path, work_dir: str | Path,
               var_dir: str | Path, **extra: str) -> dict[str, str]:
    """Return the environment of a worker (or a `manage.py` process) sharing these paths and
    this database (`connection.settings_dict`: SQLite or PostgreSQL, the test database)."""
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "deploy.settings",
        "PYTHONUNBUFFERED": "1",
        "CELERY_BROKER_URL": broker_url,
        "CELERY_BROKER_KEYPREFIX": key_prefix,
        **database_env(database),
        "REELSEARCH_BACKEND": "embedded",
        "REELSEARCH_MEDIA_ROOT": str(media_root),
        "REELSEARCH_INDEX_DIR": str(index_dir),
        "REELSEARCH_WORK_DIR": str(work_dir),
        "REELSEARCH_VAR_DIR": str(var_dir),
    })
    env.update(extra)
    return env
