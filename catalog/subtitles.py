"""Subtitles from word timestamps: cues of at most two 42-character lines and 7 seconds.

A cue ends at a sentence end, before a pause, or when the next word would not fit (two
lines of `line_chars`, at most `max_seconds` long). Lines are split at the word boundary
that balances them best. Cues never overlap: a cue is shown at least `min_seconds` when
the next one starts late enough, and always ends when the next one starts. Rendered as
WebVTT (`HH:MM:SS.mmm`, `&`, `<` and `>` escaped) or SubRip (`HH:MM:SS,mmm`, numbered).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

TimedWord = tuple[float, float, str]
SENTENCE_END = (".", "?", "!", "…")


@dataclass(frozen=True)
class CueRules:
    """Limits of one cue (the common broadcast and streaming conventions)."""

    line_chars: int = 42
    lines: int = 2
    max_seconds: float = 7.0
    min_seconds: float = 1.0
    max_pause: float = 1.0
    sentence_min_chars: int = 16


@dataclass(frozen=True)
class Cue:
    """One subtitle: when it shows and its lines of text."""

    start: float
    end: float
    lines: tuple[str, ...]


def make_cues(words: Sequence[TimedWord], rules: CueRules = CueRules()) -> list[Cue]:
    """Group timed words into cues that respect the rules, in order and without overlap."""
    groups: list[list[TimedWord]] = []
    current: list[TimedWord] = []
    for word in _split_long_words(words, rules.line_chars):
        if current and not _joins(current, word, rules):
            groups.append(current)
            current = []
        current.append(word)
        if _sentence_done(current, rules):
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return _timed([(g[0][0], g[-1][1], wrap([w[2] for w in g], rules)) for g in groups], rules)


def _split_long_words(words: Sequence[TimedWord], limit: int) -> list[TimedWord]:
    """Cut a word longer than a line into line-sized pieces sharing its time span."""
    found: list[TimedWord] = []
    for start, end, text in words:
        text = " ".join(str(text).split())
        if not text:
            continue
        pieces = [text[i:i + limit] for i in range(0, len(text), limit)]
        step = (end - start) / len(pieces)
        found += [(start + n * step, start + (n + 1) * step, piece)
                  for n, piece in enumerate(pieces)]
    return found


def _joins(current: list[TimedWord], word: TimedWord, rules: CueRules) -> bool:
    """Return True when the word can join the cue being built."""
    if word[0] - current[-1][1] > rules.max_pause:
        return False
    if word[1] - current[0][0] > rules.max_seconds:
        return False
    return wrap([w[2] for w in current] + [word[2]], rules) is not None


def _sentence_done(current: list[TimedWord], rules: CueRules) -> bool:
    text = " ".join(w[2] for w in current)
    return text.endswith(SENTENCE_END) and len(text) >= rules.sentence_min_chars


def wrap(words: Sequence[str], rules: CueRules = CueRules()) -> tuple[str, ...] | None:
    """Return the words as one line, or two balanced lines, or None when they do not fit."""
    text = " ".join(words)
    if len(text) <= rules.line_chars:
        return (text,)
    if rules.lines < 2:
        return None
    splits = [(" ".join(words[:i]), " ".join(words[i:])) for i in range(1, len(words))]
    fitting = [pair for pair in splits if max(map(len, pair)) <= rules.line_chars]
    if not fitting:
        return None
    return min(fitting, key=lambda pair: (max(map(len, pair)), len(pair[1])))


def _timed(raw: list[tuple[float, float, tuple[str, ...] | None]], rules: CueRules) -> list[Cue]:
    """Clamp cue times: at most max_seconds, at least min_seconds when room, no overlap."""
    cues: list[Cue] = []
    for n, (start, end, lines) in enumerate(raw):
        start = max(start, cues[-1].end if cues else 0.0)
        following = raw[n + 1][0] if n + 1 < len(raw) else float("inf")
        end = min(max(end, start + rules.min_seconds), start + rules.max_seconds, following)
        if lines and end > start:
            cues.append(Cue(round(start, 3), round(end, 3), lines))
    return cues


# --------------------------------------------------------------------------- formats

def _clock(seconds: float, separator: str) -> str:
    millis = round(max(seconds, 0.0) * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_webvtt(cues: Sequence[Cue]) -> str:
    """Render cues as a WebVTT file."""
    blocks = [f"{_clock(c.start, '.')} --> {_clock(c.end, '.')}\n"
              + "\n".join(_vtt_escape(line) for line in c.lines) for c in cues]
    return "WEBVTT\n\n" + "".join(block + "\n\n" for block in blocks)


def to_srt(cues: Sequence[Cue]) -> str:
    """Render cues as a SubRip (.srt) file."""
    return "".join(f"{n}\n{_clock(c.start, ',')} --> {_clock(c.end, ',')}\n"
                   + "\n".join(c.lines) + "\n\n" for n, c in enumerate(cues, start=1))
