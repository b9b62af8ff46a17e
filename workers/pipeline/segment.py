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


def metadata_text(title: str, description: str, tags: list[str]) -> str:
    """Return the text indexed for a video's editor metadata."""
    tag_text = ", ".join(str(t).strip() for t in tags if str(t).strip())
    parts = [title.strip(), description.strip(), f"Tags: {tag_text}" if tag_text else ""]
    return "\n".join(part for part in parts if part)
