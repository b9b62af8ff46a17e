"""The media view serves only files of published, ready videos (and their keyframe
thumbnails), or any catalog file to staff; never a file outside MEDIA_ROOT or the catalog."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User

from catalog.models import Keyframe, Video, VideoStatus

pytestmark = [pytest.mark.django_db]


def put(settings, name: str, content: bytes = b"media bytes") -> str:
    path = Path(settings.MEDIA_ROOT) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return name


def video(settings, slug: str, **fields) -> Video:
    """A video row with a source file and one keyframe file (bulk: no pipeline run)."""
    source = put(settings, f"videos/2024/05/{slug}.mp4", slug.encode())
    row, = Video.objects.bulk_create([Video(title=slug, source=source, **{
        "status": VideoStatus.READY, "published": True, **fields})])
    Keyframe.objects.bulk_create([Keyframe(
        video=row, time=1.0, image=put(settings, f"keyframes/2024/05/{slug}.jpg", b"jpeg"))])
    return row


@pytest.fixture
def staff_client(client):
    client.force_login(User.objects.create_user("editor", password="x", is_staff=True))
    return client


@pytest.fixture
def rows(settings) -> dict[str, Video]:
    return {
        "live": video(settings, "live"),
        "draft": video(settings, "draft", published=False),
        "failed": video(settings, "failed", status=VideoStatus.FAILED),
        "processing": video(settings, "processing", status=VideoStatus.PROCESSING),
    }


def urls(slug: str) -> list[str]:
    return [f"/media/videos/2024/05/{slug}.mp4", f"/media/keyframes/2024/05/{slug}.jpg"]


def test_published_ready_videos_and_their_thumbnails_are_served(client, rows):
    for url in urls("live"):
        response = client.get(url)
        assert response.status_code == 200, url
    assert b"".join(client.get(urls("live")[0]).streaming_content) == b"live"


@pytest.mark.parametrize("slug", ["draft", "failed", "processing"])
def test_other_videos_and_their_thumbnails_are_404_to_anonymous_callers(client, rows, slug):
    for url in urls(slug):
        assert client.get(url).status_code == 404, url
        assert client.get(url, HTTP_RANGE="bytes=0-1").status_code == 404, url


@pytest.mark.parametrize("slug", ["live", "draft", "failed", "processing"])
def test_staff_see_every_catalog_file(staff_client, rows, slug):
    for url in urls(slug):
        assert staff_client.get(url).status_code == 200, url


def test_files_outside_the_catalog_are_404_even_to_staff(settings, staff_client, rows):
    put(settings, "videos/2024/05/orphan.mp4")
    put(settings, "notes/secret.txt")
    for url in ("/media/videos/2024/05/orphan.mp4", "/media/notes/secret.txt",
                "/media/videos/2024/05/../05/orphan.mp4", "/media/videos/2024"):
        assert staff_client.get(url).status_code == 404, url


def test_a_link_out_of_media_root_is_never_served(settings, client, staff_client, tmp_path):
    secret = tmp_path / "passwd"
    secret.write_bytes(b"root:x:0:0")
    link = Path(settings.MEDIA_ROOT) / "videos" / "2024" / "05" / "passwd.mp4"
    link.parent.mkdir(parents=True)
    link.symlink_to(secret)
    Video.objects.bulk_create([Video(title="leak", source="videos/2024/05/passwd.mp4",
                                     status=VideoStatus.READY)])
    assert staff_client.get("/media/videos/2024/05/passwd.mp4").status_code == 404
    staff_client.logout()
    assert client.get("/media/videos/2024/05/passwd.mp4").status_code == 404
