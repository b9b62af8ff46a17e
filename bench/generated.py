"""What the generated benchmarks (bench/spoken, bench/hard) share: their command line, the
check of their texts, where their media go, and the manifest of the previous run."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path


def cache_dir(name: str) -> Path:
    """Return where a benchmark's media go by default (outside the repository)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "reelsearch" / name


def previous_entries(manifest: Path) -> dict[str, dict]:
    """Return the clip entries of an earlier manifest by clip id."""
    if not manifest.is_file():
        return {}
    entries = (json.loads(line) for line in manifest.read_text().splitlines() if line.strip())
    return {entry["clip_id"]: entry for entry in entries if "clip_id" in entry}


def start(doc: str, name: str, texts: Path,
          problems: Callable[[dict], list[str]]) -> tuple[dict, Path, dict[str, dict]]:
    """Parse the command line, check the texts and the tools; return texts, manifest, before.

    Exits with a message when the texts are not usable or ffmpeg/espeak-ng are missing.
    ``before`` holds the previous run's entries (empty with --force), so unchanged clips are
    not generated again.
    """
    from tests import media

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", type=Path, default=cache_dir(name))
    parser.add_argument("--texts", type=Path, default=texts)
    parser.add_argument("--force", action="store_true", help="Regenerate every clip.")
    args = parser.parse_args()
    data = json.loads(args.texts.read_text(encoding="utf-8"))
    found = problems(data)
    if found:
        sys.exit("texts.json is not usable:\n  " + "\n  ".join(found))
    missing = media.missing_tools()
    if missing:
        sys.exit(f"Install {', '.join(missing)} (Debian packages ffmpeg and espeak-ng).")
    out = args.out.expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.jsonl"
    return data, manifest, {} if args.force else previous_entries(manifest)
