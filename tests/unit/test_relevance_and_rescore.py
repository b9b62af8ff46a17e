"""Relevance tiers, concept-label hygiene, dual softmax and fusion profiles (no models)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.test import override_settings

from retrieval import profiles, relevance
from retrieval.fusion import FusionSpec
from retrieval.rescore import dual_softmax, sample_bank
from retrieval.text import confident_concepts, display_text, searchable_text

CONCEPTS = "mountain bike, all-terrain bike, off-roader (62%); jellyfish (2%); wall clock (16%)"


def test_only_confident_concepts_are_searchable_and_shown_by_their_everyday_name() -> None:
    assert confident_concepts(CONCEPTS, 0.15) == [("mountain bike", 0.62), ("wall clock", 0.16)]
    assert searchable_text("visual", CONCEPTS, 0.15) == "mountain bike; wall clock"
    assert display_text("visual", CONCEPTS, 0.5) == "mountain bike (62%)"
    assert display_text("visual", "jellyfish (2%)", 0.15) == ""
    assert searchable_text("speech", "jellyfish (2%)", 0.15) == "jellyfish (2%)"


@override_settings(REELSEARCH={"RELEVANCE_TIERS": {"high": 0.5, "medium": 0.3}})
def test_tiers_follow_the_thresholds() -> None:
    assert [relevance.tier(v) for v in (0.7, 0.5, 0.4, 0.3, 0.1, None)] == \
        ["high", "high", "medium", "medium", "low", "low"]
    assert relevance.passes(0.6, None, "high")
    assert not relevance.passes(0.4, None, "high")
    assert relevance.passes(0.4, 0.35, "medium")
    assert not relevance.passes(0.34, 0.35, None)
    with pytest.raises(ValueError, match="unknown tier"):
        relevance.tier_rank("great")


def test_cosine_of_stored_vectors() -> None:
    query = np.array([0.6, 0.8], dtype=np.float32)
    assert relevance.cosine(np.array([0.6, 0.8], dtype=np.float32).tobytes(), query) == \
        pytest.approx(1.0)
    assert relevance.cosine(None, query) is None
    assert relevance.cosine(np.zeros(3, dtype=np.float32).tobytes(), query) is None


def test_dual_softmax_demotes_a_hub_that_every_query_likes() -> None:
    query = np.array([0.70, 0.65])  # candidate 0 is a hub, candidate 1 answers this query
    bank = np.array([[0.70, 0.10], [0.69, 0.05], [0.71, 0.12]])
    rescored = dual_softmax(query, bank, temperature=0.05)
    assert rescored[1] > rescored[0]
    assert np.argmax(query) == 0  # it was the hub before


def test_dual_softmax_with_an_empty_bank_keeps_the_order_and_scale() -> None:
    query = np.array([0.3, 0.5, 0.1])
    assert dual_softmax(query, np.zeros((0, 3))) == pytest.approx(query)
    assert dual_softmax(np.array([]), np.zeros((0, 0))).size == 0
    with pytest.raises(ValueError, match="temperature"):
        dual_softmax(query, np.zeros((0, 3)), temperature=0)


def test_sample_bank_draws_distinct_rows() -> None:
    rows = np.arange(20, dtype=np.float32).reshape(10, 2)
    bank = sample_bank(rows, 4)
    assert bank.shape == (4, 2) and len({tuple(r) for r in bank}) == 4
    assert sample_bank(rows, 50).shape == (10, 2)


def test_profiles_round_trip_and_tuned_file_overrides_settings(tmp_path) -> None:
    profile = profiles.Profile(FusionSpec("arithmetic", "z_score", {"bm25": 0.3},
                                          rescore="dual_softmax"), {"metadata": 0.8})
    assert profiles.Profile.from_settings(profile.as_settings()) == profile
    path = tmp_path / "profiles.json"
    profiles.save_profile("tuned", profile, path, {"queries": 3})
    stored = json.loads(path.read_text())["profiles"]["tuned"]
    assert stored["about"] == {"queries": 3}
    shipped = {"default": {"method": "rrf"}, "tuned": {"method": "harmonic"}}
    with override_settings(REELSEARCH={"FUSION_PROFILES": shipped,
                                       "FUSION_PROFILE_FILE": str(path)}):
        assert profiles.get_profile("tuned") == profile
        assert profiles.get_profile("default").fusion.method == "rrf"
        with pytest.raises(ValueError, match="Unknown fusion profile 'nope'"):
            profiles.get_profile("nope")


def test_dual_softmax_leaves_out_bank_queries_of_the_candidates_own_video() -> None:
    query = np.array([0.6, 0.6])
    bank = np.array([[0.99, 0.1], [0.2, 0.1]])  # row 0 is candidate 0's own sentence
    plain = dual_softmax(query, bank, temperature=0.05)
    excluded = dual_softmax(query, bank, 0.05, exclude=np.array([[True, False],
                                                                 [False, False]]))
    assert plain[0] < plain[1]  # its own sentence made candidate 0 look like a hub
    assert excluded[0] == pytest.approx(excluded[1], rel=0.05)


def test_coverage_gate_keeps_a_full_match_and_shrinks_an_incidental_one() -> None:
    from retrieval.documents import Hit
    from retrieval.fusion import fuse
    from retrieval.rescore import coverage_gate

    bm25 = [Hit("oven", "a", 9.0), Hit("full", "b", 6.0), Hit("none", "c", 3.0)]
    text = [Hit("full", "b", 0.50), Hit("oven", "a", 0.49), Hit("none", "c", 0.1)]
    spec = FusionSpec("arithmetic", "min_max", {"bm25": 1.0, "text": 1.0})
    gate = coverage_gate({"oven": 0.25, "full": 1.0}, exponent=3)
    assert gate == {"oven": 1 / 64, "full": 1.0}
    plain = fuse({"bm25": bm25, "text": text}, spec)
    gated = fuse({"bm25": bm25, "text": text}, spec, {"bm25": gate})
    assert plain[0].segment_id == "oven"  # BM25's 1.0 on one incidental word wins
    assert gated[0].segment_id == "full"
    assert gated[0].signals["bm25"].normalized == pytest.approx(0.5)  # (6-3)/(9-3), full match
    assert gated[1].signals["bm25"].normalized == pytest.approx(1 / 64)
    z_spec = FusionSpec("arithmetic", "z_score")
    z_gated = fuse({"bm25": bm25}, z_spec, {"bm25": {}})  # nothing named: all at the minimum
    assert len({s.score for s in z_gated}) == 1


def test_fusion_options_in_evaluate_specs() -> None:
    from evaluation.evaluation import fusion_key, parse_fusion

    spec = parse_fusion("arithmetic/min_max/bm25=0.3/coverage=3,dual_softmax")
    assert (spec.coverage, spec.rescore, spec.weight("bm25")) == (3.0, "dual_softmax", 0.3)
    assert fusion_key(spec) == "arithmetic/min_max/bm25=0.3/coverage=3,dual_softmax"
    with pytest.raises(ValueError, match="coverage"):
        FusionSpec(coverage=-1)


def test_relevance_ignores_concept_vectors_that_are_not_shown() -> None:
    from retrieval.documents import Hit
    from retrieval.search import best_similarity

    hits = [Hit("v1:visual:0", "v1", 0.7), Hit("v1:speech:0", "v1", 0.2),
            Hit("v2:sentence:3", "v2", 0.5)]
    assert best_similarity(hits) == {"v1": 0.2, "v2": 0.5}
