"""The ONNX text encoder against the torch model it was exported from, and its query cache."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured

from retrieval.encoders import QueryCache, TorchTextEncoder, get_text_encoder
from retrieval.onnx_text import OnnxTextEncoder

pytestmark = [pytest.mark.models]
REPO = Path(__file__).resolve().parents[2]


def narration_sentences(limit: int = 120) -> list[str]:
    """Real sentences: the demo narration and the spoken benchmark's texts and queries."""
    narration = json.loads((REPO / "demo/media/narration.json").read_text())
    texts = [part["text"] for clip in narration.values() for part in clip["parts"]]
    for clip in json.loads((REPO / "bench/spoken/texts.json").read_text())["clips"]:
        texts += re.split(r"(?<=[.!?])\s+", clip["text"]) + clip["queries"]
    return [t for t in dict.fromkeys(texts) if len(t.split()) > 1][:limit]


@pytest.fixture(scope="module")
def torch_encoder() -> TorchTextEncoder:
    return TorchTextEncoder()


@pytest.fixture(scope="module")
def onnx_encoder() -> OnnxTextEncoder:
    return OnnxTextEncoder()


def test_the_default_runtime_is_onnx():
    assert isinstance(get_text_encoder(), OnnxTextEncoder)


def test_onnx_vectors_match_torch(torch_encoder, onnx_encoder):
    texts = narration_sentences()
    assert len(texts) >= 100
    reference, vectors = torch_encoder.encode(texts), onnx_encoder.encode(texts)
    assert vectors.shape == reference.shape and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = (vectors * reference).sum(axis=1)
    assert cosines.mean() >= 0.99, cosines.mean()
    assert cosines.min() >= 0.97, (cosines.min(), texts[int(cosines.argmin())])
    queries = np.stack([onnx_encoder._encode_query(text) for text in texts])  # int8 file
    cosines = (queries * reference).sum(axis=1)
    assert cosines.mean() >= 0.99, cosines.mean()
    assert cosines.min() >= 0.97, (cosines.min(), texts[int(cosines.argmin())])


def test_batches_do_not_change_a_text_s_vector(onnx_encoder):
    texts = ["a", "how do I repair a punctured bike wheel", "lava " * 300]  # one truncated
    batch = onnx_encoder.encode(texts)
    for text, row in zip(texts, batch, strict=True):
        alone = onnx_encoder.encode([text])[0]
        assert float(row @ alone) > 0.9999
        assert float(row @ onnx_encoder._encode_query(text)) > 0.97  # int8 query vector


def test_nearest_sentence_is_the_same_for_both_runtimes(torch_encoder, onnx_encoder):
    clips = json.loads((REPO / "bench/spoken/texts.json").read_text())["clips"]
    queries = [q for clip in clips for q in clip["queries"]]
    docs = [clip["text"] for clip in clips]
    top = [(enc.encode(queries) @ enc.encode(docs).T).argmax(axis=1)
           for enc in (torch_encoder, onnx_encoder)]
    assert (top[0] == top[1]).mean() >= 0.95


def test_query_vectors_are_cached_and_read_only(onnx_encoder):
    onnx_encoder.query_cache.clear()
    first = onnx_encoder.encode_query("where does lava come from")
    again = onnx_encoder.encode_query("  where does   lava come from ")
    assert again is first
    assert (onnx_encoder.query_cache.hits, onnx_encoder.query_cache.misses) == (1, 1)
    with pytest.raises(ValueError):
        first[0] = 1.0
    other = onnx_encoder.encode_query("Where does lava come from")
    assert other is not first and onnx_encoder.query_cache.misses == 2


def test_cache_evicts_the_least_recently_used():
    cache = QueryCache(2)
    for text in ("a", "b"):
        cache.put(text, np.ones(3))
    assert cache.get("a") is not None  # "b" is now the least recently used
    cache.put("c", np.ones(3))
    assert cache.get("b") is None and cache.get("a") is not None and len(cache) == 2


def test_a_cache_of_size_zero_keeps_nothing():
    cache = QueryCache(0)
    cache.put("a", np.ones(3))
    assert cache.get("a") is None and len(cache) == 0


def test_a_missing_onnx_file_says_what_to_run(settings, tmp_path):
    settings.REELSEARCH = {**settings.REELSEARCH, "TEXT_ONNX_DIR": str(tmp_path)}
    with pytest.raises(ImproperlyConfigured, match="make text-model.*export_text_model"):
        OnnxTextEncoder()


def test_a_missing_onnx_file_fails_the_system_checks(settings, tmp_path):
    from retrieval.checks import check_search

    settings.REELSEARCH = {**settings.REELSEARCH, "TEXT_ONNX_DIR": str(tmp_path)}
    assert "reelsearch.E005" in [problem.id for problem in check_search(None)]


def test_an_unknown_runtime_or_precision_is_refused(settings):
    from retrieval.encoders import _load_text_encoder

    settings.REELSEARCH = {**settings.REELSEARCH, "TEXT_ONNX_PRECISION": "int4"}
    with pytest.raises(ImproperlyConfigured, match="int8, fp32"):
        OnnxTextEncoder()
    settings.REELSEARCH = {**settings.REELSEARCH, "TEXT_RUNTIME": "tensorflow"}
    _load_text_encoder.cache_clear()
    try:
        with pytest.raises(ImproperlyConfigured, match="onnx, torch"):
            _load_text_encoder()
    finally:
        _load_text_encoder.cache_clear()
