"""Load check of the search API: N concurrent keep-alive clients for D seconds, loopback only.

Reports requests/s, latency percentiles and every non-200 answer or connection error.
Either point it at a running server, or let it start one (--serve) on a catalog directory
made by `make demo` (REELSEARCH_VAR_DIR, default var/):

    python bench/load_search.py --serve [--var-dir var] [--clients 50] [--duration 60]
    python bench/load_search.py --url http://127.0.0.1:8000

--serve runs gunicorn (pip install -e '.[deploy]') with deploy/gunicorn.conf.py, or falls back to
`manage.py runserver --noreload`. All clients come from 127.0.0.1, so the anonymous read
throttle (REELSEARCH_READ_RATE) is raised for the served process; say so when quoting numbers.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path

from _setup import ROOT, percentile

QUERIES = [
    "how do I repair a punctured bike wheel", "where does lava come from",
    "homemade egg noodles", "finding the pole star", "folding a paper bird",
    "patch an inner tube", "what makes a mountain erupt", "knead and roll out dough",
    "telescope in the backyard", "Sicily volcano", "cooking italian", "stargazing for beginners",
]


def loopback(url: str) -> tuple[str, int, str]:
    """Return host, port and path prefix of a loopback http URL (anything else is refused)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise SystemExit(f"--url must be http://HOST:PORT on this machine, got {url!r}")
    address = socket.gethostbyname(parts.hostname)
    if not ipaddress.ip_address(address).is_loopback:
        raise SystemExit(f"refusing to load-test {parts.hostname} ({address}): loopback only")
    return parts.hostname, parts.port or 80, parts.path.rstrip("/")


class Client(threading.Thread):
    """One keep-alive client sending search requests until the deadline."""

    def __init__(self, n: int, host: str, port: int, prefix: str, deadline: float,
                 timeout: float) -> None:
        super().__init__(daemon=True)
        self.n, self.host, self.port, self.prefix = n, host, port, prefix
        self.deadline, self.timeout = deadline, timeout
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()

    def run(self) -> None:
        connection = None
        i = self.n
        while time.monotonic() < self.deadline:
            query = urllib.parse.urlencode({"q": QUERIES[i % len(QUERIES)], "k": 10})
            i += 1
            started = time.monotonic()
            try:
                connection = connection or http.client.HTTPConnection(
                    self.host, self.port, timeout=self.timeout)
                connection.request("GET", f"{self.prefix}/api/search?{query}")
                response = connection.getresponse()
                body = response.read()
                if response.status != 200 or b'"results"' not in body:
                    self.errors[f"HTTP {response.status}"] += 1
                    continue
                self.latencies.append((time.monotonic() - started) * 1000)
            except (OSError, http.client.HTTPException) as exc:
                self.errors[type(exc).__name__] += 1
                if connection is not None:
                    connection.close()
                connection = None
        if connection is not None:
            connection.close()


def run_load(url: str, clients: int, duration: float, timeout: float) -> dict:
    """Run the clients and summarise what they saw."""
    host, port, prefix = loopback(url)
    deadline = time.monotonic() + duration
    workers = [Client(n, host, port, prefix, deadline, timeout) for n in range(clients)]
    cpu_before = time.process_time()
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(duration + timeout + 5)
    elapsed = time.monotonic() - started
    client_cpu = time.process_time() - cpu_before  # the clients share the server's cores
    latencies = sorted(x for worker in workers for x in worker.latencies)
    errors = sum((worker.errors for worker in workers), Counter())
    ok = len(latencies)
    summary = {"url": url, "clients": clients, "duration_s": round(elapsed, 1), "ok": ok,
               "errors": dict(errors), "requests_per_s": round(ok / elapsed, 1),
               "client_cpu_cores": round(client_cpu / elapsed, 2)}
    if latencies:
        summary.update({f"p{q}_ms": round(percentile(latencies, q), 1) for q in (50, 95, 99)})
        summary["max_ms"] = round(latencies[-1], 1)
    return summary


def warm_up(url: str, seconds: float = 120.0, server: subprocess.Popen | None = None) -> None:
    """Wait for the server, and load the models in every worker before measuring."""
    host, port, prefix = loopback(url)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server is not None and server.poll() is not None:
            raise SystemExit(f"the server exited with status {server.returncode} before "
                             "answering (its errors are above)")
        try:
            connection = http.client.HTTPConnection(host, port, timeout=60)
            connection.request("GET", f"{prefix}/api/search?q=warm+up")
            if connection.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        raise SystemExit(f"the server at {url} did not answer within {seconds:.0f} s")
    run_load(url, clients=8, duration=5.0, timeout=60)  # every worker takes a few requests


def serve(var_dir: Path, port: int, workers: int, threads: int) -> subprocess.Popen:
    """Start gunicorn (or runserver) on 127.0.0.1:port over an existing catalog."""
    # One intra-op thread per torch call: a short query gains nothing from more, and on a
    # busy machine OpenMP spinning made MiniLM query encoding ten times slower (0.8 s).
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **os.environ,
           "REELSEARCH_VAR_DIR": str(var_dir), "DJANGO_DEBUG": "0",
           "REELSEARCH_READ_RATE": os.environ.get("REELSEARCH_READ_RATE", "1000000/minute"),
           "DJANGO_SETTINGS_MODULE": "deploy.settings",
           # a throwaway key for this loopback-only server, unless one is given
           "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50)}
    if not (var_dir / "db.sqlite3").exists():
        raise SystemExit(f"{var_dir}/db.sqlite3 is missing: run `make demo` (or ingest "
                         "demo/media with REELSEARCH_VAR_DIR set) first")
    gunicorn = Path(sys.executable).with_name("gunicorn")
    if gunicorn.exists() or shutil.which("gunicorn"):
        command = [str(gunicorn if gunicorn.exists() else shutil.which("gunicorn")),
                   "deploy.wsgi", "--config", str(ROOT / "deploy" / "gunicorn.conf.py"),
                   "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
                   "--threads", str(threads), "--log-level", "warning"]
    else:
        command = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    print("serving:", " ".join(command[:1] + command[1:]), file=sys.stderr)
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="")
    parser.add_argument("--serve", action="store_true", help="start a server on --port")
    parser.add_argument("--var-dir", type=Path, default=ROOT / "var")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    if not 1 <= args.clients <= 500 or not 1 <= args.duration <= 600:
        raise SystemExit("--clients must be 1..500 and --duration 1..600 seconds")
    url = args.url or f"http://127.0.0.1:{args.port}"
    server = serve(args.var_dir.resolve(), args.port, args.workers, args.threads) \
        if args.serve else None
    try:
        warm_up(url, server=server)
        load = os.getloadavg()[0]
        summary = run_load(url, args.clients, args.duration, args.timeout)
        summary.update(cpus=os.cpu_count(), load_average_1m_before=round(load, 2))
        if server is not None:
            summary["server"] = {"workers": args.workers, "threads": args.threads}
        print(json.dumps(summary, indent=2))
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)


if __name__ == "__main__":
    main()
