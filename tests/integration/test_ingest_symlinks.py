"""`manage.py ingest` copies only regular files: symbolic links are followed only into
REELSEARCH["INGEST_ROOTS"], and folders named like media files are refused, loudly.

A link named like a video but pointing at /etc/passwd (or any file of the server) used to be
copied byte for byte into MEDIA_ROOT, and from there served by the media view.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from catalog.models import Video
from workers.ingest import expand, register

pytestmark = [pytest.mark.django_db]  # no on-commit pipeline run: registration only

SECRET = b"admin:x:1000:1000:admin:/home/admin:/bin/sh\n"


def media_files(settings) -> list[bytes]:
    root = Path(settings.MEDIA_ROOT)
    return [p.read_bytes() for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "server" / "passwd"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "good.mp4").write_bytes(b"not really a video, but a regular file")
    return folder


def ingest(*paths: Path) -> None:
    call_command("ingest", *paths, no_progress=True)


def test_a_named_link_to_a_server_file_is_refused(settings, tmp_path, secret, capsys):
    link = tmp_path / "passwd.mp4"
    link.symlink_to(secret)
    with pytest.raises(CommandError, match="1 file"):
        ingest(link)
    err = capsys.readouterr().err
    assert "passwd.mp4" in err and "symbolic link" in err
    assert str(tmp_path) not in err, "messages name files, not server paths"
    assert not Video.objects.exists()
    assert SECRET not in media_files(settings)


def test_links_inside_a_folder_are_refused_and_the_rest_is_ingested(settings, inbox, secret,
                                                                   tmp_path, capsys):
    (inbox / "evil.mp4").symlink_to(secret)
    (inbox / "passwd.MOV").symlink_to("/etc/passwd")
    (inbox / "server").symlink_to(secret.parent, target_is_directory=True)
    (secret.parent / "leak.mp4").write_bytes(SECRET)
    with pytest.raises(CommandError, match="3 file"):
        ingest(inbox)
    err = capsys.readouterr().err
    assert "evil.mp4" in err and "passwd.MOV" in err and "server" in err
    assert str(tmp_path) not in err
    assert list(Video.objects.values_list("original_name", flat=True)) == ["good.mp4"]
    assert SECRET not in media_files(settings)
    assert "leak.mp4" not in {p.name for p in expand([inbox])}, "the linked folder is not walked"


def test_a_folder_behind_a_link_outside_the_roots_is_refused(settings, inbox, tmp_path,
                                                             capsys):
    link = tmp_path / "shortcut"
    link.symlink_to(inbox, target_is_directory=True)
    with pytest.raises(CommandError, match="1 file"):
        ingest(link)
    assert "shortcut" in capsys.readouterr().err
    assert not Video.objects.exists()


def test_links_into_the_ingest_roots_are_followed(settings, tmp_path, capsys):
    library = tmp_path / "library"
    (library / "shows").mkdir(parents=True)
    (library / "clip.mp4").write_bytes(b"clip bytes")
    (library / "shows" / "episode.mp4").write_bytes(b"episode bytes")
    links = tmp_path / "links"
    links.mkdir()
    (links / "clip.mp4").symlink_to(library / "clip.mp4")
    (links / "shows").symlink_to(library / "shows", target_is_directory=True)
    settings.REELSEARCH = {**settings.REELSEARCH, "INGEST_ROOTS": [str(library)]}
    ingest(links)
    names = sorted(Video.objects.values_list("original_name", flat=True))
    assert names == ["clip.mp4", "episode.mp4"]
    assert sorted(media_files(settings)) == [b"clip bytes", b"episode bytes"]


def test_a_link_out_of_the_ingest_roots_stays_refused(settings, tmp_path, secret):
    library = tmp_path / "library"
    library.mkdir()
    (library / "sneaky.mp4").symlink_to(secret)  # inside a root, pointing out of it
    settings.REELSEARCH = {**settings.REELSEARCH, "INGEST_ROOTS": [str(library)]}
    outcome = register(library / "sneaky.mp4")
    assert outcome.action == "refused" and outcome.video is None
    assert "outside REELSEARCH_INGEST_ROOTS" in outcome.message
    assert str(tmp_path) not in outcome.message


@pytest.mark.parametrize("inside", [False, True])
def test_a_folder_named_like_a_video_is_an_error(settings, inbox, inside, capsys):
    folder = inbox / "holiday.mp4"
    folder.mkdir()
    (folder / "readme.txt").write_text("a folder, not a video")
    with pytest.raises(CommandError, match="1 file"):
        ingest(inbox if inside else folder)
    err = capsys.readouterr().err
    assert "holiday.mp4: is a folder, not a media file" in err
    assert str(inbox) not in err
    assert list(Video.objects.values_list("original_name", flat=True)) == (
        ["good.mp4"] if inside else [])


def test_only_regular_files_are_ingested(settings, inbox, capsys):
    os.mkfifo(inbox / "pipe.mp4")
    with pytest.raises(CommandError, match="2 file"):
        ingest(inbox, Path("/dev/null"))
    err = capsys.readouterr().err
    assert "pipe.mp4: is not a regular file" in err
    assert "null: is not a regular file" in err
    assert list(Video.objects.values_list("original_name", flat=True)) == ["good.mp4"]


def test_missing_files_are_named_without_their_folder(tmp_path, capsys):
    with pytest.raises(CommandError, match="1 file"):
        ingest(tmp_path / "gone" / "nothing.mp4")
    err = capsys.readouterr().err
    assert "nothing.mp4: no such file" in err and str(tmp_path) not in err
