"""Cost of the visual stream on this machine: keyframes, classification, OCR, end to end.

Makes a narrated 1280x720 25 fps clip (about --seconds long) whose picture is either
ffmpeg's testsrc2 pattern with a caption per narration part (default), or the clips of a
dev set scaled to 720p and cut one after another (``--devset DIR``: real footage with
scene cuts; nothing is copied into the repository). Then reports

* keyframes: decoded video frames per second of wall time (one ffmpeg pass with the scene
  rule), and the keyframes it kept;
* classification: keyframes per second through each EfficientNet-Lite variant (batch 8),
  in onnxruntime (the variants `make concept-model` exported) and in torch;
* OCR: keyframes per second through PP-OCR, with and without text on screen;
* end to end: the clip through every pipeline stage (models loaded beforehand, as in a
  worker), per-stage wall time and the real-time factor (media seconds per wall second).

    python bench/visual_cost.py [--seconds 60] [--devset ../shared/data/devset] [--repeat 3]
                                [--clip made-earlier.mp4] [--end-to-end-only]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _setup import ROOT, django_in_tempdir, peak_rss_mb

SIZE = (1280, 720)
FPS = 25


def narration(seconds: float) -> list[tuple[str, str]]:
    """Cycle the demo narrations until they last about `seconds` (≈2.6 words/second)."""
    data = json.loads((ROOT / "demo/media/narration.json").read_text())
    texts = [part["text"] for entry in data.values() for part in entry["parts"]]
    parts, words = [], 0
    for n, text in enumerate(itertools.cycle(texts)):
        if words >= seconds * 2.6:
            break
        parts.append((f"p{n}", text))
        words += len(text.split())
    return parts


def caption(text: str) -> str:
    """Return the first words of a narration part as an on-screen title."""
    return " ".join(text.split()[:4]).strip(",.").upper()


def make_clip(out: Path, seconds: float, devset: Path | None) -> Path:
    """Write the benchmark clip (see the module docstring)."""
    from tests import media

    parts = narration(seconds)
    if devset is None:
        path, _ = media.make_narrated_video(
            out, parts, size=SIZE, fps=FPS, background="testsrc2",
            part_captions={key: caption(text) for key, text in parts})
        return path
    with tempfile.TemporaryDirectory(prefix="bench-visual-") as tmp:
        wav, _ = media.concat_narrations(parts, Path(tmp) / "narration.wav")
        duration = media.wav_duration(wav) + 0.5
        clips = sorted((devset / "clips").glob("*.mp4"))
        listing = Path(tmp) / "list.txt"
        listing.write_text("".join(f"file '{clip.resolve()}'\n" for clip in clips) * 20)
        scale = f"scale={SIZE[0]}:{SIZE[1]},fps={FPS},format=yuv420p"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "concat", "-safe", "0",
                        "-i", str(listing), "-i", str(wav), "-map", "0:v", "-map", "1:a",
                        "-vf", scale, "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
                        "-c:a", "aac", "-b:a", "32k", "-ac", "1", "-t", f"{duration:.3f}",
                        str(out)], check=True)
    return out


def timed(function, repeat: int) -> tuple[float, float]:
    """Return the median wall and CPU seconds of `repeat` calls (after one warm-up call).

    CPU seconds (all threads of this process, plus ffmpeg children) show the cost without
    the noise of other processes sharing the cores.
    """
    function()
    walls, cpus = [], []
    for _ in range(repeat):
        started, cpu = time.perf_counter(), _cpu()
        function()
        walls.append(time.perf_counter() - started)
        cpus.append(_cpu() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def _cpu() -> float:
    own, children = os.times(), os.times()
    return own.user + own.system + children.children_user + children.children_system


def rates(count: int, wall: float, cpu: float) -> dict:
    """Return items per wall second and per CPU second."""
    return {"per_s": round(count / wall, 2), "per_cpu_s": round(count / cpu, 2)}


def component_costs(clip: Path, work: Path, duration: float, repeat: int) -> dict:
    """Measure keyframe extraction, classification per variant and OCR."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    from workers.pipeline import concepts, frames, ocr

    rule = frames.KeyframeRule.from_settings()
    out = work / "frames"
    wall, cpu = timed(lambda: frames.extract_keyframes(clip, out, rule, duration), repeat)
    picked = frames.extract_keyframes(clip, out, rule, duration)
    images = [frames.load_rgb(item.frame) for item in picked]
    result = {"keyframes": {"video_frames": rates(round(duration * FPS), wall, cpu),
                            "realtime_factor": round(duration / wall, 1),
                            "kept": len(picked),
                            "kept_per_minute": round(len(picked) * 60 / duration, 1)}}
    sample = (images * 8)[:16]
    result["classification"] = {}
    threads = settings.REELSEARCH["VISUAL_THREADS"]
    default = settings.REELSEARCH
    for name, runtime in itertools.product(concepts.PACKAGED_CLASSIFIERS, ("onnx", "torch")):
        settings.REELSEARCH = {**default, "VISUAL_RUNTIME": runtime}
        try:
            classifier = concepts.ConceptClassifier(name)
        except ImproperlyConfigured:
            continue  # that variant's weights package is not installed, or not exported
        finally:
            settings.REELSEARCH = default
        wall, cpu = timed(lambda c=classifier: [c.probabilities(sample[i:i + 8], threads)
                                                for i in range(0, len(sample), 8)], repeat)
        result["classification"][f"{name} ({runtime})"] = rates(len(sample), wall, cpu)
    reader = ocr.TextReader(settings.REELSEARCH["OCR_DET_MAX_SIDE"],
                            settings.REELSEARCH["VISUAL_THREADS"])
    texty = [image for image in images if reader.read(image).lines][:4] or images[:4]
    blank = [(image * 0 + 90).astype(image.dtype) for image in images[:4]]
    for label, batch in (("with_text", texty), ("no_text", blank)):
        wall, cpu = timed(lambda b=batch: [reader.read(image) for image in b], repeat)
        result[f"ocr_{label}"] = rates(len(batch), wall, cpu)
    return result


