"""Text encoders side by side: torch, ONNX fp32 and ONNX int8 on the same real sentences.

Quality: cosine of each ONNX vector to the torch vector over every sentence of the shipped
benchmarks and the demo narration (more than 1,000), and R@1 of their queries against the
clip texts they were written for. Speed: one query at a time on one thread (the query path),
the cached query, batches of segments (ingestion) and model load time.

    python bench/encoder_speed.py [--queries 300]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time

import numpy as np
from _setup import ROOT, django_in_tempdir, percentile

SOURCES = ("bench/spoken/texts.json", "bench/hard/texts.json", "demo/media/narration.json",
           "demo/media/catalog.json")
SKIP_KEYS = {"id", "voice", "about", "topic", "kind", "key", "group"}


def _strings(value, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in SKIP_KEYS:
                _strings(item, out)
    elif isinstance(value, list):
        for item in value:
            _strings(item, out)


def sentences() -> list[str]:
    """Every text of the shipped benchmarks and demo, whole and split into sentences."""
    texts: list[str] = []
    for source in SOURCES:
        found: list[str] = []
        _strings(json.loads((ROOT / source).read_text()), found)
        texts += found + [s for t in found for s in re.split(r"(?<=[.!?])\s+", t)]
    return [t for t in dict.fromkeys(t.strip() for t in texts) if len(t.split()) > 1]


def retrieval_pairs() -> tuple[list[str], list[tuple[str, int]]]:
    """Clip texts and (query, index of its clip) from the spoken and hard benchmarks."""
    docs: list[str] = []
    pairs: list[tuple[str, int]] = []

    def add(text: str, queries: list[str]) -> None:
        docs.append(text)
        pairs.extend((query, len(docs) - 1) for query in queries)

    for clip in json.loads((ROOT / "bench/spoken/texts.json").read_text())["clips"]:
        add(clip["text"], clip["queries"])
    hard = json.loads((ROOT / "bench/hard/texts.json").read_text())
    for group in hard["groups"]:
        for clip in group["clips"]:
            add(clip["text"], clip["queries"])
    for slide in hard["slides"]:
        add("\n".join(slide["slides"]), slide["queries"])
    for video in hard["multipart"]:
        queries, texts = list(video["queries"]), []
        for part in video["parts"]:
            queries += [part["query"]] if part.get("query") else []
            for item in part["sentences"]:
                texts.append(item["text"])
                queries += [item["query"]] if item.get("query") else []
        add(" ".join(texts), queries)
    return docs, pairs


def recall_at_1(docs: np.ndarray, queries: np.ndarray, pairs) -> float:
    top = (queries @ docs.T).argmax(axis=1)
    return float(np.mean([t == doc for t, (_, doc) in zip(top, pairs, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    django_in_tempdir("bench-encoder-")
    from django.conf import settings

    from retrieval.encoders import TorchTextEncoder
    from retrieval.onnx_text import OnnxTextEncoder

    texts = sentences()
    docs, pairs = retrieval_pairs()
    queries = [q for q, _ in pairs][: args.queries]
    rows = []
    reference = reference_docs = reference_queries = None
    for name in ("torch", "onnx fp32", "onnx int8"):
        started = time.perf_counter()
        if name == "torch":
            encoder = TorchTextEncoder()
        else:
            settings.REELSEARCH = {**settings.REELSEARCH, "TEXT_ONNX_PRECISION": name[5:]}
            encoder = OnnxTextEncoder()
        load_ms = (time.perf_counter() - started) * 1000
        one = encoder._encode_query
        vectors = np.stack([one(t) for t in texts])  # the query path: one text at a time
        doc_vectors = np.stack([one(t) for t in docs])
        query_vectors = np.stack([one(q) for q, _ in pairs])
        if reference is None:
            reference, reference_docs, reference_queries = vectors, doc_vectors, query_vectors
        cosines = (vectors * reference).sum(axis=1)
        latencies = []
        for query in queries:
            started = time.perf_counter()
            one(query)
            latencies.append((time.perf_counter() - started) * 1000)
        encoder.encode_query(queries[0])
        started = time.perf_counter()
        for _ in range(1000):
            encoder.encode_query(queries[0])
        cached_us = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        encoder.encode(texts)
        batch_rate = len(texts) / (time.perf_counter() - started)
        rows.append({
            "encoder": name, "load_ms": round(load_ms), "sentences": len(texts),
            "cosine_mean": round(float(cosines.mean()), 4),
            "cosine_min": round(float(cosines.min()), 4),
            "cosine_p1": round(float(np.percentile(cosines, 1)), 4),
            "r_at_1": round(recall_at_1(doc_vectors, query_vectors, pairs), 4),
            "r_at_1_torch_docs": round(recall_at_1(reference_docs, query_vectors, pairs), 4),
            "query_p50_ms": round(percentile(latencies, 50), 2),
            "query_p95_ms": round(percentile(latencies, 95), 2),
            "cached_query_us": round(cached_us, 1),
            "batch_texts_per_s": round(batch_rate),
            "load_average_1m": round(os.getloadavg()[0], 2),
        })
        print(json.dumps(rows[-1]), flush=True)
    assert reference_queries is not None
    print(f"\n{len(texts)} sentences, {len(pairs)} benchmark queries against {len(docs)} clips; "
          "R@1 with the torch clip vectors as the index in the last column")
    print("| encoder | load ms | cosine mean / min | R@1 | R@1 vs torch docs | query p50 ms | "
          "p95 ms | cached µs | batch texts/s | load |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['encoder']} | {r['load_ms']} | {r['cosine_mean']:.4f} / "
              f"{r['cosine_min']:.4f} | {r['r_at_1']:.3f} | {r['r_at_1_torch_docs']:.3f} | "
              f"{r['query_p50_ms']:.2f} | {r['query_p95_ms']:.2f} | {r['cached_query_us']:.1f} | "
              f"{r['batch_texts_per_s']} | {r['load_average_1m']} |")


if __name__ == "__main__":
    main()
