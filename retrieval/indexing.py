"""Turn catalog rows into SegmentDocs and send them to the configured backend."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from django.conf import settings

from catalog.models import Segment, Video, VideoStatus

from .backends import get_backend
from .documents import IndexReport, SegmentDoc
from .text import searchable_text


def concept_floor() -> float:
    """Return the probability a concept label needs to be searchable or shown."""
    return float(settings.REELSEARCH.get("CONCEPT_TEXT_MIN_PROBABILITY", 0.0))


def segment_doc(segment: Segment, video: Video) -> SegmentDoc:
    """Build the backend document of one segment (text vector, and CLIP vector if any)."""
    vectors = {}
    vector = segment.vector()
    if vector is not None:
        vectors["text"] = vector
    if segment.visual_vector:
        vectors["visual"] = np.frombuffer(bytes(segment.visual_vector), dtype=np.float32)
    return SegmentDoc(
        id=segment.pk, video_id=str(video.pk), kind=segment.kind, start=segment.start,
        end=segment.end, text=searchable_text(segment.kind, segment.text, concept_floor()),
        vectors=vectors, filters=video.filter_fields(),
    )


def docs_for_video(video: Video) -> list[SegmentDoc]:
    """Return the documents of every segment of a video."""
    return [segment_doc(segment, video) for segment in video.segments.all()]


def index_video(video: Video, backend_alias: str = "default") -> IndexReport:
    """Replace a video's documents in the index."""
    backend = get_backend(backend_alias)
    backend.ensure_index()
    backend.delete_video(str(video.pk))
    return backend.index(docs_for_video(video))


def iter_catalog_docs(batch_size: int = 200) -> Iterator[SegmentDoc]:
    """Yield the documents of every indexable video (ready or waiting for the index)."""
    videos = Video.objects.filter(status__in=[VideoStatus.READY, VideoStatus.INDEX_PENDING])
    for video in videos.iterator(chunk_size=batch_size):
        yield from docs_for_video(video)
