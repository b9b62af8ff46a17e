"""Bad input to ingest: a clear message and a recorded status per file; nothing is lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from catalog.models import Video, VideoStatus
from retrieval.params import parse_request
from retrieval.search import search
from tests import media

pytestmark = [pytest.mark.models]


def ask(query: str, **params) -> list:
    return search(parse_request({"q": query, **params})).results


@pytest.mark.django_db(transaction=True)
def test_bad_inputs_fail_clearly_and_lose_nothing(media_tools, clips, tmp_path, capsys):
    call_command("ingest", clips["rockets"], no_progress=True)
    good = Video.objects.get()
    bad = tmp_path / "bad"
    files = {
        "empty": media.make_zero_byte(bad / "empty.mp4"),
        "text": media.make_not_a_video(bad / "notes.mp4"),
        "truncated": media.make_truncated(bad / "cut.mp4", clips["bread"]),
        "silent": media.make_silent_video(bad / "silent_origami.mp4", 3.0,
                                          captions=[(0, 3, "ORIGAMI")]),
        "audio": media.make_audio_only(bad / "podcast.m4a", "Welcome to a podcast about "
                                       "sailing boats across the ocean."),
    }
    missing = bad / "does-not-exist.mp4"
    with pytest.raises(CommandError, match="4 file"):
        call_command("ingest", missing, *files.values(), no_progress=True)
    err = capsys.readouterr().err
    assert "does-not-exist.mp4: no such file" in err
    by_name = {v.original_name: v for v in Video.objects.all()}
    assert by_name["empty.mp4"].status == VideoStatus.FAILED
    assert "empty (0 bytes)" in by_name["empty.mp4"].error
    for name in ("notes.mp4", "cut.mp4"):
        assert by_name[name].status == VideoStatus.FAILED
        assert "could not be read as a video" in by_name[name].error
        assert "re-export" in by_name[name].error
        assert Path(by_name[name].source.path).exists(), "a failure must keep the upload"
    silent = by_name["silent_origami.mp4"]
    assert silent.status == VideoStatus.READY and not silent.has_audio
    assert any("No audio track" in n for n in silent.notices)
    podcast = by_name["podcast.m4a"]
    assert podcast.status == VideoStatus.READY and not podcast.has_video
    assert "ocean" in " ".join(podcast.segments.values_list("text", flat=True)).lower()
    good.refresh_from_db()
    assert good.status == VideoStatus.READY
    assert ask("silent origami", k=1)[0].video.pk == silent.pk
    assert ask("sailing across the sea", k=1)[0].video.pk == podcast.pk
    assert ask("rocket engine", k=1)[0].video.pk == good.pk
