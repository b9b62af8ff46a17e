"""The query service: encode, ask the backend for each signal, fuse, group, hydrate.

The API, the admin search box, the `search` command and `evaluate` all call `search()`.
Every signal fetches a fixed window (REELSEARCH['SIGNAL_WINDOW']) whatever page is asked
for, so normalized scores and the fused order do not depend on the page size.

Signals: ``bm25`` and ``text`` (MiniLM) cover every segment kind (speech, on-screen text,
visual concepts, metadata); ``visual`` asks the CLIP-family text tower against keyframe
embeddings and runs only when a visual model is configured. Each signal's fusion weight
defaults to REELSEARCH['SIGNAL_WEIGHTS'] and a request's weights override it. After fusion,
each segment's score is multiplied by REELSEARCH['KIND_WEIGHTS'][its kind] (``weigh_kinds``,
the one place per-kind weights apply); explain shows that multiplier as ``kind_weight``.

Server-side fusion: with ``SearchRequest.server_fusion`` (or, when that is None, the
backend's ``SERVER_FUSION`` setting) a backend that can (OpenSearch with neural-search) runs
and fuses the signals itself over the same window. Requests it cannot serve that way
(explain, z_score, lower bounds, weighted rrf) use ``retrieval/fusion.py`` as always.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
from django.conf import settings

from catalog.models import Segment, Video

from .backends import SearchBackend, get_backend
from .documents import Filters, Hit
from .encoders import get_text_encoder, get_visual_encoder, visual_model_name
from .fusion import FusionSpec, ScoredSegment, VideoResult, fuse, group_by_video
from .moments import Span, distinct_moments, snippet

SIGNALS = ("bm25", "text", "visual")
MAX_K = 100


@dataclass(frozen=True)
class SearchRequest:
    """A query with everything that shapes its answer."""

    query: str
    k: int = 10
    page: int = 1
    fusion: FusionSpec = field(default_factory=FusionSpec)
    filters: Filters = field(default_factory=Filters)
    signals: tuple[str, ...] = SIGNALS
    moments: int = 3
    explain: bool = False
    backend: str = "default"
    server_fusion: bool | None = None  # None: the backend's SERVER_FUSION setting

    def __post_init__(self) -> None:
        if not self.query.strip():
            raise ValueError("The query is empty: pass some words to search for.")
        if not 1 <= self.k <= MAX_K:
            raise ValueError(f"k must be between 1 and {MAX_K} (got {self.k}).")
        if self.page < 1:
            raise ValueError(f"page must be 1 or more (got {self.page}).")
        unknown = set(self.signals) - set(SIGNALS)
        if unknown or not self.signals:
            raise ValueError(f"Unknown signal(s) {sorted(unknown)}: choose from {list(SIGNALS)}.")
        if set(self.signals) == {"visual"} and not visual_model_name():
            raise ValueError("The visual signal needs a CLIP-family model: set "
                             "REELSEARCH_VISUAL_MODEL, or ask for the bm25 or text signal.")


@dataclass(frozen=True)
class Moment:
    """A time span inside a video that answers the query."""

    segment_id: str
    kind: str
    start: float
    end: float
    snippet: str
    score: float
    explain: dict | None = None


@dataclass(frozen=True)
class VideoMatch:
    """One ranked video with its best moments."""

    video: Video
    score: float
    moments: list[Moment]


@dataclass(frozen=True)
class SearchResponse:
    """A page of ranked videos, and how long each step took."""

    request: SearchRequest
    results: list[VideoMatch]
    total: int
    timings_ms: dict[str, float]
    signal_sizes: dict[str, int]


def query_vectors(request: SearchRequest, backend: SearchBackend,
                  timer: Callable[[str], None]) -> dict[str, np.ndarray]:
    """Encode the query for each requested vector signal the backend stores."""
    vectors: dict[str, np.ndarray] = {}
    if "text" in request.signals:
        vectors["text"] = get_text_encoder().encode_query(request.query)
        timer("encode")
    visual = get_visual_encoder() if "visual" in request.signals else None
    if visual is not None and "visual" in backend.vector_fields:
        vectors["visual"] = visual.encode_query(request.query)
        timer("encode_visual")
    return vectors


def run_signals(request: SearchRequest, backend: SearchBackend,
                timer: Callable[[str], None]) -> dict[str, list[Hit]]:
    """Ask the backend for each requested signal's top window."""
    window = settings.REELSEARCH["SIGNAL_WINDOW"]
    hits: dict[str, list[Hit]] = {}
    for name, vector in query_vectors(request, backend, timer).items():
        hits[name] = backend.knn(name, vector, window, request.filters)
        timer("knn" if name == "text" else f"knn_{name}")
    if "bm25" in request.signals:
        hits["bm25"] = backend.bm25(request.query, window, request.filters)
        timer("bm25")
    return hits


