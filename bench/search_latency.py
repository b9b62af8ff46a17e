"""Hybrid search latency on the embedded backend with synthetic catalogs of 10k and 100k segments.

Each query goes through retrieval.search.search(): MiniLM query encoding (on a pool thread,
beside the typo check and BM25), BM25 (tantivy and FTS5, each in turn on the same catalog),
k-NN over the in-process matrix, fusion, grouping and hydration from the catalog. "Without
encoding" leaves out only what the search waited for its encoder (``encode_wait``).
Segment texts are random sentences over a Zipf-distributed vocabulary; queries draw 2-5
words from it, skipping its 100 most frequent words (the synthetic stopwords); vectors are
random unit vectors. Exact k-NN costs the same whatever the vectors; an HNSW graph over
random vectors (no neighbourhoods) visits more nodes than over sentence vectors, so its
latency here errs high, and its recall here means nothing (bench/real_vectors.py and
tests/integration/test_ann_recall.py measure recall on real MiniLM vectors). k-NN runs as
configured (`default`: the graph above ANN_MIN_SIZE vectors, built before measuring) and
`exact`.

    python bench/search_latency.py [--sizes 10000 100000] [--queries 200]
        [--engines tantivy fts5] [--knn default exact]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from _setup import django_in_tempdir, peak_rss_mb, percentile

SEGMENTS_PER_VIDEO = 100


def vocabulary(rng: np.random.Generator, size: int = 20000) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = {"".join(rng.choice(letters, rng.integers(3, 10))) for _ in range(size * 2)}
    return sorted(words)[:size]


def sentence(rng, words, weights, length: int) -> str:
    return " ".join(words[i] for i in rng.choice(len(words), length, p=weights))


def build(n_segments: int, rng, words, weights, dim: int) -> None:
    from catalog.models import Segment, Video
    from retrieval.backends import get_backend
    from retrieval.documents import SegmentDoc

    backend = get_backend()
    backend.ensure_index()
    videos = []
    for v in range(n_segments // SEGMENTS_PER_VIDEO):
        videos.append(Video(title=f"video {v}", source=f"videos/{v}.mp4", status="ready",
                            duration=600.0, tags=[f"t{v % 7}"]))
    Video.objects.bulk_create(videos, batch_size=500)
    for video in videos:
        rows, docs = [], []
        vectors = rng.standard_normal((SEGMENTS_PER_VIDEO, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        for n in range(SEGMENTS_PER_VIDEO):
            text = sentence(rng, words, weights, int(rng.integers(25, 45)))
            seg_id = Segment.make_id(video.pk, "speech", n)
            rows.append(Segment(id=seg_id, video=video, kind="speech", start=n * 6.0,
                                end=n * 6.0 + 15.0, text=text))
            docs.append(SegmentDoc(seg_id, str(video.pk), "speech", n * 6.0, n * 6.0 + 15.0,
                                   text, {"text": vectors[n]}, video.filter_fields()))
        Segment.objects.bulk_create(rows)
        backend.index(docs)


# The API's default profile (no fusion parameters) next to the earlier default, plain
# arithmetic/min_max with equal weights, measured on the same catalog and queries.
CONFIGURATIONS = {"default profile": {}, "arithmetic/min_max, equal weights":
                  {"fusion": "arithmetic", "normalization": "min_max"}}


def measure(queries: list[str], extra: dict[str, str]) -> dict:
    from retrieval.encoders import get_text_encoder
    from retrieval.params import parse_request
    from retrieval.search import search
    from retrieval.suggest import current_index

    current_index()  # built once, as a serving process has it (later rebuilds are rare)
    for query in queries[:5]:
        search(parse_request({"q": query, **extra}))  # warm caches and the vector matrix
    get_text_encoder().query_cache.clear()  # every row pays for encoding its queries
    totals, retrieval = [], []
    parts = {name: [] for name in ("typos", "encode", "encode_wait", "knn", "bm25",
                                   "coverage", "fuse", "hydrate")}
    for query in queries:
        started = time.perf_counter()
        response = search(parse_request({"q": query, "k": "10", **extra}))
        totals.append((time.perf_counter() - started) * 1000)
        # what the search waited for its encoder (the encoding itself overlaps BM25)
        retrieval.append(totals[-1] - response.timings_ms.get("encode_wait", 0.0))
        for key in parts:
            parts[key].append(response.timings_ms.get(key, 0.0))
    return {"p50_ms": percentile(totals, 50), "p95_ms": percentile(totals, 95),
            "without_encoding_p50_ms": percentile(retrieval, 50),
            **{f"{k}_p50_ms": percentile(v, 50) for k, v in parts.items()}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--engines", nargs="+", default=["tantivy", "fts5"],
                        help="the embedded backend's BM25 engines to compare")
    parser.add_argument("--knn", nargs="+", default=["default", "exact"],
                        choices=["default", "exact"],
                        help="k-NN as configured (an HNSW graph above ANN_MIN_SIZE) and exact")
    args = parser.parse_args()
    results = []
    for size in args.sizes:
        django_in_tempdir(f"bench-search-{size}-")
        from django.conf import settings

        from catalog.models import Video
        from retrieval.backends import get_backend, reset_backends

        Video.objects.all().delete()
        reset_backends()
        rng = np.random.default_rng(7)
        words = vocabulary(rng)
        weights = 1.0 / np.arange(1, len(words) + 1) ** 1.07
        weights /= weights.sum()
        started = time.perf_counter()
        build(size, rng, words, weights, settings.REELSEARCH["TEXT_DIM"])
        build_s = time.perf_counter() - started
        # Queries skip the 100 most frequent synthetic words, as real queries lose their
        # stopwords (retrieval/text.py); otherwise every query would match most segments.
        content = weights.copy()
        content[:100] = 0.0
        content /= content.sum()
        queries = [sentence(rng, words, content, int(rng.integers(2, 6)))
                   for _ in range(args.queries)]
        params = settings.RETRIEVAL_BACKENDS["default"]
        params["ANN_BUILD_IN_BACKGROUND"] = False  # measure with the graph there, not building
        threshold = params.get("ANN_MIN_SIZE", 0)
        for engine, knn in [(e, k) for e in args.engines for k in args.knn]:
            params["BM25_ENGINE"] = engine
            params["ANN_MIN_SIZE"] = threshold if knn == "default" else 0
            reset_backends()
            started = time.perf_counter()  # tantivy builds its index from the rows once
            get_backend().bm25(queries[0], 1)
            first_s = time.perf_counter() - started
            started = time.perf_counter()  # the HNSW graph, above ANN_MIN_SIZE vectors
            get_backend().knn("text", np.ones(settings.REELSEARCH["TEXT_DIM"], np.float32), 1)
            graph_s = time.perf_counter() - started
            store = get_backend()._store("text")
            mode = "hnsw" if store.ann is not None else "exact"
            for name, extra in CONFIGURATIONS.items():
                row = {"segments": size, "engine": engine, "knn": mode,
                       "configuration": name, "build_s": round(build_s, 1),
                       "first_bm25_s": round(first_s, 1), "graph_s": round(graph_s, 1),
                       **measure(queries, extra), "peak_rss_mb": round(peak_rss_mb()),
                       "load_average_1m": round(os.getloadavg()[0], 2)}
                results.append({k: round(v, 2) if isinstance(v, float) else v
                                for k, v in row.items()})
                print(json.dumps(results[-1]), flush=True)
    print("\n| segments | BM25 engine | k-NN | configuration | p50 ms | p95 ms | p50 without "
          "encoding | typos | encode (own thread) | encode wait | "
          "knn | bm25 | coverage | fuse | hydrate | load |")
    print("|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['segments']:,} | {r['engine']} | {r['knn']} | {r['configuration']} | "
              f"{r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['without_encoding_p50_ms']:.1f} | "
              f"{r['typos_p50_ms']:.1f} | "
              f"{r['encode_p50_ms']:.1f} | {r['encode_wait_p50_ms']:.1f} | "
              f"{r['knn_p50_ms']:.1f} | "
              f"{r['bm25_p50_ms']:.1f} | {r['coverage_p50_ms']:.1f} | {r['fuse_p50_ms']:.1f} | "
              f"{r['hydrate_p50_ms']:.1f} | {r['load_average_1m']} |")


if __name__ == "__main__":
    main()
