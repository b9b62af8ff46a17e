"""Subtitles and chapters through the API: /api/videos/{id}/subtitles.vtt and .srt parse back,
follow the video's visibility rules, and the detail lists chapters and the subtitle urls."""

from __future__ import annotations

import pytest
import srt
import webvtt
from django.test import override_settings

from catalog.models import ApiKey, Transcript, Video, VideoStatus
from retrieval.backends import reset_backends
from tests.conftest import storage_settings
from tests.integration.test_api import make_video

pytestmark = [pytest.mark.models, pytest.mark.django_db]

SPOKEN = ("A comet is a ball of ice and dust. Near the sun its ice turns to gas, and the "
          "gas and dust stream away in a bright tail that can stretch for millions of "
          "kilometres across the sky.")
CHAPTERS = [{"start": 0.0, "end": 120.0, "title": "Comet tails"},
            {"start": 120.0, "end": 250.0, "title": "Orbits and the sun"},
            {"start": 250.0, "end": 400.0, "title": "Famous comets"}]


def words_of(text: str, start: float = 0.5) -> list[list]:
    words, at = [], start
    for word in text.split():
        words.append([round(at, 3), round(at + 0.3, 3), word])
        at += 0.38
    return words


@pytest.fixture(scope="module")
def shared_videos(tmp_path_factory, django_db_setup, django_db_blocker) -> dict[str, Video]:
    root = tmp_path_factory.mktemp("subtitles")
    with override_settings(**storage_settings(root)), django_db_blocker.unblock():
        reset_backends()
        rows = {
            "live": make_video("Comets", ["astronomy"], "en", [(0.0, 400.0, SPOKEN)],
                               chapters=CHAPTERS),
            "draft": make_video("Draft", ["astronomy"], "en", [(0.0, 9.0, SPOKEN)],
                                published=False),
            "old": make_video("Processed before transcripts", [], "en", [(0.0, 9.0, SPOKEN)]),
            "failed": make_video("Broken", [], "en", [(0.0, 9.0, SPOKEN)]),
        }
        Video.objects.filter(pk=rows["failed"].pk).update(status=VideoStatus.FAILED)
        for key in ("live", "draft", "failed"):
            Transcript.objects.create(video=rows[key], language="en", model="whisper",
                                      words=words_of(SPOKEN))
        yield rows
        Video.objects.all().delete()
        reset_backends()


def test_webvtt_parses_back_with_the_transcript(client, shared_videos):
    response = client.get(f"/api/videos/{shared_videos['live'].pk}/subtitles.vtt")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/vtt; charset=utf-8"
    captions = webvtt.from_string(response.content.decode()).captions
    assert " ".join(c.text.replace("\n", " ") for c in captions) == SPOKEN
    assert captions[0].start == "00:00:00.500"
    for caption in captions:
        assert len(caption.lines) <= 2 and all(len(line) <= 42 for line in caption.lines)


def test_srt_has_the_same_cues(client, shared_videos):
    pk = shared_videos["live"].pk
    response = client.get(f"/api/videos/{pk}/subtitles.srt")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-subrip; charset=utf-8"
    parsed = list(srt.parse(response.content.decode()))
    captions = webvtt.from_string(client.get(f"/api/videos/{pk}/subtitles.vtt")
                                  .content.decode()).captions
    assert [s.content for s in parsed] == [c.text for c in captions]
    assert srt.timedelta_to_srt_timestamp(parsed[0].start) == "00:00:00,500"


def test_a_player_asking_for_text_vtt_gets_it(client, shared_videos):
    response = client.get(f"/api/videos/{shared_videos['live'].pk}/subtitles.vtt",
                          HTTP_ACCEPT="text/vtt")
    assert response.status_code == 200 and response.content.startswith(b"WEBVTT")


@pytest.mark.parametrize("which", ["draft", "failed"])
@pytest.mark.parametrize("suffix", ["vtt", "srt"])
def test_drafts_and_failed_videos_are_404_to_anonymous_callers(client, shared_videos, which,
                                                               suffix):
    response = client.get(f"/api/videos/{shared_videos[which].pk}/subtitles.{suffix}")
    assert response.status_code == 404
    assert "error" in response.json()


def test_an_api_key_may_read_a_drafts_subtitles(client, shared_videos):
    key = ApiKey.issue("subtitles")[1]
    response = client.get(f"/api/videos/{shared_videos['draft'].pk}/subtitles.vtt",
                          HTTP_X_API_KEY=key)
    assert response.status_code == 200 and b"comet" in response.content


def test_a_video_without_a_stored_transcript_says_to_reprocess(client, shared_videos):
    response = client.get(f"/api/videos/{shared_videos['old'].pk}/subtitles.vtt")
    assert response.status_code == 404
    assert "reprocess" in response.json()["error"]
    missing = client.get("/api/videos/00000000-0000-0000-0000-000000000000/subtitles.srt")
    assert missing.status_code == 404


def test_the_detail_lists_chapters_and_subtitle_urls(client, shared_videos):
    live = client.get(f"/api/videos/{shared_videos['live'].pk}").json()
    assert live["chapters"] == CHAPTERS
    assert live["subtitles"] == {
        "vtt": f"/api/videos/{shared_videos['live'].pk}/subtitles.vtt",
        "srt": f"/api/videos/{shared_videos['live'].pk}/subtitles.srt"}
    assert client.get(live["subtitles"]["vtt"]).status_code == 200
    old = client.get(f"/api/videos/{shared_videos['old'].pk}").json()
    assert old["chapters"] == [] and old["subtitles"] is None


def test_an_error_asked_as_text_vtt_is_still_json(client, shared_videos):
    """Negotiation accepts text/vtt (no 406); errors under /api/ are always JSON."""
    response = client.get(f"/api/videos/{shared_videos['draft'].pk}/subtitles.vtt",
                          HTTP_ACCEPT="text/vtt")
    assert response.status_code == 404
    assert "No video" in response.json()["error"]
