"""Speech recognition decodes a long window's speech in streams side by side, words in order."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from evaluation.metrics import word_error_rate
from tests import media
from tests.celery_worker import REPO
from workers.pipeline.asr import SpeechRecognizer

pytestmark = [pytest.mark.models]


@pytest.fixture(scope="module")
def narration() -> str:
    """About 100 s of the demo's narration texts (the speech must outlast two 35 s streams)."""
    data = json.loads((REPO / "demo/media/narration.json").read_text())
    texts = [part["text"] for entry in data.values() for part in entry["parts"]]
    words = " ".join(texts).split()
    return " ".join(words[:260])


@pytest.fixture(scope="module")
def long_wav(media_tools, narration, tmp_path_factory) -> Path:
    return media.speak(narration, tmp_path_factory.mktemp("streams") / "long.wav")


def recognizer(settings, streams: int) -> SpeechRecognizer:
    settings.REELSEARCH = {**settings.REELSEARCH, "ASR_MODEL": settings.ASR_PROFILES["fast"],
                           "ASR_STREAMS": streams, "ASR_THREADS": 1}
    return SpeechRecognizer()


def test_two_streams_decode_in_two_threads_and_keep_every_word_in_place(long_wav, narration,
                                                                        settings):
    duration = media.wav_duration(long_wav)
    assert duration > 75.0  # enough speech for two streams of 30 s
    one = recognizer(settings, 1).transcribe(long_wav, duration, language="en")

    two = recognizer(settings, 2)
    threads: set[str] = set()
    decode = two.model.transcribe

    def recording(*args, **kwargs):
        threads.add(threading.current_thread().name)
        return decode(*args, **kwargs)
    two.model.transcribe = recording
    reported: list[float] = []
    split = two.transcribe(long_wav, duration, language="en", progress=reported.append)

    assert len(threads) == 2 and all(n.startswith("reelsearch-asr") for n in threads), threads
    starts = [word.start for word in split.words]
    assert starts == sorted(starts), "a stream's words came out of order"
    assert split.words[0].start < 2.0 and split.words[-1].end > duration - 5.0
    # As good as one stream, and the same words at the same times (Whisper's 30 s windows
    # fall elsewhere, so a word may be heard differently).
    wer_one = word_error_rate([(narration, " ".join(w.text for w in one.words))])
    wer_two = word_error_rate([(narration, " ".join(w.text for w in split.words))])
    assert wer_two < max(0.2, wer_one + 0.05), (wer_one, wer_two)
    timed = [word for word in one.words
             if any(abs(other.start - word.start) < 0.3 for other in split.words)]
    assert len(timed) >= 0.9 * len(one.words)
    assert abs(len(split.words) - len(one.words)) <= 6
    assert reported == sorted(reported) and reported[-1] > 0.9


def test_an_error_in_one_stream_reaches_the_caller(long_wav, settings):
    two = recognizer(settings, 2)
    calls = []
    decode = two.model.transcribe

    def failing(audio, **kwargs):
        calls.append(len(audio))
        if len(calls) == 2:
            raise RuntimeError("decoder broke")
        return decode(audio, **kwargs)
    two.model.transcribe = failing
    with pytest.raises(RuntimeError, match="decoder broke"):
        two.transcribe(long_wav, media.wav_duration(long_wav), language="en")
    assert len(calls) == 2
