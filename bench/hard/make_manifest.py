"""Generate the hard retrieval benchmark: confusable narrated clips, OCR-only slides and
multi-part videos with part and sentence moments, plus queries that have no answer.

The texts and queries live in texts.json next to this script (written for the benchmark,
Apache-2.0). What the media are:

* groups of four confusable narrated clips (same vocabulary, different specifics), each
  spoken by its own espeak-ng voice and speed;
* silent slide clips with no audio stream at all, whose text only OCR can read;
* multi-part videos whose every sentence is synthesised separately and joined with known
  silences, so that each part and each sentence has an exact span (the speech itself, from
  the first to the last audible sample). In the videos with ``audio_gap`` the audio track
  has no packets at all between parts while the picture goes on: the pts of consecutive
  audio packets jump (a real timestamp gap, not silence samples).

    python bench/hard/make_manifest.py [--out DIR] [--force]
    python manage.py evaluate --manifest DIR/manifest.jsonl

The media go outside the repository (default ~/.cache/reelsearch/hard-bench). Clips whose
text is unchanged since the last run are not generated again. The manifest's last line is
``{"no_answer": [...]}``: queries whose topic is in no clip. Each moment has a ``kind``
("part" or "sentence"); videos with missing audio packets carry ``"audio_gaps": true`` and
the measured ``gaps``. Videos carry no title or description (`evaluate` names each
"clip N"). Every run ends by checking the media: durations, audio packet gaps (ffprobe)
and that every moment span starts and ends on speech with silence just outside it.
"""

from __future__ import annotations

import array
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from bench.generated import start  # noqa: E402
from tests import media  # noqa: E402

#: Bump when the way media are made changes, so that every clip is generated again.
GENERATOR = 1
MIN_GROUPS, GROUP_SIZE, MIN_SLIDES, MIN_MULTIPART = 12, 4, 12, 12
MIN_QUERIES, MIN_CAPTIONS, MIN_MOMENTS, MIN_NO_ANSWER = 2, 100, 80, 10
NARRATED_SECONDS, SLIDE_SECONDS, MULTIPART_SECONDS = (15, 25), (8, 12), (40, 70)
MAX_AUDIO_SECONDS = 30 * 60
#: Share of a query's content words that may also be in its clip's text.
MAX_OVERLAP = 0.6
#: On-screen text limits: lines per slide, characters per line.
SLIDE_LINES, SLIDE_LINE_CHARS = (2, 4), 22
SLIDE_SIZE = (640, 360)
#: A sample louder than this (16-bit) is speech when trimming espeak-ng's silences.
SPEECH_LEVEL = 100
AAC_FRAME = 1024 / media.AUDIO_RATE

_STOPWORDS = """
a about above after again all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further
had has have having he her here hers him his how i if in into is it its itself just me more
most my no nor not now of off on once only or other our out over own same she should so some
such than that the their them then there these they this those through to too under until
up very was we were what when where which while who whom why will with would you your yours
get got one ever
"""
STOPWORDS = frozenset(_STOPWORDS.split())


def normalized(text: str) -> str:
    """Lower-case text with punctuation turned into single spaces."""
    return " ".join(re.sub(r"[^\w]+", " ", text.casefold()).split())


def stem(word: str) -> str:
    """Crudely reduce an English word to a stem (enough to compare queries with texts)."""
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content(text: str) -> set[str]:
    """Return the stems of the content words of ``text``."""
    return {stem(word) for word in normalized(text).split() if word not in STOPWORDS}


# --------------------------------------------------------------------------- the texts


def narrations(data: dict) -> dict[str, str]:
    """Return every clip's text (narration or on-screen text) by clip id."""
    texts = {clip["id"]: clip["text"] for group in data["groups"] for clip in group["clips"]}
    texts.update({clip["id"]: "\n".join(clip["slides"]) for clip in data["slides"]})
    texts.update({clip["id"]: " ".join(s["text"] for p in clip["parts"] for s in p["sentences"])
                  for clip in data["multipart"]})
    return texts


