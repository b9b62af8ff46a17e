"""Peak memory of the audio and ASR stages on a long silent video (black picture, silent AAC).

A child process extracts the audio (workers/pipeline/media.extract_audio) and runs speech
recognition (workers/pipeline/asr) on it, then reports its peak resident memory (and that
after loading the ASR model, which any run pays); the parent prints them as JSON.

    python bench/audio_memory.py [--hours 2] [--keep FILE]

The generated file is cached under bench/results/ (about 60 MB for two hours).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_silent(path: Path, seconds: float) -> Path:
    """Write a black, silent MP4 (2 fps, 64x36, AAC 16 kHz mono) of the given length."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial.mp4")
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
         f"color=c=black:s=64x36:r=2:d={seconds}", "-f", "lavfi", "-i",
         f"anullsrc=r=16000:cl=mono:d={seconds}", "-c:v", "libx264", "-preset", "ultrafast",
         "-c:a", "aac", "-b:a", "24k", "-shortest", str(tmp)], check=True)
    tmp.replace(path)
    return path


def rss_mb() -> float:
    """Return this process's peak resident memory so far, in MB.

    VmHWM, not ``ru_maxrss``: the latter keeps a forking parent's size across exec.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("/proc/self/status has no VmHWM line")


def current_rss_mb() -> float:
    """Return this process's resident memory now, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(source: Path, seconds: float) -> dict:
    """Run the audio and ASR stages on source in this process; return the measurements."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from workers.pipeline import media
    from workers.pipeline.asr import get_recognizer

    recognizer = get_recognizer()
    loaded = current_rss_mb()
    with tempfile.TemporaryDirectory(prefix="audio-memory-") as tmp:
        started = time.perf_counter()
        wav = media.extract_audio(source, Path(tmp) / "audio.wav", duration=seconds)
        extracted = time.perf_counter()
        transcript = recognizer.transcribe(wav, seconds, language="en")
        done = time.perf_counter()
    return {"model_loaded_rss_mb": round(loaded, 1), "peak_rss_mb": round(rss_mb(), 1),
            "peak_above_model_mb": round(rss_mb() - loaded, 1),
            "extract_seconds": round(extracted - started, 1),
            "asr_seconds": round(done - extracted, 1), "words": len(transcript.words)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    seconds = args.hours * 3600
    if args.child:
        print(json.dumps(child(args.child, seconds)))
        return 0
    source = make_silent(ROOT / "bench" / "results" / f"silence-{args.hours:g}h.mp4", seconds)
    load = os.getloadavg()
    proc = subprocess.run([sys.executable, __file__, "--hours", str(args.hours), "--child",
                           str(source)], capture_output=True, text=True, check=False,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        return 1
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update(hours=args.hours, load_average=[round(x, 2) for x in load])
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
