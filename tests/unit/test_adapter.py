"""The text adapter: its map, its file, the held-out split and score, and InfoNCE training."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.adapter import Adapter, load_adapter
from retrieval.adapter_training import PairSet, recall_at_1, split_videos, train_adapter


def _unit(matrix: np.ndarray) -> np.ndarray:
    return (matrix / np.linalg.norm(matrix, axis=-1, keepdims=True)).astype(np.float32)


def test_a_zero_correction_leaves_unit_vectors_as_they_are():
    vectors = _unit(np.random.default_rng(0).normal(size=(5, 8)))
    adapter = Adapter.from_factors(np.ones((8, 2)), np.zeros((2, 8)))
    assert np.allclose(adapter.apply(vectors), vectors, atol=1e-6)
    assert np.allclose(np.linalg.norm(Adapter.from_factors(
        np.ones((8, 2)), np.ones((2, 8))).apply(vectors), axis=1), 1.0, atol=1e-5)


def test_an_adapter_file_round_trips_with_its_version(tmp_path):
    rng = np.random.default_rng(1)
    adapter = Adapter.from_factors(rng.normal(size=(8, 2)), rng.normal(size=(2, 8)))
    loaded = load_adapter(adapter.save(tmp_path / "a.npz"))
    assert loaded.version == adapter.version and len(adapter.version) == 12
    assert np.array_equal(loaded.down, adapter.down) and np.array_equal(loaded.up, adapter.up)
    other = Adapter.from_factors(rng.normal(size=(8, 2)), rng.normal(size=(2, 8)))
    assert other.version != adapter.version


def test_the_held_out_fold_takes_whole_videos():
    videos = np.array([f"v{i % 10}" for i in range(100)])
    held = split_videos(videos, 0.2, seed=3)
    assert len(set(videos[held])) == 2
    assert not set(videos[held]) & set(videos[~held])
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_videos(videos, 1.0, seed=3)


def test_an_anchor_never_finds_its_own_segment():
    e0, e1, mix = _unit(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.5]]))
    # Video a: s1 (e0) and s2 (e1), each the other's pair; video b: s3, asked by its twin s4.
    pairs = PairSet(anchors=np.stack([e0, e1, mix]), positives=np.stack([e1, e0, mix]),
                    videos=np.array(["a", "a", "b"]), anchor_keys=np.array(["s1", "s2", "s4"]),
                    positive_keys=np.array(["s2", "s1", "s3"]))
    score, asked = recall_at_1(pairs)
    assert asked == 3
    # s1 would find itself (video a); masked, b's s3 is nearer than a's s2: only s4 hits.
    assert score == pytest.approx(100 / 3)


def _rotated_pairs(videos: int = 60, per_video: int = 6, dim: int = 16) -> PairSet:
    """Anchors are their video's direction seen through a fixed mixing: a linear map fixes it."""
    rng = np.random.default_rng(0)
    mixing = np.eye(dim) + rng.normal(scale=0.9, size=(dim, dim))
    centres = _unit(rng.normal(size=(videos, dim)))
    owner = np.repeat(np.arange(videos), per_video)
    positives = _unit(centres[owner] + rng.normal(scale=0.15, size=(len(owner), dim)))
    anchors = _unit((centres[owner] + rng.normal(scale=0.15, size=(len(owner), dim))) @ mixing)
    keys = np.array([f"s{i}" for i in range(len(owner))])
    return PairSet(anchors, positives, np.array([f"v{o}" for o in owner]),
                   np.char.add("a", keys), keys)


def test_info_nce_training_beats_the_frozen_vectors_on_held_out_videos():
    report = train_adapter(_rotated_pairs(videos=40, per_video=5), rank=16, temperature=0.05,
                           epochs=12, batch_size=64, learning_rate=1e-2, holdout=0.25, seed=0)
    assert report.beats_frozen
    assert report.adapted_r1 >= report.frozen_r1 + 10
    assert report.heldout_pairs and report.train_pairs > report.heldout_pairs


def test_too_few_pairs_say_what_is_missing():
    pairs = _rotated_pairs(videos=1, per_video=1)
    with pytest.raises(ValueError, match="too few"):
        train_adapter(pairs)
