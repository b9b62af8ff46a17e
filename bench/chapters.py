"""Chapter boundaries on generated multi-topic videos: are the topic shifts found?

Each video joins narrations part by part until it lasts more than --minutes; the true
boundaries are the starts of parts 2..n (measured from the synthesised audio). Parts come
from --source:

- ``hard`` (default): a part is one group of bench/hard/texts.json, four clips about one
  subject (baking, planets, plumbing, ...; about 90 s);
- ``spoken``: a part is up to --per-topic clips of one topic of bench/spoken/texts.json
  (a looser category: "nature" joins bees, an octopus and migrating birds, so shifts inside
  a part are real topic shifts too, and count against precision).
 Every video goes through the real pipeline (ffmpeg,
Whisper, MiniLM, the chapters stage); visual stages are off unless --visual.

Reports the share of true boundaries with a chapter start within --tolerance seconds
(recall, the target is >= 80 % at 3 s), the share of chapter starts after 0:00 within that
distance of a true boundary (precision), and each video's chapters.

    python bench/chapters.py [--source hard|spoken] [--videos 3] [--minutes 5.5] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import defaultdict

from _setup import ROOT, django_in_tempdir


def source_parts(source: str, per_topic: int) -> list[list[dict]]:
    """Return the candidate parts: lists of clips ({"id", "text", "topic"}) on one topic."""
    if source == "hard":
        groups = json.loads((ROOT / "bench/hard/texts.json").read_text())["groups"]
        return [[{**clip, "topic": group["id"]} for clip in group["clips"]] for group in groups]
    clips = json.loads((ROOT / "bench/spoken/texts.json").read_text())["clips"]
    by_topic: dict[str, list[dict]] = defaultdict(list)
    for clip in clips:
        by_topic[clip["topic"]].append(clip)
    parts = [found[i:i + per_topic] for found in by_topic.values()
             for i in range(0, len(found), per_topic)]
    return [part for part in parts if len(part) >= 2]  # one clip (~20 s) is no chapter


def plan_videos(parts: list[list[dict]], videos: int, minutes: float,
                seed: int) -> list[list[list[dict]]]:
    """Return, per video, its parts in a shuffled order, no topic twice in a row."""
    rng = random.Random(seed)
    parts = list(parts)
    rng.shuffle(parts)
    plans: list[list[list[dict]]] = []
    words_needed = minutes * 60 * 2.6  # espeak-ng at 160 wpm speaks about 2.6 words a second
    while parts and len(plans) < videos:
        plan, words = [], 0
        while parts and words < words_needed:
            part = next((p for p in parts if not plan or p[0]["topic"] != plan[-1][0]["topic"]),
                        None)
            if part is None:
                break
            parts.remove(part)
            plan.append(part)
            words += sum(len(c["text"].split()) for c in part)
        plans.append(plan)
    return plans


def score(found: list[float], truth: list[float], tolerance: float) -> tuple[int, int]:
    """Return (true boundaries found, chapter starts near a true boundary)."""
    hits = sum(any(abs(f - t) <= tolerance for f in found) for t in truth)
    good = sum(any(abs(f - t) <= tolerance for t in truth) for f in found)
    return hits, good


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=5.5)
    parser.add_argument("--source", choices=("hard", "spoken"), default="hard")
    parser.add_argument("--per-topic", type=int, default=3, help="Clips per part (spoken).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerance", type=float, default=3.0)
    parser.add_argument("--visual", action="store_true", help="Keep the visual stages on.")
    args = parser.parse_args()
    if not args.visual:
        os.environ.setdefault("REELSEARCH_CONCEPT_MODEL", "")
        os.environ.setdefault("REELSEARCH_OCR", "0")
    var = django_in_tempdir("bench-chapters-")
    sys.path.insert(0, str(ROOT))
    from catalog.models import Video
    from tests import media
    from workers.ingest import register

    parts = source_parts(args.source, args.per_topic)
    plans = plan_videos(parts, args.videos, args.minutes, args.seed)
    load = os.getloadavg()
    totals = {"truth": 0, "hits": 0, "found": 0, "good": 0}
    for n, plan in enumerate(plans):
        narration = [(clip["id"], clip["text"]) for part in plan for clip in part]
        path, timings = media.make_narrated_video(var / f"topics{n}.mp4", narration)
        starts = {t.key: t.start for t in timings}
        truth = [starts[part[0]["id"]] for part in plan[1:]]
        began = time.perf_counter()
        video = Video.objects.get(pk=register(path, {"title": f"topics {n}"}).video.pk)
        assert video.status == "ready", video.error
        found = [c["start"] for c in video.chapters[1:]]
        hits, good = score(found, truth, args.tolerance)
        for key, value in (("truth", len(truth)), ("hits", hits), ("found", len(found)),
                           ("good", good)):
            totals[key] += value
        print(json.dumps({
            "video": n, "duration_s": round(video.duration, 1),
            "topics": [part[0]["topic"] for part in plan],
            "true_boundaries": [round(t, 1) for t in truth],
            "chapters": [[c["start"], c["title"]] for c in video.chapters],
            "boundaries_found": f"{hits}/{len(truth)}",
            "chapters_stage_s": video.stage_timings.get("chapters"),
            "wall_s": round(time.perf_counter() - began, 1)}), flush=True)
    print(json.dumps({
        "source": args.source, "seed": args.seed, "videos": len(plans),
        "tolerance_s": args.tolerance,
        "recall": round(totals["hits"] / max(totals["truth"], 1), 3),
        "precision": round(totals["good"] / max(totals["found"], 1), 3),
        "true_boundaries": totals["truth"], "chapter_starts": totals["found"],
        "load_average": [round(x, 1) for x in load],
        "load_average_end": [round(x, 1) for x in os.getloadavg()]}, indent=2))


if __name__ == "__main__":
    main()