def asked(clip: dict) -> list[str]:
    """Return every query asked of a clip: captions, then part and sentence moments."""
    queries = list(clip["queries"])
    for part in clip.get("parts", []):
        queries.append(part["query"])
        queries += [s["query"] for s in part["sentences"] if "query" in s]
    return queries


def problems(data: dict) -> list[str]:
    """Return what is wrong with the benchmark texts (empty when they are usable)."""
    found: list[str] = []
    groups, slides, multipart = data["groups"], data["slides"], data["multipart"]
    narrated = [clip for group in groups for clip in group["clips"]]
    everything = narrated + slides + multipart
    ids = [clip["id"] for clip in everything]
    if len(set(ids)) != len(ids):
        found.append("clip ids are not unique")
    if len(groups) < MIN_GROUPS:
        found.append(f"{len(groups)} topic groups, fewer than {MIN_GROUPS}")
    for group in groups:
        if len(group["clips"]) != GROUP_SIZE:
            found.append(f"group {group['id']}: {len(group['clips'])} clips, not {GROUP_SIZE}")
        voices = [clip["voice"] for clip in group["clips"]]
        if len(set(voices)) != len(voices):
            found.append(f"group {group['id']}: two clips share a voice")
    if len(slides) < MIN_SLIDES:
        found.append(f"{len(slides)} slide clips, fewer than {MIN_SLIDES}")
    if len(multipart) < MIN_MULTIPART:
        found.append(f"{len(multipart)} multi-part videos, fewer than {MIN_MULTIPART}")
    texts = narrations(data)
    seen: dict[str, str] = {}
    for clip in everything:
        minimum = 1 if clip in multipart else MIN_QUERIES
        if not minimum <= len(clip["queries"]) <= (2 if clip in multipart else 10):
            found.append(f"{clip['id']}: {len(clip['queries'])} caption queries")
        narration = normalized(texts[clip["id"]])
        words = content(texts[clip["id"]])
        for query in asked(clip):
            key = normalized(query)
            if key in narration:
                found.append(f"{clip['id']}: query {query!r} is a substring of the text")
            if key in seen:
                found.append(f"{clip['id']}: query {query!r} is also asked of {seen[key]}")
            seen[key] = clip["id"]
            terms = content(query)
            if len(terms) >= 3 and len(terms & words) > MAX_OVERLAP * len(terms):
                found.append(f"{clip['id']}: query {query!r} shares {sorted(terms & words)} "
                             "with the text")
    for clip in narrated:
        sentences = len(re.findall(r"[.!?](?:\s|$)", clip["text"]))
        if not 3 <= sentences <= 6:
            found.append(f"{clip['id']}: {sentences} sentences, not 3 to 6")
    for clip in slides:
        if not 1 <= len(clip["slides"]) <= 2:
            found.append(f"{clip['id']}: {len(clip['slides'])} slides, not 1 or 2")
        for slide in clip["slides"]:
            lines = [line for line in slide.splitlines() if line.strip()]
            if not SLIDE_LINES[0] <= len(lines) <= SLIDE_LINES[1]:
                found.append(f"{clip['id']}: a slide has {len(lines)} lines")
            if any(len(line) > SLIDE_LINE_CHARS for line in lines):
                found.append(f"{clip['id']}: a line is longer than {SLIDE_LINE_CHARS} characters")
        if not SLIDE_SECONDS[0] <= clip["duration"] <= SLIDE_SECONDS[1]:
            found.append(f"{clip['id']}: {clip['duration']} s, not {SLIDE_SECONDS}")
    margin = data["layout"]["gap_margin"]
    for clip in multipart:
        if not 3 <= len(clip["parts"]) <= 5:
            found.append(f"{clip['id']}: {len(clip['parts'])} parts, not 3 to 5")
        keys = [part["key"] for part in clip["parts"]]
        if len(set(keys)) != len(keys):
            found.append(f"{clip['id']}: part keys are not unique")
        gap = clip.get("audio_gap")
        if gap is not None and gap < 2 * margin + 4 * AAC_FRAME:
            found.append(f"{clip['id']}: audio_gap {gap} s is too short to leave packets out")
    captions = sum(len(clip["queries"]) for clip in narrated + slides)
    if captions < MIN_CAPTIONS:
        found.append(f"{captions} caption queries for the single clips, fewer than "
                     f"{MIN_CAPTIONS}")
    moments = sum(len(asked(clip)) - len(clip["queries"]) for clip in multipart)
    if moments < MIN_MOMENTS:
        found.append(f"{moments} moment queries, fewer than {MIN_MOMENTS}")
    no_answer = data["no_answer"]
    if len(no_answer) < MIN_NO_ANSWER:
        found.append(f"{len(no_answer)} no-answer queries, fewer than {MIN_NO_ANSWER}")
    for query in no_answer:
        key = normalized(query)
        if key in seen:
            found.append(f"no-answer query {query!r} is also asked of {seen[key]}")
        seen[key] = "no_answer"
        for clip_id, text in texts.items():
            shared = content(query) & content(text)
            if len(shared) > 1:
                found.append(f"no-answer query {query!r} shares {sorted(shared)} with {clip_id}")
    return found


