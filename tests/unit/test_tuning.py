"""Fusion tuning: re-fusing collected hits, folds, cross-validation, no-answer manifests."""

from __future__ import annotations

import json

from evaluation import evaluation, tuning
from retrieval.documents import Hit
from retrieval.fusion import FusionSpec
from retrieval.profiles import Profile


def labelled(target: str, bm25: list[tuple[str, float]], text: list[tuple[str, float]]):
    def hits(pairs):
        return [Hit(f"{video}:speech:0", video, score) for video, score in pairs]
    return tuning.Labelled(f"query for {target}", (target,),
                           {"bm25": hits(bm25), "text": hits(text)})


# Dense ranks the target first; BM25's top hit is an incidental word match elsewhere.
BAIT = labelled("a", bm25=[("b", 9.0), ("c", 1.0)], text=[("a", 0.62), ("b", 0.35),
                                                            ("c", 0.20)])
# Dense confuses two videos; BM25 tells them apart.
HELP = labelled("d", bm25=[("d", 5.0)], text=[("e", 0.50), ("d", 0.49), ("c", 0.1)])

EQUAL = Profile(FusionSpec("arithmetic", "min_max", {"bm25": 1.0, "text": 1.0}))
LIGHT = Profile(FusionSpec("arithmetic", "min_max", {"bm25": 0.3, "text": 1.0}))
DENSE = Profile(FusionSpec("arithmetic", "min_max", {"bm25": 0.0, "text": 1.0}))


def test_rank_videos_refuses_the_bm25_bait_only_with_a_light_bm25_weight() -> None:
    assert tuning.rank_videos(BAIT, EQUAL)[0][0] == "b"
    assert tuning.rank_videos(BAIT, LIGHT)[0][0] == "a"
    assert tuning.rank_videos(HELP, LIGHT)[0][0] == "d"
    assert tuning.rank_videos(HELP, DENSE)[0][0] == "e"


def test_best_profile_prefers_the_one_that_wins_both_kinds_of_query() -> None:
    best, (r1, _) = tuning.best_profile([BAIT, HELP], [EQUAL, DENSE, LIGHT], n_catalog=5)
    assert best == LIGHT and r1 == 1.0
    assert tuning.first_ranks([BAIT, HELP], DENSE, 5) == [1, 2]


def test_folds_cover_every_query_once() -> None:
    folds = tuning.folds(11, 3)
    assert sorted(i for fold in folds for i in fold) == list(range(11))
    assert {len(f) for f in folds} <= {3, 4}


def test_cross_validation_reports_each_held_out_fold() -> None:
    queries = [BAIT, HELP] * 3
    results = tuning.cross_validate(queries, [EQUAL, LIGHT], EQUAL, 5, k=3,
                                    log=lambda line: None)
    assert len(results) == 3 and sum(r.size for r in results) == 6
    assert all(r.tuned_r1 == 1.0 for r in results)
    assert sum(r.default_r1 * r.size for r in results) / 6 == 0.5  # EQUAL misses every BAIT


def test_the_grid_varies_every_knob() -> None:
    grid = tuning.grid()
    assert {p.fusion.method for p in grid} == {"arithmetic", "rrf"}
    assert {p.fusion.normalization for p in grid} >= {"min_max", "z_score"}
    assert {p.fusion.rescore for p in grid} == {"", "dual_softmax"}
    assert {p.fusion.weight("bm25") for p in grid} >= {0.0, 0.3, 1.0}
    assert {p.kind_weights["metadata"] for p in grid} == {0.8, 1.0}
    assert {p.fusion.coverage for p in grid} == {0.0, 3.0}


def test_no_answer_lines_and_moment_kinds_are_read(tmp_path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in [
        {"clip_id": "a", "file": "a.mp4", "captions": ["x"],
         "moments": [{"query": "when", "start": 1, "end": 2, "kind": "sentence"}]},
        {"no_answer": ["quantum chromodynamics lecture", " ", "knitting socks"]},
    ]))
    manifest = evaluation.load_manifest(path)
    assert manifest.no_answer == ["quantum chromodynamics lecture", "knitting socks"]
    assert not manifest.excluded
    assert manifest.clips[0].moments[0].kind == "sentence"
    assert [q.targets for q in evaluation.no_answer_queries(manifest)] == [(), ()]


def test_tier_metrics_separate_answerable_from_no_answer_queries() -> None:
    answered = [evaluation.Outcome((1,), 1.0, True, target_tier="high", top_tier="high"),
                evaluation.Outcome((3,), 1.0, True, target_tier="medium", top_tier="high")]
    unanswerable = [evaluation.Outcome((), 1.0, False, top_tier="medium"),
                    evaluation.Outcome((), 1.0, False, top_tier="high")]
    tiers = evaluation.tier_metrics(answered, unanswerable)
    assert tiers == {"answerable_target_high": 0.5, "answerable_top_high": 1.0,
                     "no_answer_queries": 2, "no_answer_without_high": 0.5}
