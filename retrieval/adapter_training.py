"""Fit a text adapter with InfoNCE on catalog pairs, and score it on a held-out fold.

Pure (numpy and torch, no Django): the caller (`manage.py train_adapter`) collects the pairs
(retrieval/adapter_pairs.py) and encodes them with the frozen text encoder. A pair is an
anchor (editor metadata, on-screen text or a spoken sentence) and a positive (another
segment of the same video). The loss is CoVR's symmetric InfoNCE over a batch: each anchor
is pulled towards its positive and pushed from the other positives, at temperature tau;
other pairs of the same video are left out of the negatives. Videos, not pairs, are split
into folds, so the held-out score is on videos the adapter never saw.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .adapter import Adapter


@dataclass(frozen=True)
class PairSet:
    """Encoded pairs: row i of anchors goes with row i of positives, both of videos[i]."""

    anchors: np.ndarray
    positives: np.ndarray
    videos: np.ndarray  # video id per pair
    anchor_keys: np.ndarray  # what each anchor is (a segment id, or "metadata:<video>")
    positive_keys: np.ndarray  # the segment id of each positive

    def subset(self, mask: np.ndarray) -> PairSet:
        """Return the pairs where mask is True."""
        return PairSet(self.anchors[mask], self.positives[mask], self.videos[mask],
                       self.anchor_keys[mask], self.positive_keys[mask])

    def __len__(self) -> int:
        return len(self.videos)


@dataclass(frozen=True)
class TrainingReport:
    """The fitted adapter and how it compares with the frozen encoder on held-out videos."""

    adapter: Adapter
    frozen_r1: float
    adapted_r1: float
    train_pairs: int
    heldout_pairs: int
    heldout_queries: int
    epochs: int
    seconds: float

    @property
    def beats_frozen(self) -> bool:
        """Return True when the adapter retrieves better than the frozen encoder."""
        return self.adapted_r1 > self.frozen_r1


def split_videos(videos: np.ndarray, holdout: float, seed: int) -> np.ndarray:
    """Return a mask of the pairs whose video falls in the held-out fold."""
    if not 0 < holdout < 1:
        raise ValueError(f"holdout must be between 0 and 1 (got {holdout}).")
    unique = np.unique(videos)
    rng = np.random.default_rng(seed)
    count = max(1, round(len(unique) * holdout))
    held = set(rng.permutation(unique)[:count].tolist())
    return np.array([video in held for video in videos.tolist()], dtype=bool)


def recall_at_1(pairs: PairSet, adapter: Adapter | None = None) -> tuple[float, int]:
    """Return R@1 (0-100) of anchors finding their video among the pairs' positives.

    A video scores its best positive segment; an anchor never matches its own segment.
    Returns the score and the number of distinct anchors asked.
    """
    keys, first = np.unique(pairs.anchor_keys, return_index=True)
    gallery_keys, gallery_first = np.unique(pairs.positive_keys, return_index=True)
    queries, gallery = pairs.anchors[first], pairs.positives[gallery_first]
    if adapter is not None:
        queries, gallery = adapter.apply(queries), adapter.apply(gallery)
    sims = queries @ gallery.T
    sims[keys[:, None] == gallery_keys[None, :]] = -np.inf
    gallery_videos = pairs.videos[gallery_first]
    names, column = np.unique(gallery_videos, return_inverse=True)
    best = np.full((len(keys), len(names)), -np.inf, dtype=np.float32)
    for j in range(len(names)):
        best[:, j] = sims[:, column == j].max(axis=1)
    hits = names[best.argmax(axis=1)] == pairs.videos[first]
    return float(100.0 * hits.mean()) if len(keys) else 0.0, len(keys)


def train_adapter(pairs: PairSet, *, rank: int = 32, temperature: float = 0.05,
                  epochs: int = 30, batch_size: int = 256, learning_rate: float = 2e-3,
                  holdout: float = 0.2, seed: int = 0, patience: int = 5) -> TrainingReport:
    """Fit a rank-r adapter on the training fold; keep the epoch best on the held-out fold."""
    import torch

    if temperature <= 0:
        raise ValueError(f"temperature must be above 0 (got {temperature}).")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: more threads only contend for the cores
    try:
        return _train(pairs, rank, temperature, epochs, batch_size, learning_rate, holdout,
                      seed, patience)
    finally:
        torch.set_num_threads(threads)


def _train(pairs: PairSet, rank: int, temperature: float, epochs: int, batch_size: int,
           learning_rate: float, holdout: float, seed: int, patience: int) -> TrainingReport:
    import torch

    started = time.perf_counter()
    held = split_videos(pairs.videos, holdout, seed)
    train, test = pairs.subset(~held), pairs.subset(held)
    if len(train) < 2 or len(test) < 1:
        raise ValueError(f"{len(pairs)} pairs are too few to train and hold out a fold: the "
                         "catalog needs more videos with speech, on-screen text or metadata.")
    torch.manual_seed(seed)
    dim = pairs.anchors.shape[1]
    down = torch.nn.Parameter(torch.randn(dim, rank) * 0.01)
    up = torch.nn.Parameter(torch.zeros(rank, dim))
    optimizer = torch.optim.AdamW([down, up], lr=learning_rate, weight_decay=1e-4)
    anchors, positives = (torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32))
                          for m in (train.anchors, train.positives))
    _, video_codes = np.unique(train.videos, return_inverse=True)
    codes = torch.from_numpy(video_codes)
    frozen, _ = recall_at_1(test)
    best = (frozen, Adapter.from_factors(np.zeros((dim, rank)), np.zeros((rank, dim))), 0)
    generator = torch.Generator().manual_seed(seed)
    stale = 0
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(train), generator=generator)
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            loss = _info_nce(anchors[batch], positives[batch], codes[batch], down, up,
                             temperature)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        adapter = Adapter.from_factors(down.detach().numpy(), up.detach().numpy())
        score, _ = recall_at_1(test, adapter)
        if score > best[0]:
            best, stale = (score, adapter, epoch), 0
        else:
            stale += 1
            if stale >= patience:
                break
    _, asked = recall_at_1(test)
    return TrainingReport(best[1], frozen, best[0], len(train), len(test), asked, epoch,
                          time.perf_counter() - started)


def _info_nce(anchors, positives, codes, down, up, temperature: float):
    """Return the symmetric InfoNCE loss of a batch, same-video negatives masked out."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    def mapped(x):
        return F.normalize(x + (x @ down) @ up, dim=-1)

    logits = mapped(anchors) @ mapped(positives).T / temperature
    same = codes[:, None] == codes[None, :]
    logits = logits.masked_fill(same & ~torch.eye(len(codes), dtype=torch.bool), float("-inf"))
    target = torch.arange(len(codes))
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
