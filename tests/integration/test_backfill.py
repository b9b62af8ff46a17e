"""`backfill_embeddings`: re-embed, in resumable batches, what an older text model embedded.

Uses the real MiniLM model. The catalog is built directly (no pipeline): segments carry a
fake older model label and random vectors, and are indexed with those vectors.
"""

from __future__ import annotations

from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from catalog.models import Segment, SegmentKind, Video, VideoStatus
from retrieval.backends import BackendUnavailable, get_backend
from retrieval.backends.embedded import EmbeddedBackend
from retrieval.encoders import get_text_encoder
from retrieval.indexing import index_video

pytestmark = [pytest.mark.models]

MODEL = "all-MiniLM-L6-v2"
OLD_LABEL = f"{MODEL}@0.0.1-old"
CATALOG = {
    "Baking": ["Knead the dough until it is smooth and elastic.",
               "Bake the loaf in a hot oven for forty minutes.",
               "Let the bread cool on a wire rack before slicing."],
    "Rockets": ["The first stage burns kerosene and liquid oxygen.",
                "Engineers test the engine on a stand in the desert."],
    "Gardening": ["Water the tomato plants every morning in summer.",
                  "Tie the stems to a wooden stake as they grow."],
}


@pytest.fixture
def encoder():
    return get_text_encoder()


@pytest.fixture
def catalog(db, encoder):
    """Three ready videos embedded by an "older model", one in processing, one up to date."""
    rng = np.random.default_rng(7)
    videos = {}
    for title, texts in CATALOG.items():
        video = Video.objects.bulk_create([Video(title=title, source=f"videos/{title}.mp4",
                                                 status=VideoStatus.READY, stage="done",
                                                 model_versions={"text": OLD_LABEL})])[0]
        _segments(video, texts, lambda n: rng.normal(size=n).astype(np.float32), OLD_LABEL)
        index_video(video)
        videos[title] = video
    busy = Video.objects.bulk_create([Video(title="Busy", source="videos/busy.mp4",
                                            status=VideoStatus.PROCESSING, stage="embed")])[0]
    _segments(busy, ["Still being processed by a worker."],
              lambda n: rng.normal(size=n).astype(np.float32), OLD_LABEL)
    current = Video.objects.bulk_create([Video(title="Current", source="videos/current.mp4",
                                               status=VideoStatus.READY, stage="done")])[0]
    text = "Already embedded with the configured model."
    _segments(current, [text], lambda n: encoder.encode([text])[0], encoder.info.label)
    index_video(current)
    videos.update(Busy=busy, Current=current)
    return videos


def _segments(video: Video, texts: list[str], vector, label: str) -> None:
    Segment.objects.bulk_create([
        Segment(id=Segment.make_id(video.pk, SegmentKind.SPEECH, n), video=video,
                kind=SegmentKind.SPEECH, start=n * 5.0, end=n * 5.0 + 5.0, text=text,
                text_vector=vector(384).tobytes(), embedding_model=label)
        for n, text in enumerate(texts)
    ])


def backfill(*args: str) -> str:
    out = StringIO()
    call_command("backfill_embeddings", "--model", MODEL, *args, stdout=out)
    return out.getvalue()


def old_segments() -> int:
    return Segment.objects.filter(embedding_model=OLD_LABEL, video__status="ready").count()


def assert_backfilled(video: Video, encoder) -> None:
    segments = list(video.segments.order_by("pk"))
    expected = encoder.encode([s.text for s in segments])
    for segment, vector in zip(segments, expected, strict=True):
        assert segment.embedding_model == encoder.info.label
        assert np.allclose(segment.vector(), vector, atol=1e-5)
        # the ingestion vector, not encode_query's (int8: cosine ≈ 0.99 to it)
        hit = get_backend().knn("text", vector, k=1)[0]
        assert hit.segment_id == segment.pk, "the index still holds the old vector"
        assert hit.score == pytest.approx(1.0, abs=1e-4)
    video.refresh_from_db()
    assert video.model_versions["text"] == encoder.info.label


@pytest.mark.django_db
def test_backfill_reembeds_and_reindexes_what_an_older_model_made(catalog, encoder):
    untouched = {s.pk: bytes(s.text_vector) for s in Segment.objects.filter(
        video__title__in=["Busy", "Current"])}
    out = backfill("--batch-size", "3")
    assert "7 segment(s) to re-embed" in out
    assert "batch 1: 3 segment(s)" in out and "batch 3: 1 segment(s)" in out
    assert "Re-embedded 7 segment(s)." in out
    for title in CATALOG:
        assert_backfilled(catalog[title], encoder)
    for segment in Segment.objects.filter(pk__in=untouched):
        assert bytes(segment.text_vector) == untouched[segment.pk], "touched a video in work"
    assert Segment.objects.get(video=catalog["Busy"]).embedding_model == OLD_LABEL
    assert "0 segment(s) to re-embed" in backfill()


@pytest.mark.django_db
def test_backfill_is_resumable_after_a_limit_and_after_a_failed_batch(catalog, encoder,
                                                                      monkeypatch):
    out = backfill("--batch-size", "2", "--limit", "3")
    assert "Re-embedded 3 segment(s); 4 left" in out
    assert old_segments() == 4

    real_index, calls = EmbeddedBackend.index, []

    def index_then_fail(self, docs):
        calls.append(1)
        if len(calls) > 1:
            raise BackendUnavailable("the index went away")
        return real_index(self, docs)

    monkeypatch.setattr(EmbeddedBackend, "index", index_then_fail)
    with pytest.raises(CommandError, match="Stopped after 2 segment.*run the command again"):
        backfill("--batch-size", "2")
    assert old_segments() == 2, "the failed batch must not be saved"
    monkeypatch.setattr(EmbeddedBackend, "index", real_index)

    out = backfill("--batch-size", "2")
    assert "2 segment(s) to re-embed" in out and "Re-embedded 2 segment(s)." in out
    assert old_segments() == 0
    for title in CATALOG:
        assert_backfilled(catalog[title], encoder)


@pytest.mark.django_db
def test_backfill_refuses_another_model_and_dry_run_changes_nothing(catalog):
    with pytest.raises(CommandError, match="not the configured text model"):
        call_command("backfill_embeddings", "--model", "some-other-model")
    assert "7 segment(s) to re-embed" in backfill("--dry-run")
    assert old_segments() == 7
