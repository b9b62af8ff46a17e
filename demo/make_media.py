#!/usr/bin/env python3
"""Generate the demo corpus into demo/media/ (run with plain ``python3 demo/make_media.py``).

Needs ffmpeg, espeak-ng and a font (Debian: ffmpeg espeak-ng fonts-dejavu-core); no Python
packages.  The output is deterministic for a given ffmpeg / espeak-ng, so re-running it
rewrites the same bytes.

Writes:

* one short narrated video per topic (English speech from espeak-ng, a title card and
  keyword captions on screen);
* one video without any audio stream (on-screen text only), for metadata / OCR-only search;
* ``catalog.json``: ``[{file, title, description, tags, language}]`` for every video;
* ``narration.json``: for every video, each narrated part's text and start/end seconds and
  each caption's text and times (ground truth for "where in the video is X said").
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _load_media():
    """Import tests/media.py by file path (the repository need not be on sys.path)."""
    name = "reelsearch_test_media"
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "media.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


media = _load_media()

# Each video: narration parts (key, text); captions keyed by part (shown while it is spoken).
VIDEOS = [
    {
        "file": "pasta.mp4",
        "title": "Fresh Pasta by Hand",
        "description": "A home cooking lesson: mixing a simple dough, kneading, resting it, "
        "then rolling and slicing long flat ribbons.",
        "tags": ["cooking", "italian", "pasta", "recipe"],
        "background": "color=c=0x5a1e0a",
        "parts": [
            (
                "intro",
                "Today we are making fresh Italian pasta by hand, and all you need "
                "is flour, eggs and a little patience.",
            ),
            (
                "dough",
                "Pour two cups of flour onto a clean board and make a well in the "
                "middle. Crack three eggs into the well and beat them gently with a "
                "fork, pulling in the flour little by little.",
            ),
            (
                "knead",
                "When the dough comes together, knead it with the heel of your hand "
                "for about ten minutes, until it feels smooth and elastic.",
            ),
            (
                "rest",
                "Wrap the dough in plastic and let it rest for half an hour, so the "
                "gluten can relax.",
            ),
            (
                "cut",
                "Finally, roll the dough into thin sheets, fold each sheet loosely, and "
                "cut it into long ribbons of tagliatelle. Cook them in salted boiling "
                "water for two minutes.",
            ),
        ],
        "part_captions": {
            "intro": "FRESH PASTA\nBY HAND",
            "dough": "FLOUR AND EGGS",
            "cut": "TAGLIATELLE",
        },
    },
    {
        "file": "volcanoes.mp4",
        "title": "How Volcanoes Work",
        "description": "Earth science explainer: molten rock underground, what makes a "
        "mountain erupt, and Sicily's famous active peak.",
        "tags": ["science", "geology", "volcano", "nature"],
        "background": "color=c=0x3a0a0a",
        "parts": [
            (
                "intro",
                "A volcano is an opening in the Earth's crust, where molten rock "
                "escapes from deep underground.",
            ),
            (
                "magma",
                "Far below the surface, heat melts rock into magma. Because magma is "
                "lighter than the solid rock around it, it slowly rises and collects "
                "in a magma chamber.",
            ),
            (
                "eruption",
                "When the pressure of gas and magma becomes too great, the volcano "
                "erupts, throwing out ash, gas and glowing fragments of rock.",
            ),
            (
                "lava",
                "Magma that reaches the surface is called lava. Runny lava can flow for "
                "many kilometers before it cools and hardens into new rock.",
            ),
            (
                "etna",
                "On the island of Sicily stands Mount Etna, the most active volcano in "
                "Europe, which erupts every few years.",
            ),
        ],
        "part_captions": {
            "intro": "HOW VOLCANOES\nWORK",
            "magma": "MAGMA CHAMBER",
            "etna": "MOUNT ETNA",
        },
    },
    {
        "file": "bicycle_repair.mp4",
        "title": "Fixing a Flat Tire",
        "description": "Bike maintenance basics: getting the wheel off, finding the leak, "
        "gluing on a patch and putting everything back together.",
        "tags": ["bicycle", "repair", "diy", "cycling"],
        "background": "color=c=0x0a3a1e",
        "parts": [
            (
                "intro",
                "In this video we fix a flat tire on a bicycle, using only a few simple tools.",
            ),
            (
                "remove",
                "First, open the brake and take the wheel off the frame. Use two tire "
                "levers to lift one side of the tire over the rim, then pull out the "
                "inner tube.",
            ),
            (
                "find",
                "Pump a little air into the tube and listen for the hiss, or hold it "
                "under water and watch for bubbles to find the hole.",
            ),
            (
                "patch",
                "Roughen the area with sandpaper, spread a thin layer of glue, wait a "
                "minute, and press the patch firmly over the hole.",
            ),
            (
                "refit",
                "Check the inside of the tire for glass or thorns, put the tube back, "
                "refit the tire with your thumbs, and pump it up to the pressure "
                "printed on the sidewall.",
            ),
        ],
        "part_captions": {
            "intro": "FLAT TIRE REPAIR",
            "remove": "TIRE LEVERS",
            "patch": "PATCH KIT",
        },
    },
    {
        "file": "night_sky.mp4",
        "title": "Finding Your Way in the Night Sky",
        "description": "Stargazing for beginners: star patterns, locating the pole star, "
        "and what a small backyard instrument can show you.",
        "tags": ["astronomy", "stars", "stargazing", "science"],
        "background": "color=c=0x05051e",
        "parts": [
            (
                "intro",
                "On a clear, dark night, the sky is full of stars, and a few simple "
                "patterns help you find your way around.",
            ),
            (
                "dipper",
                "Start with the Big Dipper, seven bright stars shaped like a ladle. "
                "The two stars at the end of its bowl point straight to the North "
                "Star, Polaris.",
            ),
            (
                "polaris",
                "Polaris sits almost exactly above the North Pole, so it barely "
                "moves, while the other stars turn around it during the night.",
            ),
            (
                "constellations",
                "From there you can find other constellations, such as "
                "Cassiopeia, which looks like a letter W, on the other side "
                "of the pole star.",
            ),
            (
                "telescope",
                "A small telescope will show craters on the Moon, the rings of "
                "Saturn and the moons of Jupiter.",
            ),
        ],
        "part_captions": {
            "intro": "THE NIGHT SKY",
            "dipper": "NORTH STAR",
            "telescope": "TELESCOPE",
        },
    },
]

# No speech at all: only on-screen text (and the catalog metadata) can find it.
SILENT_VIDEO = {
    "file": "origami_crane.mp4",
    "title": "Origami Crane, Step by Step",
    "description": "A silent paper-folding tutorial: a traditional Japanese bird made from "
    "one square sheet, shown as on-screen steps with no voice-over.",
    "tags": ["origami", "paper", "crafts", "silent"],
    "background": "color=c=0x2a2a2a",
    "duration": 16.0,
    "captions": [
        (0.0, 4.0, "ORIGAMI CRANE"),
        (4.0, 8.0, "STEP 1\nSQUARE BASE"),
        (8.0, 12.0, "STEP 2\nPETAL FOLD"),
        (12.0, 16.0, "STEP 3\nSHAPE THE WINGS"),
    ],
}

QUERIES_FILE = HERE / "queries.txt"


def build(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    missing = media.missing_tools()
    if missing:
        raise SystemExit(f"missing programs: {', '.join(missing)} (apt-get install them)")

    catalog = []
    timings = {}
    for video in VIDEOS:
        path, parts = media.make_narrated_video(
            out_dir / video["file"],
            video["parts"],
            part_captions=video["part_captions"],
            background=video["background"],
        )
        duration = media.media_duration(path)
        keys = [part.key for part in parts]
        spans = dict(zip(keys, media.part_spans(parts), strict=True))
        captions = [
            {"text": text.replace("\n", " "), "start": spans[key][0], "end": spans[key][1]}
            for key, text in video["part_captions"].items()
        ]
        timings[video["file"]] = {
            "duration": round(duration, 3),
            "parts": [part.as_dict() for part in parts],
            "captions": captions,
        }
        catalog.append(_entry(video))
        print(
            f"{path.name}: {timings[video['file']]['duration']:.1f} s, "
            f"{path.stat().st_size // 1024} KiB"
        )

    silent = SILENT_VIDEO
    path = media.make_silent_video(
        out_dir / silent["file"],
        silent["duration"],
        captions=silent["captions"],
        background=silent["background"],
    )
    timings[silent["file"]] = {
        "duration": round(media.media_duration(path), 3),
        "parts": [],
        "captions": [
            {"text": text.replace("\n", " "), "start": start, "end": end}
            for start, end, text in silent["captions"]
        ],
    }
    catalog.append(_entry(silent))
    print(f"{path.name}: {silent['duration']:.1f} s (no audio), {path.stat().st_size // 1024} KiB")

    _write_json(out_dir / "catalog.json", catalog)
    _write_json(out_dir / "narration.json", timings)
    _check_queries()


def _entry(video: dict) -> dict:
    return {
        "file": video["file"],
        "title": video["title"],
        "description": video["description"],
        "tags": video["tags"],
        "language": "en",
    }


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _check_queries() -> None:
    """The demo queries must be paraphrases: none may appear verbatim in a narration."""
    if not QUERIES_FILE.exists():
        return
    spoken = " ".join(text.lower() for video in VIDEOS for _key, text in video["parts"])
    for query in QUERIES_FILE.read_text(encoding="utf-8").splitlines():
        if query.strip() and query.strip().lower() in spoken:
            raise SystemExit(f"demo query {query!r} is said verbatim in a narration")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "media", help="output folder")
    build(parser.parse_args().out)


if __name__ == "__main__":
    main()
