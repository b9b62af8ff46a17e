"""The pluggable CLIP-family encoder, with a tiny randomly initialised CLIP built locally.

The model is random: these tests check shapes, normalization, storage, indexing and that
queries run the visual signal on each backend. They say nothing about retrieval quality.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from pathlib import Path

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import override_settings

from catalog.models import Video, VideoStatus
from retrieval.backends import get_backend, reset_backends
from retrieval.encoders import clip_pixels, get_visual_encoder, load_visual_encoder
from retrieval.params import parse_request
from retrieval.search import search
from tests import media
from tests.conftest import require, storage_settings

pytestmark = [pytest.mark.models]

PROJECTION = 24
OPENSEARCH_BACKEND = "retrieval.backends.opensearch.OpenSearchBackend"


def build_tiny_clip(path: Path) -> Path:
    """Save a randomly initialised CLIP (2 layers, 32-d) with a byte-level tokenizer."""
    import torch
    from tokenizers import pre_tokenizers
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    for suffix in ("", "</w>"):
        vocab.update({char + suffix: len(vocab) + n for n, char in enumerate(alphabet)})
    torch.manual_seed(0)
    layers = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 4}
    config = CLIPConfig(
        text_config={**layers, "vocab_size": len(vocab), "max_position_embeddings": 77,
                     "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1},
        vision_config={**layers, "image_size": 32, "patch_size": 8},
        projection_dim=PROJECTION)
    CLIPModel(config).save_pretrained(path)
    CLIPTokenizer(vocab=vocab, merges=[]).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("models") / "tiny-clip")


def test_encoder_gives_normalized_vectors_of_the_projection_dimension(tiny_clip):
    encoder = load_visual_encoder(str(tiny_clip))
    assert load_visual_encoder(str(tiny_clip)) is encoder  # loaded once per process
    assert encoder.info.dim == PROJECTION and encoder.info.name == "tiny-clip"
    assert encoder.info.version.startswith("local-")
    frames = [np.full((90, 160, 3), c, dtype=np.uint8) for c in (0, 128, 255)]
    images = encoder.encode_images(frames, batch_size=2)
    assert images.shape == (3, PROJECTION) and images.dtype == np.float32
    assert np.linalg.norm(images, axis=1) == pytest.approx(np.ones(3), abs=1e-5)
    query = encoder.encode_query("a black swan swimming in a river")
    assert query.shape == (PROJECTION,) and np.linalg.norm(query) == pytest.approx(1, abs=1e-5)
    assert clip_pixels(frames[0], 32).shape == (3, 32, 32)


def test_nothing_is_configured_by_default_and_nothing_is_downloaded(settings, tmp_path):
    settings.REELSEARCH = {**settings.REELSEARCH, "VISUAL_MODEL": ""}
    assert get_visual_encoder() is None
    with pytest.raises(ImproperlyConfigured, match="not in the local model cache"):
        load_visual_encoder(f"clip-ViT-B-32-not-cached-{uuid.uuid4().hex[:6]}")
    with pytest.raises(ImproperlyConfigured, match="not a checkpoint directory"):
        load_visual_encoder(str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="no config.json"):
        load_visual_encoder(str(tmp_path))


def _opensearch_params(request) -> dict:
    if importlib.util.find_spec("retrieval.backends.opensearch") is None:
        pytest.skip("the OpenSearch backend module is not in this tree yet")
    try:
        url = request.getfixturevalue("opensearch_url")
    except pytest.FixtureLookupError:
        url = os.environ.get("REELSEARCH_TEST_OPENSEARCH_URL", "")
    require(bool(url), "an OpenSearch node (set REELSEARCH_TEST_OPENSEARCH_URL)")
    return {"BACKEND": OPENSEARCH_BACKEND, "URL": url, "REPLICAS": 0,
            "INDEX": f"reelsearch-test-clip-{uuid.uuid4().hex[:8]}",
            "DIMENSIONS": {"text": 384, "visual": PROJECTION}}


@pytest.fixture(scope="module", params=["embedded", pytest.param("opensearch",
                                                                  marks=pytest.mark.opensearch)])
def shared_clip_catalog(request, media_tools, tiny_clip, tmp_path_factory, django_db_setup,
                        django_db_blocker):
    """Ingest two silent clips with the tiny CLIP configured, on one backend."""
    root = tmp_path_factory.mktemp(f"clip-{request.param}")
    media.make_silent_video(root / "in" / "pattern.mp4", 4.0, background="testsrc2")
    media.make_silent_video(root / "in" / "sign.mp4", 3.0, captions=[(0.0, 3.0, "OPEN")])
    overrides = storage_settings(root)
    overrides["REELSEARCH"] = {**overrides["REELSEARCH"], "VISUAL_MODEL": str(tiny_clip),
                               "VISUAL_DIM": PROJECTION, "KEYFRAME_MIN_INTERVAL": 1.0,
                               "KEYFRAME_MAX_INTERVAL": 1.5}
    if request.param == "opensearch":
        overrides["RETRIEVAL_BACKENDS"] = {**overrides["RETRIEVAL_BACKENDS"],
                                           "default": _opensearch_params(request)}
    with override_settings(**overrides), django_db_blocker.unblock():
        reset_backends()
        call_command("ingest", root / "in", no_progress=True)
        yield request.param
        for video in Video.objects.all():
            get_backend().delete_video(str(video.pk))
        Video.objects.all().delete()
        reset_backends()


@pytest.mark.django_db
def test_visual_vectors_are_stored_normalized_and_labelled(shared_clip_catalog, tiny_clip):
    label = load_visual_encoder(str(tiny_clip)).info.label
    for video in Video.objects.all():
        assert video.status == VideoStatus.READY, video.error
        assert video.model_versions["visual"] == label
        visual = list(video.segments.filter(kind="visual"))
        assert visual
        for segment in visual:
            vector = np.frombuffer(bytes(segment.visual_vector), dtype=np.float32)
            assert vector.shape == (PROJECTION,)
            assert np.linalg.norm(vector) == pytest.approx(1, abs=1e-5)
            assert segment.visual_model == label
        others = video.segments.exclude(kind="visual")
        assert not any(s.visual_vector for s in others)


@pytest.mark.django_db
def test_visual_vectors_are_indexed_in_their_own_field(shared_clip_catalog):
    backend = get_backend()
    assert "visual" in backend.vector_fields
    for video in Video.objects.all():
        stored = backend.vectors_for_video(str(video.pk), "visual")
        assert stored.shape == (video.segments.filter(kind="visual").count(), PROJECTION)
        text = backend.vectors_for_video(str(video.pk), "text")
        assert text.shape == (video.segments.count(), 384)


@pytest.mark.django_db
def test_queries_run_the_visual_signal(shared_clip_catalog):
    response = search(parse_request({"q": "a test pattern", "k": "5", "explain": "true"}))
    assert response.signal_sizes["visual"] == sum(
        v.segments.filter(kind="visual").count() for v in Video.objects.all())
    explained = [m.explain for r in response.results for m in r.moments]
    assert any("visual" in e for e in explained)
    only = search(parse_request({"q": "a test pattern", "signals": "visual", "explain": "true"}))
    assert {r.video.pk for r in only.results} == set(Video.objects.values_list("pk", flat=True))
    assert all(set(m.explain) == {"visual", "kind_weight"} and m.kind == "visual"
               for r in only.results for m in r.moments)
