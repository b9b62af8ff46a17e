"""Generate the spoken retrieval benchmark: narrated clips and a manifest for `evaluate`.

The narrations and queries live in texts.json next to this script (written for the
benchmark). Each short clip is one narration spoken by espeak-ng over a plain background;
each long clip joins several parts and its moment queries are answered by the exact span
in which their part is spoken (tests/media.py measures it from the synthesised audio).

    python bench/spoken/make_manifest.py [--out DIR] [--force]
    python manage.py evaluate --manifest DIR/manifest.jsonl

The media go outside the repository (default ~/.cache/reelsearch/spoken-bench). Clips whose
text is unchanged since the last run are not generated again. Videos carry no title or
description: `evaluate` gives each a neutral title ("clip 7"), so the benchmark measures
retrieval from speech alone.
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

MIN_CLIPS, MIN_QUERIES, MIN_MOMENTS, MIN_LONG_CLIPS = 40, 2, 10, 3


def normalized(text: str) -> str:
    """Lower-case text with punctuation turned into single spaces."""
    return " ".join(re.sub(r"[^\w]+", " ", text.casefold()).split())


def problems(data: dict) -> list[str]:
    """Return what is wrong with the benchmark texts (empty when they are usable)."""
    found: list[str] = []
    short, long_clips = data["clips"], data["long_clips"]
    ids = [clip["id"] for clip in short + long_clips]
    if len(set(ids)) != len(ids):
        found.append("clip ids are not unique")
    if len(ids) < MIN_CLIPS:
        found.append(f"{len(ids)} clips, fewer than {MIN_CLIPS}")
    seen: dict[str, str] = {}
    for clip in short + long_clips:
        narration = normalized(clip.get("text") or " ".join(p["text"] for p in clip["parts"]))
        if len(clip["queries"]) < MIN_QUERIES:
            found.append(f"{clip['id']}: fewer than {MIN_QUERIES} queries")
        asked = list(clip["queries"]) + [p["query"] for p in clip.get("parts", [])]
        for query in asked:
            if normalized(query) in narration:
                found.append(f"{clip['id']}: query {query!r} is a substring of the narration")
            if normalized(query) in seen:
                found.append(f"{clip['id']}: query {query!r} is also asked of "
                             f"{seen[normalized(query)]}")
            seen[normalized(query)] = clip["id"]
    for clip in short:
        sentences = len(re.findall(r"[.!?](?:\s|$)", clip["text"]))
        if not 3 <= sentences <= 6:
            found.append(f"{clip['id']}: {sentences} sentences, not 3 to 6")
    moments = sum(len(clip["parts"]) for clip in long_clips)
    if len(long_clips) < MIN_LONG_CLIPS or moments < MIN_MOMENTS:
        found.append(f"{moments} moment queries in {len(long_clips)} long clips; need "
                     f"{MIN_MOMENTS} in {MIN_LONG_CLIPS}")
    return found


def fingerprint(clip: dict, data: dict) -> str:
    """Return a hash of everything that shapes a clip's media."""
    spoken = {k: clip.get(k) for k in ("text", "parts")}
    payload = json.dumps([spoken, data["voice"], data["wpm"]], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]




def make_short(clip: dict, data: dict, out: Path) -> dict:
    """Speak one narration into a video; return its manifest entry."""
    path = media.make_video(out / f"{clip['id']}.mp4", narration=clip["text"],
                            voice=data["voice"], wpm=data["wpm"])
    return {"clip_id": clip["id"], "file": path.name, "captions": clip["queries"],
            "duration": round(media.media_duration(path), 3)}


def make_long(clip: dict, data: dict, out: Path) -> dict:
    """Speak a multi-part narration into one video; return its entry with the part spans."""
    parts = [(part["key"], part["text"]) for part in clip["parts"]]
    path, timings = media.make_narrated_video(out / f"{clip['id']}.mp4", parts,
                                              voice=data["voice"], wpm=data["wpm"])
    queries = {part["key"]: part["query"] for part in clip["parts"]}
    return {"clip_id": clip["id"], "file": path.name, "captions": clip["queries"],
            "moments": [{"query": queries[t.key], "start": round(t.start, 3),
                         "end": round(t.end, 3), "part": t.key} for t in timings],
            "duration": round(media.media_duration(path), 3)}




def main() -> None:
    data, manifest, before = start(__doc__, "spoken-bench", HERE / "texts.json", problems)
    out = manifest.parent
    entries = []
    clips = [(clip, make_short) for clip in data["clips"]]
    clips += [(clip, make_long) for clip in data["long_clips"]]
    for number, (clip, make) in enumerate(clips, start=1):
        stamp = fingerprint(clip, data)
        old = before.get(clip["id"])
        if old and old.get("fingerprint") == stamp and (out / old["file"]).is_file():
            entry = {**old, "captions": clip["queries"]}
            if "moments" in old:
                asked = {part["key"]: part["query"] for part in clip["parts"]}
                entry["moments"] = [{**m, "query": asked[m["part"]]} for m in old["moments"]]
        else:
            entry = {**make(clip, data, out), "fingerprint": stamp}
        entries.append(entry)
        print(f"[{number}/{len(clips)}] {clip['id']}: {entry['duration']:.1f} s", flush=True)
    manifest.write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    queries = sum(len(e["captions"]) for e in entries)
    moments = sum(len(e.get("moments", [])) for e in entries)
    print(f"{len(entries)} clips, {queries} caption queries, {moments} moment queries: {manifest}")


if __name__ == "__main__":
    main()
