"""Editor metadata the catalog cannot store is refused by name, on SQLite and PostgreSQL alike.

SQLite keeps an overlong title or a NUL character silently; PostgreSQL rejects both with a
database error. `ingest` checks first and says which field to fix.
"""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from catalog.models import Video
from tests import media


@pytest.mark.django_db
def test_metadata_too_long_or_with_nul_characters_is_refused_by_field(tmp_path, capsys):
    files = {name: media.make_not_a_video(tmp_path / name) for name in
             ("long.mp4", "nul.mp4", "fine.mp4")}
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps([
        {"file": "long.mp4", "title": "T" * 301, "language": "x" * 17},
        {"file": "nul.mp4", "title": "Null\x00byte", "tags": ["ok", "bad\x00tag"]},
        {"file": "fine.mp4", "title": "Fine", "tags": ["kept"]},
    ]))
    with pytest.raises(CommandError, match="2 file"):
        call_command("ingest", *files.values(), metadata=catalog, no_progress=True)
    err = capsys.readouterr().err
    long_line = next(line for line in err.splitlines() if "long.mp4" in line)
    assert "title: Ensure this value has at most 300 characters (it has 301)." in long_line
    assert "language: Ensure this value has at most 16 characters" in long_line
    assert "fix the --metadata file" in long_line
    nul_line = next(line for line in err.splitlines() if "nul.mp4" in line)
    assert "title: contains a NUL character" in nul_line
    assert "tags: contains a NUL character" in nul_line
    (video,) = Video.objects.all()  # registered; its processing is queued on commit
    assert (video.title, video.tags) == ("Fine", ["kept"])


@pytest.mark.django_db
def test_a_file_named_only_by_punctuation_gets_its_file_name_as_title(tmp_path):
    path = media.make_not_a_video(tmp_path / "_.mp4")
    call_command("ingest", path, no_progress=True)  # registered; processing is queued on commit
    assert Video.objects.get().title == "_.mp4"
