"""Generate the composed-query benchmark: one topic narrated in several settings.

Every clip narrates one topic (pancakes, a bicycle puncture, ...) in one setting (at night,
in the snow, ...) with espeak-ng over a background coloured for the setting, the topic's
name and then the setting's name drawn on screen. A composed query is a reference clip plus
a modifier naming another setting in words no narration uses; its answer is the clip of
the same topic in that setting. The texts live in texts.json next to this script.

    python bench/composed/make_manifest.py [--out DIR] [--force]
    python bench/composed/run.py [--manifest DIR/manifest.jsonl]

The media go outside the repository (default ~/.cache/reelsearch/composed-bench). Clips
whose text, voice and layout are unchanged since the last run are not generated again.
The manifest is the one `evaluate` reads, with each clip's composed queries added under
"composed" ({"like": reference clip id, "q": modifier}); its captions are the modifiers
alone, which every clip of that setting answers.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from bench.generated import start  # noqa: E402
from tests import media  # noqa: E402

MIN_TOPICS, MIN_SETTINGS = 6, 3


def normalized(text: str) -> str:
    """Lower-case text with punctuation turned into single spaces."""
    return " ".join(re.sub(r"[^\w]+", " ", text.casefold()).split())


def clips(data: dict) -> list[dict]:
    """Return every (topic, setting) clip: id, narration, voice, captions, background."""
    voices = data["voices"]
    out = []
    for i, topic in enumerate(data["topics"]):
        for j, setting in enumerate(data["settings"]):
            said, place = topic["sentences"], setting["sentences"]
            text = " ".join([place[i % len(place)], said[j % len(said)],
                             said[(j + 1) % len(said)], place[(i + 1) % len(place)]])
            out.append({"id": f"{topic['id']}-{setting['id']}", "topic": topic["id"],
                        "setting": setting["id"], "text": text,
                        "voice": voices[(i + j) % len(voices)],
                        "labels": [topic["caption"], setting["caption"]],
                        "background": setting["background"]})
    return out


def composed_queries(data: dict) -> dict[str, list[dict]]:
    """Return, per target clip id, its composed queries (reference clip id and modifier)."""
    queries: dict[str, list[dict]] = {}
    for i, topic in enumerate(data["topics"]):
        for a, source in enumerate(data["settings"]):
            for target in data["settings"]:
                if target is source:
                    continue
                modifier = target["modifiers"][(i + a) % len(target["modifiers"])]
                queries.setdefault(f"{topic['id']}-{target['id']}", []).append(
                    {"like": f"{topic['id']}-{source['id']}", "q": modifier})
    return queries


def problems(data: dict) -> list[str]:
    """Return what is wrong with the benchmark texts (empty when they are usable)."""
    found: list[str] = []
    if len(data["topics"]) < MIN_TOPICS or len(data["settings"]) < MIN_SETTINGS:
        found.append(f"need {MIN_TOPICS} topics and {MIN_SETTINGS} settings")
    narrations = [normalized(clip["text"]) for clip in clips(data)]
    for setting in data["settings"]:
        for modifier in setting["modifiers"]:
            if any(normalized(modifier) in text for text in narrations):
                found.append(f"modifier {modifier!r} is a substring of a narration")
    ids = [t["id"] for t in data["topics"]] + [s["id"] for s in data["settings"]]
    if len(set(ids)) != len(ids):
        found.append("topic and setting ids are not unique")
    return found


def fingerprint(clip: dict, data: dict) -> str:
    """Return a hash of everything that shapes a clip's media."""
    shaped = {k: clip[k] for k in ("text", "voice", "labels", "background")}
    payload = json.dumps([shaped, data["wpm"]], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def make_clip(clip: dict, data: dict, out: Path) -> dict:
    """Speak one narration over its setting's background; return its manifest entry."""
    wav = media.speak(clip["text"], out / f"{clip['id']}.wav", voice=clip["voice"],
                      wpm=data["wpm"])
    length = media.wav_duration(wav) + 0.5
    half = round(length / 2, 3)
    captions = [(0.0, half, clip["labels"][0]), (half, round(length, 3), clip["labels"][1])]
    path = media.make_video(out / f"{clip['id']}.mp4", narration=None, narration_wav=wav,
                            duration=round(length, 3), captions=captions,
                            background=clip["background"])
    wav.unlink()
    return {"clip_id": clip["id"], "file": path.name,
            "duration": round(media.media_duration(path), 3)}


def main() -> None:
    data, manifest, before = start(__doc__, "composed-bench", HERE / "texts.json", problems)
    out = manifest.parent
    queries = composed_queries(data)
    modifiers = {s["id"]: s["modifiers"] for s in data["settings"]}
    entries = []
    every = clips(data)
    for number, clip in enumerate(every, start=1):
        stamp = fingerprint(clip, data)
        old = before.get(clip["id"])
        if old and old.get("fingerprint") == stamp and (out / old["file"]).is_file():
            made = {k: old[k] for k in ("clip_id", "file", "duration")}
        else:
            made = make_clip(clip, data, out)
        entries.append({**made, "fingerprint": stamp, "topic": clip["topic"],
                        "setting": clip["setting"], "captions": modifiers[clip["setting"]],
                        "composed": queries.get(clip["id"], [])})
        print(f"[{number}/{len(every)}] {clip['id']}: {made['duration']:.1f} s", flush=True)
    manifest.write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    asked = sum(len(e["composed"]) for e in entries)
    print(f"{len(entries)} clips, {asked} composed queries: {manifest}")


if __name__ == "__main__":
    main()
