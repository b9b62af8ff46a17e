"""Unit tests for workers.pipeline.segment: word chunking and the metadata segment text."""

from __future__ import annotations

import pytest

from workers.pipeline.asr import Word
from workers.pipeline.segment import Chunk, chunk_words, metadata_text

STEP = 0.5  # a word every half second
LENGTH = 0.4  # each word lasts 0.4 s, so continuous speech has 0.1 s gaps


def speech(count: int, start: float = 0.0, first: int = 0,
           sentence_every: int | None = None) -> list[Word]:
    """Continuous words w<first>..; every `sentence_every`-th word ends a sentence."""
    words = []
    for n in range(count):
        index = first + n
        text = f"w{index}"
        if sentence_every and (n + 1) % sentence_every == 0:
            text += "."
        at = round(start + n * STEP, 6)
        words.append(Word(at, round(at + LENGTH, 6), text))
    return words


def word_indices(chunk: Chunk) -> list[int]:
    """Return the word numbers a chunk holds (from the w<n> texts)."""
    return [int(token.strip(".?!")[1:]) for token in chunk.text.split()]


def check_structure(words: list[Word], chunks: list[Chunk]) -> None:
    """Invariants every chunking must satisfy."""
    by_index = {int(w.text.strip(".?!")[1:]): w for w in words}
    order = [int(w.text.strip(".?!")[1:]) for w in words]
    covered: set[int] = set()
    previous: list[int] = []
    for chunk in chunks:
        held = word_indices(chunk)
        # a contiguous run of the input, in order
        first = order.index(held[0])
        assert order[first:first + len(held)] == held
        # exact boundaries: first word's start, last word's end
        assert chunk.start == by_index[held[0]].start
        assert chunk.end == by_index[held[-1]].end
        assert chunk.text == " ".join(by_index[n].text for n in held)
        # moves forward and says something new
        if previous:
            assert held[0] > previous[0]
            assert held[-1] > previous[-1]
        previous = held
        covered.update(held)
    assert covered == set(order)  # every word is in at least one chunk


def test_empty_input_gives_no_chunks() -> None:
    assert chunk_words([]) == []


def test_a_single_word_is_one_chunk() -> None:
    word = Word(1.25, 1.75, "hello")
    assert chunk_words([word]) == [Chunk(1.25, 1.75, "hello")]


def test_short_speech_is_one_chunk_with_exact_bounds() -> None:
    words = speech(10, start=2.0)
    assert chunk_words(words) == [Chunk(2.0, words[-1].end, " ".join(w.text for w in words))]


@pytest.mark.parametrize("target, overlap", [(15.0, 3.0), (10.0, 2.0), (30.0, 5.0), (5.0, 0.0)])
@pytest.mark.parametrize("sentence_every", [None, 5])
def test_continuous_speech_structure_duration_and_overlap(
    target: float, overlap: float, sentence_every: int | None
) -> None:
    words = speech(400, start=3.0, sentence_every=sentence_every)  # 200 s of speech
    max_len = target * 4 / 3
    chunks = chunk_words(words, target, overlap)
    check_structure(words, chunks)
    assert len(chunks) > 3
    for chunk in chunks:
        assert chunk.end - chunk.start <= max_len + 1e-9
    for chunk in chunks[:-1]:
        assert chunk.end - chunk.start >= target - STEP  # near the target, never much shorter
        if sentence_every and sentence_every * STEP <= max_len - target:
            # a sentence end always falls between target and max_len: the chunk ends there
            assert chunk.text.endswith(".")
            assert chunk.end - chunk.start < target + sentence_every * STEP
    for before, after in zip(chunks, chunks[1:], strict=False):
        shared = before.end - after.start
        if overlap == 0:
            assert shared < 0  # the next chunk starts with the next word
        else:
            assert overlap - STEP < shared <= overlap + 1e-9


def test_long_chunks_without_sentence_ends_stop_at_max_len() -> None:
    words = speech(100)
    chunks = chunk_words(words, target=10.0, overlap=2.0, max_len=12.0)
    check_structure(words, chunks)
    for chunk in chunks[:-1]:
        assert 12.0 - STEP < chunk.end - chunk.start <= 12.0


def test_sentence_end_after_the_target_ends_the_chunk() -> None:
    words = speech(80)
    # w4 ends a sentence before the target; w31 (ends at 15.9 s) is the first one after it
    words[4] = Word(words[4].start, words[4].end, "w4.")
    words[31] = Word(words[31].start, words[31].end, "w31?")
    words[35] = Word(words[35].start, words[35].end, "w35!")
    chunks = chunk_words(words, target=15.0, overlap=3.0)
    check_structure(words, chunks)
    assert word_indices(chunks[0]) == list(range(32))
    assert chunks[0].end == words[31].end


