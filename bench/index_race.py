"""First-write race on a brand-new embedded index, repeated: how often are documents lost?

Each run starts N writer processes (spawned, Django settings `tests.settings`, one fresh
index directory per run) that wait on a barrier, then each call ensure_index() and index()
with a distinct video's segments; the parent then checks count, BM25 (a word per video) and
k-NN for every document, and that a single index file holds them. The race itself lives in
tests/unit/test_index_race.py (the test runs it once).

    python bench/index_race.py [--runs 20] [--writers 4]

Prints one line per run and a summary; exits 1 if any run lost documents or crashed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--writers", type=int, default=4)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"  # what the writers use too
    import django

    django.setup()
    from django.conf import settings

    from tests.unit.test_index_race import WORDS, race

    if not 1 <= args.writers <= len(WORDS):
        parser.error(f"--writers must be between 1 and {len(WORDS)}")
    dim = settings.REELSEARCH["TEXT_DIM"]
    lost = crashed = orphaned = failed = 0
    started = time.perf_counter()
    for run in range(args.runs):
        scratch = Path(tempfile.mkdtemp(prefix="index-race-"))
        try:
            result = race(scratch / "index", dim, writers=args.writers, seed=run)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        lost += result.lost_docs
        crashed += bool(result.crashed)
        orphaned += len(result.index_files) > 1
        failed += not result.ok
        verdict = "ok" if result.ok else "FAILED"
        print(f"run {run + 1:2d}: {verdict:6s} index files {len(result.index_files)}, "
              f"crashed writers {len(result.crashed)}, problems {len(result.problems)}")
        for number, error in sorted(result.crashed.items()):
            print(f"    writer {number}: {error.strip().splitlines()[-1]}")
        for problem in result.problems[:3]:
            print(f"    {problem}")
    summary = {"runs": args.runs, "writers": args.writers, "runs_failed": failed,
               "runs_lost_docs": lost,
               "runs_with_a_crash": crashed, "runs_with_orphan_files": orphaned,
               "seconds": round(time.perf_counter() - started, 1)}
    print(json.dumps(summary))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
