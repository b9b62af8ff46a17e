"""A window's speech is cut at pauses into streams that speech recognition decodes side by side."""

from __future__ import annotations

import numpy as np
import pytest

from workers.pipeline.asr import CUT_SEARCH_SECONDS, SpeechChunks

RATE = 16_000


def speech(spans: list[tuple[float, float]], quiet: list[tuple[float, float]] = ()):
    """Return SpeechChunks over `spans` (window seconds) of noise, silent where `quiet` says.

    `quiet` spans are in seconds of the concatenated speech, as a pause shorter than the
    detector's two seconds would be.
    """
    chunks = [{"start": round(a * RATE), "end": round(b * RATE)} for a, b in spans]
    length = sum(c["end"] - c["start"] for c in chunks)
    audio = np.random.default_rng(7).uniform(-0.5, 0.5, length).astype(np.float32)
    for a, b in quiet:
        audio[round(a * RATE):round(b * RATE)] *= 0.001
    return SpeechChunks(chunks, audio, RATE)


def window_seconds(runs: list[SpeechChunks]) -> list[list[tuple[float, float]]]:
    return [[(c["start"] / RATE, c["end"] / RATE) for c in run.chunks] for run in runs]


def assert_partition(whole: SpeechChunks, runs: list[SpeechChunks]) -> None:
    """The runs' audio is the whole's, in order, and each run's chunks carry that audio."""
    np.testing.assert_array_equal(np.concatenate([run.audio for run in runs]), whole.audio)
    for run in runs:
        assert sum(c["end"] - c["start"] for c in run.chunks) == len(run.audio)
    starts = [c["start"] for run in runs for c in run.chunks]
    assert starts == sorted(starts)


def test_the_cut_goes_between_two_chunks_the_detector_found_near_the_middle():
    whole = speech([(0.0, 38.0), (41.0, 80.0)])  # a pause at 38-41 s, 1.5 s before the middle
    runs = whole.split(2, 30.0)
    assert window_seconds(runs) == [[(0.0, 38.0)], [(41.0, 80.0)]]
    assert_partition(whole, runs)
    assert (runs[0].start, runs[0].end, runs[1].start, runs[1].end) == (0.0, 38.0, 41.0, 80.0)


def test_without_a_detected_pause_the_cut_goes_in_the_quietest_tenth_of_a_second():
    # One 90 s chunk (the detector reports only pauses of 2 s or more) starting 5 s into
    # the window, with a 0.3 s pause 2 s after the middle of its speech.
    whole = speech([(5.0, 95.0)], quiet=[(47.0, 47.3)])
    first, second = whole.split(2, 30.0)
    assert_partition(whole, [first, second])
    cut = first.chunks[-1]["end"] / RATE
    assert second.chunks[0]["start"] / RATE == cut
    assert 5.0 + 47.0 <= cut <= 5.0 + 47.3  # in the pause, on the window's timeline
    assert first.start == 5.0 and second.end == 95.0


def test_a_pause_further_than_the_search_distance_is_not_used():
    join = 45.0 - CUT_SEARCH_SECONDS - 2.0  # speech seconds before the detected pause
    whole = speech([(0.0, join), (join + 2.5, 92.5)], quiet=[(45.2, 45.5)])
    first, second = whole.split(2, 30.0)
    assert_partition(whole, [first, second])
    cut = second.chunks[0]["start"] / RATE  # window time: 2.5 s of pause after `join`
    assert join + 2.5 + (45.2 - join) <= cut <= join + 2.5 + (45.5 - join)


@pytest.mark.parametrize("seconds,parts,expected", [
    (60.0, 2, 1),   # two halves of 30 s could be cut 5 s short: not split
    (71.0, 2, 2),
    (71.0, 4, 2),   # not enough speech for four parts of 30 s
    (150.0, 4, 4),
    (300.0, 1, 1),
])
def test_every_stream_gets_at_least_the_minimum_of_speech(seconds, parts, expected):
    whole = speech([(0.0, seconds)])
    runs = whole.split(parts, 30.0)
    assert len(runs) == expected
    assert_partition(whole, runs)
    assert all(len(run.audio) >= 30.0 * RATE for run in runs)
    if expected == 1:
        assert runs == [whole]


def test_streams_are_about_equal_when_chunks_are_many():
    spans = [(10.0 * n, 10.0 * n + 7.0) for n in range(30)]  # 210 s of speech, 3 s pauses
    whole = speech(spans)
    runs = whole.split(3, 30.0)
    assert_partition(whole, runs)
    lengths = [len(run.audio) / RATE for run in runs]
    assert len(runs) == 3 and max(lengths) - min(lengths) <= 2 * 7.0, lengths
    # Every cut is a detected pause: no chunk was split.
    assert sorted(c for run in window_seconds(runs) for c in run) == spans
