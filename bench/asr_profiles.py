"""Speech recognition profiles on the spoken benchmark: word error rate and speed of each.

Every clip of bench/spoken (made by bench/spoken/make_manifest.py) is extracted to 16 kHz
audio once, then transcribed by each profile's model in turn (REELSEARCH_ASR_PROFILE:
accurate = Whisper base int8, fast = Whisper tiny.en int8), with the language given ("en").
WER is against the narration text the clip was spoken from (evaluation/metrics.py).

    python bench/asr_profiles.py [--manifest ~/.cache/reelsearch/spoken-bench/manifest.jsonl]
                                 [--limit N] [--profiles accurate,fast]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from _setup import ROOT, django_in_tempdir, peak_rss_mb

DEFAULT_MANIFEST = Path.home() / ".cache" / "reelsearch" / "spoken-bench" / "manifest.jsonl"


def clips(manifest: Path, limit: int | None) -> list[tuple[Path, float, str]]:
    """Return (media file, duration, narration text) per clip of the manifest."""
    texts = {c["id"]: c["text"] for c in
             json.loads((ROOT / "bench/spoken/texts.json").read_text())["clips"]}
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    found = [(manifest.parent / r["file"], float(r["duration"]), texts[r["clip_id"]])
             for r in rows if r["clip_id"] in texts]
    return found[:limit] if limit else found


def recognizer(profile: str, **overrides):
    """Load one profile's model (REELSEARCH overrides as given); return it and its load time."""
    from django.conf import settings

    from workers.pipeline.asr import SpeechRecognizer

    settings.REELSEARCH = {**settings.REELSEARCH, "ASR_PROFILE": profile,
                           "ASR_MODEL": settings.ASR_PROFILES[profile], **overrides}
    started = time.perf_counter()
    return SpeechRecognizer(), time.perf_counter() - started


def measure(profiles: list[str], audio: list[tuple[Path, float, str]]) -> list[dict]:
    """Transcribe every clip with each profile in turn; return WER and speed per profile.

    The profiles take turns clip by clip, so a change in the machine's load hits both alike.
    """
    from evaluation.metrics import word_error_rate

    loaded = {profile: recognizer(profile) for profile in profiles}
    pairs: dict[str, list[tuple[str, str]]] = {profile: [] for profile in profiles}
    wall = dict.fromkeys(profiles, 0.0)
    before = os.getloadavg()
    for wav, duration, text in audio:
        for profile, (model, _) in loaded.items():
            started = time.perf_counter()
            transcript = model.transcribe(wav, duration, language="en")
            wall[profile] += time.perf_counter() - started
            pairs[profile].append((text, " ".join(word.text for word in transcript.words)))
    after = os.getloadavg()
    seconds = sum(duration for _, duration, _ in audio)
    return [{"profile": profile, "model": model.label, "clips": len(audio),
             "audio_s": round(seconds, 1), "wall_s": round(wall[profile], 1),
             "realtime_factor": round(seconds / wall[profile], 1),
             "model_load_s": round(load_s, 1),
             "wer_percent": round(100 * word_error_rate(pairs[profile]), 2),
             "loadavg_before": [round(x, 2) for x in before],
             "loadavg_after": [round(x, 2) for x in after]}
            for profile, (model, load_s) in loaded.items()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--profiles", default="accurate,fast")
    args = parser.parse_args()
    django_in_tempdir("bench-asr-")
    from workers.pipeline.media import extract_audio

    with tempfile.TemporaryDirectory() as tmp:
        audio = [(extract_audio(path, Path(tmp) / f"{n}.wav", duration=duration), duration, text)
                 for n, (path, duration, text) in enumerate(clips(args.manifest, args.limit))]
        for row in measure([p.strip() for p in args.profiles.split(",")], audio):
            print(json.dumps(row), flush=True)
    print(json.dumps({"peak_rss_mb": round(peak_rss_mb())}))


if __name__ == "__main__":
    main()