def test_a_pause_longer_than_max_gap_splits_and_is_not_overlapped() -> None:
    before = speech(10)  # 0.0 .. 4.9 s
    after = speech(10, start=before[-1].end + 6.0, first=10)  # 6 s of silence
    words = before + after
    chunks = chunk_words(words, target=15.0, overlap=3.0, max_gap=4.0)
    check_structure(words, chunks)
    assert chunks == [
        Chunk(0.0, before[-1].end, " ".join(w.text for w in before)),
        Chunk(after[0].start, after[-1].end, " ".join(w.text for w in after)),
    ]


def test_a_pause_longer_than_overlap_is_not_overlapped() -> None:
    # a 3.5 s pause (more than the overlap, less than max_gap) right after a chunk's last word
    first = speech(32, sentence_every=32)  # w31 "w31." ends at 15.9 s: the chunk ends there
    second = speech(40, start=first[-1].end + 3.5, first=32)
    words = first + second
    chunks = chunk_words(words, target=15.0, overlap=3.0, max_gap=4.0)
    check_structure(words, chunks)
    assert chunks[0].end == first[-1].end
    assert chunks[1].start == second[0].start  # not 3 s back into the first sentence
    assert all(chunk.start >= second[0].start for chunk in chunks[1:])


def test_a_short_pause_inside_a_chunk_does_not_split_it() -> None:
    first = speech(10)
    second = speech(10, start=first[-1].end + 2.0, first=10)  # 2 s < max_gap
    chunks = chunk_words(first + second, target=15.0, overlap=3.0, max_gap=4.0)
    assert len(chunks) == 1
    assert chunks[0].start == 0.0 and chunks[0].end == second[-1].end


@pytest.mark.parametrize("overlap", [3.0, 5.0])
def test_split_at_a_pause_never_repeats_the_chunk_before_it(overlap: float) -> None:
    # max_gap below the overlap: the pause splits, and the next chunk starts after it
    first = speech(10)
    second = speech(10, start=first[-1].end + 2.0, first=10)
    words = first + second
    chunks = chunk_words(words, target=15.0, overlap=overlap, max_gap=1.0)
    check_structure(words, chunks)
    assert [word_indices(c) for c in chunks] == [list(range(10)), list(range(10, 20))]


def test_a_word_that_cannot_join_never_yields_repeated_chunks() -> None:
    # a very long word after 15 s of speech: it cannot share a chunk with what precedes it
    words = speech(30) + [Word(15.0, 33.0, "w30")] + speech(10, start=33.1, first=31)
    chunks = chunk_words(words, target=15.0, overlap=3.0)
    check_structure(words, chunks)
    assert word_indices(chunks[0]) == list(range(30))
    assert word_indices(chunks[1])[0] == 30


def test_a_word_longer_than_max_len_is_its_own_chunk() -> None:
    words = [Word(0.0, 0.4, "w0"), Word(0.5, 40.0, "w1"), Word(40.1, 40.5, "w2")]
    chunks = chunk_words(words, target=15.0, overlap=3.0)
    check_structure(words, chunks)
    assert [word_indices(c) for c in chunks] == [[0], [1], [2]]


def test_defaults_match_the_documented_target_and_overlap() -> None:
    words = speech(200)
    chunks = chunk_words(words)  # target 15 s, overlap 3 s, max_len 20 s
    check_structure(words, chunks)
    assert all(c.end - c.start <= 20.0 for c in chunks)
    assert all(2.5 < a.end - b.start <= 3.0 for a, b in zip(chunks, chunks[1:], strict=False))


# --- metadata_text -----------------------------------------------------------------------------


def test_metadata_text_joins_title_description_and_tags() -> None:
    text = metadata_text("  Bread basics ", "\nHow to knead.  ", ["baking", " ", "Bread ", ""])
    assert text == "Bread basics\nHow to knead.\nTags: baking, Bread"


def test_metadata_text_skips_empty_parts() -> None:
    assert metadata_text("Title", "", []) == "Title"
    assert metadata_text("", "Only a description", ["  "]) == "Only a description"
    assert metadata_text("", "", ["solo"]) == "Tags: solo"
    assert metadata_text(" ", " ", []) == ""


def test_metadata_text_accepts_non_string_tags() -> None:
    assert metadata_text("T", "", [2024, "x"]) == "T\nTags: 2024, x"
