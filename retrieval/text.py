"""Query-text helpers shared by backends: tokens and a small English stopword list."""

from __future__ import annotations

import re

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves""".split()  # noqa: SIM905 (readable as prose)
)

_TOKEN = re.compile(r"\w+", re.UNICODE)


def query_terms(text: str) -> list[str]:
    """Return the distinct lowercase terms of a query, stopwords dropped (kept if all are)."""
    tokens = [token.lower() for token in _TOKEN.findall(text)]
    terms = [token for token in tokens if token not in STOPWORDS] or tokens
    return list(dict.fromkeys(terms))


# --------------------------------------------------------------------------- concept labels
# A visual segment's text lists ImageNet classes with their pooled probability, all lemmas
# kept so the class can be found again: "black swan, Cygnus atratus (62%); goose (4%)".
# Only confident classes are searchable (BM25) or shown, by their everyday name.

_CONCEPT_ITEM = re.compile(r"\s*(.+?)\s*\((\d+(?:\.\d+)?)%\)\s*$")


def concept_text(concepts: list[tuple[str, float]]) -> str:
    """Format (label, probability) pairs as segment text: "black swan (62%); goose (4%)"."""
    return "; ".join(f"{label} ({100 * p:.0f}%)" for label, p in concepts)


def parse_concept_text(text: str) -> list[tuple[str, float]]:
    """Invert concept_text: return (label, probability) pairs."""
    pairs = []
    for item in text.split(";"):
        if match := _CONCEPT_ITEM.match(item):
            pairs.append((match.group(1), float(match.group(2)) / 100))
    return pairs


def confident_concepts(text: str, min_probability: float) -> list[tuple[str, float]]:
    """Return (everyday name, probability) of the classes at or above min_probability."""
    return [(label.split(",")[0].strip(), p) for label, p in parse_concept_text(text)
            if p >= min_probability]


def searchable_text(kind: str, text: str, min_probability: float) -> str:
    """Return what BM25 indexes of a segment: for concepts, only confident names."""
    if kind != "visual":
        return text
    return "; ".join(name for name, _ in confident_concepts(text, min_probability))


def display_text(kind: str, text: str, min_probability: float) -> str:
    """Return what a user is shown of a segment ("" for concepts nobody is sure of)."""
    if kind != "visual":
        return text
    return concept_text(confident_concepts(text, min_probability))
