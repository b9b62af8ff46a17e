"""Ingestion speed: a ~5-minute narrated video through probe, audio, ASR, segments, embed, index.

Reports the wall time per stage, the real-time factor (media seconds per wall second) and
the peak resident memory of this process (models included).

    python bench/ingest_speed.py [--minutes 5]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time

from _setup import ROOT, django_in_tempdir, peak_rss_mb


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=5.0)
    args = parser.parse_args()
    var = django_in_tempdir("bench-ingest-")
    sys.path.insert(0, str(ROOT))
    from tests import media

    started = time.perf_counter()
    source, _ = media.make_narrated_video(var / "long.mp4", narration_parts(args.minutes))
    print(f"generated {source.name}: {media.media_duration(source):.1f} s of narration in "
          f"{time.perf_counter() - started:.1f} s", flush=True)

    from catalog.models import Video
    from retrieval.encoders import get_text_encoder
    from workers.ingest import register
    from workers.pipeline.asr import get_recognizer

    started = time.perf_counter()
    get_recognizer(), get_text_encoder()  # a worker loads its models once, not per video
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    video = register(source, {"title": "Long lecture"}).video
    wall = time.perf_counter() - started
    video = Video.objects.get(pk=video.pk)
    assert video.status == "ready", video.error
    timings = video.stage_timings
    print(json.dumps({"duration_s": round(video.duration, 1), "wall_s": round(wall, 1),
                      "model_load_s": round(load_s, 1),
                      "realtime_factor": round(video.duration / wall, 1),
                      "segments": video.segments.count(), "stages_s": timings,
                      "peak_rss_mb": round(peak_rss_mb())}, indent=2))


if __name__ == "__main__":
    main()
