"""Bulk indexing throughput and hybrid query latency: OpenSearch (local node) next to embedded.

Both backends get the same catalog (default 100k segments, 100 per video), in one of two
kinds (--vectors):

- random: texts are 25-45 word sentences over a Zipf-distributed 20k-word vocabulary, vectors
  random unit 384-d vectors; queries are 2-5 word Zipf sentences without the 50 most frequent
  words (synthetic stopwords) with random unit query vectors. The worst case for HNSW.
- minilm: texts are three English sentences recombined from the bench/spoken and bench/hard
  narrations, queries those benchmarks' written queries, all encoded with the packaged
  all-MiniLM-L6-v2 (bench/real_vectors.py; cached under bench/results/).

k-NN recall@10 is measured against exact cosine (numpy over every vector). Indexing goes
through `rebuild()` (what `manage.py reindex` runs: BULK_SIZE-doc batches; OpenSearch
bulk-loads a new index with refresh off, no replicas and an asynchronous translog, then swaps
the alias). Each hybrid query is BM25 + k-NN over a 150-hit window per signal, fused by
retrieval/fusion.py and grouped to videos (the work of retrieval.search.search() minus query
encoding and catalog hydration); OpenSearch also runs the same fusion server-side (hybrid
query + normalization-processor) when the node has neural-search.

Without --url a private node is started with deploy/opensearch/run-node (--heap, default 1g)
in a temporary directory and stopped at the end; its start time and heap are reported.

    python bench/opensearch_vs_embedded.py [--segments 100000] [--queries 200] [--url URL]
        [--vectors random|minilm] [--backends embedded,opensearch] [--bulk-size 500]
        [--bulk-threads 2] [--m 16] [--ef-construction 64] [--quantize 0|7|1]
        [--shards 1] [--replicas 0] [--pid PID[,PID...]]

On a cluster (`deploy/services cluster-up`), pass every node's URL in --url, the nodes' pids
in --pid (their CPU is summed) and --shards 3 --replicas 1: the rebuild loads the primaries,
then adds the replica and waits for it before the swap, and the load time includes that.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from _setup import ROOT, django_in_tempdir, percentile
from search_latency import sentence, vocabulary

SEGMENTS_PER_VIDEO = 100
DIM = 384
WINDOW = 150
RUN_NODE = ROOT / "deploy" / "opensearch" / "run-node"


def random_texts(n: int, rng: np.random.Generator, words: list[str], weights: np.ndarray):
    """Return n Zipf texts and n random unit vectors (drawn in one go: per-row draws are slow)."""
    lengths = rng.integers(25, 46, size=n)
    drawn = rng.choice(len(words), size=int(lengths.sum()), p=weights)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts, offset = [], 0
    for length in lengths:
        texts.append(" ".join(words[j] for j in drawn[offset:offset + length]))
        offset += length
    return texts, vectors


def corpus(texts: list[str], vectors: np.ndarray) -> list:
    """Return one SegmentDoc per text, 100 per video."""
    from retrieval.documents import SegmentDoc

    docs = []
    for i, text in enumerate(texts):
        video, n_in_video = divmod(i, SEGMENTS_PER_VIDEO)
        docs.append(SegmentDoc(
            f"video-{video}:speech:{n_in_video}", f"video-{video}", "speech",
            n_in_video * 6.0, n_in_video * 6.0 + 15.0, text, {"text": vectors[i]},
            {"tags": [f"t{video % 7}"], "language": "en", "duration": 600.0,
             "published": True}))
    return docs


def minilm_catalog(n: int, count: int) -> tuple[list[str], np.ndarray, list]:
    """Return real texts, their MiniLM vectors and (text, vector) queries."""
    import real_vectors

    texts = real_vectors.segment_texts(n, np.random.default_rng(11))
    pool = real_vectors.query_pool()
    texts_q = [pool[i % len(pool)] for i in range(count)]
    vectors_q = real_vectors.encode(texts_q)
    return texts, real_vectors.encode(texts), list(zip(texts_q, vectors_q, strict=True))


def queries(count: int, rng, words: list[str], weights: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Return (text, unit vector) queries; the 50 most frequent words play stopwords."""
    kept = weights.copy()
    kept[:50] = 0.0  # words are ranked by frequency: index 0 is the most frequent
    kept /= kept.sum()
    result = []
    for _ in range(count):
        vector = rng.standard_normal(DIM).astype(np.float32)
        result.append((sentence(rng, words, kept, int(rng.integers(2, 6))),
                       vector / np.linalg.norm(vector)))
    return result


