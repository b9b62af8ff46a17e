"""Measure the catalog-trained text adapter on evaluated benchmark catalogs.

    python bench/adapter.py --catalog DIR --manifest FILE [--catalog DIR --manifest FILE ...]

DIR is a catalog `manage.py evaluate` left behind (its db.sqlite3 is copied, never
changed). For each catalog: train the adapter as `manage.py train_adapter` does (pairs from
the catalog only; the benchmark's captions are never seen), then ask every caption of the
manifest through the text-dense signal (exact cosine over every segment's stored frozen
vector, a video scored by its best segment) without and with the adapter, and print R@1 and
R@5. Clips are matched to catalog videos by SHA-256.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def setup() -> None:
    """Configure Django on an empty temporary directory (databases are swapped in later)."""
    os.environ["REELSEARCH_VAR_DIR"] = tempfile.mkdtemp(prefix="adapter-bench-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deploy.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")
    import django

    django.setup()


def use_database(source: Path) -> None:
    """Point the default database at a copy of source."""
    from django.db import connections

    copy = Path(tempfile.mkdtemp(prefix="adapter-db-")) / "db.sqlite3"
    shutil.copy(source, copy)
    connections["default"].close()
    connections["default"].settings_dict["NAME"] = str(copy)


def captions(manifest: Path) -> list[tuple[str, str]]:
    """Return (caption, clip sha256) for every caption of the manifest."""
    out = []
    for line in manifest.read_text().splitlines():
        entry = json.loads(line) if line.strip() else {}
        if "clip_id" not in entry:
            continue
        digest = hashlib.sha256((manifest.parent / entry["file"]).read_bytes()).hexdigest()
        out += [(caption, digest) for caption in entry.get("captions", [])]
    return out


def recall(queries: np.ndarray, targets: list[str], segments: np.ndarray,
           owners: np.ndarray) -> tuple[float, float]:
    """Return R@1 and R@5 (0-100) of each query finding its video by its best segment."""
    names, column = np.unique(owners, return_inverse=True)
    sims = queries @ segments.T
    best = np.stack([sims[:, column == j].max(axis=1) for j in range(len(names))], axis=1)
    order = np.argsort(-best, axis=1)
    ranks = [int(np.where(names[row] == target)[0][0]) + 1 if target in names else 10**6
             for row, target in zip(order, targets, strict=True)]
    return (100 * np.mean([r <= 1 for r in ranks]), 100 * np.mean([r <= 5 for r in ranks]))


def measure(catalog: Path, manifest: Path, seed: int) -> None:
    """Train on one catalog and print frozen versus adapted recall on its captions."""
    from catalog.models import Segment, Video, VideoStatus
    from retrieval.adapter_pairs import collect_pairs, encode_pairs
    from retrieval.adapter_training import train_adapter
    from retrieval.encoders import get_base_text_encoder

    use_database(catalog / "db.sqlite3")
    pairs = collect_pairs(seed=seed)
    try:
        report = train_adapter(encode_pairs(pairs), seed=seed)
    except ValueError as exc:  # no pairs: the frozen encoder stays, R@1 is unchanged
        print(f"| {manifest.parent.name} | — | {len(pairs)} | not trained: {exc} |")
        return
    by_sha = dict(Video.objects.filter(status=VideoStatus.READY).values_list("sha256", "pk"))
    rows = Segment.objects.filter(video__status=VideoStatus.READY).exclude(text_vector=None)
    owners, vectors = zip(*((str(v), np.frombuffer(bytes(b), dtype=np.float32))
                            for v, b in rows.values_list("video_id", "text_vector")),
                          strict=True)
    asked = [(text, str(by_sha[sha])) for text, sha in captions(manifest) if sha in by_sha]
    queries = get_base_text_encoder().encode([text for text, _ in asked])
    segments, owners = np.stack(vectors), np.array(owners)
    targets = [target for _, target in asked]
    frozen = recall(queries, targets, segments, owners)
    adapted = recall(report.adapter.apply(queries), targets, report.adapter.apply(segments),
                     owners)
    print(f"| {manifest.parent.name} | {len(asked)} | {report.train_pairs} | "
          f"{report.frozen_r1:.1f} → {report.adapted_r1:.1f} | {frozen[0]:.1f} | "
          f"{adapted[0]:.1f} | {frozen[1]:.1f} | {adapted[1]:.1f} | {report.seconds:.0f} |",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, action="append", required=True)
    parser.add_argument("--manifest", type=Path, action="append", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if len(args.catalog) != len(args.manifest):
        parser.error("give one --manifest per --catalog")
    setup()
    print(f"load average {os.getloadavg()[0]:.1f}")
    print("| benchmark | captions | training pairs | held-out R@1 frozen → adapter | "
          "R@1 frozen | R@1 adapter | R@5 frozen | R@5 adapter | train s |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for catalog, manifest in zip(args.catalog, args.manifest, strict=True):
        measure(catalog.expanduser(), manifest.expanduser(), args.seed)


if __name__ == "__main__":
    main()
