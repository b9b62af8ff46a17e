"""Chapters from topic shifts: TextTiling over real MiniLM embeddings of sentence units."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.encoders import get_text_encoder
from workers.pipeline.chapters import (
    ChapterSettings,
    Unit,
    chapter_titles,
    depth_scores,
    make_chapters,
    phrases,
)

pytestmark = [pytest.mark.models]

TOPICS = {
    "beekeeping": [
        "A honey bee colony lives in a wooden hive with a single queen.",
        "Worker bees collect nectar from flowers and turn it into honey.",
        "The beekeeper wears a veil and uses a smoker to calm the bees.",
        "Frames of wax comb are lifted out to check the brood and the honey.",
        "In late summer the beekeeper harvests the honey and leaves enough for winter.",
        "Healthy bees need a hive that is dry, ventilated and free of mites.",
    ],
    "tides": [
        "Ocean tides rise and fall twice a day along most coastlines.",
        "The pull of the moon's gravity raises a bulge of sea water.",
        "When the sun and moon line up we get the strongest spring tides.",
        "At low tide rock pools appear, full of crabs and sea anemones.",
        "Harbour charts list the times of high water for sailors.",
        "Some bays funnel the tide into a fast wave called a tidal bore.",
    ],
    "chess": [
        "A game of chess starts with sixteen pieces for each player.",
        "The knight moves in the shape of the letter L and can jump over pieces.",
        "Control of the centre of the chess board matters in the opening.",
        "Castling moves the king to safety behind a wall of pawns.",
        "A checkmate ends the game when the king cannot escape capture.",
        "Strong chess players study endgames with only a few pieces left.",
    ],
    "bicycles": [
        "Keep your bicycle chain clean and oiled so that it runs smoothly.",
        "Check the tyre pressure before every ride with a small pump.",
        "The brake pads wear down and must be replaced when they get thin.",
        "Adjust the saddle height so your leg is almost straight at the bottom.",
        "Gears let you pedal at an easy pace on steep hills.",
        "A bicycle helmet should sit level and fit snugly on your head.",
    ],
}
SECONDS = 6.0  # each sentence unit lasts 5.5 s, with 0.5 s pauses
SHORT = ChapterSettings(min_video_seconds=60.0, min_seconds=10.0, window_seconds=20.0,
                        max_per_minute=3.0)


@pytest.fixture(scope="module")
def units() -> list[Unit]:
    texts = [sentence for sentences in TOPICS.values() for sentence in sentences]
    vectors = get_text_encoder().encode(texts)
    return [Unit(n * SECONDS, n * SECONDS + 5.5, text, vector)
            for n, (text, vector) in enumerate(zip(texts, vectors, strict=True))]


def part_starts() -> list[float]:
    return [n * len(TOPICS["tides"]) * SECONDS for n in range(len(TOPICS))]


def test_each_topic_shift_starts_a_chapter(units):
    duration = len(units) * SECONDS
    chapters = make_chapters(units, duration, SHORT)
    assert [c.start for c in chapters] == part_starts()
    assert chapters[-1].end == duration
    assert all(a.end == b.start for a, b in zip(chapters, chapters[1:], strict=False))
    assert all(c.end - c.start >= SHORT.min_seconds for c in chapters)


def test_titles_name_the_topic(units):
    chapters = make_chapters(units, len(units) * SECONDS, SHORT)
    expected = [("bee", "hive", "honey"), ("tide", "sea", "moon"), ("chess", "king", "piece"),
                ("bicycle", "tyre", "brake", "chain")]
    for chapter, words in zip(chapters, expected, strict=True):
        assert any(word in chapter.title.lower() for word in words), chapter.title
        assert len(chapter.title.split()) <= 5 and chapter.title[0].isupper()


def test_the_rate_limits_the_number_of_chapters(units):
    """At most max_per_minute chapters (never fewer than three): the deepest shifts win."""
    duration = len(units) * SECONDS
    slow = ChapterSettings(min_video_seconds=60.0, min_seconds=10.0, window_seconds=20.0,
                           max_per_minute=0.5)
    chapters = make_chapters(units, duration, slow)  # 144 s at 0.5 a minute: the floor, 3
    assert len(chapters) == 3 and chapters[0].start == 0.0
    assert {c.start for c in chapters[1:]} < set(part_starts())


def test_no_chapters_when_shifts_cannot_make_three_long_enough(units):
    """Parts of 36 s cannot give three chapters of 50 s at topic shifts: none is made up."""
    conf = ChapterSettings(min_video_seconds=60.0, min_seconds=50.0, window_seconds=20.0,
                           max_per_minute=3.0)
    assert make_chapters(units, len(units) * SECONDS, conf) == []


def test_short_videos_and_single_topics_get_no_chapters(units):
    assert make_chapters(units, 250.0) == []  # the default: only videos over five minutes
    few = units[:4]
    assert make_chapters(few, 400.0, SHORT) == []


def test_the_order_of_the_units_does_not_matter(units):
    duration = len(units) * SECONDS
    shuffled = [units[i] for i in np.random.default_rng(3).permutation(len(units))]
    assert make_chapters(shuffled, duration, SHORT) == make_chapters(units, duration, SHORT)


def test_depth_scores_rank_the_deepest_valley_first():
    similarity = np.array([0.9, 0.8, 0.3, 0.8, 0.85, 0.7, 0.8, 0.9])
    depth = depth_scores(similarity)
    assert int(np.argmax(depth)) == 2
    assert depth[2] == pytest.approx((0.9 - 0.3) + (0.85 - 0.3))
    assert depth[5] == pytest.approx((0.85 - 0.7) + (0.9 - 0.7))
    assert depth[1] == depth[3] == 0.0


def test_phrases_are_runs_of_content_words():
    found = phrases("Now the knight moves, and the queen's gambit is an opening.")
    assert "knight moves" in found and "queen's gambit" in found and "opening" in found
    assert not any(word in found for word in ("now", "the", "and", "is"))


def test_a_title_prefers_what_is_distinctive_to_its_chapter():
    texts = ["The oven bakes bread. Bread needs a hot oven and yeast. The video is long.",
             "The video shows a garden. Tomatoes grow in the garden with sun. The video ends."]
    first, second = chapter_titles(texts)
    assert "video" not in first.lower() and "video" not in second.lower()
    assert "bread" in first.lower() or "oven" in first.lower()
    assert "garden" in second.lower() or "tomatoes" in second.lower()


def test_titles_picked_by_the_encoder_name_the_topic_without_repeats(units):
    chapters = make_chapters(units, len(units) * SECONDS, SHORT,
                             embed=get_text_encoder().encode)
    expected = [("bee", "hive", "honey"), ("tide", "sea", "moon"), ("chess", "king", "piece"),
                ("bicycle", "tyre", "brake", "chain")]
    for chapter, words in zip(chapters, expected, strict=True):
        title = chapter.title.lower()
        assert any(word in title for word in words), chapter.title
        parts = [part.rstrip("s") for part in title.split(" and ")]
        assert len(set(parts)) == len(parts), chapter.title  # not "Tides and tide"
