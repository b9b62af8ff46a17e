"""Whisper on French speech: detected, restricted to the allowed languages, or as the video says."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import media
from workers.pipeline.asr import get_recognizer

pytestmark = [pytest.mark.models]

FRENCH = ("Bonjour à tous. Aujourd'hui nous allons parler de la cuisine française, du pain, "
          "du fromage et du vin rouge de nos régions.")


@pytest.fixture(scope="module")
def french_wav(media_tools, tmp_path_factory) -> Path:
    return media.speak(FRENCH, tmp_path_factory.mktemp("french") / "french.wav", voice="fr")


def test_french_speech_is_detected_as_french(french_wav):
    transcript = get_recognizer().transcribe(french_wav, 8.0, language="", allowed=())
    assert transcript.language == "fr"
    assert transcript.language_probability is not None
    assert transcript.language_probability > 0.5
    spoken = " ".join(w.text.lower() for w in transcript.words)
    assert "bonjour" in spoken and "pain" in spoken, spoken


def test_detection_only_picks_among_the_allowed_languages(french_wav):
    transcript = get_recognizer().transcribe(french_wav, 8.0, language="", allowed=("en", "de"))
    assert transcript.language in {"en", "de"}
    assert transcript.language_probability is not None
    assert transcript.language_probability < 0.5


def test_the_videos_language_is_used_as_given(french_wav):
    transcript = get_recognizer().transcribe(french_wav, 8.0, language="French",
                                             allowed=("en",))
    assert transcript.language == "fr"
    assert transcript.language_probability is None