def end_to_end(clip: Path, visual: bool = True) -> dict:
    """Run the clip through every stage with the models already loaded.

    Without `visual`, the keyframes, concepts, OCR and CLIP stages do nothing: the baseline
    the visual stream adds to.
    """
    from catalog.models import Video
    from retrieval.encoders import get_text_encoder
    from workers import pipeline
    from workers.ingest import register
    from workers.pipeline.asr import get_recognizer
    from workers.pipeline.concepts import class_embeddings, get_classifier, imagenet_classes
    from workers.pipeline.ocr import get_reader

    started = time.perf_counter()
    get_recognizer(), get_text_encoder(), get_classifier(), get_reader()
    class_embeddings(range(len(imagenet_classes())))  # a busy worker has them all cached
    load_s = time.perf_counter() - started
    stage_cpu: dict[str, float] = {}
    original = dict(pipeline.STAGES)
    for name, function in original.items():
        stage = _skip if not visual and name in VISUAL_STAGES else function

        def measured(ctx, stage=stage, name=name):
            cpu = _cpu()
            stage(ctx)
            stage_cpu[name] = round(_cpu() - cpu, 2)
        pipeline.STAGES[name] = measured
    started, cpu = time.perf_counter(), _cpu()
    video = register(clip, {"title": "Visual cost"}).video
    wall, cpu = time.perf_counter() - started, _cpu() - cpu
    pipeline.STAGES.update(original)
    video = Video.objects.get(pk=video.pk)
    assert video.status == "ready", video.error
    kinds = {kind: video.segments.filter(kind=kind).count()
             for kind in ("speech", "ocr", "visual", "metadata")}
    result = {"duration_s": round(video.duration, 1), "wall_s": round(wall, 1),
              "realtime_factor": round(video.duration / wall, 2), "cpu_s": round(cpu, 1),
              "load_average_after": round(os.getloadavg()[0], 1),
              "model_load_s": round(load_s, 1), "keyframes": video.keyframes.count(),
              "segments": kinds, "stages_wall_s": video.stage_timings,
              "stages_cpu_s": stage_cpu, "auto_tags": video.auto_tags,
              "peak_rss_mb": round(peak_rss_mb())}
    video.delete()  # so that the next run registers the same file again
    return result


VISUAL_STAGES = ("keyframes", "concepts", "ocr", "clip")


def _skip(ctx) -> None:
    """Stand in for a visual stage in the baseline run."""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--devset", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clip", type=Path, default=None, help="reuse a clip made earlier")
    parser.add_argument("--end-to-end-only", action="store_true")
    parser.add_argument("--baseline", action="store_true",
                        help="also run the clip without the visual stages, for comparison")
    args = parser.parse_args()
    var = django_in_tempdir("bench-visual-")
    sys.path.insert(0, str(ROOT))
    from tests import media

    clip = args.clip or make_clip(var / "clip720.mp4", args.seconds, args.devset)
    duration = media.media_duration(clip)
    print(f"clip: {clip.name}, {duration:.1f} s, {SIZE[0]}x{SIZE[1]} {FPS} fps; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    if not args.end_to_end_only:
        costs = component_costs(clip, var / "work-bench", duration, args.repeat)
        print(json.dumps(costs, indent=2), flush=True)
    if args.baseline:
        baseline = end_to_end(clip, visual=False)
        print(json.dumps({"baseline_without_visual_stages": baseline}, indent=2), flush=True)
    print(json.dumps(end_to_end(clip), indent=2))


if __name__ == "__main__":
    main()
