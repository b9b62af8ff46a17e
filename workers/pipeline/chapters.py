"""Automatic chapters of a long video from topic shifts in its spoken and on-screen text.

TextTiling (Hearst, 1997) over sentence embeddings: each gap between two consecutive units
(sentence units and on-screen text, in time order) gets the cosine between the mean
embedding of the units in a window before it and of those in a window after it; a topic
shift is a valley of that curve, and its depth (how far the curve climbs back on both
sides) ranks it. The curve is not smoothed further: the windows already average several
sentences, and a moving average moved valleys off the sentence where the topic changes.
The deepest valleys, at least `min_seconds` apart, become chapter starts: every valley
deeper than the mean depth minus half a standard deviation (Hearst's cut-off), at least
enough for `min_chapters` and at most `max_per_minute`. A chapter starts where its first
unit (a sentence or a caption) starts; the first starts at 0:00. Each chapter's title is
its most distinctive phrase: the runs of content words scored by TF-IDF against the other
chapters.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from retrieval.text import STOPWORDS

FILLER = frozenset(
    """also always another away back come comes done even ever every first get gets getting
    go goes going good got just keep know last let lets like little lot lots make makes many
    much must need needs never new next now often one ones part really right say see seen
    show start take takes thing things think three two us use used uses using want way ways
    well whole yes yet""".split()  # noqa: SIM905 (readable as prose)
)
_WORD = re.compile(r"[^\W\d_][\w'’-]*", re.UNICODE)
Embed = Callable[[list[str]], np.ndarray]  # texts -> one unit-length row each
_BREAK = re.compile(r"[.,;:!?()\"“”]")


@dataclass(frozen=True)
class Unit:
    """A timed piece of text with its (unit-length) embedding."""

    start: float
    end: float
    text: str
    vector: np.ndarray


@dataclass(frozen=True)
class Chapter:
    """A chapter: where it starts and ends (seconds) and its short title."""

    start: float
    end: float
    title: str

    def to_dict(self) -> dict[str, object]:
        """Return the JSON form stored on the video and sent by the API."""
        return {"start": round(self.start, 2), "end": round(self.end, 2), "title": self.title}


@dataclass(frozen=True)
class ChapterSettings:
    """How chapters are cut: see REELSEARCH["CHAPTER_*"] in deploy/settings.py."""

    min_video_seconds: float = 300.0
    min_seconds: float = 30.0
    window_seconds: float = 20.0
    min_chapters: int = 3
    max_per_minute: float = 1.0


def make_chapters(units: Sequence[Unit], duration: float,
                  conf: ChapterSettings = ChapterSettings(),
                  embed: Embed | None = None) -> list[Chapter]:
    """Return the chapters of a video, or [] when it is too short or has too little text.

    `embed` (texts to unit vectors, the model of the units' vectors) picks each title among
    the chapter's distinctive phrases by closeness to the chapter; without it, TF-IDF alone.
    """
    units = sorted(units, key=lambda unit: unit.start)
    if duration <= conf.min_video_seconds or len(units) < 2 * conf.min_chapters:
        return []
    starts = shift_points(units, duration, conf)
    if len(starts) + 1 < conf.min_chapters:
        return []
    edges = [0, *starts, len(units)]
    groups = [units[a:b] for a, b in zip(edges, edges[1:], strict=False)]
    times = [0.0, *(units[i].start for i in starts), duration]
    centroids = [np.mean([_unit_length(u.vector) for u in group], axis=0) for group in groups]
    titles = chapter_titles([" ".join(u.text for u in group) for group in groups],
                            embed=embed, centroids=centroids)
    return [Chapter(times[n], times[n + 1], titles[n]) for n in range(len(groups))]


def shift_points(units: Sequence[Unit], duration: float, conf: ChapterSettings) -> list[int]:
    """Return the indexes of the units that start a new chapter (ascending, never 0)."""
    similarity = gap_similarities(units, conf.window_seconds)
    depth = depth_scores(similarity)
    limit = max(conf.min_chapters, int(duration / 60.0 * conf.max_per_minute)) - 1
    cutoff = float(depth.mean() - depth.std() / 2) if len(depth) else 0.0
    chosen: list[int] = []
    for gap in np.argsort(-depth, kind="stable"):
        unit = int(gap) + 1
        if len(chosen) >= limit or (depth[gap] <= cutoff and len(chosen) + 1 >= conf.min_chapters):
            break
        if depth[gap] > 0 and _fits(units, chosen, unit, duration, conf.min_seconds):
            chosen.append(unit)
    return sorted(chosen)


def _fits(units: Sequence[Unit], chosen: list[int], unit: int, duration: float,
          min_seconds: float) -> bool:
    """Return True when a chapter starting at units[unit] keeps every chapter long enough."""
    at = units[unit].start
    taken = [0.0, duration, *(units[i].start for i in chosen)]
    return all(abs(at - other) >= min_seconds for other in taken)


def gap_similarities(units: Sequence[Unit], window: float, min_units: int = 3) -> np.ndarray:
    """Return, per gap before units[1:], the cosine of the windows before and after it.

    A window spans `window` seconds, or `min_units` units where they are sparser.
    """
    starts = np.array([unit.start for unit in units])
    vectors = np.stack([_unit_length(unit.vector) for unit in units])
    found = []
    for i in range(1, len(units)):
        at = starts[i]
        left = vectors[max(0, min(i - min_units, int(np.searchsorted(starts, at - window)))):i]
        right = vectors[i:max(i + min_units, int(np.searchsorted(starts, at + window)))]
        found.append(float(_unit_length(left.mean(0)) @ _unit_length(right.mean(0))))
    return np.array(found)


def _unit_length(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def depth_scores(similarity: np.ndarray) -> np.ndarray:
    """Return each point's depth: the climb to the highest point on its left and on its right.

    Only valleys (points no higher than both neighbours) score; others are 0.
    """
    depth = np.zeros(len(similarity))
    for i, value in enumerate(similarity):
        left = similarity[i - 1] if i > 0 else math.inf
        right = similarity[i + 1] if i + 1 < len(similarity) else math.inf
        if value <= left and value <= right:
            depth[i] = (_peak(similarity[i::-1]) - value) + (_peak(similarity[i:]) - value)
    return depth


def _peak(side: np.ndarray) -> float:
    """Return the top of the hill that starts at side[0] (climb while the curve rises)."""
    top = side[0]
    for value in side[1:]:
        if value < top:
            break
        top = value
    return float(top)


# --------------------------------------------------------------------------- titles

def phrases(text: str, longest: int = 3) -> list[str]:
    """Return the content-word phrases of a text: 1..longest word runs without stopwords."""
    found: list[str] = []
    for piece in _BREAK.split(text):
        run: list[str] = []
        for word in [*(w.lower().strip("'’-") for w in _WORD.findall(piece)), ""]:
            if len(word) > 2 and word not in STOPWORDS and word not in FILLER:
                run.append(word)
                continue
            found += [" ".join(run[i:i + n]) for n in range(1, longest + 1)
                      for i in range(len(run) - n + 1)]
            run = []
    return found


def chapter_titles(texts: Sequence[str], words: int = 4, embed: Embed | None = None,
                   centroids: Sequence[np.ndarray] = (), candidates: int = 8) -> list[str]:
    """Return a short title per chapter text: its most distinctive phrase or two.

    Phrases are ranked by TF-IDF against the other chapters; with an encoder and the
    chapters' mean vectors, the `candidates` best of them are re-ranked by how close their
    embedding is to the chapter's (the phrase that says what the chapter is about).
    """
    counts = [Counter(phrases(text)) for text in texts]
    spread = Counter(phrase for count in counts for phrase in count)
    ranked = [sorted((p for p in count if _score(p, count, spread, len(texts)) > 0),
                     key=lambda p, c=count: (-_score(p, c, spread, len(texts)), p))
              for count in counts]
    if embed is not None and len(centroids) == len(texts):
        ranked = [_closest(found[:candidates], centroid, embed) + found[candidates:]
                  for found, centroid in zip(ranked, centroids, strict=True)]
    return [_title(found, words) or f"Part {n + 1}" for n, found in enumerate(ranked)]


def _closest(found: list[str], centroid: np.ndarray, embed: Embed) -> list[str]:
    """Order phrases by the cosine of their embedding with a chapter's mean vector."""
    if not found:
        return found
    similarity = np.asarray(embed(found)) @ _unit_length(centroid)
    return [found[i] for i in np.argsort(-similarity, kind="stable")]


def _score(phrase: str, count: Counter, spread: Counter, documents: int) -> float:
    """TF-IDF of a phrase in one chapter, longer phrases favoured (they read as topics)."""
    length = phrase.count(" ") + 1
    if length > 1 and count[phrase] < 2:
        return 0.0  # a word run seen once is a fragment of a sentence, not a key phrase
    return count[phrase] * math.log((1 + documents) / spread[phrase]) * (1 + 0.5 * (length - 1))


def _title(ranked: list[str], words: int) -> str:
    """Join the best phrase with the next one that adds new words, up to `words` words."""
    chosen: list[str] = []
    for phrase in ranked:
        used = {_stem(w) for p in chosen for w in p.split()}
        if used & {_stem(w) for w in phrase.split()}:
            continue
        if chosen and len(used) + phrase.count(" ") + 1 > words:
            break
        chosen.append(phrase)
        if len(chosen) == 2:
            break
    if not chosen:
        return ""
    title = " and ".join(chosen)
    return title[0].upper() + title[1:]


def _stem(word: str) -> str:
    """Return a word without a plural "s", so "tide" and "tides" count as one."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word
