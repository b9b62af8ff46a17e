"""Worker throughput: narrated clips through real Celery workers on Redis, 1 and 2 processes.

For each pool size the script starts `celery -A deploy worker --concurrency=N` (prefork),
warms every pool process up (each loads Whisper and MiniLM once), then submits the clips at
once and measures, until every clip is ready:

* videos/hour and the real-time factor (media seconds processed per wall second);
* the peak resident memory (VmHWM) of the worker's main process and of each pool process.

The CPU threads are split between the pool processes (REELSEARCH_ASR_THREADS and
OMP_NUM_THREADS = cores / processes), as one would configure a production worker.

    python bench/worker_throughput.py [--videos 8] [--words 65] [--processes 1 2]

Needs Redis: REELSEARCH_TEST_REDIS_URL, or a private server started (and stopped again)
with `deploy/services redis-up`. Results also go to bench/results/worker_throughput.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from _setup import ROOT, django_in_tempdir


def narrations(count: int, words: int) -> list[str]:
    """Return `count` distinct narrations of about `words` words from the demo corpus."""
    data = json.loads((ROOT / "demo/media/narration.json").read_text())
    parts = [part["text"] for entry in data.values() for part in entry["parts"]]
    texts = []
    for n in range(count):
        chosen, total = [], 0
        for text in itertools.islice(itertools.cycle(parts), 3 * n, None):
            if total >= words:
                break
            chosen.append(text)
            total += len(text.split())
        texts.append(" ".join(chosen))
    return texts


def peak_rss_mb(pid: int) -> float:
    """Return a process's peak resident memory in MiB (VmHWM), or NaN once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def redis_url() -> tuple[str, bool]:
    """Return a Redis URL, starting the private server when none answers (and whether we did)."""
    from tests.celery_worker import redis_answers

    url = os.environ.get("REELSEARCH_TEST_REDIS_URL") or (
        f"redis://127.0.0.1:{os.environ.get('REELSEARCH_REDIS_PORT', '6390')}/0")
    if redis_answers(url):
        return url, False
    subprocess.run([str(ROOT / "deploy/services"), "redis-up"], check=True)
    return url, True


def submit_all(paths: list[Path], tag: str) -> list:
    """Create one video per file in a single transaction: all are queued at the commit."""
    from django.core.files import File
    from django.db import transaction

    from catalog.models import Video

    videos = []
    with transaction.atomic():
        for path in paths:
            video = Video(title=f"{tag} {path.stem}", original_name=path.name)
            with path.open("rb") as handle:
                video.source.save(f"{tag}-{path.name}", File(handle), save=False)
            video.save()
            videos.append(video)
    return videos


def wait_ready(videos: list, timeout: float) -> None:
    """Wait until every video is ready; fail on anything else."""
    from catalog.models import Video
    from workers.progress import wait_for

    running = wait_for([v.pk for v in videos], timeout=timeout, interval=0.25)
    if running:
        raise SystemExit(f"{len(running)} video(s) still running after {timeout:.0f} s")
    bad = Video.objects.filter(pk__in=[v.pk for v in videos]).exclude(status="ready")
    if bad.exists():
        raise SystemExit("; ".join(f"{v.title}: {v.status} {v.error}" for v in bad))


def run_pool(processes: int, clips: list[Path], warmups: list[Path], var: Path, url: str,
             timeout: float) -> dict:
    """Measure one pool size; return its row of results."""
    from django.conf import settings
    from django.db import connection

    from catalog.models import Video
    from tests.celery_worker import CeleryWorker, celery_broker, worker_env

    cores = os.cpu_count() or 1
    threads = max(1, cores // processes)
    prefix = f"reelsearch-bench-{uuid.uuid4().hex[:8]}:"
    env = worker_env(
        broker_url=url, key_prefix=prefix, database=connection.settings_dict,
        media_root=settings.MEDIA_ROOT, index_dir=settings.RETRIEVAL_BACKENDS["default"]["PATH"],
        work_dir=settings.REELSEARCH["WORK_DIR"], var_dir=var,
        REELSEARCH_ASR_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
    )
    logs = var / f"logs-{processes}"
    logs.mkdir(exist_ok=True)
    worker = CeleryWorker(env, logs, concurrency=processes)
    transport = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "global_keyprefix": prefix}
    with celery_broker(url, transport):
        worker.start()
        try:
            print(f"{processes} process(es): warming up with {len(warmups)} clips", flush=True)
            wait_ready(submit_all(warmups, f"warm{processes}"), timeout)
            load_before, started = os.getloadavg()[0], time.monotonic()
            videos = submit_all(clips, f"run{processes}")
            wait_ready(videos, timeout)
            wall, load_after = time.monotonic() - started, os.getloadavg()[0]
            rss = [peak_rss_mb(pid) for pid in worker.pids()]
        finally:
            worker.stop()
    media_s = sum(Video.objects.filter(pk__in=[v.pk for v in videos])
                  .values_list("duration", flat=True))
    return {"processes": processes, "threads_per_process": threads, "videos": len(videos),
            "media_s": round(media_s, 1), "wall_s": round(wall, 1),
            "videos_per_hour": round(len(videos) / wall * 3600),
            "realtime_factor": round(media_s / wall, 2),
            "peak_rss_main_mb": round(rss[0]),
            "peak_rss_pool_mb": [round(value) for value in rss[1:]],
            "load_average": [round(load_before, 1), round(load_after, 1)]}


def print_table(rows: list[dict]) -> None:
    """Print the results as a Markdown table."""
    print(f"\n{os.cpu_count()} CPU cores; load average (1 min) at the start and end of each run "
          "shows how busy the machine was.\n")
    print("| worker processes | threads each | videos | media s | wall s | videos/hour "
          "| real-time factor | peak RSS main | peak RSS per pool process | load avg |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r in rows:
        pool = ", ".join(f"{mb} MiB" for mb in r["peak_rss_pool_mb"])
        load = " → ".join(str(value) for value in r["load_average"])
        print(f"| {r['processes']} | {r['threads_per_process']} | {r['videos']} "
              f"| {r['media_s']} | {r['wall_s']} | {r['videos_per_hour']} "
              f"| {r['realtime_factor']}x | {r['peak_rss_main_mb']} MiB | {pool} | {load} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--words", type=int, default=65, help="words per narration (~25 s)")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    var = django_in_tempdir("bench-workers-")
    sys.path.insert(0, str(ROOT))
    from tests import media

    texts = narrations(args.videos + 2 * max(args.processes), args.words)
    started = time.perf_counter()
    paths = [media.make_video(var / "clips" / f"clip{n:02d}.mp4", narration=text)
             for n, text in enumerate(texts)]
    clips, warmups = paths[:args.videos], paths[args.videos:]
    print(f"generated {len(paths)} clips of {args.words} words in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    url, started_redis = redis_url()
    rows = []
    try:
        for processes in args.processes:
            rows.append(run_pool(processes, clips, warmups[:2 * processes], var, url,
                                 args.timeout))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        if started_redis:
            subprocess.run([str(ROOT / "deploy/services"), "redis-down"], check=False)
    print_table(rows)
    out = ROOT / "bench/results/worker_throughput.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cores": os.cpu_count(), "runs": rows}, indent=2))


if __name__ == "__main__":
    main()
