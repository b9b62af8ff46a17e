"""Private Redis servers and OpenSearch nodes that a test can stop, kill and restart.

Both are driven through the project's own commands (`deploy/services redis-up|redis-down`
and `deploy/opensearch/run-node start|stop|status`) on a free port with a data directory of
the test's own, so restarting them disturbs no other test.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.celery_worker import REPO

RUN_NODE = REPO / "deploy" / "opensearch" / "run-node"


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(pid: int) -> bool:
    """Return True while a process exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class PrivateRedis:
    """A Redis server run by deploy/services on its own port and directory."""

    def __init__(self, port: int, directory: Path) -> None:
        self.port, self.directory = port, directory
        self.url = f"redis://127.0.0.1:{port}/0"

    def _services(self, action: str) -> None:
        env = {**os.environ, "REELSEARCH_REDIS_PORT": str(self.port),
               "REELSEARCH_REDIS_DIR": str(self.directory)}
        result = subprocess.run([str(REPO / "deploy" / "services"), f"redis-{action}"],
                                env=env, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr

    def up(self) -> None:
        """Start the server (its append-only file brings back what it held)."""
        self._services("up")

    def down(self) -> None:
        """Stop the server."""
        self._services("down")


class PrivateNode:
    """A single OpenSearch node run by deploy/opensearch/run-node on its own port and data."""

    def __init__(self, port: int, data: Path, heap: str = "512m") -> None:
        self.port, self.data, self.heap = port, data, heap
        self.url = f"http://127.0.0.1:{port}"

    def _run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([str(RUN_NODE), *args, "--data", str(self.data)],
                              capture_output=True, text=True, timeout=timeout, check=False)

    def start(self, timeout: int = 240) -> None:
        """Start the node (building it first if needed) and wait for yellow health."""
        result = self._run("start", "--port", str(self.port), "--heap", self.heap, "--fast",
                           "--timeout", str(timeout), timeout=timeout + 600)
        assert result.returncode == 0, result.stderr[-4000:]

    def pid(self) -> int | None:
        """Return the node's process id, or None when it is not running."""
        found = re.search(r"running: pid (\d+)", self._run("status", timeout=30).stdout)
        return int(found.group(1)) if found else None

    def kill(self) -> None:
        """SIGKILL the node, as a crash or an out-of-memory kill would."""
        pid = self.pid()
        assert pid is not None, "the node is not running"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the node if it runs."""
        self._run("stop", timeout=180)
