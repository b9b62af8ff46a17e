"""Ingestion speed: a narrated video with on-screen text through every default stage.

The video (640x360, 25 fps) is narrated by espeak-ng from the demo
narrations, with each part's first words shown as a caption while it is spoken, so every
default stage has work: keyframes, concepts, OCR, audio, ASR, segments, embed, index (CLIP
is off by default). It is ingested

* eagerly, in this process (no broker: the two branches run in two threads), and/or
* through a real `celery -A deploy worker` on Redis (the branches as two tasks at once),

and the script prints the wall time per stage (Video.stage_timings: each branch's stages
overlap the other's), the end-to-end wall time, the real-time factor (media seconds per
wall second), the peak resident memory (VmHWM) of the process(es) that did the work, and
the load average (the CPU is shared). Models are loaded before the clock starts.

    python bench/ingest_speed.py [--minutes 5] [--mode eager|worker|both]
                                 [--profile accurate|fast] [--concurrency 2] [--threads 2]
                                 [--asr-threads N]
                                 [--source VIDEO]   (reuse a video generated before)

--profile sets REELSEARCH_ASR_PROFILE; the worker mode needs Redis (REELSEARCH_TEST_REDIS_URL,
or the server `deploy/services redis-up` starts on REELSEARCH_REDIS_PORT).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
import uuid
from pathlib import Path

from _setup import ROOT, django_in_tempdir, peak_rss_mb

CAPTION_WORDS = 4


def narration_parts(minutes: float) -> list[tuple[str, str]]:
    """Cycle the demo narrations until they last about `minutes` (≈2.6 words/second)."""
    data = json.loads((ROOT / "demo/media/narration.json").read_text())
    texts = [part["text"] for entry in data.values() for part in entry["parts"]]
    parts, words = [], 0
    for n, text in enumerate(itertools.cycle(texts)):
        if words >= minutes * 60 * 2.6:
            break
        parts.append((f"p{n}", text))
        words += len(text.split())
    return parts


def make_source(var: Path, minutes: float) -> Path:
    """Generate the narrated, captioned video."""
    from tests import media

    parts = narration_parts(minutes)
    captions = {key: " ".join(text.split()[:CAPTION_WORDS]) for key, text in parts}
    started = time.perf_counter()
    source, _ = media.make_narrated_video(var / f"lecture-{minutes:g}min.mp4", parts,
                                          part_captions=captions, size=(640, 360), fps=25)
    print(f"generated {source}: {media.media_duration(source):.1f} s in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    return source


def summary(video, wall: float, rss_mb: dict[str, float], load: tuple[float, float]) -> dict:
    """Return one run's numbers."""
    timings = video.stage_timings
    return {"duration_s": round(video.duration, 1), "wall_s": round(wall, 1),
            "realtime_factor": round(video.duration / wall, 2),
            "stages_s": timings, "segments": video.segments.count(),
            "keyframes": video.keyframes.count(),
            "peak_rss_mb": {name: round(mb) for name, mb in rss_mb.items()},
            "load_average": [round(load[0], 2), round(load[1], 2)]}


def eager(source: Path) -> dict:
    """Ingest in this process (threads for the branches); return the numbers."""
    from catalog.models import Video
    from retrieval.encoders import get_text_encoder
    from workers.ingest import register
    from workers.pipeline.asr import get_recognizer
    from workers.pipeline.concepts import get_classifier
    from workers.pipeline.ocr import get_reader

    get_recognizer(), get_text_encoder(), get_classifier(), get_reader()  # loaded once a worker
    load_before, started = os.getloadavg()[0], time.perf_counter()
    video = register(source, {"title": "Long lecture (eager)"}).video
    wall = time.perf_counter() - started
    video = Video.objects.get(pk=video.pk)
    if video.status != "ready":
        raise SystemExit(f"eager run ended {video.status}: {video.error}")
    return {"mode": "eager", **summary(video, wall, {"process": peak_rss_mb()},
                                       (load_before, os.getloadavg()[0]))}