def lexical_traps(data: dict) -> list[str]:
    """Return the caption queries of the groups that share more content words with a
    sibling's narration than with their own: meant by their meaning, misleading by words."""
    traps = []
    for group in data["groups"]:
        for clip in group["clips"]:
            own = content(clip["text"])
            for query in clip["queries"]:
                terms = content(query)
                if any(len(terms & content(other["text"])) > len(terms & own)
                       for other in group["clips"] if other is not clip):
                    traps.append(query)
    return traps


# --------------------------------------------------------------------------- media


def fingerprint(clip: dict, data: dict) -> str:
    """Return a hash of everything that shapes a clip's media (not the query texts)."""
    shape = {key: clip.get(key) for key in ("text", "voice", "wpm", "slides", "duration",
                                            "audio_gap")}
    if "parts" in clip:
        shape["parts"] = [[s["text"] for s in part["sentences"]] for part in clip["parts"]]
        shape["layout"] = data["layout"]
    payload = json.dumps([GENERATOR, shape], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _read_wav(path: Path) -> tuple[wave._wave_params, array.array]:
    with wave.open(str(path), "rb") as wav:
        params = wav.getparams()
        if params.sampwidth != 2 or params.nchannels != 1:
            raise media.MediaError(f"{path}: expected 16-bit mono PCM from espeak-ng")
        samples = array.array("h", wav.readframes(wav.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()
    return params, samples


def trimmed_speech(text: str, voice: str, wpm: int, workdir: Path) -> tuple[int, array.array]:
    """Speak ``text``; return the sample rate and the samples from first to last audible one."""
    path = media.speak(text, workdir / "sentence.wav", voice=voice, wpm=wpm)
    params, samples = _read_wav(path)
    loud = [i for i, value in enumerate(samples) if abs(value) > SPEECH_LEVEL]
    if not loud:
        raise media.MediaError(f"espeak-ng produced silence for {text!r}")
    return params.framerate, samples[loud[0]: loud[-1] + 1]


def multipart_audio(clip: dict, layout: dict, path: Path, workdir: Path) -> tuple[list, float]:
    """Write a multi-part video's narration WAV; return its timeline and length in seconds.

    The timeline holds, per part, its key, speech start and end, and each sentence's
    ``[start, end]``: the exact times of the first and last audible sample, since every
    silence in the file is written here.
    """
    between = clip.get("audio_gap") or layout["part_gap"]
    rate = 0
    pieces: list[tuple[float, array.array]] = []  # (silence before, speech)
    for p, part in enumerate(clip["parts"]):
        for s, sentence in enumerate(part["sentences"]):
            rate, speech = trimmed_speech(sentence["text"], clip["voice"], clip["wpm"], workdir)
            silence = layout["lead_in"] if p == s == 0 else (
                layout["sentence_gap"] if s else between)
            pieces.append((silence, speech))
    timeline, joined, index = [], array.array("h"), 0
    for part in clip["parts"]:
        spans = []
        for _sentence in part["sentences"]:
            silence, speech = pieces[index]
            index += 1
            joined.extend([0] * round(silence * rate))
            start = len(joined) / rate
            joined.extend(speech)
            spans.append([round(start, 3), round(len(joined) / rate, 3)])
        timeline.append({"part": part["key"], "start": spans[0][0], "end": spans[-1][1],
                         "sentences": spans})
    joined.extend([0] * round(layout["tail"] * rate))
    if sys.byteorder == "big":
        joined.byteswap()
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(joined.tobytes())
    return timeline, len(joined) / rate


def drop_audio_between(source: Path, out: Path, windows: list[tuple[float, float]]) -> None:
    """Copy ``source`` to ``out`` leaving out every audio packet that lies inside a window.

    Stream copy with the ``noise`` bitstream filter: nothing is re-encoded, the packets kept
    keep their timestamps, and the MP4 muxer records the jump in the audio track's timing.
    """
    drop = "+".join(f"between(pts*tb,{a:.3f},{b - AAC_FRAME:.3f})" for a, b in windows)
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                    "-i", str(source), "-map", "0", "-c", "copy",
                    "-bsf:a", f"noise=drop='{drop}'", "-map_metadata", "-1",
                    "-fflags", "+bitexact", str(out)], check=True, capture_output=True)


def audio_packets(path: Path) -> list[tuple[float, float]]:
    """Return ``(pts, duration)`` in seconds of every audio packet of a file."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a", "-show_entries",
                          "packet=pts_time,duration_time", "-of", "csv=p=0", str(path)],
                         check=True, capture_output=True, text=True).stdout
    packets = []
    for line in out.splitlines():
        fields = line.strip().strip(",").split(",")
        if len(fields) >= 2 and fields[0] not in ("", "N/A"):
            packets.append((float(fields[0]), float(fields[1])))
    return sorted(packets)


def packet_gaps(path: Path) -> list[list[float]]:
    """Return ``[last packet end, next packet pts]`` wherever the audio pts jump forward."""
    packets = audio_packets(path)
    return [[round(pts + AAC_FRAME, 3), round(following, 3)]
            for (pts, _d), (following, _n) in zip(packets, packets[1:], strict=False)
            if following - pts > 1.5 * AAC_FRAME]


def moments_of(clip: dict, timeline: list[dict]) -> list[dict]:
    """Return a multi-part video's moment queries with their exact spans."""
    where = {entry["part"]: entry for entry in timeline}
    moments = []
    for part in clip["parts"]:
        entry = where[part["key"]]
        moments.append({"query": part["query"], "start": entry["start"], "end": entry["end"],
                        "kind": "part", "part": part["key"]})
        for number, sentence in enumerate(part["sentences"]):
            if "query" in sentence:
                start, end = entry["sentences"][number]
                moments.append({"query": sentence["query"], "start": start, "end": end,
                                "kind": "sentence", "part": part["key"], "sentence": number})
    return moments


def make_narrated(clip: dict, data: dict, out: Path) -> dict:
    """Speak one narration into a video; return its manifest entry."""
    path = media.make_video(out / f"{clip['id']}.mp4", narration=clip["text"],
                            voice=clip["voice"], wpm=clip["wpm"])
    return {"clip_id": clip["id"], "file": path.name, "captions": clip["queries"],
            "clip_type": "narrated", "voice": clip["voice"], "wpm": clip["wpm"],
            "duration": round(media.media_duration(path), 3)}


def make_slides(clip: dict, data: dict, out: Path) -> dict:
    """Show one or two slides of text in a video without an audio stream."""
    step = clip["duration"] / len(clip["slides"])
    captions = [(round(i * step, 3), round((i + 1) * step, 3), text)
                for i, text in enumerate(clip["slides"])]
    path = media.make_silent_video(out / f"{clip['id']}.mp4", clip["duration"], captions,
                                   size=SLIDE_SIZE)
    return {"clip_id": clip["id"], "file": path.name, "captions": clip["queries"],
            "clip_type": "slides", "audio": False,
            "duration": round(media.media_duration(path), 3)}


def make_multipart(clip: dict, data: dict, out: Path) -> dict:
    """Narrate a multi-part video sentence by sentence; return its entry with the spans."""
    layout = data["layout"]
    path = out / f"{clip['id']}.mp4"
    with tempfile.TemporaryDirectory(prefix="hard-bench-") as tmp:
        workdir = Path(tmp)
        wav = workdir / "narration.wav"
        timeline, length = multipart_audio(clip, layout, wav, workdir)
        gap = clip.get("audio_gap")
        target = workdir / "continuous.mp4" if gap else path
        media.make_video(target, narration=None, narration_wav=wav, duration=round(length, 3))
        if gap:
            margin = layout["gap_margin"]
            windows = [(before["end"] + margin, after["start"] - margin)
                       for before, after in zip(timeline, timeline[1:], strict=False)]
            drop_audio_between(target, path, windows)
    entry = {"clip_id": clip["id"], "file": path.name, "captions": clip["queries"],
             "moments": moments_of(clip, timeline), "clip_type": "multipart",
             "voice": clip["voice"], "wpm": clip["wpm"], "audio_gaps": bool(gap),
             "timeline": timeline, "duration": round(media.media_duration(path), 3)}
    if gap:
        entry["gaps"] = packet_gaps(path)
    return entry


# --------------------------------------------------------------------------- checks


def decoded_audio(path: Path) -> array.array:
    """Decode a file's audio at AUDIO_RATE, filling timestamp gaps with silence."""
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-vn",
                          "-af", "aresample=async=1:first_pts=0", "-ac", "1",
                          "-ar", str(media.AUDIO_RATE), "-f", "s16le", "-"],
                         check=True, capture_output=True).stdout
    samples = array.array("h", raw)
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def peak(samples: array.array, start: float, end: float) -> int:
    """Return the largest absolute sample between two times (0 outside the audio)."""
    rate = media.AUDIO_RATE
    window = samples[max(0, int(start * rate)): max(0, int(end * rate))]
    return max((abs(value) for value in window), default=0)


