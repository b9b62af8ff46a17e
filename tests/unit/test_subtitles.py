"""Subtitle cues from word timestamps, written as WebVTT and SubRip and parsed back."""

from __future__ import annotations

import random

import pytest
import srt
import webvtt

from catalog.subtitles import CueRules, make_cues, to_srt, to_webvtt, wrap

RULES = CueRules()
TEXT = ("Lava is molten rock that rises from deep underground. When it reaches the surface "
        "it erupts from a volcano, and the gases inside it escape in huge clouds of ash and "
        "steam. Some volcanoes erupt quietly, with rivers of glowing lava; others explode! "
        "Scientists measure the ground swelling to warn people nearby, sometimes weeks before "
        "an eruption.")


def timed(text: str, seed: int = 0, rate: float = 0.32) -> list[tuple[float, float, str]]:
    """Give each word a plausible time: ~0.3 s a word, short gaps, a long pause now and then."""
    rng = random.Random(seed)
    words, at = [], 0.4
    for word in text.split():
        length = rate * (0.6 + 0.1 * len(word)) * rng.uniform(0.8, 1.2)
        words.append((round(at, 3), round(at + length, 3), word))
        at += length + (rng.choice([0.05, 0.1, 0.15, 1.6]) if word.endswith(",") else 0.06)
    return words


def seconds(stamp: str) -> float:
    hours, minutes, rest = stamp.replace(",", ".").split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)


def check_rules(spans: list[tuple[float, float, list[str]]]) -> None:
    for start, end, lines in spans:
        assert 1 <= len(lines) <= RULES.lines, lines
        assert all(0 < len(line) <= RULES.line_chars for line in lines), lines
        assert 0 < end - start <= RULES.max_seconds + 1e-6, (start, end)
    for (_, end, _), (start, _, _) in zip(spans, spans[1:], strict=False):
        assert end <= start + 1e-6, "cues overlap"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_webvtt_parses_back_within_the_rules_with_every_word(seed):
    words = timed(TEXT, seed)
    parsed = webvtt.from_string(to_webvtt(make_cues(words)))
    spans = [(seconds(c.start), seconds(c.end), c.lines) for c in parsed.captions]
    check_rules(spans)
    assert " ".join(" ".join(lines) for _, _, lines in spans) == TEXT
    assert spans[0][0] == pytest.approx(words[0][0], abs=1e-3)
    # every word is shown while it is spoken
    for start, end, word in words:
        shown = [s for s in spans if s[0] - 1e-3 <= start and end <= s[1] + 1e-3]
        assert any(word in " ".join(s[2]).split() for s in shown), word


def test_srt_has_the_same_cues_numbered_from_one():
    cues = make_cues(timed(TEXT))
    parsed = list(srt.parse(to_srt(cues)))
    assert [s.index for s in parsed] == list(range(1, len(cues) + 1))
    assert [(s.start.total_seconds(), s.end.total_seconds()) for s in parsed] == \
        [(pytest.approx(c.start, abs=1e-3), pytest.approx(c.end, abs=1e-3)) for c in cues]
    assert [s.content.split("\n") for s in parsed] == [list(c.lines) for c in cues]
    check_rules([(s.start.total_seconds(), s.end.total_seconds(), s.content.split("\n"))
                 for s in parsed])


def test_timestamps_are_zero_padded_with_hours():
    words = [(3725.5, 3726.25, "Late."), (3726.4, 3727.0, "Words.")]
    vtt, sub = to_webvtt(make_cues(words)), to_srt(make_cues(words))
    assert "01:02:05.500 --> " in vtt and "01:02:05,500 --> " in sub
    assert vtt.startswith("WEBVTT\n\n")


def test_a_pause_or_a_sentence_end_starts_a_new_cue():
    words = [(0.0, 0.3, "First"), (0.35, 0.7, "thought"), (3.0, 3.3, "after"),
             (3.35, 3.6, "silence.")]
    assert [c.lines for c in make_cues(words)] == [("First thought",), ("after silence.",)]
    sentences = timed("The first sentence ends here. The second one starts afterwards.")
    assert [c.lines[0] for c in make_cues(sentences)] == [
        "The first sentence ends here.", "The second one starts afterwards."]


def test_slow_speech_is_cut_at_seven_seconds():
    words = [(n * 1.5, n * 1.5 + 1.2, f"word{n}") for n in range(12)]
    cues = make_cues(words)
    assert all(c.end - c.start <= 7.0 for c in cues) and len(cues) >= 3
    assert sum(len(" ".join(c.lines).split()) for c in cues) == 12


def test_a_short_cue_stays_up_a_second_unless_the_next_starts():
    cues = make_cues([(1.0, 1.2, "Yes."), (5.0, 5.3, "That"), (5.32, 5.5, "was"),
                      (5.52, 5.6, "rather"), (5.62, 5.8, "quick."), (5.85, 6.1, "And"),
                      (6.12, 6.3, "so"), (6.32, 6.5, "is"), (6.52, 6.8, "this.")])
    assert [c.lines for c in cues] == [("Yes.",), ("That was rather quick.",), ("And so is this.",)]
    assert (cues[0].start, cues[0].end) == (1.0, 2.0)
    assert cues[1].end == cues[2].start == 5.85


def test_markup_is_escaped_in_webvtt_and_long_words_are_cut():
    words = [(0.0, 0.5, "x<y"), (0.6, 1.0, "&"), (1.1, 1.6, "a-->b"),
             (2.0, 3.0, "Pneumonoultramicroscopicsilicovolcanoconiosis-and-more")]
    vtt = to_webvtt(make_cues(words))
    assert "x&lt;y &amp; a--&gt;b" in vtt and "<" not in vtt.replace("-->", "")
    parsed = webvtt.from_string(vtt)
    check_rules([(seconds(c.start), seconds(c.end), c.lines) for c in parsed.captions])


def test_wrap_balances_two_lines_or_refuses():
    sentence = "the quick brown fox jumps over the lazy dog and keeps running far"
    lines = wrap(sentence.split(" "))
    assert len(lines) == 2 and abs(len(lines[0]) - len(lines[1])) <= 8
    assert wrap(["word"] * 30) is None


def test_no_words_no_cues():
    assert make_cues([]) == []
    assert to_webvtt([]) == "WEBVTT\n\n" and to_srt([]) == ""
    assert webvtt.from_string(to_webvtt([])).captions == []
