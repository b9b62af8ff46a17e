"""BM25 engines side by side: SQLite FTS5 (the embedded backend's), tantivy and bm25s.

The same synthetic corpus for all three: segment texts of 25-45 words drawn from a
20k-word Zipf vocabulary (as in bench/search_latency.py), top 150 hits per query (the
search's BM25 window). Two query sets:

* ``rare``: 2-5 words, the 100 most frequent words left out (the usual query);
* ``frequent``: 2-3 words from the 100 most frequent (each in a large share of the
  segments): the case where an engine that scores every matching row slows down.

FTS5 runs exactly as the embedded backend does (``porter unicode61 remove_diacritics 2``,
external content table, OR of quoted terms, ``ORDER BY bm25()`` with a join to the content
row). tantivy uses its ``en_stem`` tokenizer and block-max WAND top-k; bm25s its sparse
matrix with no stemmer (the corpus has no inflections to fold).

    python bench/bm25_engines.py [--sizes 100000 1000000] [--queries 200]
    python bench/bm25_engines.py --through-backend --sizes 100000

``--through-backend`` times ``EmbeddedBackend.bm25()`` itself (the change-log check, the
tantivy query, the mapping of rows to segment ids), tantivy and FTS5 interleaved query by
query on one index, with the share of their top 10 they agree on.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _setup import peak_rss_mb, percentile

WINDOW = 150


def corpus(size: int, seed: int = 7) -> tuple[list[str], list[str], np.ndarray]:
    """Return (texts, vocabulary, Zipf weights) for `size` synthetic segments."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = sorted({"".join(rng.choice(letters, rng.integers(3, 10))) for _ in range(40000)})
    words = words[:20000]
    weights = 1.0 / np.arange(1, len(words) + 1)
    weights /= weights.sum()
    lengths = rng.integers(25, 45, size)
    picks = rng.choice(len(words), int(lengths.sum()), p=weights)
    texts, at = [], 0
    for length in lengths:
        texts.append(" ".join(words[i] for i in picks[at:at + length]))
        at += length
    return texts, words, weights


def queries(words: list[str], weights: np.ndarray, n: int, frequent: bool,
            seed: int = 11) -> list[str]:
    """Return n queries of rare (default) or frequent words."""
    rng = np.random.default_rng(seed + frequent)
    if frequent:
        return [" ".join(rng.choice(words[:100], rng.integers(2, 4), replace=False))
                for _ in range(n)]
    rest = weights[100:] / weights[100:].sum()
    return [" ".join(words[100 + i] for i in rng.choice(len(words) - 100, rng.integers(2, 6),
                                                         p=rest, replace=False))
            for _ in range(n)]


class Fts5:
    name = "SQLite FTS5"

    def __init__(self, folder: Path) -> None:
        self.db = sqlite3.connect(folder / "fts.sqlite3")
        self.db.executescript(
            "CREATE TABLE docs (rowid INTEGER PRIMARY KEY, id TEXT, text TEXT);"
            "CREATE VIRTUAL TABLE docs_fts USING fts5(text, content='docs', "
            "content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2');")

    def build(self, texts: list[str]) -> None:
        rows = [(n, f"s{n}", text) for n, text in enumerate(texts)]
        with self.db:
            self.db.executemany("INSERT INTO docs VALUES (?, ?, ?)", rows)
            self.db.executemany("INSERT INTO docs_fts(rowid, text) VALUES (?, ?)",
                                [(n, text) for n, _, text in rows])
            self.db.execute("INSERT INTO docs_fts(docs_fts) VALUES ('optimize')")

    def search(self, query: str) -> list[str]:
        match = " OR ".join(f'"{term}"' for term in query.split())
        return [row[0] for row in self.db.execute(
            "SELECT d.id FROM docs_fts JOIN docs d ON d.rowid = docs_fts.rowid "
            "WHERE docs_fts MATCH ? ORDER BY bm25(docs_fts), d.id LIMIT ?",
            (match, WINDOW))]


class Tantivy:
    name = "tantivy 0.27"

    def __init__(self, folder: Path) -> None:
        import tantivy

        builder = tantivy.SchemaBuilder()
        builder.add_text_field("id", stored=True, tokenizer_name="raw")
        builder.add_text_field("text", stored=False, tokenizer_name="en_stem")
        self.tantivy = tantivy
        self.index = tantivy.Index(builder.build(), path=str(folder))

    def build(self, texts: list[str]) -> None:
        writer = self.index.writer(heap_size=256_000_000, num_threads=2)
        for n, text in enumerate(texts):
            writer.add_document(self.tantivy.Document(id=f"s{n}", text=text))
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()
        self.searcher = self.index.searcher()

    def search(self, query: str) -> list[str]:
        parsed = self.index.parse_query(query, ["text"])  # terms OR-ed by default
        hits = self.searcher.search(parsed, WINDOW).hits
        return [self.searcher.doc(address)["id"][0] for _, address in hits]