def check_media(entries: list[dict], out: Path) -> list[str]:
    """Return what is wrong with the generated media (empty when all is as intended)."""
    found: list[str] = []
    for entry in entries:
        path, kind, clip_id = out / entry["file"], entry["clip_type"], entry["clip_id"]
        duration = media.media_duration(path)
        streams = [s["codec_type"] for s in media.probe(path)["streams"]]
        low, high = {"narrated": NARRATED_SECONDS, "slides": SLIDE_SECONDS,
                     "multipart": MULTIPART_SECONDS}[kind]
        speech = duration - (0.5 if kind == "narrated" else 0)
        if not low <= speech <= high + 0.1:
            found.append(f"{clip_id}: {speech:.1f} s, not within {low}-{high} s")
        if kind == "slides":
            if streams != ["video"]:
                found.append(f"{clip_id}: streams {streams}, expected video only")
            continue
        if sorted(streams) != ["audio", "video"]:
            found.append(f"{clip_id}: streams {streams}")
        gaps = packet_gaps(path)
        if kind == "narrated":
            if gaps:
                found.append(f"{clip_id}: unexpected audio packet gaps {gaps}")
            continue
        timeline = entry["timeline"]
        if entry["audio_gaps"]:
            if len(gaps) != len(timeline) - 1:
                found.append(f"{clip_id}: {len(gaps)} audio packet gaps for "
                             f"{len(timeline)} parts")
            for (start, end), before, after in zip(gaps, timeline, timeline[1:],
                                                   strict=False):
                if not before["end"] < start < end < after["start"]:
                    found.append(f"{clip_id}: gap {start}-{end} is not between parts "
                                 f"{before['part']} and {after['part']}")
        elif gaps:
            found.append(f"{clip_id}: unexpected audio packet gaps {gaps}")
        samples = decoded_audio(path)
        if abs(len(samples) / media.AUDIO_RATE - duration) > 0.2:
            found.append(f"{clip_id}: decoded audio lasts {len(samples) / media.AUDIO_RATE:.2f}"
                         f" s, the file {duration:.2f} s")
        for moment in entry["moments"]:
            start, end = moment["start"], moment["end"]
            inside = min(peak(samples, start, start + 0.15), peak(samples, end - 0.15, end))
            outside = max(peak(samples, start - 0.25, start - 0.05),
                          peak(samples, end + 0.05, end + 0.25))
            if inside < 1000 or outside * 5 > inside:
                found.append(f"{clip_id}: moment {moment['query']!r} {start}-{end}: speech "
                             f"peak {inside} at its edges, {outside} just outside")
    return found


