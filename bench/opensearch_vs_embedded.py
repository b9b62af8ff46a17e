"""Bulk indexing throughput and hybrid query latency: OpenSearch (local node) next to embedded.

Both backends get the same synthetic catalog (default 100k segments, 100 per video): texts
are 25-45 word sentences over a Zipf-distributed 20k-word vocabulary, vectors random unit
384-d vectors. Indexing goes through `rebuild()` (what `manage.py reindex` runs: 500-doc
batches; OpenSearch bulk-loads a new index with refresh off, then swaps the alias).
Queries are 2-5 word Zipf sentences without the 50 most frequent words (synthetic
stopwords); query vectors are random unit vectors (no model: k-NN cost does not depend on
the content). Each hybrid query is BM25 + k-NN over a 150-hit window per signal, fused by
retrieval/fusion.py and grouped to videos (the work of retrieval.search.search() minus query
encoding and catalog hydration); OpenSearch also runs the same fusion server-side (hybrid
query + normalization-processor) when the node has neural-search.

Without --url a private node is started with deploy/opensearch/run-node (--heap, default 1g)
in a temporary directory and stopped at the end; its start time and heap are reported.

    python bench/opensearch_vs_embedded.py [--segments 100000] [--queries 200] [--url URL]
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


def corpus(n: int, rng: np.random.Generator, words: list[str], weights: np.ndarray):
    """Yield n SegmentDocs (texts drawn in one go: per-sentence draws are slow)."""
    from retrieval.documents import SegmentDoc

    lengths = rng.integers(25, 46, size=n)
    drawn = rng.choice(len(words), size=int(lengths.sum()), p=weights)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    offset = 0
    docs = []
    for i, length in enumerate(lengths):
        video, n_in_video = divmod(i, SEGMENTS_PER_VIDEO)
        text = " ".join(words[j] for j in drawn[offset:offset + length])
        offset += length
        docs.append(SegmentDoc(
            f"video-{video}:speech:{n_in_video}", f"video-{video}", "speech",
            n_in_video * 6.0, n_in_video * 6.0 + 15.0, text, {"text": vectors[i]},
            {"tags": [f"t{video % 7}"], "language": "en", "duration": 600.0,
             "published": True}))
    return docs


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


def load(backend, docs: list, node_pid: int | None) -> dict:
    """Rebuild the index from docs; return wall throughput and CPU cost per segment."""
    own, node = cpu_seconds(None), cpu_seconds(node_pid) if node_pid else 0.0
    started = time.perf_counter()
    report = backend.rebuild(iter(docs), batch_size=500)
    elapsed = time.perf_counter() - started
    assert report.ok, list(report.failed.items())[:3]
    assert backend.count() == len(docs)
    row = {"index_s": round(elapsed, 1), "segments_per_s": round(len(docs) / elapsed),
           "client_cpu_ms_per_segment": round((cpu_seconds(None) - own) * 1000 / len(docs), 2)}
    if node_pid:
        node = cpu_seconds(node_pid) - node
        row["node_cpu_ms_per_segment"] = round(node * 1000 / len(docs), 2)
    return row


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
            "fuse": (t3 - t2) * 1000, "knn_ids": [hit.segment_id for hit in knn[:10]]}


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


def recall_at_10(exact: list[dict], approximate: list[dict]) -> float:
    """Return the mean overlap of the top-10 k-NN ids (embedded is exact cosine)."""
    overlaps = [len(set(a["knn_ids"]) & set(e["knn_ids"])) / max(len(e["knn_ids"]), 1)
                for e, a in zip(exact, approximate, strict=True)]
    return round(float(np.mean(overlaps)), 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--segments", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--url", default="", help="an existing node (default: start one)")
    parser.add_argument("--port", type=int, default=9260)
    parser.add_argument("--heap", default="1g")
    args = parser.parse_args()

    var = django_in_tempdir("bench-os-vs-embedded-")
    from retrieval.backends.embedded import EmbeddedBackend
    from retrieval.backends.opensearch import OpenSearchBackend
    from retrieval.documents import Filters
    from retrieval.fusion import FusionSpec

    rng = np.random.default_rng(7)
    words = vocabulary(rng)
    weights = 1.0 / np.arange(1, len(words) + 1) ** 1.07
    weights /= weights.sum()
    started = time.perf_counter()
    docs = corpus(args.segments, rng, words, weights)
    qs = queries(args.queries, rng, words, weights)
    print(f"generated {len(docs)} segments in {time.perf_counter() - started:.0f}s", flush=True)

    result: dict = {"segments": len(docs), "queries": len(qs), "window": WINDOW,
                    "load_average_1m": os.getloadavg()[0], "cpus": os.cpu_count()}
    url, data, node_pid = args.url, None, None
    if not url:
        url, data, start_s = start_node(args.port, args.heap)
        node_pid = int((data / "node.pid").read_text())
        result["node_start_s"] = round(start_s, 1)
        result["node_heap"] = args.heap
    spec, tagged = FusionSpec(), Filters(tags=("t3",))
    backends = {
        "embedded": EmbeddedBackend("bench", {"PATH": str(var / "bench-index")}),
        "opensearch": OpenSearchBackend("bench", {
            "URL": url, "INDEX": f"bench-{os.getpid()}", "REPLICAS": 0,
            "DIMENSIONS": {"text": DIM}, "TIMEOUT": 120, "REFRESH": "false"}),
    }
    samples: dict[str, list[dict]] = {}
    try:
        for name, backend in backends.items():
            row = {"backend": name,
                   **load(backend, docs, node_pid if name == "opensearch" else None)}
            print(json.dumps(row), flush=True)
            row["hybrid"], samples[name] = measure(hybrid_client, backend, qs, Filters(), spec)
            row["hybrid_tag_filter"], _ = measure(hybrid_client, backend, qs, tagged, spec)
            if backend.supports_server_fusion:
                row["hybrid_server_fusion"], _ = measure(hybrid_server, backend, qs, Filters(),
                                                         spec)
            if name == "opensearch":
                row.update(node_stats(backend))
                row["knn_recall_at_10"] = recall_at_10(samples["embedded"], samples[name])
            result[name] = row
            print(json.dumps(row), flush=True)
    finally:
        backends["opensearch"].drop_index()
        for backend in backends.values():
            backend.close()
        if data is not None:
            stop_node(data)
    out = ROOT / "bench" / "results" / "opensearch_vs_embedded.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
