"""Unpublished and unfinished videos stay private: the `published` search filter and the
detail of a draft or failed video are for staff and API-key callers only."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import override_settings

from catalog.models import ApiKey, Video, VideoStatus
from retrieval.backends import reset_backends
from tests.conftest import storage_settings
from tests.integration.test_api import make_video

pytestmark = [pytest.mark.models, pytest.mark.django_db]

DRAFT_TEXT = "An unpublished sourdough recipe draft with rye flour."


@pytest.fixture(scope="module")
def shared_rows(tmp_path_factory, django_db_setup, django_db_blocker) -> dict[str, Video]:
    root = tmp_path_factory.mktemp("visibility")
    with override_settings(**storage_settings(root)), django_db_blocker.unblock():
        reset_backends()
        rows = {
            "live": make_video("Comets Explained", ["astronomy"], "en", [
                (0.0, 9.0, "A comet is a ball of ice and dust with a bright tail.")]),
            "draft": make_video("Secret Draft", ["cooking"], "en", [(0.0, 5.0, DRAFT_TEXT)],
                                published=False),
            "failed": make_video("Broken Upload", ["cooking"], "en", [
                (0.0, 5.0, "A failed upload about baking rye bread.")]),
        }
        Video.objects.filter(pk=rows["failed"].pk).update(status=VideoStatus.FAILED,
                                                          error="could not be read")
        yield rows
        Video.objects.all().delete()
        reset_backends()


@pytest.fixture
def rows(shared_rows) -> dict[str, Video]:
    return shared_rows


@pytest.fixture
def api_key() -> str:
    return ApiKey.issue("visibility")[1]


@pytest.fixture
def staff_client(client):
    client.force_login(User.objects.create_user("editor", password="x", is_staff=True))
    return client


def search(client, **headers) -> dict:
    response = client.get("/api/search", {"q": "unpublished sourdough recipe draft",
                                          "published": "false"}, **headers)
    assert response.status_code == 200, response.content
    return response.json()


def test_anonymous_search_never_returns_unpublished_videos(client, rows):
    data = search(client)
    body = str(data)
    assert "Secret Draft" not in body and "rye flour" not in body
    assert str(rows["draft"].pk) not in body  # nor its id, URL or thumbnails
    assert data["results"], "published videos are still searched"


def test_an_api_key_or_staff_may_search_unpublished_videos(client, staff_client, rows, api_key):
    assert "Secret Draft" in str(search(client, HTTP_X_API_KEY=api_key))
    assert "Secret Draft" in str(search(staff_client))


@pytest.mark.parametrize("which", ["draft", "failed"])
def test_drafts_and_failed_videos_are_404_to_anonymous_callers(client, rows, which):
    pk = rows[which].pk
    assert client.get(f"/api/videos/{pk}").status_code == 404
    assert client.get(f"/api/videos/{pk}/similar").status_code == 404


@pytest.mark.parametrize("which", ["draft", "failed"])
def test_an_api_key_or_staff_may_see_drafts_and_failed_videos(client, staff_client, rows,
                                                              api_key, which):
    pk = rows[which].pk
    response = client.get(f"/api/videos/{pk}", HTTP_X_API_KEY=api_key)
    assert response.status_code == 200 and response.json()["title"] == rows[which].title
    assert staff_client.get(f"/api/videos/{pk}").status_code == 200


def test_published_video_detail_is_public(client, rows):
    assert client.get(f"/api/videos/{rows['live'].pk}").status_code == 200


def test_schema_documents_the_published_filter_as_privileged(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    params = {p["name"]: p for p in schema["paths"]["/api/search"]["get"]["parameters"]}
    assert "published" in params
    assert params["published"]["description"].startswith("Staff or API key only")
