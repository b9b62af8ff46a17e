"""Default signal weights from settings, per-kind multipliers, and the visual signal's guard."""

from __future__ import annotations

import pytest

from retrieval.documents import Hit
from retrieval.fusion import FusionSpec, ScoredSegment, SignalScore, fuse
from retrieval.search import (
    SIGNALS,
    SearchRequest,
    kind_of,
    kind_weight,
    weigh_kinds,
    with_default_weights,
)


def scored(segment_id: str, score: float) -> ScoredSegment:
    return ScoredSegment(segment_id, segment_id.split(":")[0], score,
                         {"bm25": SignalScore(score, score, 1)})


def test_kind_comes_from_the_segment_id() -> None:
    assert kind_of("3f8b-uuid:visual:4") == "visual"
    assert kind_of("v1:speech:0") == "speech"
    assert kind_of("not-a-catalog-id") == ""


def test_default_weights_come_from_settings_and_requests_override_them(settings) -> None:
    settings.REELSEARCH = {**settings.REELSEARCH,
                           "SIGNAL_WEIGHTS": {"bm25": 0.3, "text": 0.7, "visual": 0.5}}
    assert dict(with_default_weights(FusionSpec()).weights) == {
        "bm25": 0.3, "text": 0.7, "visual": 0.5}
    spec = with_default_weights(FusionSpec(weights={"text": 2.0}))
    assert dict(spec.weights) == {"bm25": 0.3, "text": 2.0, "visual": 0.5}


def test_kind_weights_multiply_fused_scores(settings) -> None:
    settings.REELSEARCH = {**settings.REELSEARCH,
                           "KIND_WEIGHTS": {"speech": 1.0, "visual": 0.5, "metadata": 1.0}}
    segments = [scored("v1:visual:0", 0.9), scored("v2:speech:0", 0.6)]
    weighed = weigh_kinds(segments)
    assert [s.score for s in weighed] == pytest.approx([0.45, 0.6])
    assert weighed[0].signals == segments[0].signals  # explain data is untouched
    assert kind_weight("v1:visual:0") == 0.5 and kind_weight("v1:ocr:0") == 1.0


def test_neutral_kind_weights_change_nothing() -> None:
    segments = fuse({"bm25": [Hit("v1:visual:0", "v1", 3.0), Hit("v2:ocr:1", "v2", 1.0)]})
    assert weigh_kinds(segments, {"visual": 1.0, "ocr": 1.0}) is segments


def test_visual_is_a_signal_but_alone_it_needs_a_configured_model(settings) -> None:
    assert "visual" in SIGNALS
    settings.REELSEARCH = {**settings.REELSEARCH, "VISUAL_MODEL": ""}
    with pytest.raises(ValueError, match="REELSEARCH_VISUAL_MODEL"):
        SearchRequest(query="a dog", signals=("visual",))
    assert SearchRequest(query="a dog", signals=("bm25", "visual")).signals == ("bm25", "visual")