# --------------------------------------------------------------------------- manifest






def main() -> None:
    data, manifest, before = start(__doc__, "hard-bench", HERE / "texts.json", problems)
    out = manifest.parent
    clips = [(clip, make_narrated, group["id"]) for group in data["groups"]
             for clip in group["clips"]]
    clips += [(clip, make_slides, clip["group"]) for clip in data["slides"]]
    clips += [(clip, make_multipart, None) for clip in data["multipart"]]
    entries = []
    for number, (clip, make, group) in enumerate(clips, start=1):
        stamp = fingerprint(clip, data)
        old = before.get(clip["id"])
        if old and old.get("fingerprint") == stamp and (out / old["file"]).is_file():
            entry = {**old, "captions": clip["queries"]}
            if "timeline" in old:
                entry["moments"] = moments_of(clip, old["timeline"])
        else:
            entry = {**make(clip, data, out), "fingerprint": stamp}
        if group:
            entry["group"] = group
        entries.append(entry)
        print(f"[{number}/{len(clips)}] {clip['id']}: {entry['duration']:.1f} s", flush=True)
    lines = [json.dumps(entry) for entry in entries]
    lines.append(json.dumps({"no_answer": data["no_answer"]}))
    manifest.write_text("".join(line + "\n" for line in lines))
    wanted = {entry["file"] for entry in entries}
    for old in before.values():  # clips dropped from texts.json
        if old["file"] not in wanted:
            (out / old["file"]).unlink(missing_ok=True)

    captions = sum(len(e["captions"]) for e in entries)
    kinds = [m["kind"] for e in entries for m in e.get("moments", [])]
    audio = sum(e["duration"] for e in entries if e["clip_type"] != "slides")
    print(f"{len(entries)} clips ({sum(e.get('audio_gaps', False) for e in entries)} with "
          f"audio gaps), {captions} caption queries, {kinds.count('part')} part and "
          f"{kinds.count('sentence')} sentence moment queries, {len(data['no_answer'])} "
          f"no-answer queries, {audio:.0f} s of audio, "
          f"{sum(e['duration'] for e in entries):.0f} s of video: {manifest}")
    if audio > MAX_AUDIO_SECONDS:
        print(f"warning: more than {MAX_AUDIO_SECONDS} s of audio", file=sys.stderr)
    traps = lexical_traps(data)
    print(f"{len(traps)} caption queries share more words with a sibling clip than with "
          "their own")
    found = check_media(entries, out)
    if found:
        sys.exit("the media are not as intended:\n  " + "\n  ".join(found))
    print("media checked: durations, audio packet gaps and moment boundaries are as intended")


if __name__ == "__main__":
    main()
