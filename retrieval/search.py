"""The query service: encode, ask the backend for each signal, fuse, group, hydrate.

The API, the admin search box, the `search` command and `evaluate` all call `search()`.
Every signal fetches a fixed window (REELSEARCH['SIGNAL_WINDOW']) whatever page is asked
for, so normalized scores and the fused order do not depend on the page size.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings

from catalog.models import Segment, Video

from .backends import SearchBackend, get_backend
from .documents import Filters, Hit
from .encoders import get_text_encoder
from .fusion import FusionSpec, ScoredSegment, VideoResult, fuse, group_by_video
from .moments import Span, distinct_moments, snippet

SIGNALS = ("bm25", "text")
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


def run_signals(request: SearchRequest, backend: SearchBackend,
                timer: Callable[[str], None]) -> dict[str, list[Hit]]:
    """Ask the backend for each requested signal's top window."""
    window = settings.REELSEARCH["SIGNAL_WINDOW"]
    hits: dict[str, list[Hit]] = {}
    if "text" in request.signals:
        vector: np.ndarray = get_text_encoder().encode_query(request.query)
        timer("encode")
        hits["text"] = backend.knn("text", vector, window, request.filters)
        timer("knn")
    if "bm25" in request.signals:
        hits["bm25"] = backend.bm25(request.query, window, request.filters)
        timer("bm25")
    return hits


def search(request: SearchRequest) -> SearchResponse:
    """Answer a query with a page of videos and their moments."""
    timings: dict[str, float] = {}
    clock = [time.perf_counter()]

    def timer(step: str) -> None:
        now = time.perf_counter()
        timings[step] = round((now - clock[0]) * 1000, 2)
        clock[0] = now

    backend = get_backend(request.backend)
    hits = run_signals(request, backend, timer)
    videos = group_by_video(fuse(hits, request.fusion), moments=max(request.moments * 3, 6))
    timer("fuse")
    offset = (request.page - 1) * request.k
    results = hydrate(videos[offset:offset + request.k], request)
    timer("hydrate")
    timings["total"] = round(sum(timings.values()), 2)
    return SearchResponse(request, results, len(videos), timings,
                          {name: len(signal) for name, signal in hits.items()})


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
    return {name: {"raw": s.raw, "normalized": s.normalized, "rank": s.rank}
            for name, s in segment.signals.items()}
