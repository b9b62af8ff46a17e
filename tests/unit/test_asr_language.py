"""Which language speech is transcribed in: the video's, the only allowed one, or detected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from catalog.models import Video
from workers.pipeline import stages
from workers.pipeline.asr import (
    WHISPER_LANGUAGES,
    LanguageChoice,
    Transcript,
    Word,
    allowed_languages,
    choose_language,
    whisper_language,
)

# What faster-whisper's detect_language returns, most probable first.
FRENCH_AUDIO = [("fr", 0.62), ("en", 0.21), ("de", 0.09), ("it", 0.05), ("es", 0.03)]


@pytest.mark.parametrize("value,code", [
    ("en", "en"), ("EN", "en"), ("en-US", "en"), ("en_GB", "en"), ("English", "en"),
    (" english ", "en"), ("pt-BR", "pt"), ("de_DE.UTF-8", "de"), ("zh-Hant-TW", "zh"),
    ("yue-HK", "yue"), ("haw", "haw"), ("Haitian Creole", "ht"), ("haitian", "ht"),
    ("Castilian", "es"), ("nb", "no"), ("nb-NO", "no"), ("jv", "jw"), ("iw", "he"),
    ("Mandarin", "zh"),
])
def test_language_values_map_to_whisper_codes(value, code):
    assert whisper_language(value) == code


@pytest.mark.parametrize("value", ["", "   ", None, "xx", "Klingon", "english-ish", "e",
                                   "tlh-KL", "123"])
def test_unknown_language_values_map_to_nothing(value):
    assert whisper_language(value) is None


def test_the_table_matches_the_codes_faster_whisper_accepts():
    tokenizer = pytest.importorskip("faster_whisper.tokenizer")
    assert set(WHISPER_LANGUAGES) == set(tokenizer._LANGUAGE_CODES)


def test_allowed_languages_parses_the_setting(settings):
    assert allowed_languages("") == ()
    assert allowed_languages(" en, German ,fr-FR,,en ") == ("en", "de", "fr")
    assert allowed_languages(["es", "Spanish"]) == ("es",)
    settings.REELSEARCH = {**settings.REELSEARCH, "ASR_LANGUAGES": "nl,en"}
    assert allowed_languages() == ("nl", "en")
    with pytest.raises(ImproperlyConfigured, match="'Klingon'"):
        allowed_languages("en,Klingon")


def test_the_videos_language_wins_without_detection():
    assert choose_language("fr-CA", ()) == LanguageChoice("fr", "video")
    # even a language outside the allowed ones: the editor said so
    assert choose_language("Japanese", ("en", "de")) == LanguageChoice("ja", "video")
    assert choose_language("en", ("en", "de"), FRENCH_AUDIO) == LanguageChoice("en", "video")


@pytest.mark.parametrize("video_language", ["", None, "Klingon"])
def test_blank_or_unknown_language_asks_for_detection(video_language):
    assert choose_language(video_language, ()) == LanguageChoice(None, "detected")
    assert choose_language(video_language, ("en", "de")).code is None


def test_detection_picks_the_most_probable_language():
    assert choose_language("", (), FRENCH_AUDIO) == LanguageChoice("fr", "detected", 0.62)
    shuffled = list(reversed(FRENCH_AUDIO))
    assert choose_language("", (), shuffled) == LanguageChoice("fr", "detected", 0.62)


def test_detection_is_restricted_to_the_allowed_languages():
    assert choose_language("", ("en", "de"), FRENCH_AUDIO) == LanguageChoice("en", "detected",
                                                                              0.21)
    assert choose_language("", ("de", "es"), FRENCH_AUDIO) == LanguageChoice("de", "detected",
                                                                              0.09)
    assert choose_language("", ("fr", "en"), FRENCH_AUDIO).code == "fr"
    assert choose_language("xx", ("it", "es"), FRENCH_AUDIO).code == "it"


def test_a_single_allowed_language_needs_no_detection():
    assert choose_language("", ("de",)) == LanguageChoice("de", "setting")
    assert choose_language("Klingon", ("de",), FRENCH_AUDIO) == LanguageChoice("de", "setting")


def test_nothing_detected_falls_back_to_the_first_allowed_language():
    assert choose_language("", ("nl", "en"), []) == LanguageChoice("nl", "detected", 0.0)
    assert choose_language("", ("nl", "en"), [("fr", 0.9)]).code == "nl"
    assert choose_language("", (), []) == LanguageChoice("en", "detected", 0.0)


def test_transcripts_keep_the_language_probability_and_read_old_files():
    transcript = Transcript("fr", [Word(0.5, 0.9, "Bonjour")], "whisper-base-int8@1", 0.93)
    data = json.loads(json.dumps(transcript.to_dict()))
    assert data["language_probability"] == 0.93
    assert Transcript.from_dict(data) == transcript
    old = {"language": "en", "model": "m", "words": [{"start": 0.0, "end": 0.4, "text": "Hi"}]}
    assert Transcript.from_dict(old) == Transcript("en", [Word(0.0, 0.4, "Hi")], "m", None)


# --------------------------------------------------------------------------- the asr stage


class FakeRecognizer:
    """Stands in for Whisper: returns a fixed transcript and remembers what it was asked."""

    def __init__(self, transcript: Transcript) -> None:
        self.transcript = transcript
        self.calls: list[dict] = []

    def transcribe(self, audio, duration, progress=None, language=None, allowed=None):
        self.calls.append({"audio": audio, "language": language})
        return self.transcript


def run_asr(monkeypatch, language: str, transcript: Transcript) -> tuple[Video, FakeRecognizer]:
    video = Video.objects.create(title="Talk", language=language, source="videos/talk.mp4",
                                 has_audio=True, duration=12.0)
    ctx = stages.StageContext(video, progress=lambda fraction: None)
    (ctx.work_dir / "audio.wav").write_bytes(b"")
    fake = FakeRecognizer(transcript)
    monkeypatch.setattr(stages, "get_recognizer", lambda: fake)
    stages.asr(ctx)
    saved = json.loads(Path(ctx.work_dir / "transcript.json").read_text())
    assert saved["language"] == transcript.language
    assert saved["language_probability"] == transcript.language_probability
    video.refresh_from_db()
    return video, fake


WORDS = [Word(0.5, 0.9, "Bonjour"), Word(1.0, 1.4, "tout")]


@pytest.mark.django_db
def test_the_stage_passes_the_videos_language_and_keeps_it(monkeypatch):
    video, fake = run_asr(monkeypatch, "fr-FR", Transcript("fr", WORDS, "m"))
    assert fake.calls[0]["language"] == "fr-FR"
    assert video.language == "fr-FR"
    assert video.notices == []


@pytest.mark.django_db
def test_a_confidently_detected_language_fills_a_blank_one(monkeypatch):
    video, fake = run_asr(monkeypatch, "", Transcript("fr", WORDS, "m", 0.93))
    assert fake.calls[0]["language"] == ""
    assert video.language == "fr"
    assert video.notices == ["Spoken language detected as French (fr, probability 0.93); set "
                             "the video's language if that is wrong."]


@pytest.mark.django_db
def test_an_unsure_detection_leaves_the_language_blank(monkeypatch):
    video, _fake = run_asr(monkeypatch, "", Transcript("fr", WORDS, "m", 0.31))
    assert video.language == ""
    assert "unclear (most likely French, probability 0.31)" in video.notices[0]


@pytest.mark.django_db
def test_the_only_allowed_language_fills_a_blank_one_quietly(monkeypatch):
    video, _fake = run_asr(monkeypatch, "", Transcript("de", WORDS, "m", None))
    assert video.language == "de"
    assert video.notices == []


@pytest.mark.django_db
def test_an_unknown_language_is_kept_and_explained(monkeypatch):
    video, _fake = run_asr(monkeypatch, "Klingon", Transcript("en", WORDS, "m", 0.88))
    assert video.language == "Klingon"
    assert video.notices == ["The video's language 'Klingon' is not one speech recognition "
                             "knows: the speech was recognised as English (en)."]


@pytest.mark.django_db
def test_no_speech_sets_no_language(monkeypatch):
    video, _fake = run_asr(monkeypatch, "", Transcript("en", [], "m", 0.56))
    assert video.language == ""
    assert video.notices == ["No speech was recognised in the audio track."]
