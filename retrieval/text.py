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
