"""Suggestions, "did you mean" and facets on the 100k-segment synthetic catalog.

The catalog is bench/search_latency.py's (1,000 videos of 100 segments, Zipf sentences over
a 20k-word vocabulary, random vectors). Measured: building the suggestion index; /api/suggest
through Django's test client (DRF included) for prefixes of 1-8 characters and two-word
prefixes; the spelling correction of misspelt queries; and search() with and without
facets=tags,language,kind,duration (the same queries, the default profile).

    python bench/suggest_speed.py [--size 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time

import numpy as np
from _setup import django_in_tempdir, percentile
from search_latency import build, sentence, vocabulary


def timed(calls) -> list[float]:
    out = []
    for call in calls:
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def stats(name: str, values: list[float]) -> dict:
    return {"what": name, "n": len(values), "p50_ms": round(percentile(values, 50), 3),
            "p95_ms": round(percentile(values, 95), 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    django_in_tempdir(f"bench-suggest-{args.size}-")
    from django.conf import settings
    from django.test import Client

    from retrieval.params import parse_request
    from retrieval.search import search
    from retrieval.suggest import build_index, current_index

    rng = np.random.default_rng(7)
    words = vocabulary(rng)
    weights = 1.0 / np.arange(1, len(words) + 1) ** 1.07
    weights /= weights.sum()
    build(args.size, rng, words, weights, settings.REELSEARCH["TEXT_DIM"])
    rows = [{"size": args.size, "load_average_1m": round(os.getloadavg()[0], 2)}]
    started = time.perf_counter()
    build_index()
    rows.append({"what": "suggestion index build", "s": round(time.perf_counter() - started, 2)})
    index = current_index()
    pick = random.Random(7)
    content = [w for w in words[100:5000] if len(w) >= 3]
    prefixes = [pick.choice(content)[:pick.randint(1, 8)] for _ in range(args.queries)]
    prefixes += [f"{pick.choice(content)} {pick.choice(content)[:2]}"
                 for _ in range(args.queries // 4)]
    client = Client()
    client.get("/api/suggest", {"q": "a"})
    rows.append(stats("suggest, index only", timed(lambda p=p: index.suggest(p, 8)
                                                 for p in prefixes)))
    rows.append(stats("GET /api/suggest", timed(
        lambda p=p: client.get("/api/suggest", {"q": p}) for p in prefixes)))
    misspelt = [w[:2] + w[3:] if len(w) >= 5 else w + "x" for w in pick.sample(content, 100)]
    rows.append(stats("did-you-mean correction", timed(lambda w=w: index.correct(w)
                                                     for w in misspelt)))
    dense = weights.copy()
    dense[:100] = 0.0
    dense /= dense.sum()
    queries = [sentence(rng, words, dense, int(rng.integers(2, 6))) for _ in range(args.queries)]
    for query in queries[:5]:
        search(parse_request({"q": query, "facets": "tags,language,kind,duration"}))
    plain, faceted = [], []
    for query in queries:  # alternate, so both see the same load
        plain += timed([lambda q=query: search(parse_request({"q": q}))])
        faceted += timed([lambda q=query: search(parse_request(
            {"q": q, "facets": "tags,language,kind,duration"}))])
    rows += [stats("search", plain), stats("search with 4 facets", faceted)]
    rows[-1]["ratio_p50"] = round(rows[-1]["p50_ms"] / rows[-2]["p50_ms"], 3)
    rows.append({"load_average_1m_end": round(os.getloadavg()[0], 2)})
    for row in rows:
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
