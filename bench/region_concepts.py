"""Measure region concepts: R@1/R@5 with and without them, and their cost in frames/s.

    python bench/region_concepts.py --manifest DEVSET/manifest.jsonl [--frames 3]

Two sets built from the manifest's clips (e.g. the DAVIS dev set; nothing is written):

- the clips as they are;
- a generated small-object set: each clip's frames shrunk to 40% of a side and pasted into
  a corner (a different corner per clip) of another clip's frame, so the captioned subject
  covers 16% of the picture and another scene fills the rest.

Each clip gives ``--frames`` frames (evenly spaced); they form one visual window, classified
as the concept stage does (workers/pipeline/concepts.py): the whole-frame segment (pooled
classes, probability-weighted class embedding), plus, with regions, one segment per region
class that `region_picks` keeps. Captions are asked through the text-dense signal (cosine,
a clip scored by its best segment). Cost: the classifier alone versus with regions on the
same frames, alternated, best of three; and, for comparison, the regions' crops classified
on their own (five more forward passes per frame).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
WIDTH, HEIGHT = 428, 240


def setup() -> None:
    """Configure Django with its defaults (nothing is written)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deploy.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")
    import django

    django.setup()


def frames_of(path: Path, duration: float, count: int) -> list[np.ndarray]:
    """Return ``count`` RGB frames spread over the clip, WIDTH x HEIGHT."""
    out = []
    for n in range(count):
        at = duration * (n + 1) / (count + 1)
        raw = subprocess.run(  # noqa: S603 - fixed arguments, our own files
            ["ffmpeg", "-v", "error", "-ss", f"{at:.2f}", "-i", str(path), "-frames:v", "1",
             "-vf", f"scale={WIDTH}:{HEIGHT}", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
            check=True, capture_output=True).stdout
        out.append(np.frombuffer(raw, dtype=np.uint8).reshape(HEIGHT, WIDTH, 3))
    return out


def small_object(subject: np.ndarray, scene: np.ndarray, corner: int) -> np.ndarray:
    """Paste the subject, shrunk to 40% a side, into one corner of the scene."""
    from PIL import Image

    width, height = int(WIDTH * 0.4), int(HEIGHT * 0.4)
    small = np.asarray(Image.fromarray(subject).resize((width, height), Image.BICUBIC))
    frame = scene.copy()
    # Corners of the centred square the classifier sees (its 2x2 grid), not of the frame.
    left = (WIDTH - HEIGHT) // 2 + (0 if corner % 2 == 0 else HEIGHT - width)
    top = 0 if corner < 2 else HEIGHT - height
    frame[top:top + height, left:left + width] = small
    return frame


def crop_probabilities(classifier, frames: list[np.ndarray]) -> np.ndarray:
    """Return frames x regions x classes from classifying each region's crop on its own."""
    from workers.pipeline.concepts import REGIONS

    side = min(HEIGHT, WIDTH)
    left, top = (WIDTH - side) // 2, (HEIGHT - side) // 2
    crops = [frame[top + round(y * side):top + round((y + h) * side),
                   left + round(x * side):left + round((x + w) * side)]
             for frame in frames for x, y, w, h in REGIONS]
    rows = np.concatenate([classifier.probabilities(crops[i:i + 8], 1)
                           for i in range(0, len(crops), 8)])
    return rows.reshape(len(frames), len(REGIONS), -1)


def segments(whole: np.ndarray, regions: np.ndarray, with_regions: bool) -> np.ndarray:
    """Return the concept segment vectors of one window (as the concept stage builds them)."""
    from django.conf import settings

    from workers.pipeline.concepts import class_embeddings, concept_vector, pool, region_picks

    conf = settings.REELSEARCH
    concepts = pool(whole, conf["CONCEPTS_PER_WINDOW"], conf["CONCEPT_MIN_PROBABILITY"])
    rows = [concept_vector(concepts, class_embeddings([i for i, _ in concepts]))]
    if with_regions:
        rows += [class_embeddings([index])[0] for _, index, _ in
                 region_picks(whole, regions, conf["REGION_MIN_PROBABILITY"])]
    return np.stack(rows)


def recall(clips: list[tuple[np.ndarray, np.ndarray]], queries: np.ndarray,
           with_regions: bool) -> tuple[float, float, int]:
    """Return R@1, R@5 (0-100) of query i finding clip i, and the region segments made."""
    made = [segments(whole, regions, with_regions) for whole, regions in clips]
    scores = np.stack([(queries @ rows.T).max(axis=1) for rows in made], axis=1)
    ranks = [int((scores[i] > scores[i, i]).sum()) + 1 for i in range(len(queries))]
    extra = sum(len(rows) - 1 for rows in made)
    return (100 * np.mean([r <= 1 for r in ranks]), 100 * np.mean([r <= 5 for r in ranks]),
            extra)


def cost(classifier, frames: list[np.ndarray]) -> tuple[float, float]:
    """Return frames/s of the classifier alone and with regions (alternated, best of 3)."""
    plain, regional = [], []
    for _ in range(3):
        for runs, call in ((plain, classifier.probabilities),
                           (regional, classifier.region_probabilities)):
            started = time.perf_counter()
            for i in range(0, len(frames), 8):
                call(frames[i:i + 8], 1)
            runs.append(time.perf_counter() - started)
    return len(frames) / min(plain), len(frames) / min(regional)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=3)
    args = parser.parse_args()
    setup()
    from retrieval.encoders import get_text_encoder
    from workers.pipeline.concepts import get_classifier

    entries = [json.loads(line) for line in args.manifest.read_text().splitlines() if line]
    entries = [e for e in entries if "clip_id" in e]
    pictures = [frames_of(args.manifest.parent / e["file"], float(e["duration"]), args.frames)
                for e in entries]
    queries = get_text_encoder().encode([e["captions"][0] for e in entries])
    classifier = get_classifier()
    sets = {"devset clips": pictures,
            "small objects": [[small_object(f, pictures[(n + 1) % len(pictures)][k], n % 4)
                               for k, f in enumerate(frames)]
                              for n, frames in enumerate(pictures)]}
    print(f"{len(entries)} clips x {args.frames} frames, load average "
          f"{os.getloadavg()[0]:.1f}\n| set | regions | R@1 | R@5 | region segments |\n"
          "|---|---|---:|---:|---:|")
    for name, clips in sets.items():
        scored = [classifier.region_probabilities(frames, 1) for frames in clips]
        cropped = [(whole, crop_probabilities(classifier, frames))
                   for (whole, _), frames in zip(scored, clips, strict=True)]
        for label, clips_scored, with_regions in (("off", scored, False),
                                                  ("on (feature map)", scored, True),
                                                  ("on (crops re-run)", cropped, True)):
            r1, r5, extra = recall(clips_scored, queries, with_regions)
            print(f"| {name} | {label} | {r1:.1f} | {r5:.1f} | {extra} |", flush=True)
    flat = [frame for frames in sets["small objects"] for frame in frames]
    plain, regional = cost(classifier, flat)
    started = time.perf_counter()
    crop_probabilities(classifier, flat)
    crops = len(flat) / (time.perf_counter() - started)
    print(f"classifier: {plain:.2f} frames/s alone, {regional:.2f} with feature-map regions "
          f"({plain / regional:.2f}x the cost), plus {crops:.2f} frames/s for the re-run "
          f"crops ({plain / crops + 1:.2f}x); load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