def start_node(port: int, heap: str) -> tuple[str, Path, float]:
    """Start a private node; return its URL, data dir and start-up seconds."""
    data = Path(tempfile.mkdtemp(prefix="bench-opensearch-"))
    started = time.perf_counter()
    out = subprocess.run([str(RUN_NODE), "start", "--port", str(port), "--data", str(data),
                          "--heap", heap, "--timeout", "300"],
                         capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - started
    print(out.stderr.strip(), flush=True)
    return out.stdout.strip().splitlines()[-1], data, elapsed


def stop_node(data: Path) -> None:
    subprocess.run([str(RUN_NODE), "stop", "--data", str(data)], capture_output=True,
                   check=False)
    shutil.rmtree(data, ignore_errors=True)


def node_stats(backend) -> dict:
    """Return the node's heap and the index's size and segment count."""
    jvm = next(iter(backend.client.nodes.stats(metric="jvm")["nodes"].values()))["jvm"]["mem"]
    (index,) = backend.client.indices.get_alias(name=backend.read_alias)
    stats = backend.client.indices.stats(index=index, metric="store,segments")["_all"]
    return {"heap_used_mb": round(jvm["heap_used_in_bytes"] / 2**20),
            "heap_max_mb": round(jvm["heap_max_in_bytes"] / 2**20),
            "store_mb": round(stats["primaries"]["store"]["size_in_bytes"] / 2**20),
            "segments": stats["primaries"]["segments"]["count"]}


def cpu_seconds(pid: int | None) -> float:
    """Return the CPU time (user + system) of a process: the cost independent of load."""
    if pid is None:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    else:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def nodes_cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


def load(backend, docs: list, node_pids: list[int], batch_size: int) -> dict:
    """Rebuild the index from docs; return wall throughput and CPU cost per segment."""
    own, node = cpu_seconds(None), nodes_cpu(node_pids)
    started = time.perf_counter()
    report = backend.rebuild(iter(docs), batch_size=batch_size)
    elapsed = time.perf_counter() - started
    assert report.ok, list(report.failed.items())[:3]
    assert backend.count() == len(docs)
    row = {"index_s": round(elapsed, 1), "segments_per_s": round(len(docs) / elapsed),
           "client_cpu_ms_per_segment": round((cpu_seconds(None) - own) * 1000 / len(docs), 2)}
    if node_pids:
        node = nodes_cpu(node_pids) - node
        row["node_cpu_ms_per_segment"] = round(node * 1000 / len(docs), 2)
    return row


def knn_only(backend, text: str, vector: np.ndarray, filters, spec) -> dict:
    t0 = time.perf_counter()
    hits = backend.knn("text", vector, 10, filters)
    return {"total": (time.perf_counter() - t0) * 1000, "knn_ids": [h.segment_id for h in hits]}


def hybrid_client(backend, text: str, vector: np.ndarray, filters, spec) -> dict:
    from retrieval.fusion import fuse, group_by_video

    t0 = time.perf_counter()
    bm25 = backend.bm25(text, WINDOW, filters)
    t1 = time.perf_counter()
    knn = backend.knn("text", vector, WINDOW, filters)
    t2 = time.perf_counter()
    group_by_video(fuse({"bm25": bm25, "text": knn}, spec))
    t3 = time.perf_counter()
    return {"total": (t3 - t0) * 1000, "bm25": (t1 - t0) * 1000, "knn": (t2 - t1) * 1000,
            "fuse": (t3 - t2) * 1000}


def hybrid_server(backend, text: str, vector: np.ndarray, filters, spec) -> dict:
    from retrieval.fusion import group_by_video

    t0 = time.perf_counter()
    group_by_video(backend.hybrid(text, {"text": vector}, WINDOW, filters, spec))
    return {"total": (time.perf_counter() - t0) * 1000}


def measure(run, backend, qs, filters, spec) -> tuple[dict, list[dict]]:
    for text, vector in qs[:10]:
        run(backend, text, vector, filters, spec)  # warm caches, JIT and the vector matrix
    samples = [run(backend, text, vector, filters, spec) for text, vector in qs]
    row = {"p50_ms": percentile([s["total"] for s in samples], 50),
           "p95_ms": percentile([s["total"] for s in samples], 95)}
    for part in ("bm25", "knn", "fuse"):
        if part in samples[0]:
            row[f"{part}_p50_ms"] = percentile([s[part] for s in samples], 50)
    return {k: round(v, 1) for k, v in row.items()}, samples


def exact_top10(vectors: np.ndarray, qs: list) -> list[set[str]]:
    """Return the ids of each query's 10 nearest segments by exact cosine."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    tops = []
    for _, vector in qs:
        scores = unit @ (vector / np.linalg.norm(vector))
        best = np.argpartition(-scores, 10)[:10]
        tops.append({f"video-{i // SEGMENTS_PER_VIDEO}:speech:{i % SEGMENTS_PER_VIDEO}"
                     for i in best})
    return tops


def recall_at_10(exact: list[set[str]], samples: list[dict]) -> float:
    """Return the mean share of the exact top 10 that the k-NN query found."""
    return round(float(np.mean([len(e & set(s["knn_ids"])) / 10
                                for e, s in zip(exact, samples, strict=True)])), 3)


def catalog(args) -> tuple[list, list, np.ndarray]:
    """Return the documents and queries of the kind --vectors asks for."""
    if args.vectors == "minilm":
        texts, vectors, qs = minilm_catalog(args.segments, args.queries)
    else:
        rng = np.random.default_rng(7)
        words = vocabulary(rng)
        weights = 1.0 / np.arange(1, len(words) + 1) ** 1.07
        weights /= weights.sum()
        texts, vectors = random_texts(args.segments, rng, words, weights)
        qs = queries(args.queries, rng, words, weights)
    return corpus(texts, vectors), qs, vectors


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--segments", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--vectors", choices=("random", "minilm"), default="random")
    parser.add_argument("--backends", default="embedded,opensearch")
    parser.add_argument("--url", default="", help="an existing node (default: start one)")
    parser.add_argument("--pid", default="",
                        help="the --url nodes' pids, comma separated (their CPU cost)")
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--replicas", type=int, default=0)
    parser.add_argument("--port", type=int, default=9260)
    parser.add_argument("--heap", default="1g")
    parser.add_argument("--bulk-size", type=int, default=500)
    parser.add_argument("--bulk-threads", type=int, default=2)
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=64)
    parser.add_argument("--quantize", type=int, choices=(0, 7, 1), default=0)
    return parser.parse_args()


def main() -> None:
    args = arguments()
    var = django_in_tempdir("bench-os-vs-embedded-")
    from retrieval.backends.embedded import EmbeddedBackend
    from retrieval.backends.opensearch import OpenSearchBackend
    from retrieval.documents import Filters
    from retrieval.fusion import FusionSpec

    started = time.perf_counter()
    docs, qs, vectors = catalog(args)
    exact = exact_top10(vectors, qs)
    print(f"generated {len(docs)} segments in {time.perf_counter() - started:.0f}s", flush=True)

    result: dict = {"segments": len(docs), "queries": len(qs), "window": WINDOW,
                    "vectors": args.vectors, "load_average_1m": os.getloadavg()[0],
                    "cpus": os.cpu_count()}
    url, data = args.url, None
    node_pids = [int(pid) for pid in args.pid.split(",") if pid]
    names = [name for name in args.backends.split(",") if name]
    if not url and "opensearch" in names:
        url, data, start_s = start_node(args.port, args.heap)
        node_pids = [int((data / "node.pid").read_text())]
        result["node_start_s"] = round(start_s, 1)
        result["node_heap"] = args.heap
    spec, tagged = FusionSpec(), Filters(tags=("t3",))
    opensearch = {"URL": url, "INDEX": f"bench-{os.getpid()}", "REPLICAS": args.replicas,
                  "SHARDS": args.shards,
                  "DIMENSIONS": {"text": DIM}, "TIMEOUT": 120, "REFRESH": "false",
                  "BULK_THREADS": args.bulk_threads, "QUANTIZE": args.quantize,
                  "HNSW": {"m": args.m, "ef_construction": args.ef_construction}}
    result["opensearch_settings"] = {k: v for k, v in opensearch.items() if k != "URL"}
    factories = {"embedded": lambda: EmbeddedBackend("bench", {"PATH": str(var / "bench-index")}),
                 "opensearch": lambda: OpenSearchBackend("bench", opensearch)}
    backends = {name: factories[name]() for name in names}
    try:
        for name, backend in backends.items():
            row = {"backend": name, **load(backend, docs, node_pids if name == "opensearch"
                                           else [], args.bulk_size)}
            print(json.dumps(row), flush=True)
            row["knn_k10"], knn_samples = measure(knn_only, backend, qs, Filters(), spec)
            row["knn_recall_at_10"] = recall_at_10(exact, knn_samples)
            row["hybrid"], _ = measure(hybrid_client, backend, qs, Filters(), spec)
            row["hybrid_tag_filter"], _ = measure(hybrid_client, backend, qs, tagged, spec)
            if backend.supports_server_fusion:
                row["hybrid_server_fusion"], _ = measure(hybrid_server, backend, qs, Filters(),
                                                         spec)
            if name == "opensearch":
                row.update(node_stats(backend))
            result[name] = row
            print(json.dumps(row), flush=True)
    finally:
        if "opensearch" in backends:
            backends["opensearch"].drop_index()
        for backend in backends.values():
            backend.close()
        if data is not None:
            stop_node(data)
    result["load_average_1m_after"] = os.getloadavg()[0]
    out = ROOT / "bench" / "results" / f"opensearch_vs_embedded-{args.vectors}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