def through_worker(source: Path, var: Path, concurrency: int, threads: int,
                   profile: str, asr_threads: int = 0) -> dict:
    """Ingest through a real Celery worker on Redis; return the numbers."""
    from django.conf import settings
    from django.db import connection
    from worker_throughput import peak_rss_mb as pid_rss_mb
    from worker_throughput import redis_url, wait_ready

    from catalog.models import Video
    from tests.celery_worker import CeleryWorker, celery_broker, worker_env

    url, _ = redis_url()
    prefix = f"reelsearch-bench-{uuid.uuid4().hex[:8]}:"
    env = worker_env(
        broker_url=url, key_prefix=prefix, database=connection.settings_dict,
        media_root=settings.MEDIA_ROOT, index_dir=settings.RETRIEVAL_BACKENDS["default"]["PATH"],
        work_dir=settings.REELSEARCH["WORK_DIR"], var_dir=var, REELSEARCH_ASR_PROFILE=profile,
        REELSEARCH_ASR_THREADS=str(asr_threads or threads), REELSEARCH_VISUAL_THREADS=str(threads),
        REELSEARCH_ENCODE_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    logs = var / "worker-logs"
    logs.mkdir(exist_ok=True)
    worker = CeleryWorker(env, logs, concurrency=concurrency)
    transport = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "global_keyprefix": prefix}
    warm = make_warmup(var)
    with celery_broker(url, transport):
        worker.start()
        try:
            for n in range(concurrency):  # every pool process loads its models first
                wait_ready([submit(warm, f"warm-up {n}")], 900)
            load_before, started = os.getloadavg()[0], time.perf_counter()
            video = submit(source, "Long lecture (worker)")
            wait_ready([video], 6 * 3600)
            wall = time.perf_counter() - started
            load_after = os.getloadavg()[0]
            rss = {f"pool{n}": pid_rss_mb(pid) for n, pid in enumerate(worker.pids()[1:])}
            rss["main"] = pid_rss_mb(worker.pids()[0])
        finally:
            worker.stop()
    video = Video.objects.get(pk=video.pk)
    asr = f", ASR {asr_threads}" if asr_threads and asr_threads != threads else ""
    return {"mode": f"worker --concurrency={concurrency}, {threads} thread(s) each{asr}",
            **summary(video, wall, rss, (load_before, load_after))}


def make_warmup(var: Path) -> Path:
    """Return a short narrated, captioned clip that loads every model of a pool process."""
    from tests import media

    return media.make_narrated_video(var / "warmup.mp4", [("w", "A short warm up clip.")],
                                     part_captions={"w": "Warm up"})[0]


def submit(path: Path, title: str):
    """Create a video for a file (queued at the commit)."""
    from django.core.files import File

    from catalog.models import Video

    video = Video(title=title, original_name=path.name)
    with path.open("rb") as handle:
        video.source.save(f"{uuid.uuid4().hex[:8]}-{path.name}", File(handle), save=False)
    video.save()
    return video


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--mode", choices=("eager", "worker", "both"), default="both")
    parser.add_argument("--profile", choices=("accurate", "fast"), default="accurate")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--asr-threads", type=int, default=0,
                        help="REELSEARCH_ASR_THREADS (default: --threads)")
    parser.add_argument("--source", type=Path, help="a video generated by an earlier run")
    args = parser.parse_args()
    os.environ["REELSEARCH_ASR_PROFILE"] = args.profile
    var = django_in_tempdir("bench-ingest-")
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    from tests import media

    source = args.source.resolve() if args.source else make_source(var, args.minutes)
    args.minutes = round(media.media_duration(source) / 60, 1)
    rows = []
    if args.mode in ("eager", "both"):
        rows.append(eager(source))
        print(json.dumps(rows[-1]), flush=True)
    if args.mode in ("worker", "both"):
        rows.append(through_worker(source, var, args.concurrency, args.threads, args.profile,
                                   args.asr_threads))
        print(json.dumps(rows[-1]), flush=True)
    out = ROOT / f"bench/results/ingest_speed-{args.profile}-{args.minutes:g}min.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"profile": args.profile, "cores": os.cpu_count(),
                               "runs": rows}, indent=2))


if __name__ == "__main__":
    main()
