"""Media served with HTTP Range support, so browsers can seek <video> elements."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.http import Http404
from django.test import RequestFactory

from catalog.media import byte_range, serve_media
from catalog.models import Video, VideoStatus


@pytest.mark.parametrize("header,expected", [
    ("", None), ("bytes=0-99", (0, 99)), ("bytes=100-", (100, 999)), ("bytes=-10", (990, 999)),
    ("bytes=900-5000", (900, 999)), ("bytes=-5000", (0, 999)), ("items=0-1", None),
    ("bytes=0-1,5-6", None), ("bytes=-", None),
])
def test_byte_range(header, expected):
    assert byte_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5-2", "bytes=-0"])
def test_unsatisfiable_ranges(header):
    with pytest.raises(ValueError):
        byte_range(header, 1000)


@pytest.fixture
def clip(settings, db) -> Path:
    """A file of a published, ready video (the view serves only catalog files)."""
    path = Path(settings.MEDIA_ROOT) / "videos" / "clip.mp4"
    path.parent.mkdir(parents=True)
    path.write_bytes(bytes(range(256)) * 4)
    Video.objects.bulk_create([Video(title="Clip", source="videos/clip.mp4",
                                     status=VideoStatus.READY)])
    return path


def _get(path: str, **headers):
    return serve_media(RequestFactory().get(f"/media/{path}", headers=headers), path)


def test_whole_file_advertises_ranges(clip):
    response = _get("videos/clip.mp4")
    assert response.status_code == 200
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Type"] == "video/mp4"
    assert b"".join(response.streaming_content) == clip.read_bytes()


def test_partial_content(clip):
    response = _get("videos/clip.mp4", Range="bytes=1000-")
    assert response.status_code == 206
    assert response["Content-Range"] == "bytes 1000-1023/1024"
    assert response["Content-Length"] == "24"
    assert b"".join(response.streaming_content) == clip.read_bytes()[1000:]


def test_unsatisfiable_range_is_416(clip):
    response = _get("videos/clip.mp4", Range="bytes=5000-")
    assert response.status_code == 416
    assert response["Content-Range"] == "bytes */1024"


@pytest.mark.parametrize("path", ["videos/missing.mp4", "../../etc/passwd", "videos"])
def test_missing_or_outside_files_are_404(clip, path):
    with pytest.raises(Http404):
        _get(path)
