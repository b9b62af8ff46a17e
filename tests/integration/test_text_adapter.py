"""The text adapter in the product: the pairs `train_adapter` learns from, the command's
refusal on a catalog too small to hold a fold out, and an adapter in use changing the
encoder's recorded version so that `backfill_embeddings` re-embeds and reindexes the catalog.

Real MiniLM model; the catalog is built from rows (no media processing).
"""

from __future__ import annotations

from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from catalog.models import Segment, Video, VideoStatus
from retrieval import encoders
from retrieval.adapter import Adapter
from retrieval.adapter_pairs import collect_pairs
from retrieval.backends import get_backend
from retrieval.encoders import get_base_text_encoder, get_text_encoder
from tests.integration.test_api import make_video

pytestmark = [pytest.mark.models, pytest.mark.django_db]

MODEL = "all-MiniLM-L6-v2"


def _sentences(video: Video, texts: list[str]) -> None:
    Segment.objects.bulk_create([
        Segment(id=Segment.make_id(video.pk, "sentence", n), video=video, kind="sentence",
                start=n * 4.0, end=n * 4.0 + 3.0, text=text) for n, text in enumerate(texts)])


@pytest.fixture
def small_catalog(db):
    tagged = make_video("Sourdough", ["bread"], "en", [
        (0.0, 8.0, "Feed the starter with flour and water."),
        (8.0, 16.0, "Bake the loaf in a covered pot.")])
    _sentences(tagged, ["Feed the starter.", "Use flour and water.", "Bake the loaf."])
    untagged, = Video.objects.bulk_create([Video(
        title="clip 2", source="videos/c2.mp4", status=VideoStatus.READY, duration=9.0)])
    Segment.objects.create(id=Segment.make_id(untagged.pk, "speech", 0), video=untagged,
                           kind="speech", start=0.0, end=9.0, text="Comets have icy tails.")
    return tagged, untagged


def test_pairs_stay_inside_one_video_and_use_metadata_only_where_editors_wrote_some(
        small_catalog):
    tagged, untagged = small_catalog
    pairs = collect_pairs(max_pairs=1000, per_video=50)
    by_key = dict(Segment.objects.values_list("id", "video_id"))
    assert pairs
    for video, anchor, _, positive, _ in pairs:
        assert str(by_key[positive]) == video
        assert anchor == f"metadata:{video}" or str(by_key[anchor]) == video
    assert {video for video, *_ in pairs} == {str(tagged.pk)}  # a bare title gives no pairs
    assert any(anchor.startswith("metadata:") for _, anchor, *_ in pairs)
    spans = {sid: (start, end) for sid, start, end in
             Segment.objects.values_list("id", "start", "end")}
    sentences = [(a, p) for _, a, _, p, _ in pairs if ":sentence:" in a]
    assert sentences
    for anchor, positive in sentences:  # a sentence finds the rest of its video, not itself
        (a0, a1), (p0, p1) = spans[anchor], spans[positive]
        assert a1 <= p0 or p1 <= a0


def test_the_command_refuses_a_catalog_too_small_to_hold_out_videos(small_catalog):
    with pytest.raises(CommandError, match="too few"):
        call_command("train_adapter", stdout=StringIO())


@pytest.fixture
def adapted(settings, tmp_path):
    """Turn on an adapter file for one test (the encoder is reloaded before and after)."""
    rng = np.random.default_rng(0)
    adapter = Adapter.from_factors(rng.normal(scale=0.1, size=(384, 4)),
                                   rng.normal(scale=0.1, size=(4, 384)))
    settings.REELSEARCH = {**settings.REELSEARCH,
                           "TEXT_ADAPTER": str(adapter.save(tmp_path / "adapter.npz"))}
    encoders._load_text_encoder.cache_clear()
    yield adapter
    settings.REELSEARCH = {**settings.REELSEARCH, "TEXT_ADAPTER": ""}
    encoders._load_text_encoder.cache_clear()


def test_an_adapter_in_use_is_recorded_and_backfilled(db, adapted):
    video = make_video("Comets", ["astronomy"], "en", [
        (0.0, 9.0, "A comet is a ball of ice and dust with a bright tail.")])
    encoder, base = get_text_encoder(), get_base_text_encoder()
    assert encoder.info.label == f"{base.info.label}+adapter-{adapted.version}"
    text = "A comet is a ball of ice and dust with a bright tail."
    assert np.allclose(encoder.encode([text]), adapted.apply(base.encode([text])), atol=1e-6)
    out = StringIO()
    call_command("backfill_embeddings", model=MODEL, stdout=out)
    assert "2 segment(s) to re-embed" in out.getvalue()
    for segment in video.segments.all():
        assert segment.embedding_model == encoder.info.label
        vector = encoder.encode([segment.text])[0]
        assert np.allclose(segment.vector(), vector, atol=1e-5)
        assert get_backend().knn("text", vector, k=1)[0].segment_id == segment.pk


def test_an_unreadable_adapter_file_says_how_to_fix_it(settings, tmp_path):
    from django.core.exceptions import ImproperlyConfigured

    settings.REELSEARCH = {**settings.REELSEARCH, "TEXT_ADAPTER": str(tmp_path / "none.npz")}
    encoders._load_text_encoder.cache_clear()
    try:
        with pytest.raises(ImproperlyConfigured, match="train_adapter"):
            get_text_encoder()
    finally:
        settings.REELSEARCH = {**settings.REELSEARCH, "TEXT_ADAPTER": ""}
        encoders._load_text_encoder.cache_clear()