class Bm25s:
    name = "bm25s 0.3"

    def __init__(self, folder: Path) -> None:
        import bm25s

        self.bm25s = bm25s
        self.retriever = bm25s.BM25()

    def build(self, texts: list[str]) -> None:
        tokens = self.bm25s.tokenize(texts, stopwords=None, show_progress=False)
        self.retriever.index(tokens, show_progress=False)
        self.vocab = tokens.vocab

    def search(self, query: str) -> list[str]:
        ids = [[self.vocab[t] for t in query.split() if t in self.vocab]]
        if not ids[0]:
            return []
        found, _ = self.retriever.retrieve(ids, k=WINDOW, show_progress=False, n_threads=1)
        return [f"s{n}" for n in found[0]]


def folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def measure(engine_class, texts: list[str], query_sets: dict[str, list[str]]) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="bm25-"))
    engine = engine_class(folder)
    started = time.perf_counter()
    engine.build(texts)
    result = {"engine": engine.name, "build_s": round(time.perf_counter() - started, 1),
              "disk_mb": round(folder_mb(folder), 1)}
    for label, batch in query_sets.items():
        for query in batch[:5]:
            engine.search(query)  # warm caches
        timings, answered = [], 0
        for query in batch:
            started = time.perf_counter()
            answered += bool(engine.search(query))
            timings.append((time.perf_counter() - started) * 1000)
        result[label] = {"p50_ms": round(percentile(timings, 50), 2),
                         "p95_ms": round(percentile(timings, 95), 2),
                         "answered": answered}
    return result


def overlap(a: list[str], b: list[str]) -> float:
    return len(set(a[:10]) & set(b[:10])) / 10 if a and b else 0.0


def run_one(size: int, name: str, n_queries: int) -> dict:
    """Build one engine over the corpus and time both query sets (in this process)."""
    classes = {"fts5": Fts5, "tantivy": Tantivy, "bm25s": Bm25s}
    texts, words, weights = corpus(size)
    query_sets = {"rare": queries(words, weights, n_queries, frequent=False),
                  "frequent": queries(words, weights, n_queries, frequent=True)}
    before = peak_rss_mb()
    result = measure(classes[name], texts, query_sets)
    return {"segments": size, **result, "load_average": round(os.getloadavg()[0], 1),
            "peak_rss_mb": round(peak_rss_mb()), "rss_before_build_mb": round(before)}


def through_backend(size: int, n_queries: int) -> dict:
    """Time the embedded backend's bm25() with each engine, interleaved, on one index."""
    from _setup import django_in_tempdir

    var = django_in_tempdir("bench-bm25-")
    from retrieval.backends.embedded import EmbeddedBackend
    from retrieval.documents import SegmentDoc

    texts, words, weights = corpus(size)
    engines = {name: EmbeddedBackend("bench", {"PATH": str(var / "index"), "BM25_ENGINE": name})
               for name in ("tantivy", "fts5")}
    for start in range(0, size, 1000):
        engines["fts5"].index([SegmentDoc(f"s{n}", f"v{n // 100}", "speech", 0.0, 1.0,
                                          texts[n], {}, {})
                               for n in range(start, min(size, start + 1000))])
    started = time.perf_counter()
    engines["tantivy"].bm25("warm", 1)  # builds the tantivy index from the rows
    result = {"segments": size, "tantivy_build_s": round(time.perf_counter() - started, 1)}
    for label in ("rare", "frequent"):
        timings: dict[str, list[float]] = {name: [] for name in engines}
        agree = 0.0
        for query in queries(words, weights, n_queries, frequent=label == "frequent"):
            found = {}
            for name, backend in engines.items():
                started = time.perf_counter()
                found[name] = [hit.segment_id for hit in backend.bm25(query, WINDOW)]
                timings[name].append((time.perf_counter() - started) * 1000)
            agree += overlap(found["tantivy"], found["fts5"])
        result[label] = {**{f"{name}_p50_ms": round(percentile(t, 50), 2)
                            for name, t in timings.items()},
                         **{f"{name}_p95_ms": round(percentile(t, 95), 2)
                            for name, t in timings.items()},
                         "top10_agreement": round(agree / n_queries, 3)}
    return {**result, "load_average": round(os.getloadavg()[0], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100000, 1000000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--engines", nargs="+", default=["fts5", "tantivy", "bm25s"])
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--through-backend", action="store_true",
                        help="time EmbeddedBackend.bm25() with tantivy and FTS5 instead")
    args = parser.parse_args()
    if args.through_backend:
        for size in args.sizes:
            print(json.dumps(through_backend(size, args.queries)), flush=True)
        return
    if args.one:  # a child: one engine, one size, so peak RSS is that engine's
        print(json.dumps(run_one(args.sizes[0], args.engines[0], args.queries)))
        return
    report = {"load_average_start": os.getloadavg(), "runs": []}
    for size in args.sizes:
        for name in args.engines:
            child = subprocess.run(  # noqa: S603 - this script, fixed arguments
                [sys.executable, __file__, "--one", "--sizes", str(size), "--engines", name,
                 "--queries", str(args.queries)], capture_output=True, text=True, check=True)
            result = json.loads(child.stdout.splitlines()[-1])
            print(json.dumps(result), flush=True)
            report["runs"].append(result)
    report["load_average_end"] = os.getloadavg()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
