"""Collect the adapter's training pairs from the catalog and encode them (frozen encoder).

Pairs the catalog already has, per ready video:

- editor metadata (title, description, tags) with each speech chunk and on-screen text,
  when the editor wrote a description or tags (a bare file-like title says little);
- each on-screen text with the speech chunks (what is shown with what is said);
- each spoken sentence with the other sentences and the speech chunks that do not overlap
  it (an inverse cloze task: a sentence should find the rest of its video).

At most ``per_video`` pairs of each kind per video, so long videos do not dominate. Watch
events record no query, so they give no pairs.
"""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np

from catalog.models import Segment, Video, VideoStatus

from .adapter_training import PairSet
from .encoders import get_base_text_encoder

PAIR_KINDS = ("speech", "sentence", "ocr")


def _metadata(video: Video) -> str:
    if not (video.description.strip() or video.tags):
        return ""
    return " ".join([video.title, video.description, *(str(tag) for tag in video.tags)])


def _video_pairs(video: Video, rows: list[tuple[str, str, float, float, str]],
                 per_video: int, rng: random.Random) -> list[tuple[str, str, str, str]]:
    """Return (anchor key, anchor text, positive key, positive text) pairs of one video."""
    chunks = [(sid, text, start, end) for sid, kind, start, end, text in rows
              if kind == "speech"]
    screens = [(sid, text) for sid, kind, _, _, text in rows if kind == "ocr"]
    sentences = [(sid, text, start, end) for sid, kind, start, end, text in rows
                 if kind == "sentence"]
    found: list[list[tuple[str, str, str, str]]] = [[], [], []]
    meta = _metadata(video)
    if meta:
        found[0] = [(f"metadata:{video.pk}", meta, sid, text)
                    for sid, text, *_ in chunks + [(s, t, 0, 0) for s, t in screens]]
    found[1] = [(oid, otext, sid, text) for oid, otext in screens for sid, text, *_ in chunks]
    found[2] = [(uid, utext, sid, text) for uid, utext, ustart, uend in sentences
                for sid, text, start, end in chunks + sentences
                if uend <= start or end <= ustart]
    picked = []
    for kind in found:
        picked += rng.sample(kind, min(per_video, len(kind)))
    return picked


def collect_pairs(max_pairs: int = 10_000, per_video: int = 20,
                  seed: int = 0) -> list[tuple[str, str, str, str, str]]:
    """Return (video id, anchor key, anchor text, positive key, positive text) tuples."""
    rng = random.Random(seed)
    by_video: dict[str, list] = defaultdict(list)
    rows = Segment.objects.filter(video__status=VideoStatus.READY, kind__in=PAIR_KINDS)
    for sid, video_id, kind, start, end, text in rows.values_list(
            "id", "video_id", "kind", "start", "end", "text"):
        if text.strip():
            by_video[str(video_id)].append((sid, kind, start, end, text.strip()))
    videos = Video.objects.in_bulk(list(by_video))
    pairs = [(str(pk), *pair) for pk, video in videos.items()
             for pair in _video_pairs(video, by_video[str(pk)], per_video, rng)]
    rng.shuffle(pairs)
    return pairs[:max_pairs]


def encode_pairs(pairs: list[tuple[str, str, str, str, str]], batch_size: int = 64) -> PairSet:
    """Encode every distinct text of the pairs once with the frozen encoder."""
    encoder = get_base_text_encoder()
    texts = sorted({p[2] for p in pairs} | {p[4] for p in pairs})
    rows = {text: i for i, text in enumerate(texts)}
    matrix = encoder.encode(texts, batch_size=batch_size) if texts else np.zeros((0, 1))
    return PairSet(matrix[[rows[p[2]] for p in pairs]], matrix[[rows[p[4]] for p in pairs]],
                   np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]),
                   np.array([p[3] for p in pairs]))
