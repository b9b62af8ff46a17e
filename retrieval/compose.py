"""Composed queries: videos like a reference video, changed as a modifier text says (CoVR).

A composed query is a reference video and a modifier ("like this one, but at night").
Four signals answer it, each over the same window as a plain search, the reference always
excluded inside the search by its filters:

- ``like``: k-NN with the reference's vector (the unit mean of its content segments'
  text vectors, as more-like-this uses), over content segments only;
- ``text`` and ``bm25``: the modifier alone, as a plain search asks it;
- ``composed``: k-NN with the weighted sum of the reference's vector and the modifier's
  embedding (vector arithmetic, ``MODIFIER_WEIGHT``). Off by default (weight 0): on
  bench/composed it found the answer first for 10% of the queries alone, and adding it to
  the three others lowered R@1 from 93% to 85%. A mean vector of the reference plus the
  modifier lands between the two topics' clusters rather than on the answer.

The signals are fused per *video* (each video's best segment per signal), not per segment:
a good answer shares its topic with the reference in some segments and says what the
modifier asks in others, so the two halves seldom meet in one segment. The segment-level
fusion of the same signals picks each video's moments. ``COMPOSED_WEIGHTS`` (overridable
with REELSEARCH['COMPOSED_WEIGHTS']) are round numbers, compared on bench/composed (README,
Benchmarks), not fitted to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
from django.conf import settings

from .backends import SearchBackend
from .documents import Filters, Hit
from .fusion import FusionSpec, VideoResult, fuse, group_by_video

CONTENT_KINDS = ("speech", "ocr", "metadata")  # what a reference's vector is made of
MODIFIER_WEIGHT = 1.0
COMPOSED_WEIGHTS = {"like": 1.0, "composed": 0.0, "text": 1.0, "bm25": 0.5}


class NoReference(ValueError):
    """The reference video of a composed query has nothing to compare with."""


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def composed_vector(reference: np.ndarray, modifier: np.ndarray,
                    weight: float = MODIFIER_WEIGHT) -> np.ndarray:
    """Return the unit vector of reference + weight * modifier (both made unit first)."""
    if reference.shape != modifier.shape:
        raise ValueError(f"The reference vector has {reference.shape[-1]} dimensions and the "
                         f"modifier's {modifier.shape[-1]}: re-embed the catalog "
                         "(manage.py backfill_embeddings) so both use one text model.")
    mixed = _unit(np.asarray(reference, dtype=np.float32)) + weight * _unit(
        np.asarray(modifier, dtype=np.float32))
    return _unit(mixed).astype(np.float32)


def best_per_video(hits: list[Hit]) -> list[Hit]:
    """Collapse a signal's hits to one per video (its best), keyed by the video id."""
    best: dict[str, Hit] = {}
    for hit in hits:
        if hit.video_id not in best or hit.score > best[hit.video_id].score:
            best[hit.video_id] = Hit(hit.video_id, hit.video_id, hit.score)
    return sorted(best.values(), key=lambda hit: (-hit.score, hit.video_id))


def composed_weights() -> dict[str, float]:
    """Return the fusion weight of each composed signal (settings override the defaults)."""
    configured = settings.REELSEARCH.get("COMPOSED_WEIGHTS") or {}
    return {**COMPOSED_WEIGHTS, **{name: float(w) for name, w in configured.items()}}


def composed_signals(backend: SearchBackend, reference: np.ndarray, modifier: str,
                     modifier_vector: np.ndarray | None, filters: Filters,
                     weights: Mapping[str, float]) -> dict[str, list[Hit]]:
    """Ask the backend for every composed signal that has a weight above zero."""
    window = int(settings.REELSEARCH["SIGNAL_WINDOW"])
    content = replace(filters, kinds=filters.kinds or CONTENT_KINDS)
    hits: dict[str, list[Hit]] = {}
    if weights.get("like", 0) > 0:
        hits["like"] = backend.knn("text", reference, window, content)
    if modifier_vector is not None and weights.get("composed", 0) > 0:
        mixed = composed_vector(reference, modifier_vector,
                                float(settings.REELSEARCH.get("COMPOSED_MODIFIER_WEIGHT",
                                                              MODIFIER_WEIGHT)))
        hits["composed"] = backend.knn("text", mixed, window, filters)
    if modifier_vector is not None and weights.get("text", 0) > 0:
        hits["text"] = backend.knn("text", modifier_vector, window, filters)
    if weights.get("bm25", 0) > 0:
        hits["bm25"] = backend.bm25(modifier, window, filters)
    return hits


def rank_composed(hits: Mapping[str, list[Hit]], spec: FusionSpec,
                  moments: int) -> list[VideoResult]:
    """Rank videos by fusing each signal's best segment per video; attach their moments."""
    videos = fuse({name: best_per_video(signal) for name, signal in hits.items()}, spec)
    segments = {result.video_id: result.moments
                for result in group_by_video(fuse(hits, spec), moments=moments)}
    return [VideoResult(video.video_id, video.score, segments.get(video.video_id, ()))
            for video in videos]
