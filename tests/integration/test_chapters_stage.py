"""The chapters stage: reads a long video's sentence and on-screen text segments, stores its
chapters on the video (default settings), replaces them on a rerun, and leaves short videos
without chapters."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from catalog.models import Segment, SegmentKind, Video, VideoStatus
from retrieval.encoders import get_text_encoder
from tests.unit.test_chapters import TOPICS
from workers.pipeline.stages import StageContext, chapters

pytestmark = [pytest.mark.models, pytest.mark.django_db]
STEP = 13.0  # seconds per sentence: 24 sentences make a 312 s video


def long_video(duration: float) -> Video:
    video, = Video.objects.bulk_create([Video(
        title="Four topics", source=f"videos/{uuid.uuid4().hex}.mp4", duration=duration,
        status=VideoStatus.PROCESSING)])
    texts = [sentence for sentences in TOPICS.values() for sentence in sentences]
    vectors = get_text_encoder().encode(texts)
    kinds = [SegmentKind.OCR if n % 6 == 2 else SegmentKind.SENTENCE for n in range(len(texts))]
    Segment.objects.bulk_create([
        Segment(id=Segment.make_id(video.pk, kind, n), video=video, kind=kind,
                start=n * STEP, end=n * STEP + STEP - 1, text=text,
                text_vector=np.asarray(vector, dtype=np.float32).tobytes())
        for n, (text, vector, kind) in enumerate(zip(texts, vectors, kinds, strict=True))])
    return video


def run(video: Video) -> list[dict]:
    chapters(StageContext(video, progress=lambda fraction: None))
    return Video.objects.get(pk=video.pk).chapters


def test_a_long_video_gets_chapters_at_its_topic_shifts():
    video = long_video(24 * STEP)
    found = run(video)
    assert [c["start"] for c in found] == [0.0, 6 * STEP, 12 * STEP, 18 * STEP]
    assert found[-1]["end"] == 24 * STEP
    assert all(c["title"] for c in found)
    assert "chess" in found[2]["title"].lower()


def test_a_rerun_replaces_the_chapters():
    video = long_video(24 * STEP)
    first = run(video)
    Video.objects.filter(pk=video.pk).update(chapters=[{"start": 0, "end": 1, "title": "x"}])
    assert run(video) == first
    video.segments.filter(start__gte=12 * STEP).delete()  # e.g. reprocessed, less speech
    again = run(video)
    assert again != first and again[0]["start"] == 0.0 and again[1]["start"] == 6 * STEP
    assert all(c["start"] < 12 * STEP for c in again)


def test_a_short_video_gets_none():
    video = long_video(290.0)
    assert run(video) == []
