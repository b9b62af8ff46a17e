"""Turn a transcript into overlapping, timestamped chunks; build the metadata segment text."""

from __future__ import annotations

from dataclasses import dataclass

from .asr import Word

SENTENCE_END = (".", "?", "!")


@dataclass(frozen=True)
class Chunk:
    """A span of speech: exact start of its first word, exact end of its last."""

    start: float
    end: float
    text: str


def chunk_words(words: list[Word], target: float = 15.0, overlap: float = 3.0,
                max_len: float | None = None, max_gap: float = 4.0) -> list[Chunk]:
    """Group words into ~target-second chunks that overlap by about `overlap` seconds."""
    max_len = max_len or target * 4 / 3
    chunks: list[Chunk] = []
    i, last = 0, -1
    while i < len(words):
        j = _chunk_end(words, i, target, max_len, max_gap)
        if j <= last:  # the next word cannot join (a split): start after it, not a sub-chunk
            i = last + 1
            continue
        chunks.append(_make_chunk(words[i:j + 1]))
        last = j
        if j == len(words) - 1:
            break
        i = _next_start(words, i, j, overlap)
    return chunks


def _chunk_end(words: list[Word], i: int, target: float, max_len: float, max_gap: float) -> int:
    j = i
    while j + 1 < len(words):
        nxt = words[j + 1]
        if nxt.end - words[i].start > max_len or nxt.start - words[j].end > max_gap:
            break
        j += 1
        if words[j].end - words[i].start >= target and words[j].text.endswith(SENTENCE_END):
            break
    return j


def _next_start(words: list[Word], i: int, j: int, overlap: float) -> int:
    if j + 1 < len(words) and words[j + 1].start - words[j].end > overlap:
        return j + 1  # a pause: no overlap across silence
    cut = words[j].end - overlap
    k = next((k for k in range(i + 1, j + 1) if words[k].start >= cut), j + 1)
    return k


def _make_chunk(words: list[Word]) -> Chunk:
    return Chunk(words[0].start, words[-1].end, " ".join(w.text for w in words).strip())


def sentence_units(words: list[Word], min_len: float = 2.0, max_len: float = 8.0,
                   max_gap: float = 1.5) -> list[Chunk]:
    """Split a transcript into sentence-sized units (about min_len..max_len seconds).

    A unit ends at a sentence end, before a pause longer than max_gap, or when the next word
    would make it longer than max_len (then preferably after a comma). A unit shorter than
    min_len joins its neighbour when no pause separates them and the result stays within
    max_len, so answers of one sentence get a span that hugs them.
    """
    units = [_make_chunk(group) for group in _sentence_groups(words, max_len, max_gap)]
    return _merge_short(units, min_len, max_len, max_gap)


def _sentence_groups(words: list[Word], max_len: float, max_gap: float) -> list[list[Word]]:
    groups: list[list[Word]] = []
    current: list[Word] = []
    for word in words:
        if current and (word.start - current[-1].end > max_gap
                        or word.end - current[0].start > max_len):
            groups.extend(_split_at_comma(current))
            current = []
        current.append(word)
        if word.text.endswith(SENTENCE_END):
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def _split_at_comma(group: list[Word]) -> list[list[Word]]:
    """Split an over-long group after its last comma in the second half, if it has one."""
    cut = next((n for n in range(len(group) - 2, len(group) // 2 - 1, -1)
                if group[n].text.endswith((",", ";", ":"))), None)
    return [group] if cut is None else [group[:cut + 1], group[cut + 1:]]


def _merge_short(units: list[Chunk], min_len: float, max_len: float, max_gap: float) -> list[Chunk]:
    merged: list[Chunk] = []
    for unit in units:
        previous = merged[-1] if merged else None
        if previous and _joinable(previous, unit, min_len, max_len, max_gap):
            merged[-1] = Chunk(previous.start, unit.end, f"{previous.text} {unit.text}")
        else:
            merged.append(unit)
    return merged


def _joinable(a: Chunk, b: Chunk, min_len: float, max_len: float, max_gap: float) -> bool:
    """Join a short unit to its neighbour when no pause separates them.

    The joined unit may pass max_len by up to min_len, so that the tail of a sentence that
    was cut at max_len ("… into new rock.") never stands alone as a fraction of a second.
    """
    short = (a.end - a.start) < min_len or (b.end - b.start) < min_len
    return short and b.start - a.end <= max_gap and b.end - a.start <= max_len + min_len


def metadata_text(title: str, description: str, tags: list[str]) -> str:
    """Return the text indexed for a video's editor metadata."""
    tag_text = ", ".join(str(t).strip() for t in tags if str(t).strip())
    parts = [title.strip(), description.strip(), f"Tags: {tag_text}" if tag_text else ""]
    return "\n".join(part for part in parts if part)
