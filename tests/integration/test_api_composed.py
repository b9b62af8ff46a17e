"""Composed queries through the API and the `search` command: like=<video>&q=<change>.

Four published videos cross two topics with two settings (texts embedded with the real
MiniLM model); a draft and a video with no segments test what a reference may be.
"""

from __future__ import annotations

import uuid
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import override_settings

from catalog.models import ApiKey, Video, VideoStatus
from retrieval.backends import reset_backends
from tests.conftest import storage_settings
from tests.integration.test_api import make_video

pytestmark = [pytest.mark.models, pytest.mark.django_db]

TOPICS = {
    "Pancakes": "Whisk flour, milk and eggs into a batter and fry thin pancakes in butter.",
    "Guitar": "Tune the strings and strum the chords G, C and D in a steady rhythm.",
}
SETTINGS = {
    "night": "It is the middle of the night; only a lamp lights the dark street.",
    "beach": "We are on the sand by the sea while the waves roll in.",
}
CHANGE = "but at the seaside"


@pytest.fixture(scope="module")
def shared_rows(tmp_path_factory, django_db_setup, django_db_blocker) -> dict[str, Video]:
    root = tmp_path_factory.mktemp("composed")
    with override_settings(**storage_settings(root)), django_db_blocker.unblock():
        reset_backends()
        rows = {f"{topic}, {setting}": make_video(f"{topic}, {setting}", [], "en", [
            (0.0, 6.0, topic_text), (6.0, 12.0, setting_text)])
            for topic, topic_text in TOPICS.items()
            for setting, setting_text in SETTINGS.items()}
        rows["draft"] = make_video("Pancakes draft", [], "en", [
            (0.0, 6.0, TOPICS["Pancakes"])], published=False)
        rows["empty"], = Video.objects.bulk_create([Video(
            title="Not processed", source="videos/empty.mp4", duration=5.0,
            status=VideoStatus.READY)])
        yield rows
        Video.objects.all().delete()
        reset_backends()


@pytest.fixture
def rows(shared_rows) -> dict[str, Video]:
    cache.clear()  # no 429s from the anonymous throttle
    return shared_rows


def composed(client, like, q: str = CHANGE, **headers):
    return client.get("/api/search", {"like": str(like), "q": q}, **headers)


def test_a_composed_query_keeps_the_topic_and_changes_the_setting(client, rows):
    response = composed(client, rows["Pancakes, night"].pk)
    assert response.status_code == 200, response.content
    data = response.json()
    titles = [result["title"] for result in data["results"]]
    assert titles[0] == "Pancakes, beach"
    assert "Pancakes, night" not in titles  # the reference is left out
    assert "Pancakes draft" not in titles  # and drafts stay hidden, as in any search
    assert data["like"] == str(rows["Pancakes, night"].pk)
    assert data["results"][0]["moments"]


def test_the_same_change_from_another_reference_gives_its_own_topic(client, rows):
    data = composed(client, rows["Guitar, night"].pk).json()
    assert data["results"][0]["title"] == "Guitar, beach"


@pytest.mark.parametrize("like", ["not-a-uuid", ""])
def test_a_reference_that_is_not_a_video_id_is_a_400(client, rows, like):
    response = composed(client, like)
    assert response.status_code == 400
    assert "like" in response.json()["error"]


def test_unknown_and_unpublished_references_are_404_to_anonymous_callers(client, rows):
    for like in (uuid.uuid4(), rows["draft"].pk):
        response = composed(client, like)
        assert response.status_code == 404
        assert "No video with id" in response.json()["error"]


def test_an_api_key_may_start_from_a_draft(client, rows):
    key = ApiKey.issue("composed")[1]
    response = composed(client, rows["draft"].pk, HTTP_X_API_KEY=key)
    assert response.status_code == 200, response.content
    assert response.json()["results"][0]["title"] == "Pancakes, beach"


def test_a_reference_with_nothing_indexed_is_a_400_that_says_why(client, rows):
    response = composed(client, rows["empty"].pk)
    assert response.status_code == 400
    assert "wait until it is processed" in response.json()["error"]


def test_the_search_command_takes_like(rows):
    out = StringIO()
    call_command("search", CHANGE, like=str(rows["Pancakes, night"].pk), stdout=out)
    listed = [line for line in out.getvalue().splitlines() if line[:2] == "1."]
    assert listed and "Pancakes, beach" in listed[0]
    with pytest.raises(CommandError, match="add --all"):
        call_command("search", CHANGE, like=str(rows["draft"].pk), stdout=StringIO())
    with pytest.raises(CommandError, match="like must be the id"):
        call_command("search", CHANGE, like="nope", stdout=StringIO())


def test_the_search_page_carries_like_to_its_script_and_offers_the_box(client, rows):
    pk = str(rows["Pancakes, night"].pk)
    page = client.get("/", {"like": pk, "q": CHANGE}).content.decode()
    assert f'data-like="{pk}"' in page and "retrieval/compose.js" in page
    assert "Search for the words alone" in page
    script = Path(finders.find("retrieval/compose.js")).read_text()
    assert "More like this, but" in script and 'name: "like"' in script
    assert 'data-like=""' in client.get("/", {"q": CHANGE}).content.decode()
