"""catalog.queries.frame_url: built without urljoin on the file system storage, as it would be."""

from __future__ import annotations

import pytest
from django.core.files.storage import FileSystemStorage

from catalog.models import Keyframe
from catalog.queries import frame_url

NAMES = ["keyframes/3f2a/000012.jpg", "keyframes/a-b_c.d/1.jpg", "a b.jpg", "../x.jpg",
         "k/./x.jpg", "k/.", "k/..", "/abs.jpg", "a//b.jpg", "é.jpg", "x?y.jpg", "x#y.jpg",
         "100%.jpg"]


@pytest.mark.parametrize("media_url", ["/media/", "https://cdn.example.com/media/", "/m"])
def test_urls_are_what_the_storage_would_build(settings, media_url):
    settings.MEDIA_URL = media_url
    storage = Keyframe._meta.get_field("image").storage
    assert storage.__class__ is FileSystemStorage  # the lazy default storage
    for name in NAMES:
        assert frame_url(name) == storage.url(name), name


def test_other_storages_build_their_own_urls(monkeypatch):
    class Signed(FileSystemStorage):
        def url(self, name):
            return f"https://signed.example.com/{name}?token=abc"

    monkeypatch.setattr(Keyframe._meta.get_field("image"), "storage", Signed())
    assert frame_url("keyframes/1.jpg") == "https://signed.example.com/keyframes/1.jpg?token=abc"


def test_plain_names_skip_the_storage_and_others_do_not(settings, monkeypatch):
    settings.MEDIA_URL = "/media/"
    asked = []
    url = FileSystemStorage.url
    monkeypatch.setattr(FileSystemStorage, "url", lambda self, name: asked.append(name)
                        or url(self, name))
    assert frame_url("keyframes/3f2a/000012.jpg") == "/media/keyframes/3f2a/000012.jpg"
    assert asked == []
    assert frame_url("a b.jpg") == "/media/a%20b.jpg"
    assert asked == ["a b.jpg"]
