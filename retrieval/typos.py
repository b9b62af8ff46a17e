"""Typo tolerance rules shared by the backends: how many edits a term may be off, and which.

The common convention (Elasticsearch's ``fuzziness: AUTO:5,9``, Meilisearch, Algolia): no
edit for terms under 5 characters, one for 5 to 8, two from 9. An edit inserts, deletes or
substitutes a character, or swaps two neighbours (optimal string alignment distance). A
query term is matched with tolerance only when its exact form matches little: fewer than
``REELSEARCH['TYPO_MAX_DF']`` segments (default 2) under the request's filters hold it.
Pure: no Django, no backend.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

ONE_EDIT_FROM, TWO_EDITS_FROM = 5, 9
MAX_EXPANSIONS = 50  # candidate terms per misspelt term (OpenSearch's fuzzy default)


def max_edits(term: str) -> int:
    """Return how many edits a query term of this length may be off (0, 1 or 2)."""
    if len(term) >= TWO_EDITS_FROM:
        return 2
    return 1 if len(term) >= ONE_EDIT_FROM else 0


def tolerant_terms(terms: Iterable[str]) -> list[str]:
    """Return the query terms long enough to be matched with typos."""
    return [term for term in terms if max_edits(term) > 0 and not term.isdigit()]


@functools.lru_cache(maxsize=65536)  # snippets and candidates repeat the same pairs
def distance(a: str, b: str, limit: int) -> int:
    """Return the optimal string alignment distance of a and b, or limit + 1 when above it."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    if a == b:
        return 0
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            best = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                best = min(best, previous2[j - 2] + 1)
            current[j] = best
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1] if previous[-1] <= limit else limit + 1


Vocabulary = dict[int, list[tuple[str, int]]]  # (term, document frequency) by term length


def by_length(pairs: Iterable[tuple[str, int]]) -> Vocabulary:
    """Group (term, document frequency) pairs by the term's length, for near_terms()."""
    grouped: Vocabulary = {}
    for term, count in pairs:
        grouped.setdefault(len(term), []).append((term, int(count)))
    return grouped


def near_terms(own: str, vocabulary: Vocabulary, edits: int) -> list[str]:
    """Return the vocabulary's terms within `edits` of the (stemmed) term `own`."""
    nearby = [entry for n in range(len(own) - edits, len(own) + edits + 1)
              for entry in vocabulary.get(n, ())]
    return candidates(own, nearby, edits)


def candidates(term: str, vocabulary: Sequence[tuple[str, int]], edits: int,
               limit: int = MAX_EXPANSIONS) -> list[str]:
    """Return the vocabulary terms within `edits` of term, fewest edits then most frequent.

    ``vocabulary`` holds (term, document frequency) pairs; the term itself is left out.
    """
    found = []
    for word, df in vocabulary:
        if word != term and abs(len(word) - len(term)) <= edits:
            d = distance(term, word, edits)
            if d <= edits:
                found.append((d, -df, word))
    return [word for _, _, word in sorted(found)[:limit]]
