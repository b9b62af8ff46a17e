"""Speech recognition of a long narration in one stream and in several: speed and word error rate.

A narrated video made by bench/ingest_speed.py (the demo narrations, cycled) is extracted to
16 kHz audio once and transcribed by each profile with REELSEARCH_ASR_STREAMS = each of
--streams (one thread per stream), the settings taking turns run by run, so that a change in
the machine's load hits them alike. WER is against the narration text.

    python bench/asr_streams.py [--minutes 5 [--source VIDEO]] [--profiles accurate,fast]
                                [--streams 1,2] [--runs 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import ingest_speed
from _setup import django_in_tempdir
from asr_profiles import recognizer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=5.0,
                        help="the length to make, or that --source was made with")
    parser.add_argument("--source", type=Path, help="a video made by bench/ingest_speed.py")
    parser.add_argument("--profiles", default="accurate,fast")
    parser.add_argument("--streams", default="1,2")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="threads per stream")
    args = parser.parse_args()
    var = django_in_tempdir("bench-asr-streams-")
    from evaluation.metrics import word_error_rate
    from tests import media
    from workers.pipeline.media import extract_audio

    source = args.source.resolve() if args.source else ingest_speed.make_source(var, args.minutes)
    duration = media.media_duration(source)
    wav = extract_audio(source, var / "audio.wav")
    # The video speaks the narration parts make_source picks for --minutes.
    reference = " ".join(text for _, text in ingest_speed.narration_parts(args.minutes))
    settings_ = [(p, int(s)) for p in args.profiles.split(",") for s in args.streams.split(",")]
    models = {(p, s): recognizer(p, ASR_STREAMS=s, ASR_THREADS=args.threads)[0]
              for p, s in settings_}
    walls: dict[tuple[str, int], list[float]] = {key: [] for key in settings_}
    wer: dict[tuple[str, int], float] = {}
    before = os.getloadavg()
    for _ in range(args.runs):
        for key, model in models.items():
            started = time.perf_counter()
            words = model.transcribe(wav, duration, language="en").words
            walls[key].append(time.perf_counter() - started)
            wer[key] = word_error_rate([(reference, " ".join(w.text for w in words))])
    after = os.getloadavg()
    print(f"{source.name}: {duration:.1f} s of narration; threads per stream {args.threads}; "
          f"load average {before[0]:.2f} -> {after[0]:.2f}")
    print("| profile | streams | ASR wall, s (each run) | real-time factor (best) | WER |")
    print("|---|---:|---|---:|---:|")
    for (profile, streams), runs in walls.items():
        print(f"| {profile} | {streams} | {' / '.join(f'{w:.1f}' for w in runs)} | "
              f"{duration / min(runs):.1f}x | {100 * wer[profile, streams]:.2f} % |")
    print(json.dumps({f"{p}/{s}": {"wall_s": [round(w, 2) for w in runs],
                                   "wer": round(wer[p, s], 4)}
                      for (p, s), runs in walls.items()}))


if __name__ == "__main__":
    main()
