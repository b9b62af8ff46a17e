"""Region concepts end to end: the concept stage's region segments (with their box, only
above the floor), stored, indexed and returned with their box in search moments."""

from __future__ import annotations

import numpy as np
import pytest
from django.test import override_settings

from catalog.models import Segment, Video, VideoStatus
from retrieval.backends import reset_backends
from retrieval.indexing import index_video
from tests.conftest import storage_settings
from workers.pipeline.concepts import (
    REGIONS,
    Window,
    class_index,
    imagenet_classes,
    region_segments,
    window_segments,
)

pytestmark = [pytest.mark.models, pytest.mark.django_db]


def _swan_in_a_corner() -> tuple[np.ndarray, np.ndarray]:
    """Two keyframes: the whole frame says "lakeside"; the top-right box, "black swan"."""
    classes = len(imagenet_classes())
    swan, lake = class_index()["black swan, Cygnus atratus"], class_index()["lakeside, lakeshore"]
    whole = np.full((2, classes), 0.1 / classes, dtype=np.float32)
    whole[:, lake], whole[:, swan] = 0.6, 0.04
    regions = np.full((2, len(REGIONS), classes), 0.1 / classes, dtype=np.float32)
    regions[:, :, lake] = 0.5
    regions[:, 1, swan], regions[:, 1, lake] = 0.8, 0.1
    return whole, regions


@pytest.fixture
def video(tmp_path):
    with override_settings(**storage_settings(tmp_path)):
        reset_backends()
        row, = Video.objects.bulk_create([Video(
            title="clip 1", source="videos/c1.mp4", status=VideoStatus.READY, duration=6.0,
            width=320, height=180)])
        yield row
        reset_backends()


def test_a_confident_region_becomes_a_segment_with_its_box(video, settings):
    settings.REELSEARCH = {**settings.REELSEARCH, "REGION_MIN_PROBABILITY": 0.3}
    whole, regions = _swan_in_a_corner()
    windows = [Window(0.0, 6.0, (0, 1))]
    rows, _ = window_segments(video, windows, whole, "efficientnet-lite1@test")
    extra = region_segments(video, windows, whole, regions, "efficientnet-lite1@test",
                            first=len(rows))
    assert [s.text for s in extra] == ["black swan, Cygnus atratus (80%)"]
    assert extra[0].id.endswith(":visual:1")
    assert extra[0].box == pytest.approx([0.444, 0.0, 0.3375, 0.6], abs=1e-3)
    settings.REELSEARCH = {**settings.REELSEARCH, "REGION_MIN_PROBABILITY": 0.85}
    assert region_segments(video, windows, whole, regions, "m") == []  # below the floor


def test_search_moments_carry_the_region_box(video, client, settings):
    whole, regions = _swan_in_a_corner()
    windows = [Window(0.0, 6.0, (0, 1))]
    rows, _ = window_segments(video, windows, whole, "m")
    rows += region_segments(video, windows, whole, regions, "m", first=len(rows))
    Segment.objects.bulk_create(rows)
    index_video(video)
    data = client.get("/api/search", {"q": "a black swan"}).json()
    moments = data["results"][0]["moments"]
    boxed = [m for m in moments if "box" in m]
    assert boxed and boxed[0]["box"] == pytest.approx([0.444, 0.0, 0.3375, 0.6], abs=1e-3)
    assert "black swan" in boxed[0]["snippet"]
    assert all("box" not in m for m in moments if "lakeside" in m["snippet"])
