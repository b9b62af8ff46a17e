"""Speech recognition profiles: `fast` runs the packaged Whisper tiny.en, `accurate` base."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from evaluation.metrics import word_error_rate
from tests import media
from workers.pipeline.asr import SpeechRecognizer, asr_model_path

pytestmark = [pytest.mark.models]

TEXT = ("Lighthouses guide ships along rocky coasts at night. The keeper climbs the tower "
        "every evening to light the lamp.")


@pytest.fixture(scope="module")
def english_wav(media_tools, tmp_path_factory) -> Path:
    return media.speak(TEXT, tmp_path_factory.mktemp("profiles") / "english.wav")


def test_the_fast_profile_transcribes_with_the_packaged_tiny_english_model(english_wav,
                                                                           settings):
    settings.REELSEARCH = {**settings.REELSEARCH, "ASR_MODEL": settings.ASR_PROFILES["fast"]}
    path, version = asr_model_path()
    assert (path / "model.bin").exists() and version == "0.1.0"
    recognizer = SpeechRecognizer()
    assert recognizer.label == "whisper-tiny.en-int8@0.1.0"
    assert not recognizer.model.model.is_multilingual
    transcript = recognizer.transcribe(english_wav, 10.0, language="")
    assert transcript.language == "en"
    spoken = " ".join(word.text for word in transcript.words)
    assert "keeper climbs the tower every evening" in spoken.lower(), spoken
    assert word_error_rate([(TEXT, spoken)]) < 0.5, spoken  # tiny.en is the rougher model
    assert transcript.words[-1].end <= media.wav_duration(english_wav) + 0.5


def test_the_profile_setting_picks_the_model_and_refuses_unknown_names():
    assert settings.ASR_PROFILES == {"accurate": "whisper-base-int8",
                                     "fast": "whisper-tiny.en-int8"}
    code = "import deploy.settings as s; print(s.REELSEARCH['ASR_MODEL'])"
    env = {"DJANGO_DEBUG": "1", "PATH": "/usr/bin:/bin"}
    fast = subprocess.run([sys.executable, "-c", code], env={**env, "REELSEARCH_ASR_PROFILE":
                          "fast"}, capture_output=True, text=True, check=False)
    assert fast.stdout.strip() == "whisper-tiny.en-int8", fast.stderr
    bad = subprocess.run([sys.executable, "-c", code], env={**env, "REELSEARCH_ASR_PROFILE":
                         "turbo"}, capture_output=True, text=True, check=False)
    assert bad.returncode != 0
    assert "REELSEARCH_ASR_PROFILE='turbo' is not a speech recognition profile: use " \
           "accurate or fast." in bad.stderr


@pytest.mark.parametrize("batch", [1, 8])
def test_batched_and_sequential_decoding_both_transcribe(english_wav, settings, batch):
    fast = settings.ASR_PROFILES["fast"]
    settings.REELSEARCH = {**settings.REELSEARCH, "ASR_MODEL": fast, "ASR_BATCH_SIZE": batch}
    recognizer = SpeechRecognizer()
    assert (recognizer.batched is not None) == (batch > 1)
    transcript = recognizer.transcribe(english_wav, 10.0, language="en")
    spoken = " ".join(word.text for word in transcript.words)
    assert word_error_rate([(TEXT, spoken)]) < 0.5, spoken
    starts = [word.start for word in transcript.words]
    assert starts == sorted(starts) and 0.0 <= starts[0] < 2.0
    assert transcript.words[-1].end <= media.wav_duration(english_wav) + 0.5
