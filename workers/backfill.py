"""Re-embed, in place and in batches, segments whose text vectors came from another model.

Each segment records the model that embedded it (`embedding_model`, "name@version"). After
the configured text model changes, `backfill_batch` takes the next batch of segments whose
label differs from the current encoder's, embeds them, writes them to the search index,
then commits them to the database. A batch is all or nothing, so an interrupted backfill
resumes with what is left. Only ready (or index-pending) videos are touched: videos still in
the pipeline are embedded by its embed stage with the current model anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q, QuerySet

from catalog.models import Segment, Video, VideoStatus
from retrieval.backends import get_backend
from retrieval.encoders import TextEncoder
from retrieval.indexing import segment_doc
from workers.pipeline.stages import set_text_vectors

BACKFILLED_STATUSES = (VideoStatus.READY, VideoStatus.INDEX_PENDING)


class BackfillError(RuntimeError):
    """A batch could not be written; nothing of it was committed."""


@dataclass(frozen=True)
class BatchReport:
    """What one batch did."""

    segments: int
    videos: int
    indexed: int


def stale_segments(label: str) -> QuerySet[Segment]:
    """Return the segments of finished videos whose vector is missing or from another model."""
    return (Segment.objects.filter(video__status__in=BACKFILLED_STATUSES)
            .filter(~Q(embedding_model=label) | Q(text_vector__isnull=True)).order_by("pk"))


def dimension_changes(encoder: TextEncoder) -> bool:
    """Return True when stale vectors have another dimension than the encoder's."""
    sample = stale_segments(encoder.info.label).exclude(text_vector__isnull=True).first()
    vector = sample.vector() if sample is not None else None
    return vector is not None and vector.shape[0] != encoder.info.dim


def backfill_batch(encoder: TextEncoder, batch_size: int, index: bool = True,
                   backend_alias: str = "default") -> BatchReport | None:
    """Re-embed the next batch of stale segments; return None when none is left."""
    label = encoder.info.label
    batch = list(stale_segments(label).select_related("video")[:batch_size])
    if not batch:
        return None
    set_text_vectors(batch, encoder)  # as the embed stage does (visual: from its concepts)
    indexed = _index(batch, backend_alias) if index else 0
    videos = {segment.video for segment in batch}
    with transaction.atomic():
        Segment.objects.bulk_update(batch, ["text_vector", "embedding_model"])
        for video in videos:
            if not stale_segments(label).filter(video=video).exists():
                Video.objects.filter(pk=video.pk).update(
                    model_versions={**video.model_versions, "text": label})
    return BatchReport(segments=len(batch), videos=len(videos), indexed=indexed)


def _index(batch: list[Segment], backend_alias: str) -> int:
    """Write the ready videos' re-embedded segments to the index (upserts by segment id)."""
    docs = [segment_doc(s, s.video) for s in batch if s.video.status == VideoStatus.READY]
    if not docs:
        return 0
    report = get_backend(backend_alias).index(docs)
    if not report.ok:
        doc_id, reason = next(iter(report.failed.items()))
        raise BackfillError(f"{len(report.failed)} segments were not indexed "
                            f"(first: {doc_id}: {reason})")
    return report.indexed
