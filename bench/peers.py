"""reelsearch's embedded backend next to LanceDB on the same synthetic corpus, one table.

The corpus has the shape of bench/search_latency.py: 100 segments per video, 25-45 words
each from a Zipf-distributed vocabulary of 20,000 random words, random unit vectors (384-d);
queries are 2-5 words that skip the 100 most frequent ones. Each engine runs in its own
process (its own peak RSS), one after the other:

- reelsearch: bulk load through EmbeddedBackend.index() in batches of 1,000 (load time
  includes tantivy's index and, for `reelsearch-hnsw`, the HNSW graph); BM25 (tantivy) and
  k-NN windows of 150 (REELSEARCH_SIGNAL_WINDOW), exact or through the graph, as the query
  service asks for them (with the graph: its recall@10 against exact cosine over the
  queries, too); hybrid =
  both signals, fusion (the default profile without its coverage gate, which reads the
  catalog) and grouping into videos, without and with query encoding (the ONNX encoder,
  no cache hits: every query is new).
- LanceDB (the `bench` extra): one table, its native FTS index and an IVF_HNSW_SQ cosine
  index; BM25 and vector queries with limit 150, hybrid = its RRF hybrid query, limit 10.

    python bench/peers.py [--sizes 100000 1000000] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from _setup import ROOT, django_in_tempdir, peak_rss_mb, percentile

SEGMENTS_PER_VIDEO = 100
DIM = 384
WINDOW = 150
BATCH = 1000


class Corpus:
    """The synthetic corpus, generated batch by batch (never held whole in memory)."""

    def __init__(self, size: int, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
        words = {"".join(rng.choice(letters, rng.integers(3, 10))) for _ in range(40000)}
        self.words = np.array(sorted(words)[:20000])
        weights = 1.0 / np.arange(1, len(self.words) + 1) ** 1.07
        self.weights = weights / weights.sum()
        self.size, self.seed = size, seed

    def batches(self):
        """Yield (ids, video ids, texts, vectors) in batches of BATCH segments."""
        for start in range(0, self.size, BATCH):
            rng = np.random.default_rng((self.seed, start))
            count = min(BATCH, self.size - start)
            picks = rng.choice(len(self.words), size=(count, 45), p=self.weights)
            lengths = rng.integers(25, 45, size=count)
            texts = [" ".join(self.words[row[:n]]) for row, n in zip(picks, lengths,
                                                                        strict=True)]
            vectors = rng.standard_normal((count, DIM)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            numbers = range(start, start + count)
            videos = [f"v{n // SEGMENTS_PER_VIDEO}" for n in numbers]
            ids = [f"{video}:speech:{n % SEGMENTS_PER_VIDEO}" for video, n in zip(videos,
                                                                                  numbers,
                                                                                  strict=True)]
            yield ids, videos, texts, vectors

    def queries(self, count: int) -> tuple[list[str], np.ndarray]:
        """Return query texts (2-5 content words) and random unit query vectors."""
        rng = np.random.default_rng(self.seed + 1)
        content = self.weights.copy()
        content[:100] = 0.0
        content /= content.sum()
        texts = [" ".join(rng.choice(self.words, int(rng.integers(2, 6)), p=content))
                 for _ in range(count)]
        vectors = rng.standard_normal((count, DIM)).astype(np.float32)
        return texts, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def timed(function, items) -> tuple[float, float]:
    """Run function on each item; return p50 and p95 in milliseconds (after 5 warm-ups)."""
    for item in items[:5]:
        function(item)
    latencies = []
    for item in items:
        started = time.perf_counter()
        function(item)
        latencies.append((time.perf_counter() - started) * 1000)
    return percentile(latencies, 50), percentile(latencies, 95)


def run_reelsearch(corpus: Corpus, count: int, graph: bool = False) -> dict:
    var = django_in_tempdir("bench-peers-")
    from dataclasses import replace

    from retrieval.backends.embedded import EmbeddedBackend
    from retrieval.documents import SegmentDoc
    from retrieval.encoders import get_text_encoder
    from retrieval.fusion import fuse, group_by_video
    from retrieval.profiles import get_profile

    # graph=False: exact cosine. graph=True: the HNSW graph (faiss) the backend builds above
    # ANN_MIN_SIZE vectors, built before measuring. Random vectors have no neighbourhood
    # structure for a graph to follow: its recall on them is far below what it is on real
    # MiniLM vectors, and it visits more nodes, so its latency here errs high.
    backend = EmbeddedBackend("peers", {"PATH": str(var / "index"),
                                        "ANN_MIN_SIZE": 1 if graph else 0,
                                        "ANN_BUILD_IN_BACKGROUND": False})
    filters = {"tags": [], "language": "en", "duration": 600.0, "published": True}
    started = time.perf_counter()
    for ids, videos, texts, vectors in corpus.batches():
        backend.index([SegmentDoc(i, v, "speech", 0.0, 15.0, t, {"text": vec}, filters)
                       for i, v, t, vec in zip(ids, videos, texts, vectors, strict=True)])
    write_s = time.perf_counter() - started
    texts, vectors = corpus.queries(count)
    backend.bm25(texts[0], WINDOW)  # tantivy builds its index from the SQLite rows
    bm25_index_s = time.perf_counter() - started - write_s
    started = time.perf_counter()
    backend.knn("text", vectors[0], WINDOW)  # reads the vectors in (and builds the graph)
    open_s = time.perf_counter() - started
    load_s = write_s + bm25_index_s + open_s  # like LanceDB's: rows and both indexes
    encoder = get_text_encoder()
    spec = replace(get_profile("default").fusion, coverage=0.0)

    def hybrid(text: str, vector: np.ndarray) -> list:
        hits = {"text": backend.knn("text", vector, WINDOW), "bm25": backend.bm25(text, WINDOW)}
        return group_by_video(fuse(hits, spec), moments=6)[:10]

    pairs = list(zip(texts, vectors, strict=True))
    recall = graph_recall(backend, vectors) if graph else None
    return {
        "engine": f"reelsearch embedded ({'HNSW' if graph else 'exact'} k-NN)",
        "recall_at_10": recall,
        "load_s": load_s, "open_s": open_s, "write_s": round(write_s, 1),
        "bm25_index_s": round(bm25_index_s, 1),
        "bm25": timed(lambda t: backend.bm25(t, WINDOW), texts),
        "vector": timed(lambda v: backend.knn("text", v, WINDOW), list(vectors)),
        "hybrid": timed(lambda p: hybrid(*p), pairs),
        "hybrid_encoded": timed(lambda t: hybrid(t, encoder.encode_query(t)), texts),
        "encode": timed(lambda t: encoder._encode_query(t), texts),
    }


def graph_recall(backend, vectors: np.ndarray, k: int = 10) -> float:
    """Return the mean share of the exact top k that k-NN through the graph finds."""
    store = backend._stores["text"]
    matrix, ids = store.matrix[:len(store.ids)], store.ids
    found = 0
    for vector in vectors:
        scores = matrix @ (vector / np.linalg.norm(vector))
        truth = {ids[row] for row in np.argpartition(-scores, k)[:k]}
        found += len(truth & {hit.segment_id for hit in backend.knn("text", vector, k)})
    return round(found / (k * len(vectors)), 4)


def run_lancedb(corpus: Corpus, count: int) -> dict:
    os.environ.setdefault("LANCE_LOG", "error")
    os.environ.setdefault("RUST_LOG", "error")
    try:
        import lancedb
        import pyarrow as pa
        from lancedb.rerankers import RRFReranker
    except ImportError as exc:
        raise SystemExit("LanceDB is a benchmark-only dependency: pip install -e '.[bench]'") \
            from exc
    db = lancedb.connect(tempfile.mkdtemp(prefix="bench-peers-lance-"))
    table = None
    started = time.perf_counter()
    for ids, videos, texts, vectors in corpus.batches():
        batch = pa.table({"id": ids, "video_id": videos, "text": texts,
                          "vector": pa.FixedSizeListArray.from_arrays(
                              pa.array(vectors.reshape(-1)), DIM)})
        if table is None:
            table = db.create_table("segments", batch)
        else:
            table.add(batch)
    table.create_fts_index("text")
    table.create_index(metric="cosine", index_type="IVF_HNSW_SQ", vector_column_name="vector")
    load_s = time.perf_counter() - started
    texts, vectors = corpus.queries(count)
    columns = ["id", "video_id"]
    reranker = RRFReranker()

    def bm25(text: str) -> list:
        return table.search(text, query_type="fts").select([*columns, "_score"]) \
            .limit(WINDOW).to_list()

    def vector(v: np.ndarray) -> list:
        return table.search(v).metric("cosine").select([*columns, "_distance"]) \
            .limit(WINDOW).to_list()

    def hybrid(pair) -> list:
        return table.search(query_type="hybrid").vector(pair[1]).text(pair[0]) \
            .rerank(reranker).select(columns).limit(10).to_list()

    started = time.perf_counter()
    vector(vectors[0])
    return {"engine": f"LanceDB {lancedb.__version__}", "load_s": load_s,
            "open_s": time.perf_counter() - started, "bm25": timed(bm25, texts),
            "vector": timed(vector, list(vectors)),
            "hybrid": timed(hybrid, list(zip(texts, vectors, strict=True)))}


ENGINES = {"reelsearch": run_reelsearch,
           "reelsearch-hnsw": lambda corpus, count: run_reelsearch(corpus, count, graph=True),
           "lancedb": run_lancedb}


def child(engine: str, size: int, count: int) -> None:
    row = ENGINES[engine](Corpus(size), count)
    row.update(segments=size, peak_rss_mb=round(peak_rss_mb()),
               load_average_1m=round(os.getloadavg()[0], 2),
               segments_per_s=round(size / row["load_s"]))
    print("RESULT " + json.dumps(row), flush=True)


def cell(row: dict, key: str) -> str:
    value = row.get(key)
    return f"{value[0]:.1f} / {value[1]:.1f}" if value else "–"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument("--child", nargs=2, metavar=("ENGINE", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.queries)
        return
    rows = []
    for size in args.sizes:
        for engine in args.engines:
            out = subprocess.run(
                [sys.executable, __file__, "--child", engine, str(size),
                 "--queries", str(args.queries)],
                capture_output=True, text=True, cwd=ROOT, check=False)
            lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
            if out.returncode or not lines:
                print(f"{engine} at {size:,} failed:\n{out.stderr[-2000:]}", file=sys.stderr)
                continue
            rows.append(json.loads(lines[-1][7:]))
            print(lines[-1][7:], flush=True)
    print("\np50 / p95 ms; BM25 and vector: top 150; hybrid: reelsearch fuses two windows of "
          "150 and groups into videos, LanceDB's RRF hybrid query with limit 10")
    print("| segments | engine | load s (segments/s) | BM25 | vector | hybrid | "
          "hybrid + encoding | encoding | graph recall@10 | peak RSS MB | load |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        recall = r.get("recall_at_10") or "–"
        print(f"| {r['segments']:,} | {r['engine']} | {r['load_s']:.1f} ({r['segments_per_s']:,})"
              f" | {cell(r, 'bm25')} | {cell(r, 'vector')} | {cell(r, 'hybrid')} | "
              f"{cell(r, 'hybrid_encoded')} | {cell(r, 'encode')} | {recall} | "
              f"{r['peak_rss_mb']:,} | "
              f"{r['load_average_1m']} |")


if __name__ == "__main__":
    main()
