"""Speech recognition holds a bounded window of decoded audio, whatever the file's length.

The old recogniser decoded the whole track into one array: two hours of silence peaked at
1.9 GB in the ASR stage alone (bench/audio_memory.py). Now ffmpeg streams the samples and
at most REELSEARCH["ASR_WINDOW_SECONDS"] of them are held; words keep their place on the
file's timeline across windows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests import media
from tests.celery_worker import REPO
from tests.integration.test_audio_timeline import AUDIO_DELAY, GAPS, PARTS, read_wav
from workers.pipeline.asr import get_recognizer
from workers.pipeline.media import extract_audio
from workers.pipeline.windows import AudioStream, WindowReader

RATE = 16_000

# Transcribe a WAV in this process and print the peak resident memory above what it was
# once the model was loaded (MB).
PEAK_CHILD = """
import json, os, sys
import django
django.setup()
from pathlib import Path
from workers.pipeline.asr import get_recognizer
def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
recognizer = get_recognizer()
loaded = rss_mb()
words = recognizer.transcribe(Path(sys.argv[1]), float(sys.argv[2]), language="en").words
# VmHWM, not ru_maxrss: ru_maxrss keeps the forking parent's (the test run's) size across exec.
peak = next(int(line.split()[1]) / 1024 for line in open("/proc/self/status")
            if line.startswith("VmHWM:"))
print(json.dumps({"above_model_mb": peak - loaded, "words": len(words)}))
"""


def silent_wav(path: Path, seconds: float) -> Path:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"anullsrc=r={RATE}:cl=mono:d={seconds}", "-c:a", "pcm_s16le", str(path)],
                   check=True)
    return path


def test_windows_cover_the_audio_once_in_order_and_never_exceed_their_size(media_tools,
                                                                           tmp_path):
    path = tmp_path / "tone.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"sine=frequency=440:sample_rate={RATE}:duration=95", "-c:a", "pcm_s16le",
                    str(path)], check=True)
    whole, _ = read_wav(path)
    offsets = []
    with AudioStream(path, RATE) as stream:
        reader = WindowReader(stream, 20.0)
        while len((window := reader.window()).samples):
            assert len(window.samples) <= 20 * RATE
            offsets.append(window.offset)
            start = round(window.offset * RATE)
            np.testing.assert_allclose(window.samples, whole[start:start + len(window.samples)],
                                       atol=1e-6)
            if window.last:
                assert window.end == pytest.approx(len(whole) / RATE)
                break
            reader.advance(window.offset + 13.37)  # as the recogniser does: before the end
    assert offsets == pytest.approx([13.37 * n for n in range(len(offsets))], abs=1 / RATE)
    assert len(offsets) == 7  # 95 s in steps of 13.37 s, the last window reaching the end


@pytest.mark.models
def test_peak_memory_of_speech_recognition_does_not_grow_with_the_duration(media_tools,
                                                                           tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "HF_HUB_OFFLINE": "1",
           "REELSEARCH_ASR_WINDOW_SECONDS": "60", "PYTHONPATH": str(REPO)}
    peaks = {}
    for minutes in (3, 12):
        wav = silent_wav(tmp_path / f"silence-{minutes}.wav", minutes * 60)
        proc = subprocess.run([sys.executable, "-c", PEAK_CHILD, str(wav), str(minutes * 60)],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
                              check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        peaks[minutes] = json.loads(proc.stdout.strip().splitlines()[-1])["above_model_mb"]
    # The whole-track decoder needed ~17 MB more per extra minute (+150 MB from 3 to 12 min).
    assert peaks[12] - peaks[3] < 30, peaks
    assert peaks[12] < 250, peaks  # the VAD model's session and one 60 s window


@pytest.mark.models
def test_words_keep_their_times_when_the_audio_is_read_in_short_windows(media_tools, tmp_path,
                                                                        settings):
    source, _ = media.make_video_with_audio_gaps(tmp_path / "edited.mp4", PARTS, GAPS,
                                                 audio_delay=AUDIO_DELAY)
    wav = extract_audio(source, tmp_path / "audio.wav")
    duration = media.wav_duration(wav)
    whole = get_recognizer().transcribe(wav, duration, language="en").words
    settings.REELSEARCH = {**settings.REELSEARCH, "ASR_WINDOW_SECONDS": 8.0}
    windowed = get_recognizer().transcribe(wav, duration, language="en").words
    assert duration > 2 * 8.0 and len(whole) >= 20

    # Whisper may hear a word differently with less context ("ram apples" / "Remaples"),
    # but every word has a counterpart at the same time.
    timed = [word for word in whole
             if any(abs(other.start - word.start) < 0.3 for other in windowed)]
    assert len(timed) >= 0.9 * len(whole), ([(w.text, w.start) for w in whole],
                                            [(w.text, w.start) for w in windowed])
    starts = [word.start for word in windowed]
    assert starts == sorted(starts), "a word was read twice across a window boundary"
    assert len(windowed) <= len(whole) + 4
