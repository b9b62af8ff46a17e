"""The chaos drill and the two-writer index race, each run in a loop: is anything ever lost?

Each drill run is one pytest process of tests/integration/test_chaos_drill.py (its own
Redis, OpenSearch node and worker; a worker SIGKILLed mid-stage, Redis restarted, the node
killed and restarted during indexing, API searches all along), which writes its counts to
a JSON file; each race run is one run of bench/index_race.py's race with two writers on a
brand-new embedded index.

    python bench/chaos_loop.py [--runs 20] [--race-runs N] [--drill-runs N]

Prints one line per run and a JSON summary (with the load average before and after);
exits 1 if any run lost, left stuck or duplicated anything.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DRILL = "tests/integration/test_chaos_drill.py"
COUNTS = ("lost", "stuck", "duplicated_segments", "orphan_documents", "search_failures")


def drill_once(run: int) -> dict:
    """Run the drill in a pytest process; return its counts (or why it did not report)."""
    scratch = Path(tempfile.mkdtemp(prefix="chaos-drill-"))
    report = scratch / "counts.json"
    env = {**os.environ, "REELSEARCH_CHAOS_REPORT": str(report), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", DRILL, "-q", "-x", "-p", "no:cacheprovider",
             f"--basetemp={scratch / 'tmp'}"], cwd=ROOT, env=env, capture_output=True,
            text=True, timeout=1800, check=False)
        counts = json.loads(report.read_text()) if report.exists() else {
            "error": (proc.stdout + proc.stderr)[-2000:]}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    counts.update(run=run, passed=proc.returncode == 0,
                  seconds=round(time.perf_counter() - started, 1))
    return counts


def race_loop(runs: int) -> dict:
    """Run the two-writer race `runs` times (bench/index_race.py); return its summary."""
    proc = subprocess.run([sys.executable, "bench/index_race.py", "--runs", str(runs),
                           "--writers", "2"], cwd=ROOT, capture_output=True, text=True,
                          timeout=3600, check=False)
    print(proc.stdout, end="")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"runs": runs, "runs_failed": runs, "error": proc.stderr[-2000:]}
    return json.loads(lines[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of each (default 20)")
    parser.add_argument("--race-runs", type=int, help="runs of the race (default --runs)")
    parser.add_argument("--drill-runs", type=int, help="runs of the drill (default --runs)")
    args = parser.parse_args()
    load_before = os.getloadavg()

    race = race_loop(args.race_runs if args.race_runs is not None else args.runs)
    drills = []
    for run in range(1, (args.drill_runs if args.drill_runs is not None else args.runs) + 1):
        counts = drill_once(run)
        drills.append(counts)
        shown = ", ".join(f"{name} {counts.get(name, '?')}" for name in COUNTS)
        verdict = "ok" if counts["passed"] else "FAILED"
        print(f"drill {run:2d}: {verdict:6s} ready {counts.get('ready', '?')}/"
              f"{counts.get('videos', '?')}, {shown} ({counts['seconds']} s)", flush=True)
        for problem in counts.get("problems", [])[:3] or ([counts["error"]]
                                                          if "error" in counts else []):
            print(f"    {problem}")

    totals = {name: sum(int(d.get(name, 0) or 0) for d in drills) for name in COUNTS}
    summary = {
        "drill_runs": len(drills), "drill_runs_failed": sum(not d["passed"] for d in drills),
        "drill_videos": sum(int(d.get("videos", 0)) for d in drills), **totals,
        "drill_seconds_median": sorted(d["seconds"] for d in drills)[len(drills) // 2]
        if drills else None,
        "race_runs": race.get("runs"), "race_runs_failed": race.get("runs_failed"),
        "race_runs_lost_docs": race.get("runs_lost_docs"),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(summary))
    bad = summary["drill_runs_failed"] or any(totals.values()) or race.get("runs_failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
