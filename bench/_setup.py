"""Shared set-up for benchmarks: a throwaway Django environment under a temp directory."""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def django_in_tempdir(prefix: str) -> Path:
    """Configure Django with every writable path in a fresh temp dir; return that dir."""
    var = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["REELSEARCH_VAR_DIR"] = str(var)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deploy.settings")
    # A throwaway environment: its own random key, DEBUG left off (DEBUG would log every
    # SQL query and skew the timings).
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return var


def peak_rss_mb() -> float:
    """Return this process's peak resident memory in MiB (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    """Return the q-th percentile (0-100) by linear interpolation."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
