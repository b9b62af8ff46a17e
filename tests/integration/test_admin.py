"""The editors' admin: uploads with clear limits, metadata editing, the change page preview,
the reprocess and reindex actions, list filters, and the hybrid search box with moments."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from catalog.models import ApiKey, Transcript, Video, VideoStatus
from retrieval.backends import get_backend
from tests.integration.test_api import ROWS, add_keyframe, make_video

pytestmark = [pytest.mark.django_db]

ADD = reverse("admin:catalog_video_add")
CHANGELIST = reverse("admin:catalog_video_changelist")


def upload(admin_client, name: str, data: bytes, content_type: str, **fields):
    form = {"title": "Clip", "description": "", "tags": "cooking, Italian, cooking",
            "language": "en", "published": "on", **fields,
            "source": SimpleUploadedFile(name, data, content_type=content_type)}
    return admin_client.post(ADD, form)


def change_url(video: Video) -> str:
    return reverse("admin:catalog_video_change", args=[video.pk])


def test_upload_records_the_file_and_queues_processing(admin_client, settings,
                                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        response = upload(admin_client, "pasta.mp4", b"\x00\x00\x00\x18ftypmp42" * 10,
                          "video/mp4")
    assert response.status_code == 302, response.content.decode()[:2000]
    video = Video.objects.get()
    assert video.original_name == "pasta.mp4" and video.size_bytes == 120
    assert len(video.sha256) == 64 and video.status == VideoStatus.PENDING
    assert video.tags == ["cooking", "Italian"]
    assert len(queued) == 1  # the pipeline starts once the upload is committed


@pytest.mark.parametrize("name,data,content_type,message", [
    ("notes.txt", b"hello", "text/plain", "is not a video or audio file (type text/plain)"),
    ("photo.mp4", b"\xff\xd8", "image/jpeg", "not a video or audio file"),
    ("empty.mp4", b"", "video/mp4", "The submitted file is empty"),
    ("big.mp4", b"x" * 2048, "video/mp4", "the upload limit is 1.0"),
])
def test_upload_limits_have_clear_messages(admin_client, settings, name, data, content_type,
                                           message):
    settings.REELSEARCH = {**settings.REELSEARCH, "MAX_UPLOAD_BYTES": 1024}
    response = upload(admin_client, name, data, content_type)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Video.objects.exists()


def test_an_upload_already_in_the_catalog_is_refused(admin_client,
                                                     django_capture_on_commit_callbacks):
    data = b"\x00\x00\x00\x18ftypmp42" * 10
    upload(admin_client, "a.mp4", data, "video/mp4", title="First")
    response = upload(admin_client, "copy.mp4", data, "application/octet-stream")
    assert "already in the catalog as “First”" in response.content.decode()
    assert Video.objects.count() == 1


@pytest.fixture
def indexed() -> dict[str, Video]:
    videos = {row[0]: make_video(*row) for row in ROWS}
    bread = videos["Sourdough Basics"]
    bread.auto_tags = ["loaf", {"label": "oven", "score": 0.4}]
    bread.progress = 0.5
    bread.save()
    add_keyframe(bread, 9.0)
    return videos


@pytest.mark.models
def test_change_page_has_player_keyframes_transcript_and_progress(admin_client, indexed):
    page = admin_client.get(change_url(indexed["Sourdough Basics"])).content.decode()
    assert "id='rs-player'" in page and ".mp4" in page
    assert "class='rs-seek rs-keyframe' data-seek='9.0'" in page and "k" in page
    assert "data-seek='8.0'>0:08</button>" in page and "covered pot" in page
    assert "<progress class='rs-progress' value='50'" in page
    assert "catalog/video_admin.js" in page
    assert "Feed the sourdough starter" in page  # the segments inline
    assert 'value="cooking, bread"' in page  # tags as comma-separated text


@pytest.mark.models
def test_auto_tags_can_be_removed_and_metadata_edits_reach_the_index(
        admin_client, indexed, monkeypatch, django_capture_on_commit_callbacks):
    queued = []
    monkeypatch.setattr("workers.tasks.enqueue_video", lambda *args: queued.append(args))
    bread = indexed["Sourdough Basics"]
    form = {"title": "Sourdough for Beginners", "description": "", "tags": "bread",
            "auto_tags": ["loaf"], "language": "en", "published": "on",
            "segments-TOTAL_FORMS": "0", "segments-INITIAL_FORMS": "3",
            "segments-MIN_NUM_FORMS": "0", "segments-MAX_NUM_FORMS": "1000"}
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(change_url(bread), form)
    assert response.status_code == 302, response.content.decode()[:3000]
    bread.refresh_from_db()
    assert bread.auto_tags == ["loaf"] and bread.tags == ["bread"]
    metadata = bread.segments.get(kind="metadata")
    assert metadata.text.startswith("Sourdough for Beginners") and not metadata.text_vector
    assert queued == [(str(bread.pk), "embed")]


@pytest.mark.models
def test_metadata_the_database_cannot_store_is_refused_by_the_form(admin_client, indexed):
    bread = indexed["Sourdough Basics"]
    form = {"title": "T" * 301, "description": "", "tags": "bread, nul\x00tag",
            "language": "en", "published": "on",
            "segments-TOTAL_FORMS": "0", "segments-INITIAL_FORMS": "3",
            "segments-MIN_NUM_FORMS": "0", "segments-MAX_NUM_FORMS": "1000"}
    response = admin_client.post(change_url(bread), form)
    assert response.status_code == 200  # the form again, with its errors (not a 500)
    errors = response.context["adminform"].form.errors
    assert "at most 300 characters" in errors["title"][0]
    assert "Tags cannot contain NUL characters" in errors["tags"][0]
    bread.refresh_from_db()
    assert bread.title == "Sourdough Basics" and bread.tags == ["cooking", "bread"]


@pytest.mark.models
def test_reprocess_and_reindex_actions(admin_client, indexed, monkeypatch,
                                       django_capture_on_commit_callbacks):
    queued = []
    monkeypatch.setattr("workers.tasks.enqueue_video", lambda *args: queued.append(args))
    ids = [str(v.pk) for v in indexed.values()]
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(CHANGELIST, {"action": "reprocess",
                                                  "_selected_action": ids[:2]}, follow=True)
    assert "Queued 2 video(s)" in response.content.decode()
    assert sorted(queued) == sorted((i, None) for i in ids[:2])
    backend = get_backend()
    backend.clear()
    Video.objects.filter(pk=ids[2]).update(status=VideoStatus.PENDING)
    response = admin_client.post(CHANGELIST, {"action": "reindex", "_selected_action": ids},
                                 follow=True)
    page = response.content.decode()
    assert "Reindexed 2 video(s)" in page and "Skipped 1 video(s)" in page
    assert backend.count() == 3 + 2  # the two ready videos' speech and metadata segments


@pytest.mark.models
def test_list_filters_by_tag_status_and_language(admin_client, indexed):
    page = admin_client.get(CHANGELIST, {"tag": "astronomy"}).content.decode()
    assert "Comets Explained" in page and "Sourdough Basics" not in page
    page = admin_client.get(CHANGELIST, {"language": "fr"}).content.decode()
    assert "Réparer un vélo" in page and "Comets Explained" not in page
    page = admin_client.get(CHANGELIST, {"status__exact": "ready"}).content.decode()
    assert "Comets Explained" in page
    page = admin_client.get(CHANGELIST).content.decode()
    assert "?tag=cooking" in page  # the tag filter offers the tags in use


@pytest.mark.models
def test_admin_search_box_uses_hybrid_search_and_shows_moments(admin_client, indexed):
    pending = Video.objects.create(title="Comet photography (pending)", source="videos/p.mp4")
    response = admin_client.get(CHANGELIST, {"q": "comet"})
    page = response.content.decode()
    rows = [str(video.pk) for video in response.context["cl"].result_list]
    comets = indexed["Comets Explained"]
    assert rows[0] == str(comets.pk)  # ranked by the hybrid search
    assert str(pending.pk) in rows  # a title match not indexed yet is still listed
    assert f"{change_url(comets)}#t=0.0" in page and "ball of ice" in page
    # paraphrase: no shared word with the transcript, found by the dense signal
    response = admin_client.get(CHANGELIST, {"q": "baking loaves of bread at home"})
    assert str(response.context["cl"].result_list[0].pk) == str(indexed["Sourdough Basics"].pk)


def test_api_key_created_in_the_admin_is_shown_once(admin_client):
    response = admin_client.post(reverse("admin:catalog_apikey_add"),
                                 {"name": "tv-app", "active": "on"}, follow=True)
    page = response.content.decode()
    key = ApiKey.objects.get(name="tv-app")
    raw = page.split("The key for “tv-app” is ", 1)[1].split(" ", 1)[0]
    assert ApiKey.hash(raw) == key.hashed_key and key.prefix == raw[:8]


@pytest.mark.models
def test_change_page_lists_chapters_and_plays_subtitles(admin_client, indexed):
    bread = indexed["Sourdough Basics"]
    page = admin_client.get(change_url(bread)).content.decode()
    assert "None: chapters are made for videos over 5:00" in page
    assert "<track" not in page  # no stored transcript: no subtitles yet
    Video.objects.filter(pk=bread.pk).update(chapters=[
        {"start": 0.0, "end": 65.0, "title": "Feeding the <starter>"},
        {"start": 65.0, "end": 130.0, "title": "Shaping"},
        {"start": 130.0, "end": 400.0, "title": "Baking"}])
    Transcript.objects.create(video=bread, words=[[0.5, 0.9, "Feed"]])
    page = admin_client.get(change_url(bread)).content.decode()
    assert "data-seek='65.0'>1:05</button> Shaping" in page
    assert "Feeding the &lt;starter&gt;" in page  # escaped
    assert (f"<track kind='subtitles' src='/api/videos/{bread.pk}/subtitles.vtt' srclang='en'"
            in page)
