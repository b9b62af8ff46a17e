"""Text-to-video retrieval on a dev set, per signal and per segment kind (the visual stream).

Ingests the clips of a manifest (JSON lines: clip_id, file, captions; see
evaluation/evaluation.py) into a throwaway catalog with the full pipeline, then asks every
caption and ranks the videos under several configurations: each query signal alone (bm25,
text, visual when a CLIP model is configured), the hybrid (bm25 + text [+ visual]), and the
hybrid restricted to one segment kind (visual concepts, on-screen text, speech, metadata).
Clips get neutral titles ("clip 7") so file names do not leak the answer.

    python bench/devset_visual.py ../shared/data/devset [--concept-model efficientnet-lite0]

The dev set stays where it is: nothing is copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from _setup import django_in_tempdir

CONFIGS = [
    # (label, signals, kinds)
    ("BM25, all kinds", ("bm25",), ()),
    ("text-dense, all kinds", ("text",), ()),
    ("fused (bm25 + text), all kinds", ("bm25", "text"), ()),
    ("concepts: BM25 over lemmas", ("bm25",), ("visual",)),
    ("concepts: text-dense (weighted concept vectors)", ("text",), ("visual",)),
    ("concepts: fused", ("bm25", "text"), ("visual",)),
    ("on-screen text (OCR): fused", ("bm25", "text"), ("ocr",)),
    ("speech: fused", ("bm25", "text"), ("speech",)),
    ("metadata: fused", ("bm25", "text"), ("metadata",)),
]


def configure(args: argparse.Namespace) -> None:
    """Set model settings through the environment before Django reads them."""
    if args.concept_model is not None:
        os.environ["REELSEARCH_CONCEPT_MODEL"] = args.concept_model
    if args.max_interval is not None:
        os.environ["REELSEARCH_KEYFRAME_MAX_INTERVAL"] = str(args.max_interval)
    if args.visual_model:
        os.environ["REELSEARCH_VISUAL_MODEL"] = args.visual_model


def ranking(query: str, signals: tuple[str, ...], kinds: tuple[str, ...]) -> list:
    """Return the (video id, score) list search() gives for a query."""
    from retrieval.documents import Filters
    from retrieval.search import MAX_K, SearchRequest, search

    request = SearchRequest(query=query, k=MAX_K, signals=signals, filters=Filters(kinds=kinds))
    return [(str(m.video.pk), m.score) for m in search(request).results]


def evaluate(queries: list, catalog: list[str], configs: list) -> list[dict]:
    """Return R@1/5/10 and median rank of each configuration."""
    from evaluation import metrics

    rows = []
    for label, signals, kinds in configs:
        ranks = [[metrics.rank_of(ranking(q.text, signals, kinds), t, len(catalog))
                  for t in q.targets] for q in queries]
        summary = metrics.retrieval_metrics(ranks)
        rows.append({"config": label, **{k: summary[k] for k in ("R@1", "R@5", "R@10", "MdR")}})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("devset", type=Path, help="folder with manifest.jsonl and the clips")
    parser.add_argument("--concept-model", default=None)
    parser.add_argument("--max-interval", type=float, default=None)
    parser.add_argument("--visual-model", default="")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    parser.add_argument("--show", action="store_true", help="print each clip's concepts")
    args = parser.parse_args()
    configure(args)
    django_in_tempdir("bench-devset-")
    from django.core.management import call_command

    call_command("export_concept_model")  # another variant's ONNX file, made once if missing
    from catalog.models import Segment, Video
    from evaluation.evaluation import build_queries, load_manifest, prepare_catalog
    from evaluation.metrics import chance_metrics
    from retrieval.encoders import visual_model_name

    manifest = load_manifest(args.devset.resolve() / "manifest.jsonl")
    started = time.perf_counter()
    ready = prepare_catalog(manifest, throwaway=True, log=lambda line: None)
    ingest_s = time.perf_counter() - started
    queries, _ = build_queries(manifest, ready)
    catalog = [str(pk) for pk in Video.objects.values_list("pk", flat=True)]
    configs = list(CONFIGS)
    if visual_model_name():
        configs[3:3] = [("visual-dense (CLIP), visual kind", ("visual",), ())]
    rows = evaluate(queries, catalog, configs)
    if args.show:
        for clip_id, video_id in ready.items():
            texts = Segment.objects.filter(video_id=video_id, kind="visual").values_list(
                "text", flat=True)
            print(f"{clip_id}: {' | '.join(texts)}")
    chance = chance_metrics(len(catalog))
    from django.conf import settings

    keyframes = [Video.objects.get(pk=v).keyframes.count() for v in ready.values()]
    print(f"\n{len(ready)} clips, {len(queries)} queries; concept model "
          f"{settings.REELSEARCH['CONCEPT_MODEL']}; {statistics.fmean(keyframes):.1f} keyframes "
          f"per clip; ingestion {ingest_s:.0f} s")
    print("\n| configuration | R@1 | R@5 | R@10 | median rank |\n|---|---:|---:|---:|---:|")
    for row in [*rows, {"config": "chance", **chance}]:
        print(f"| {row['config']} | {row['R@1']:.2f} | {row['R@5']:.2f} | {row['R@10']:.2f} "
              f"| {row['MdR']:g} |")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "chance": chance}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