def uses_server_fusion(request: SearchRequest, backend: SearchBackend) -> bool:
    """Return True when the backend should fuse this request's signals itself."""
    wanted = request.server_fusion
    if wanted is None:
        wanted = bool(backend.params.get("SERVER_FUSION", False))
    if not wanted or request.explain or not backend.supports_server_fusion:
        return False
    return not backend.server_fusion_problem(request.fusion, request.signals)


def fuse_on_backend(request: SearchRequest, backend: SearchBackend,
                    timer: Callable[[str], None]) -> list[ScoredSegment]:
    """Encode the query and let the backend run and fuse every signal (one window each)."""
    vectors = query_vectors(request, backend, timer)
    text = request.query if "bm25" in request.signals else ""
    fused = backend.hybrid(text, vectors, settings.REELSEARCH["SIGNAL_WINDOW"],
                           request.filters, request.fusion)
    timer("hybrid")
    return fused


def with_default_weights(fusion: FusionSpec) -> FusionSpec:
    """Return the spec with REELSEARCH['SIGNAL_WEIGHTS'] filling the weights it leaves out."""
    defaults = settings.REELSEARCH.get("SIGNAL_WEIGHTS") or {}
    weights = {**{name: float(w) for name, w in defaults.items()}, **fusion.weights}
    return replace(fusion, weights=weights) if weights != dict(fusion.weights) else fusion


def kind_of(segment_id: str) -> str:
    """Return the kind encoded in a segment id ("<video>:<kind>:<n>"), or ""."""
    parts = segment_id.rsplit(":", 2)
    return parts[1] if len(parts) == 3 else ""


def _kind_weights() -> Mapping[str, float]:
    return settings.REELSEARCH.get("KIND_WEIGHTS") or {}


def kind_weight(segment_id: str, weights: Mapping[str, float] | None = None) -> float:
    """Return the multiplier of a segment's kind (REELSEARCH['KIND_WEIGHTS'], default 1.0)."""
    weights = _kind_weights() if weights is None else weights
    return float(weights.get(kind_of(segment_id), 1.0))


def weigh_kinds(scored: list[ScoredSegment],
                weights: Mapping[str, float] | None = None) -> list[ScoredSegment]:
    """Multiply each fused segment score by its kind's weight (1.0 leaves it unchanged)."""
    weights = _kind_weights() if weights is None else weights
    if all(float(w) == 1.0 for w in weights.values()):
        return scored
    return [replace(s, score=s.score * kind_weight(s.segment_id, weights)) for s in scored]


def search(request: SearchRequest) -> SearchResponse:
    """Answer a query with a page of videos and their moments."""
    timings: dict[str, float] = {}
    clock = [time.perf_counter()]

    def timer(step: str) -> None:
        now = time.perf_counter()
        timings[step] = round((now - clock[0]) * 1000, 2)
        clock[0] = now

    request = replace(request, fusion=with_default_weights(request.fusion))
    backend = get_backend(request.backend)
    if uses_server_fusion(request, backend):
        fused = fuse_on_backend(request, backend, timer)
        sizes = {"hybrid": len(fused)}
    else:
        hits = run_signals(request, backend, timer)
        fused = fuse(hits, request.fusion)
        sizes = {name: len(signal) for name, signal in hits.items()}
    videos = group_by_video(weigh_kinds(fused), moments=max(request.moments * 3, 6))
    timer("fuse")
    offset = (request.page - 1) * request.k
    results = hydrate(videos[offset:offset + request.k], request)
    timer("hydrate")
    timings["total"] = round(sum(timings.values()), 2)
    return SearchResponse(request, results, len(videos), timings, sizes)


def hydrate(page: list[VideoResult], request: SearchRequest) -> list[VideoMatch]:
    """Attach catalog rows and segment texts to a page of fused results."""
    videos = {str(v.pk): v for v in Video.objects.filter(pk__in=[r.video_id for r in page])}
    segment_ids = [m.segment_id for result in page for m in result.moments]
    segments = Segment.objects.only("id", "kind", "start", "end", "text").in_bulk(segment_ids)
    matches = []
    for result in page:
        video = videos.get(result.video_id)
        if video is None:
            continue  # deleted since it was indexed
        moments = _moments(result, segments, request)
        matches.append(VideoMatch(video, result.score, moments))
    return matches


def _moments(result: VideoResult, segments: dict[str, Segment],
             request: SearchRequest) -> list[Moment]:
    scored = {m.segment_id: m for m in result.moments if m.segment_id in segments}
    spans = [Span(sid, segments[sid].kind, segments[sid].start, segments[sid].end, m.score)
             for sid, m in scored.items()]
    return [
        Moment(span.segment_id, span.kind, span.start, span.end,
               snippet(segments[span.segment_id].text, request.query), span.score,
               _explain(scored[span.segment_id]) if request.explain else None)
        for span in distinct_moments(spans, request.moments)
    ]


def _explain(segment: ScoredSegment) -> dict:
    explained: dict = {name: {"raw": s.raw, "normalized": s.normalized, "rank": s.rank}
                       for name, s in segment.signals.items()}
    explained["kind_weight"] = kind_weight(segment.segment_id)
    return explained
