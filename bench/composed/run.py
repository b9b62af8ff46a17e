"""Measure composed queries against more-like-this alone and the modifier text alone.

    python bench/composed/make_manifest.py
    python bench/composed/run.py [--manifest FILE] [--catalog DIR] [--backend NAME]

Ingests the clips of the manifest (bench/composed/make_manifest.py) through the pipeline
into a catalog kept in --catalog (reused by the next run), then asks each composed query
three ways and prints R@1, R@5 and the median rank of its target clip:

- composed: ``search(SearchRequest(query=modifier, like=reference))``, under each weighting
  of the composed signals in WEIGHTINGS (the first is the shipped default);
- similar: ``similar_videos(reference)``, the modifier ignored;
- text: ``search(SearchRequest(query=modifier))``, the reference ignored.

The reference clip is never counted (composed and similar exclude it; text drops it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from bench.generated import cache_dir  # noqa: E402

WEIGHTINGS = {
    "default: rankings fused (like 1, text 1, bm25 0.5)": None,
    "vector arithmetic alone (composed 1)": {"like": 0, "composed": 1, "text": 0, "bm25": 0},
    "default + vector arithmetic (composed 1)": {"composed": 1},
    "default + vector arithmetic (composed 2)": {"composed": 2},
    "default without bm25": {"bm25": 0},
    "rankings, rrf": "rrf",
}


def setup(catalog: Path) -> None:
    """Configure Django on a catalog kept in ``catalog`` (created when missing)."""
    catalog.mkdir(parents=True, exist_ok=True)
    os.environ["REELSEARCH_VAR_DIR"] = str(catalog)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deploy.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ.pop("CELERY_BROKER_URL", None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def rank(video_ids: list[str], target: str) -> int:
    """Return the 1-based rank of target (a large number when it is missing)."""
    return video_ids.index(target) + 1 if target in video_ids else 10**6


def summary(ranks: list[int]) -> str:
    """Return R@1, R@5 and the median rank as one table row's cells."""
    n = len(ranks)
    r1 = 100 * sum(r <= 1 for r in ranks) / n
    r5 = 100 * sum(r <= 5 for r in ranks) / n
    return f"{r1:5.1f} | {r5:5.1f} | {statistics.median(ranks):g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path,
                        default=cache_dir("composed-bench") / "manifest.jsonl")
    parser.add_argument("--catalog", type=Path, default=cache_dir("composed-bench") / "catalog")
    parser.add_argument("--backend", default="default")
    args = parser.parse_args()
    setup(args.catalog.expanduser().resolve())

    from django.conf import settings

    from catalog.models import Video
    from evaluation.evaluation import load_manifest, prepare_catalog
    from retrieval.fusion import FusionSpec
    from retrieval.recommend import similar_videos
    from retrieval.search import MAX_K, SearchRequest, search

    manifest = load_manifest(args.manifest)
    ready = prepare_catalog(manifest, throwaway=True, log=lambda line: None)
    entries = [json.loads(line) for line in args.manifest.read_text().splitlines() if line]
    queries = [(ready[q["like"]], q["q"], ready[e["clip_id"]]) for e in entries
               for q in e["composed"] if q["like"] in ready and e["clip_id"] in ready]
    print(f"{len(ready)} clips, {len(queries)} composed queries, backend {args.backend}, "
          f"load average {os.getloadavg()[0]:.1f}")
    rows: dict[str, list[int]] = {}
    for label, weights in WEIGHTINGS.items():
        rrf = weights == "rrf"
        settings.REELSEARCH["COMPOSED_WEIGHTS"] = {} if rrf else (weights or {})
        fusion = FusionSpec("rrf") if rrf else None
        rows[f"composed: {label}"] = [
            rank([str(m.video.pk) for m in search(SearchRequest(
                query=q, like=ref, k=MAX_K, backend=args.backend, fusion=fusion)).results],
                 target)
            for ref, q, target in queries]
    settings.REELSEARCH["COMPOSED_WEIGHTS"] = {}
    videos = {str(pk): video for pk, video in Video.objects.in_bulk(list(ready.values())).items()}
    rows["similar (reference only)"] = [
        rank([str(p.video.pk) for p in similar_videos(videos[ref], k=50,
                                                              backend=args.backend)], target)
        for ref, _, target in queries]
    rows["text search (modifier only)"] = [
        rank([str(m.video.pk) for m in search(SearchRequest(query=q, k=MAX_K,
                                                             backend=args.backend)).results
              if str(m.video.pk) != ref], target)
        for ref, q, target in queries]
    print("| method | R@1 | R@5 | median rank |\n|---|---:|---:|---:|")
    for label, ranks in rows.items():
        print(f"| {label} | {summary(ranks)} |")
    print(f"(load average after: {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
