"""Search-as-you-type suggestions and "did you mean" spelling corrections, in memory.

The index is built from the published videos only (what an anonymous search can find):
their titles, their tags and the phrases their transcripts repeat (one to three words, not
starting or ending with a stopword, said at least twice). A suggestion matches when the
typed text is a prefix of it or of the part of it that starts at one of its words
("vol" finds "Active Volcanoes of Iceland"). Ranking: the source (title, tag, phrase),
then how many videos hold it, then a match at its very start, then shorter first.

Transcripts are read from an even sample of at most MAX_SAMPLED (5,000) spoken segments, so
the index builds in seconds on a large catalog; repeated phrases survive sampling. The same
texts give the vocabulary "did you mean" corrects against: a query word that no
published video holds is replaced by the most frequent catalog word within its edit budget
(retrieval/typos.py), found through a symmetric-deletion index.

Pure apart from ``SuggestionIndex.build``'s inputs: the catalog queries live in
retrieval/catalog_text.py.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from .analysis import fold
from .text import STOPWORDS
from .typos import distance, max_edits

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
SOURCE_WEIGHTS = {"title": 3.0, "tag": 2.0, "phrase": 1.0}
MAX_PHRASES = 20_000
MIN_PHRASE_COUNT = 2
MAX_PREFIX = 100  # characters of typed text that are matched


@dataclass(frozen=True)
class Suggestion:
    """One completion of what the user typed."""

    text: str
    source: str  # "title", "tag" or "phrase"
    videos: int  # how many published videos hold it
    video_id: str | None = None  # the video, for a title


def normalized(text: str) -> str:
    """Return text as suggestions are matched: folded words, single spaces."""
    return " ".join(fold(word) for word in _WORD.findall(text))


def typed(text: str) -> str:
    """Return typed text as matched; a trailing space keeps the last word complete."""
    key = normalized(text[:MAX_PREFIX])
    return key + " " if key and text[:MAX_PREFIX].endswith(" ") else key


def phrases(texts: Iterable[tuple[str, str]], limit: int = MAX_PHRASES) -> list[tuple[str, int]]:
    """Return the (phrase, videos) pairs transcripts repeat, most widespread first.

    ``texts`` holds (video id, transcript text) pairs.
    """
    said: Counter[tuple[str, ...]] = Counter()
    videos: Counter[tuple[str, ...]] = Counter()
    seen: dict[str, set[tuple[str, ...]]] = {}
    for video_id, text in texts:
        words = [fold(w) for w in _WORD.findall(text)]
        grams = [g for g in _grams(words) if _phrase_like(g)]
        said.update(grams)
        own = seen.setdefault(video_id, set())
        fresh = set(grams) - own
        own |= fresh
        videos.update(fresh)
    kept = [(g, videos[g], c) for g, c in said.items() if c >= MIN_PHRASE_COUNT]
    kept.sort(key=lambda row: (-row[1], -row[2], row[0]))
    return [(" ".join(g), v) for g, v, _ in kept[:limit]]


def _grams(words: list[str]) -> Iterable[tuple[str, ...]]:
    yield from ((w,) for w in words)
    yield from zip(words, words[1:], strict=False)
    yield from zip(words, words[1:], words[2:], strict=False)


def _phrase_like(gram: tuple[str, ...]) -> bool:
    """Return True for n-grams worth suggesting: no stopword at either end, no number last."""
    first, last = gram[0], gram[-1]
    return (first not in STOPWORDS and last not in STOPWORDS and len(first) >= 3
            and (len(gram) > 1 or len(first) >= 4) and not last.isdigit())


class SuggestionIndex:
    """Sorted word-start keys over every suggestion, with a score per key."""

    def __init__(self, entries: list[Suggestion], vocabulary: Counter[str]) -> None:
        self.entries = entries
        keyed: list[tuple[str, float, int]] = []
        for n, entry in enumerate(entries):
            words = normalized(entry.text).split()
            base = SOURCE_WEIGHTS[entry.source] * (1.0 + math.log(max(entry.videos, 1)))
            base -= 0.001 * len(entry.text)
            for i in range(len(words)):
                keyed.append((" ".join(words[i:]), base + (0.5 if i == 0 else 0.0), n))
        keyed.sort()
        self.keys = [key for key, _, _ in keyed]
        self.scores = np.array([score for _, score, _ in keyed], dtype=np.float64)
        self.owners = np.array([owner for _, _, owner in keyed], dtype=np.int64)
        self.vocabulary = vocabulary
        self._deletions = _deletion_index(vocabulary)

    @classmethod
    def build(cls, titles: Iterable[tuple[str, str]], tags: Iterable[tuple[str, str]],
              transcripts: Iterable[tuple[str, str]]) -> SuggestionIndex:
        """Build from (video id, title), (video id, tag) and (video id, transcript) pairs."""
        titles, tags, transcripts = list(titles), list(tags), list(transcripts)
        vocabulary: Counter[str] = Counter()
        for video_id, words in _video_words([*titles, *tags, *transcripts]):
            del video_id
            vocabulary.update(words)
        entries: dict[str, Suggestion] = {}
        title_videos = Counter(normalized(t) for _, t in titles)
        for video_id, title in titles:
            key = normalized(title)
            if key and key not in entries:
                one = video_id if title_videos[key] == 1 else None
                entries[key] = Suggestion(title.strip(), "title", title_videos[key], one)
        tag_videos: dict[str, set[str]] = {}
        shown: dict[str, str] = {}
        for video_id, tag in tags:
            key = normalized(tag)
            if key:
                tag_videos.setdefault(key, set()).add(video_id)
                shown.setdefault(key, tag.strip())
        for key, videos in tag_videos.items():
            entries.setdefault(key, Suggestion(shown[key], "tag", len(videos)))
        for phrase, videos in phrases(transcripts):
            entries.setdefault(phrase, Suggestion(phrase, "phrase", videos))
        return cls(list(entries.values()), vocabulary)

    def suggest(self, text: str, k: int = 8) -> list[Suggestion]:
        """Return up to k suggestions that complete the typed text, best first."""
        key = typed(text)
        if not key.strip():
            return []
        lo = bisect.bisect_left(self.keys, key)
        hi = bisect.bisect_left(self.keys, key + "\U0010ffff")
        if hi <= lo:
            return []
        scores = self.scores[lo:hi]
        wanted = min(hi - lo, k * 4)
        top = np.argpartition(-scores, wanted - 1)[:wanted] if wanted < hi - lo \
            else np.arange(hi - lo)
        ranked = sorted(top, key=lambda i: (-scores[i], self.keys[lo + i]))
        found: list[Suggestion] = []
        seen: set[int] = set()
        for i in ranked:
            owner = int(self.owners[lo + i])
            if owner not in seen:
                seen.add(owner)
                found.append(self.entries[owner])
                if len(found) == k:
                    break
        return found

    def correct(self, query: str, unknown: Callable[[list[str]], set[str]] | None = None
                ) -> str | None:
        """Return the query with its unknown words spelt as the catalog spells them, or None.

        ``unknown`` says which of some words no published video holds (default: those not in
        the index's vocabulary, which may be built from a sample of the transcripts).
        """
        matches = [m for m in _WORD.finditer(query)
                   if max_edits(m.group()) and not m.group().isdigit()
                   and fold(m.group()) not in STOPWORDS]
        words = [fold(m.group()) for m in matches]
        missing = unknown(words) if unknown else {w for w in words if w not in self.vocabulary}
        changed = False
        out, last = [], 0
        for match, word in zip(matches, words, strict=True):
            if word not in missing:
                continue
            better = self.nearest(word)
            if better:
                out += [query[last:match.start()], better]
                last, changed = match.end(), True
        return "".join(out) + query[last:] if changed else None

    def nearest(self, word: str) -> str | None:
        """Return the most frequent vocabulary word within the word's edit budget."""
        edits = max_edits(word)
        if edits == 0:
            return None
        found = {candidate for variant in _deletes(word, edits)
                 for candidate in self._deletions.get(variant, ())}
        close = [(distance(word, c, edits), -self.vocabulary[c], c) for c in found]
        close = [row for row in close if row[0] <= edits]
        return min(close)[2] if close else None


def _video_words(pairs: Iterable[tuple[str, str]]) -> Iterable[tuple[str, set[str]]]:
    for video_id, text in pairs:
        yield video_id, {fold(w) for w in _WORD.findall(text)}


def _deletes(word: str, edits: int) -> set[str]:
    """Return the word and every string made from it by deleting up to `edits` letters."""
    found, frontier = {word}, {word}
    for _ in range(edits):
        frontier = {w[:i] + w[i + 1:] for w in frontier if len(w) > 1 for i in range(len(w))}
        found |= frontier
    return found


def _deletion_index(vocabulary: Counter[str]) -> dict[str, list[str]]:
    """Map each deletion variant of each correctable word to the words it comes from.

    Two words within d edits share a variant with at most d deletions each (symmetric
    deletion); words shorter than 4 letters are never suggested as corrections.
    """
    index: dict[str, list[str]] = {}
    for word in vocabulary:
        if len(word) < 4 or word.isdigit():
            continue
        for variant in _deletes(word, 2 if len(word) >= 7 else 1):
            index.setdefault(variant, []).append(word)
    return index
