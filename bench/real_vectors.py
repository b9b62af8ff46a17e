"""Segments and queries with real MiniLM vectors, for benchmarks that need vector structure.

Segment texts are three sentences drawn from the English narrations of bench/spoken and
bench/hard (recombined, so 100k segments are all different); queries are those benchmarks'
written queries (paraphrases, questions, keywords). Both are encoded with the packaged text
model (retrieval.encoders, offline). Encoding 100k segments takes minutes on two cores, so the
vectors are cached under bench/results/ by corpus size and seed.
"""

from __future__ import annotations

import hashlib
import json
import re
import time

import numpy as np
from _setup import ROOT

TEXTS = (ROOT / "bench" / "spoken" / "texts.json", ROOT / "bench" / "hard" / "texts.json")
CACHE = ROOT / "bench" / "results"


def _strings(node, key: str) -> list[str]:
    """Collect every string stored under `key` (or a list under it) anywhere in node."""
    found: list[str] = []
    if isinstance(node, dict):
        for name, value in node.items():
            if name == key and isinstance(value, str):
                found.append(value)
            elif name == key and isinstance(value, list):
                found += [item for item in value if isinstance(item, str)]
            else:
                found += _strings(value, key)
    elif isinstance(node, list):
        for item in node:
            found += _strings(item, key)
    return found


def _load() -> list[dict]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in TEXTS]


def sentence_pool() -> list[str]:
    """Return the distinct sentences of every narration."""
    pool: dict[str, None] = {}
    for text in (t for data in _load() for t in _strings(data, "text")):
        for sentence in re.split(r"(?<=[.!?])\s+", text.strip()):
            if len(sentence.split()) >= 4:
                pool.setdefault(sentence, None)
    return list(pool)


def query_pool() -> list[str]:
    """Return the distinct written queries."""
    queries = [q for data in _load() for name in ("queries", "query")
               for q in _strings(data, name)]
    return list(dict.fromkeys(queries))


def segment_texts(n: int, rng: np.random.Generator) -> list[str]:
    """Return n texts of three pool sentences each (nearly all different)."""
    pool = sentence_pool()
    counts = np.full(n, 3)
    picks = rng.integers(0, len(pool), size=int(counts.sum()))
    texts, offset = [], 0
    for count in counts:
        texts.append(" ".join(pool[j] for j in picks[offset:offset + count]))
        offset += count
    return texts


def encode(texts: list[str]) -> np.ndarray:
    """Encode texts with the packaged text model, cached by their content."""
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    path = CACHE / f"minilm-{len(texts)}-{digest}.npy"
    if path.exists():
        return np.load(path)
    from retrieval.encoders import get_text_encoder

    started = time.perf_counter()
    vectors = get_text_encoder().encode(texts, batch_size=64)
    print(f"encoded {len(texts)} texts in {time.perf_counter() - started:.0f}s", flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors
