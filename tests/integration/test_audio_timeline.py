"""Audio with holes in its timestamps (edited, concatenated video) stays on the video's timeline.

The file's audio track starts late and has no packets at all for seconds at a time while the
picture goes on. Decoded back to back, its samples would put every later word seconds early.
"""

from __future__ import annotations

import re
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

from catalog.models import Video, VideoStatus
from tests import media
from workers.pipeline import asr as asr_module
from workers.pipeline import stages
from workers.pipeline.media import extract_audio

PARTS = [
    ("apples", "The first part is about red apples growing in the orchard."),
    ("boats", "The second part is about blue boats sailing on the lake."),
    ("trees", "The third part is about tall green trees in the forest."),
]
KEYWORDS = {  # words Whisper reliably hears in each part (espeak-ng's "apples" is not one)
    "apples": ("apples", "orchard", "growing"),
    "boats": ("boat", "boats", "lake", "sailing"),
    "trees": ("tree", "trees", "forest"),
}
GAPS = [3.0, 2.0]  # seconds without any audio packet before the 2nd and the 3rd part
AUDIO_DELAY = 1.5  # the first audio packet comes this late
TOLERANCE = 0.3


@pytest.fixture(scope="module")
def gappy(media_tools, tmp_path_factory) -> tuple[Path, list[media.NarrationPart]]:
    root = tmp_path_factory.mktemp("gaps")
    return media.make_video_with_audio_gaps(root / "edited.mp4", PARTS, GAPS,
                                            audio_delay=AUDIO_DELAY)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        frames = wav.readframes(wav.getnframes())
        return np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768, wav.getframerate()


def naive_decoded_seconds(path: Path, tmp: Path) -> float:
    """Decode the audio back to back (what extract_audio used to do) and return its length."""
    out = tmp / "naive.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(path), "-vn", "-ac", "1",
                    "-ar", "16000", "-c:a", "pcm_s16le", str(out)], check=True)
    return media.wav_duration(out)


def test_generated_file_really_has_holes_in_its_audio_timestamps(gappy, tmp_path):
    path, parts = gappy
    holes = media.audio_packet_gaps(path)
    assert len(holes) == 3, holes
    (lead_from, lead_to), *between = holes
    assert lead_from == 0 and lead_to == pytest.approx(AUDIO_DELAY, abs=0.1)
    for (hole_from, hole_to), gap, before, after in zip(between, GAPS, parts[:-1], parts[1:],
                                                        strict=True):
        assert hole_to - hole_from == pytest.approx(gap, abs=0.1)
        assert before.end < hole_from and hole_to < after.start  # in the silence between parts
    duration = media.media_duration(path)
    assert duration == pytest.approx(parts[-1].end + 0.5, abs=0.25)
    # Decoded back to back, the samples end as much before the last word as the holes last.
    naive = naive_decoded_seconds(path, tmp_path)
    assert naive == pytest.approx(parts[-1].end - AUDIO_DELAY - sum(GAPS), abs=0.25)
    assert naive < duration - AUDIO_DELAY - sum(GAPS)


def test_extracted_audio_follows_the_container_timeline(gappy, tmp_path):
    path, parts = gappy
    duration = media.media_duration(path)
    wav = extract_audio(path, tmp_path / "audio.wav")
    samples, rate = read_wav(wav)
    assert len(samples) / rate == pytest.approx(duration, abs=0.1)

    def loudness(start: float, end: float) -> float:
        return float(np.sqrt(np.mean(samples[int(start * rate):int(end * rate)] ** 2)))

    silences = [(0.0, parts[0].start)]
    silences += [(a.end, b.start) for a, b in zip(parts[:-1], parts[1:], strict=True)]
    for start, end in silences:  # before the first packet, and the holes: digital silence
        assert loudness(start + 0.1, end - 0.1) < 1e-3, (start, end)
    for part in parts:  # speech exactly where the container says each part is spoken
        assert loudness(part.start + 0.1, part.end - 0.4) > 0.02, part
        assert loudness(part.start - 0.25, part.start - 0.05) < 1e-3, part


def test_extracted_audio_is_padded_or_cut_to_the_given_duration(gappy, tmp_path):
    path, _parts = gappy
    longer = extract_audio(path, tmp_path / "long.wav", duration=30.0)
    assert media.wav_duration(longer) == pytest.approx(30.0, abs=0.01)
    shorter = extract_audio(path, tmp_path / "short.wav", duration=4.0)
    assert media.wav_duration(shorter) == pytest.approx(4.0, abs=0.01)


def normalised(word: str) -> str:
    return re.sub(r"[^a-z]", "", word.lower())


@pytest.mark.models
@pytest.mark.django_db(transaction=True)  # processing starts when the ingest commits
def test_recognised_words_land_where_the_video_speaks_them(gappy, monkeypatch):
    """Ingest through the real pipeline and Whisper; keep the transcript the asr stage made."""
    path, parts = gappy
    made: list[asr_module.Transcript] = []
    real = stages.get_recognizer

    class Recording:
        def transcribe(self, *args, **kwargs):
            transcript = real().transcribe(*args, **kwargs)
            made.append(transcript)
            return transcript

    monkeypatch.setattr(stages, "get_recognizer", Recording)
    call_command("ingest", path, no_progress=True)
    video = Video.objects.get(original_name=path.name)
    assert video.status == VideoStatus.READY, video.error
    assert video.duration == pytest.approx(parts[-1].end + 0.5, abs=0.25)
    (transcript,) = made
    assert len(transcript.words) >= 20

    def part_of(word: asr_module.Word) -> str | None:
        """Return the part whose span holds the word's middle (Whisper often starts the first
        word of a phrase a little early, so its edges get twice the tolerance)."""
        middle = (word.start + word.end) / 2
        for part in parts:
            if (part.start - TOLERANCE <= middle <= part.end + TOLERANCE
                    and part.start - 2 * TOLERANCE <= word.start
                    and word.end <= part.end + 2 * TOLERANCE):
                return part.key
        return None

    stray = [(w.text, w.start, w.end) for w in transcript.words if part_of(w) is None]
    assert not stray, f"words outside every part's time span {[p.as_dict() for p in parts]}"
    for key, words in KEYWORDS.items():
        found = [w for w in transcript.words if normalised(w.text) in words]
        assert found, (key, [w.text for w in transcript.words])
        assert {part_of(w) for w in found} == {key}, (key, found)
    for segment in video.segments.filter(kind="speech"):
        assert parts[0].start - 2 * TOLERANCE <= segment.start <= segment.end
        assert segment.end <= parts[-1].end + 2 * TOLERANCE
