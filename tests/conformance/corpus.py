"""Hand-written fixture segments shared by every conformance test (8-d text vectors)."""

from __future__ import annotations

import numpy as np

from retrieval.documents import Filters, Hit, SegmentDoc

DIM = 8


def unit(i: int, dim: int = DIM) -> np.ndarray:
    """Return the i-th standard basis vector."""
    vector = np.zeros(dim, dtype=np.float32)
    vector[i] = 1.0
    return vector


def at_cosine(similarity: float, axis: int, dim: int = DIM) -> np.ndarray:
    """Return a unit vector whose cosine with unit(0) is `similarity`, tilted towards axis."""
    return (similarity * unit(0, dim) + np.sqrt(1 - similarity**2) * unit(axis, dim)).astype(
        np.float32)


def doc(
    doc_id: str,
    video_id: str = "v1",
    text: str = "",
    *,
    kind: str = "speech",
    start: float = 0.0,
    end: float = 5.0,
    vector: np.ndarray | None = None,
    visual: np.ndarray | None = None,
    **filters: object,
) -> SegmentDoc:
    """Build a SegmentDoc; keyword filters become the doc's filter values."""
    vectors = {}
    if vector is not None:
        vectors["text"] = np.asarray(vector, dtype=np.float32)
    if visual is not None:
        vectors["visual"] = np.asarray(visual, dtype=np.float32)
    return SegmentDoc(doc_id, video_id, kind, start, end, text, vectors, dict(filters))


def ids(hits: list) -> list[str]:
    """Return the segment ids of hits (or fused segments) in ranked order."""
    return [hit.segment_id for hit in hits]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity computed in float64."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# Docs without the query terms: they make every term's IDF positive on both BM25 flavours.
FILLER = [
    doc("f1", "vf", "rocket engines burn fuel in orbit"),
    doc("f2", "vf", "tomato seedlings need water every morning"),
    doc("f3", "vf", "the spacecraft climbs into orbit around the earth"),
    doc("f4", "vf", "tie the stems to a wooden stake"),
]

# --- hybrid: BM25 and cosine disagree -----------------------------------------------------------
# Six tokens each (so BM25 depends on the term count only); "volcano" counts 4, 3, 2, 1, 0 and
# cosines with unit(0) of -, 0.2, 0.95, 0.9, 1.0.
HYBRID = [
    doc("h1", "va", "volcano volcano volcano lava rock ash", vector=at_cosine(0.2, 1)),
    doc("h2", "vb", "volcano volcano lava rock ash smoke", vector=at_cosine(0.95, 2)),
    doc("h3", "vc", "volcano lava rock ash smoke steam", vector=at_cosine(0.9, 3)),
    doc("h4", "vd", "lava rock ash smoke steam heat", vector=at_cosine(1.0, 4)),
    doc("h5", "ve", "volcano volcano volcano volcano lava rock"),
] + [doc(f"hp{i}", "vp", f"ocean waves crash on sand {i}") for i in range(10)]
HYBRID_BM25 = ["h5", "h1", "h2", "h3"]
HYBRID_KNN = ["h4", "h2", "h3", "h1"]

# --- filters --------------------------------------------------------------------------------
VIDEOS = {
    "v1": {"tags": ["Cooking", "Bread"], "language": "en", "duration": 100.0, "published": True},
    "v2": {"tags": ["space"], "language": "fr", "duration": 600.0, "published": True},
    "v3": {"tags": ["cooking"], "language": "en", "duration": 30.0, "published": False},
    "v4": {"tags": [], "language": "de", "duration": 1200.0, "published": True},
}
# Rank order without filters is the list order: v4 and v3 (excluded by most filters) come first.
RANKED = [("v4", "speech"), ("v3", "speech"), ("v2", "speech"), ("v1", "speech"),
          ("v4", "ocr"), ("v3", "ocr"), ("v2", "ocr"), ("v1", "ocr")]


def filter_corpus() -> list[SegmentDoc]:
    """Eight matching docs whose BM25 and cosine ranks follow RANKED, plus non-matching filler."""
    docs = []
    for i, (video_id, kind) in enumerate(RANKED):
        text = " ".join(["bread"] * (8 - i) + ["filler"] * i)  # equal length, fewer mentions
        angle = 0.15 * i
        vector = np.cos(angle) * unit(0) + np.sin(angle) * unit(1 + i % (DIM - 1))
        docs.append(doc(f"{video_id}-{kind}", video_id, text, kind=kind, vector=vector,
                        **VIDEOS[video_id]))
    docs += [doc(f"pad{i}", "v5", f"rockets orbit the planet {i}", tags=["misc"], language="en",
                 duration=50.0) for i in range(10)]
    return docs


def allowed(filters: Filters) -> list[str]:
    """The matching doc ids that pass filters, best first (a reference implementation)."""
    result = []
    for video_id, kind in RANKED:
        meta = VIDEOS[video_id]
        checks = [
            not filters.tags or bool({t.lower() for t in filters.tags}
                                     & {t.lower() for t in meta["tags"]}),
            not filters.language or meta["language"] == filters.language,
            filters.min_duration is None or meta["duration"] >= filters.min_duration,
            filters.max_duration is None or meta["duration"] <= filters.max_duration,
            filters.published is None or meta["published"] == filters.published,
            not filters.video_ids or video_id in filters.video_ids,
            video_id not in filters.exclude_video_ids,
            not filters.kinds or kind in filters.kinds,
        ]
        if all(checks):
            result.append(f"{video_id}-{kind}")
    return result


FILTER_CASES = {
    "tags any-of, case-insensitive": Filters(tags=("COOKING", "no-such-tag")),
    "tags single": Filters(tags=("bread",)),
    "language": Filters(language="en"),
    "min_duration": Filters(min_duration=60.0),
    "max_duration": Filters(max_duration=200.0),
    "duration range": Filters(min_duration=100.0, max_duration=600.0),
    "published": Filters(published=True),
    "unpublished": Filters(published=False),
    "kinds": Filters(kinds=("ocr",)),
    "video_ids": Filters(video_ids=("v1", "v2")),
    "exclude_video_ids": Filters(exclude_video_ids=("v4", "v3")),
    "combined": Filters(tags=("cooking",), published=True, kinds=("speech",)),
    "kinds and language": Filters(kinds=("ocr",), language="en"),
}


def as_lucene_knn(hits: list[Hit]) -> list[Hit]:
    """Map cosine scores to (1 + cos) / 2, the k-NN units of OpenSearch's hybrid query."""
    return [Hit(hit.segment_id, hit.video_id, (1.0 + hit.score) / 2.0) for hit in hits]
