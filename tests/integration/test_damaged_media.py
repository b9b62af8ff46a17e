"""Damaged and blank files through the whole pipeline (real models).

* a file whose middle is corrupted becomes ready, says how much audio was lost and that
  parts of the picture could not be decoded;
* black silence becomes ready with no concept segments (no "matchstick (3%)" windows).
"""

from __future__ import annotations

import pytest
from django.core.management import call_command

from catalog.models import Video, VideoStatus
from tests import media

pytestmark = [pytest.mark.models]


@pytest.mark.django_db(transaction=True)
def test_a_corrupted_middle_and_black_silence_are_ready_with_the_right_notes(
        media_tools, clips, tmp_path):
    folder = tmp_path / "in"
    media.make_corrupted_middle(folder / "bread-damaged.mp4", clips["bread"])
    media.make_video(folder / "black.mp4", narration=None, duration=12.0,
                     background="color=c=black")
    call_command("ingest", folder, no_progress=True)
    damaged = Video.objects.get(original_name="bread-damaged.mp4")
    assert damaged.status == VideoStatus.READY, damaged.error
    lost = [n for n in damaged.notices if " s of the audio of " in n]
    assert len(lost) == 1, damaged.notices
    picture = [n for n in damaged.notices if n.startswith("Parts of the picture of ")]
    assert len(picture) == 1 and "bread-damaged.mp4" in picture[0], damaged.notices
    assert len(damaged.notices) == 2, damaged.notices  # audio and picture were both hit
    assert lost[0].split(" s of the audio of ")[0].replace(".", "").isdigit(), lost[0]
    assert str(tmp_path) not in lost[0]

    black = Video.objects.get(original_name="black.mp4")
    assert black.status == VideoStatus.READY, black.error
    assert black.keyframes.count() >= 3
    assert not black.segments.filter(kind="visual").exists()
    assert black.auto_tags == []
