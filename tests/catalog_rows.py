"""Catalog rows for search-backend tests: speech segments with topic text and random vectors."""

from __future__ import annotations

import numpy as np

from catalog.models import Segment, Video


def add_speech_segments(video: Video, topic: str, count: int,
                        rng: np.random.Generator) -> list[Segment]:
    """Create `count` 10 s speech segments "<topic> part N" with random 8-d text vectors."""
    return Segment.objects.bulk_create(
        Segment(id=Segment.make_id(video.pk, "speech", n), video=video, kind="speech",
                start=n * 10.0, end=n * 10.0 + 10.0, text=f"{topic} part {n}",
                text_vector=rng.standard_normal(8).astype(np.float32).tobytes())
        for n in range(count))
