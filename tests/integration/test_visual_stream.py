"""The visual stream end to end: keyframes, concept tags and on-screen text, real models.

Test media are generated (flat colours, test patterns, captions): they exercise the
plumbing, timestamps and deduplication, not recognition quality, which is measured on a
dev set of real clips (bench/devset_visual.py, README).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

from catalog.models import Keyframe, Segment, Video, VideoStatus
from retrieval.backends import get_backend, reset_backends
from retrieval.params import parse_request
from retrieval.search import search
from tests import media
from tests.conftest import storage_settings
from workers import pipeline
from workers.pipeline import concepts

pytestmark = [pytest.mark.models]

CAPTIONS = [(0.0, 4.0, "FIX A FLAT TIRE"), (4.0, 8.0, "PUMP THE TYRE")]
VISUAL_SETTINGS = {"KEYFRAME_SCENE_THRESHOLD": 0.05, "KEYFRAME_MIN_INTERVAL": 1.0,
                   "KEYFRAME_MAX_INTERVAL": 2.0, "VISUAL_MODEL": ""}


@pytest.fixture(scope="module")
def shared_visual(media_tools, tmp_path_factory, django_db_setup, django_db_blocker):
    """Ingest a captioned silent clip, a 2-second test pattern and an audio-only file."""
    root = tmp_path_factory.mktemp("visual")
    media.make_silent_video(root / "in" / "tyre.mp4", 10.0, captions=CAPTIONS)
    media.make_silent_video(root / "in" / "pattern.mp4", 2.0, background="testsrc2")
    media.make_audio_only(root / "in" / "talk.m4a", "A short talk about the ocean.")
    overrides = storage_settings(root)
    overrides["REELSEARCH"] = {**overrides["REELSEARCH"], **VISUAL_SETTINGS}
    with override_settings(**overrides), django_db_blocker.unblock():
        reset_backends()
        call_command("ingest", root / "in", no_progress=True)
        yield {name: Video.objects.get(original_name=name)
               for name in ("tyre.mp4", "pattern.mp4", "talk.m4a")}
        Video.objects.all().delete()
        reset_backends()


def ocr_spans(video: Video) -> list[tuple[float, float, str]]:
    return list(video.segments.filter(kind="ocr").order_by("start")
                .values_list("start", "end", "text"))


@pytest.mark.django_db
def test_every_file_is_ready_with_the_visual_stages_recorded(shared_visual):
    for name, video in shared_visual.items():
        video.refresh_from_db()
        assert video.status == VideoStatus.READY, (name, video.error)
        assert {"keyframes", "concepts", "ocr", "clip"} <= set(video.stage_timings)
    tyre = shared_visual["tyre.mp4"]
    tyre.refresh_from_db()
    assert tyre.model_versions["concepts"].startswith("efficientnet-lite")
    assert tyre.model_versions["ocr"].startswith("PP-OCRv4@rapidocr-onnxruntime-")
    assert tyre.model_versions["keyframes"].startswith("ffmpeg@")
    assert "visual" not in tyre.model_versions  # no CLIP model configured


@pytest.mark.django_db
def test_keyframes_follow_caption_changes_and_the_minimum_rate(shared_visual):
    tyre = shared_visual["tyre.mp4"]
    times = list(tyre.keyframes.values_list("time", flat=True))
    assert times[0] == pytest.approx(0.6, abs=0.01)  # first frame at or after 0.5 s (5 fps)
    for change in (4.0, 8.0):  # caption changes are scene changes
        assert any(abs(t - change) < 0.01 for t in times), (change, times)
    gaps = np.diff(times)
    assert gaps.max() <= 2.0 + 0.21 and gaps.min() >= 1.0 - 1e-6, times  # max and min rate


@pytest.mark.django_db
def test_keyframe_thumbnails_are_small_jpegs_in_media_root(shared_visual):
    for keyframe in Keyframe.objects.all():
        path = Path(keyframe.image.path)
        assert path.is_file() and path.suffix == ".jpg"
        assert path.is_relative_to(Path(settings.MEDIA_ROOT))
        assert 0 < keyframe.width <= 320 and keyframe.height > 0


@pytest.mark.django_db
def test_a_two_second_clip_gets_a_keyframe_and_a_visual_segment(shared_visual):
    pattern = shared_visual["pattern.mp4"]
    assert pattern.keyframes.count() >= 1
    visual = list(pattern.segments.filter(kind="visual"))
    assert len(visual) == 1
    assert (visual[0].start, visual[0].end) == (0.0, pytest.approx(pattern.duration, abs=0.01))


@pytest.mark.django_db
def test_audio_only_files_have_no_visual_output(shared_visual):
    talk = shared_visual["talk.m4a"]
    assert not talk.has_video and talk.keyframes.count() == 0
    assert not talk.segments.filter(kind__in=["visual", "ocr"]).exists()
    assert talk.auto_tags == []


@pytest.mark.django_db
def test_on_screen_text_is_read_deduplicated_and_timed(shared_visual):
    spans = ocr_spans(shared_visual["tyre.mp4"])
    assert [text for _, _, text in spans] == ["FIX A FLAT TIRE", "PUMP THE TYRE"], spans
    (start1, end1, _), (start2, end2, _) = spans
    assert start1 == pytest.approx(0.6, abs=0.01) and end1 == pytest.approx(4.0, abs=0.01)
    assert start2 == pytest.approx(4.0, abs=0.01) and end2 == pytest.approx(8.0, abs=0.01)
    assert shared_visual["pattern.mp4"].segments.filter(kind="ocr").count() <= 1


@pytest.mark.django_db
def test_visual_segments_carry_concepts_and_their_weighted_vector(shared_visual):
    for video in (shared_visual["tyre.mp4"], shared_visual["pattern.mp4"]):
        video.refresh_from_db()
        for segment in video.segments.filter(kind="visual"):
            pairs = concepts.parse_concept_text(segment.text)
            assert pairs and all(0 < p <= 1 for _, p in pairs)
            assert sum(p for _, p in pairs) <= 1.0 + 0.01 * len(pairs)
            assert segment.source_model == video.model_versions["concepts"]
            assert segment.embedding_model == video.model_versions["text"]
            vector = segment.vector()
            assert vector.shape == (384,) and np.linalg.norm(vector) == pytest.approx(1, abs=1e-5)
            # the stored vector is the weighted concept mean, not the embedding of the text
            from_text = concepts.text_vector(segment.text)
            assert float(vector @ from_text) > 0.99
        assert isinstance(video.auto_tags, list)
        assert all(isinstance(tag, str) and tag == tag.lower() for tag in video.auto_tags)


@pytest.mark.django_db
def test_visual_and_ocr_segments_are_indexed_and_searchable(shared_visual):
    tyre = shared_visual["tyre.mp4"]
    backend = get_backend()
    assert backend.vectors_for_video(str(tyre.pk)).shape[0] == tyre.segments.count()
    results = search(parse_request({"q": "flat tire", "k": "3", "explain": "true"})).results
    assert results[0].video.pk == tyre.pk
    top = results[0].moments[0]
    assert top.kind == "ocr" and top.start == pytest.approx(0.6, abs=0.01)
    assert "bm25" in top.explain and top.explain["kind_weight"] == 1.0
    kinds = search(parse_request({"q": "tyre", "kinds": "visual"})).results
    assert all(m.kind == "visual" for r in kinds for m in r.moments)


@pytest.mark.django_db
def test_visual_stages_are_idempotent(shared_visual):
    tyre = shared_visual["tyre.mp4"]
    before_ids = sorted(tyre.segments.values_list("id", flat=True))
    before_frames = list(tyre.keyframes.values_list("time", flat=True))
    old_files = [Path(k.image.path) for k in tyre.keyframes.all()]
    stages = ("keyframes", "concepts", "ocr", "clip", "embed", "index")
    assert pipeline.process(str(tyre.pk), stages) == VideoStatus.READY
    assert sorted(tyre.segments.values_list("id", flat=True)) == before_ids
    assert list(tyre.keyframes.values_list("time", flat=True)) == before_frames
    assert not any(path.exists() for path in old_files)  # replaced thumbnails are deleted
    assert all(Path(k.image.path).exists() for k in tyre.keyframes.all())
    assert Segment.objects.filter(video=tyre, kind="ocr").count() == 2


def _frame_with_text(seed: int, counter: str) -> np.ndarray:
    """A noisy 'moving' picture with a fixed caption in a black box and a changing counter."""
    import subprocess

    from PIL import Image, ImageDraw, ImageFont

    font_file = subprocess.run(["fc-match", "--format=%{file}", media.FONT_PATTERN],
                               capture_output=True, text=True, check=True).stdout.strip()
    rng = np.random.default_rng(seed)
    picture = Image.fromarray(rng.integers(0, 255, (360, 640, 3), dtype=np.uint8))
    draw = ImageDraw.Draw(picture)
    draw.rectangle((100, 220, 540, 300), fill="black")
    draw.text((130, 235), "PUMP  THE  TYRE", font=ImageFont.truetype(font_file, 40), fill="white")
    draw.rectangle((10, 10, 150, 50), fill="black")
    draw.text((20, 15), counter, font=ImageFont.truetype(font_file, 28), fill="white")
    return np.asarray(picture)


def test_a_caption_over_moving_pictures_is_recognised_once(media_tools):
    from workers.pipeline.ocr import TextReader

    reader = TextReader(det_max_side=640)
    first = reader.read(_frame_with_text(1, "0042"))
    assert first.text(0.6)[0].split()[-3:] == ["PUMP", "THE", "TYRE"], first.lines
    before = reader.recognised
    second = reader.read(_frame_with_text(2, "0057"), first)
    text = second.text(0.6)[0]
    assert "0057" in text and "PUMP THE TYRE" in text, second.lines
    assert reader.recognised - before == 1  # only the counter changed
