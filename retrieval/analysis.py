"""English text analysis as the BM25 indexes do it: word tokens, ASCII folding, Porter stems.

Both backends index text through a Porter stemmer over lowercased, accent-folded words
(SQLite FTS5's ``porter unicode61 remove_diacritics 2``; OpenSearch's ``reelsearch_english``
analyzer: standard tokenizer, lowercase, asciifolding, Porter). This module repeats that
analysis in Python, with character offsets, so snippets can mark the words BM25 matched and
typo candidates can be compared stem to stem. Pure: no Django, no backend.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import snowballstemmer

from .typos import distance

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STEMMER = snowballstemmer.stemmer("porter")


@dataclass(frozen=True)
class Token:
    """A word of a text with its character offsets and its index form."""

    start: int
    end: int
    stem: str


def fold(word: str) -> str:
    """Return a word lowercased with its diacritics removed ("Crème" -> "creme")."""
    if word.isascii():
        return word.lower()
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Return the Porter stem of a folded word, as the indexes store it."""
    return _STEMMER.stemWord(fold(word))


def tokens(text: str) -> list[Token]:
    """Return the words of a text with their offsets and stems."""
    return [Token(m.start(), m.end(), stem(m.group())) for m in _WORD.finditer(text)]


def stems(words: Iterable[str]) -> set[str]:
    """Return the stems of some words (query terms, typo corrections)."""
    return {stem(word) for word in words if word}


def term_highlights(text: str, wanted: set[str], near: Sequence[tuple[str, int]] = ()
                    ) -> list[tuple[int, int]]:
    """Return the [start, end) offsets of the words of text whose stem is wanted.

    ``near`` holds (stem, edits) pairs of typo-tolerant terms: a word whose stem is within
    that many edits of one is marked too.
    """
    spans = []
    for match in _WORD.finditer(text):
        word = stem(match.group())
        if word in wanted or near and any(distance(word, s, e) <= e for s, e in near):
            spans.append(match.span())
    return spans
