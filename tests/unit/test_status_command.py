"""`manage.py status` shows whole errors, not the first 60 characters."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from catalog.models import Video, VideoStatus

LONG_ERROR = ("The audio track of interview-2026-final.mp4 could not be decoded (Invalid data "
              "found when processing input): re-export it as an MP4 (H.264 video, AAC audio) "
              "and upload it again.")


def status_output(*args: str) -> str:
    out = StringIO()
    call_command("status", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_status_shows_a_long_error_in_full_wrapped_and_indented() -> None:
    Video.objects.create(title="Interview", source="videos/interview.mp4",
                         status=VideoStatus.FAILED, stage="audio", error=LONG_ERROR)
    Video.objects.create(title="Short", source="videos/short.mp4", status=VideoStatus.FAILED,
                         error="The file is empty.")
    out = status_output()
    assert "Errors in full:" in out
    block = out.split("Errors in full:", 1)[1]
    lines = [line for line in block.splitlines() if line.startswith("    ")]
    assert lines and all(len(line) <= 100 for line in lines)
    assert " ".join(line.strip() for line in lines) == LONG_ERROR
    assert "Interview" in block and "Short" not in block  # a short error fits in the table
    table = out.split("Errors in full:", 1)[0]
    assert "Short" in table and "The file is empty." in table


@pytest.mark.django_db
def test_no_full_shows_the_table_only() -> None:
    Video.objects.create(title="Interview", source="videos/interview.mp4",
                         status=VideoStatus.FAILED, error=LONG_ERROR)
    out = status_output("--no-full")
    assert "Errors in full:" not in out and "…" in out
