"""Composed queries (retrieval/compose.py) rank the same on every backend.

Four videos cross two topics (axes 1, 2) with two settings (axes 3, 4); each has a segment
about both, one about its topic and one about its setting. The reference is topic 1 in
setting 3, the modifier asks for setting 4: only topic 1 in setting 4 answers both halves.
"""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.backends.base import SearchBackend
from retrieval.compose import composed_signals, rank_composed
from retrieval.documents import Filters
from retrieval.fusion import FusionSpec

from .corpus import doc, unit

TOPICS = {"pancakes": ("pancake batter in a pan", 1), "guitar": ("guitar chords strummed", 2)}
SETTINGS = {"night": ("a dark night under the moon", 3), "beach": ("warm sand on the beach", 4)}
WEIGHTS = {"like": 1.0, "composed": 1.0, "text": 1.0, "bm25": 0.5}


def _mix(*axes: int) -> np.ndarray:
    vector = sum(unit(axis) for axis in axes)
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def corpus() -> list:
    docs = []
    for topic, (topic_text, t) in TOPICS.items():
        for setting, (setting_text, s) in SETTINGS.items():
            video = f"{topic}-{setting}"
            docs += [doc(f"{video}:ocr:0", video, f"{topic_text} {setting_text}", kind="ocr",
                         vector=_mix(t, s)),
                     doc(f"{video}:speech:0", video, topic_text, vector=unit(t)),
                     doc(f"{video}:speech:1", video, setting_text, vector=unit(s))]
    return docs


REFERENCE = (unit(1) + unit(3) + _mix(1, 3)) / np.linalg.norm(unit(1) + unit(3) + _mix(1, 3))
EXCLUDE = Filters(exclude_video_ids=("pancakes-night",))


def ranked(backend: SearchBackend, weights: dict[str, float]) -> list[tuple[str, float]]:
    hits = composed_signals(backend, REFERENCE.astype(np.float32), "beach", unit(4), EXCLUDE,
                            weights)
    results = rank_composed(hits, FusionSpec(weights=weights), moments=2)
    return [(result.video_id, result.score) for result in results]


def test_a_composed_query_finds_the_topic_of_the_reference_in_the_modified_setting(
        backend: SearchBackend) -> None:
    backend.index(corpus())
    order = [video for video, _ in ranked(backend, WEIGHTS)]
    assert order[0] == "pancakes-beach"
    assert "pancakes-night" not in order  # the reference itself is left out


@pytest.mark.parametrize(("only", "tied"), [
    ({"like": 1.0}, {"pancakes-beach", "guitar-night"}),  # same topic or same setting
    ({"text": 1.0, "bm25": 1.0}, {"pancakes-beach", "guitar-beach"}),  # any beach video
])
def test_either_half_alone_cannot_tell_the_answer_apart(backend: SearchBackend, only: dict,
                                                        tied: set[str]) -> None:
    backend.index(corpus())
    weights = {name: only.get(name, 0.0) for name in WEIGHTS}
    scores = ranked(backend, weights)
    top = {video for video, score in scores if score == pytest.approx(scores[0][1], abs=1e-4)}
    assert top == tied


def test_composed_moments_come_from_the_answers_own_segments(backend: SearchBackend) -> None:
    backend.index(corpus())
    hits = composed_signals(backend, REFERENCE.astype(np.float32), "beach", unit(4), EXCLUDE,
                            WEIGHTS)
    best = rank_composed(hits, FusionSpec(weights=WEIGHTS), moments=2)[0]
    assert best.moments and all(m.video_id == "pancakes-beach" for m in best.moments)
    assert best.moments[0].segment_id == "pancakes-beach:ocr:0"  # topic and setting at once
