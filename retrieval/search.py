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
backend's preference: OpenSearch's ``SERVER_FUSION``, on by default) a backend that can
(OpenSearch with neural-search) runs and fuses the signals itself over the same window, in one
round trip. Requests it cannot serve that way with the same ranking (explain, z_score,
re-scoring, the BM25 coverage gate, relevance tiers and score floors) use
``retrieval/fusion.py`` as always.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
from django.conf import settings
from django.db import router

from catalog.models import Segment, SegmentKind, Video
from catalog.prepared import RowsByKey

from .analysis import fold, stem, stems
from .backends import SearchBackend, get_backend
from .compose import NoReference, composed_signals, composed_weights, rank_composed
from .documents import Filters, Hit
from .encoders import get_text_encoder, get_visual_encoder, visual_model_name
from .facets import BACKEND_FACETS, duration_values, kind_counts, parse_facets, top_values
from .fusion import FusionSpec, ScoredSegment, VideoResult, fuse, group_by_video
from .highlight import highlighted_snippet
from .indexing import concept_floor
from .moments import (
    Localized,
    Span,
    TermPatterns,
    Unit,
    attention_pool,
    distinct_moments,
    localize,
)
from .profiles import DEFAULT as DEFAULT_PROFILE
from .profiles import get_profile
from .recommend import video_vectors
from .relevance import cosine, passes, thresholds, tier, tier_rank
from .rescore import coverage_gate, dual_softmax
from .suggest import current_index
from .text import display_text, query_terms, searchable_text
from .typos import distance, max_edits, tolerant_terms
from .video_cache import VideoCache

SIGNALS = ("bm25", "text", "visual")
MAX_K = 100
SPOKEN = ("speech", "sentence")  # kinds shown to users as "speech" moments
LEXICAL_WEIGHT = 0.1  # weight of query-term overlap in a sentence unit's localisation score
LOCALIZED = "localized"  # key of the localised spoken span among a video's moments


@dataclass(frozen=True)
class SearchRequest:
    """A query with everything that shapes its answer."""

    query: str
    k: int = 10
    page: int = 1
    fusion: FusionSpec | None = None  # None: the named profile's (see profiles.py)
    filters: Filters = field(default_factory=Filters)
    signals: tuple[str, ...] = SIGNALS
    moments: int = 3
    explain: bool = False
    backend: str = "default"
    server_fusion: bool | None = None  # None: the backend's preference (SERVER_FUSION)
    min_score: float | None = None  # drop results whose relevance is lower (0..1)
    min_tier: str | None = None  # drop results below this tier (high, medium, low)
    profile: str = DEFAULT_PROFILE
    kind_weights: Mapping[str, float] | None = None  # None: the profile's or KIND_WEIGHTS
    like: str = ""  # a reference video id: a composed query (see compose.py)
    facets: tuple[str, ...] = ()  # counts over the whole result set (retrieval/facets.py)
    typos: bool = True  # BM25 tolerates typos in terms whose exact form matches little
    spelling: bool = True  # offer a corrected query when no result is a high-tier match

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
        if self.min_tier is not None:
            tier_rank(self.min_tier)
        if self.min_score is not None and not -1.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score must be between -1 and 1 (got {self.min_score}).")
        parse_facets(",".join(self.facets))
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
    relevance: float | None = None
    tier: str = "low"
    box: list[float] | None = None  # a region concept's [x, y, w, h] (fractions of frame)
    highlights: tuple[tuple[int, int], ...] = ()  # [start, end) offsets into snippet
    match: str = "none"  # what highlights mark: "terms", "sentence" or "none"


@dataclass(frozen=True)
class VideoMatch:
    """One ranked video with its best moments."""

    video: Video
    score: float
    moments: list[Moment]
    relevance: float | None = None
    tier: str = "low"


@dataclass(frozen=True)
class SearchResponse:
    """A page of ranked videos, and how long each step took."""

    request: SearchRequest
    results: list[VideoMatch]
    total: int
    timings_ms: dict[str, float]
    signal_sizes: dict[str, int]
    facets: dict[str, list[dict]] | None = None  # only when the request asks for some
    fuzzy: tuple[str, ...] = ()  # query terms BM25 matched with typo tolerance
    did_you_mean: str | None = None  # the query spelt as the catalog spells it
    respelt: str | None = None  # what the dense signals encoded instead of the query


def query_vectors(request: SearchRequest, backend: SearchBackend,
                  timer: Callable[[str], None], text: str | None = None
                  ) -> dict[str, np.ndarray]:
    """Encode the query (or its respelt ``text``) for each vector signal the backend stores."""
    text = text or request.query
    vectors: dict[str, np.ndarray] = {}
    if "text" in request.signals:
        vectors["text"] = get_text_encoder().encode_query(text)
        timer("encode")
    visual = get_visual_encoder() if "visual" in request.signals else None
    if visual is not None and "visual" in backend.vector_fields:
        vectors["visual"] = visual.encode_query(text)
        timer("encode_visual")
    return vectors


def stopwatch(timings: dict[str, float]) -> Callable[[str], None]:
    """Return a timer that stores the milliseconds since its last call under each step."""
    clock = [time.perf_counter()]

    def timer(step: str) -> None:
        now = time.perf_counter()
        timings[step] = round((now - clock[0]) * 1000, 2)
        clock[0] = now

    return timer


ENCODING_THREADS = 4  # queries one process encodes at once beside their lexical work
_encoding_pool: list[ThreadPoolExecutor] = []
_encoding_lock = threading.Lock()


def _encoding_threads() -> ThreadPoolExecutor:
    with _encoding_lock:
        if not _encoding_pool:
            _encoding_pool.append(ThreadPoolExecutor(ENCODING_THREADS,
                                                     thread_name_prefix="reelsearch-encode"))
        return _encoding_pool[0]


os.register_at_fork(after_in_child=_encoding_pool.clear)  # a forked worker starts its own


class PendingVectors:
    """A query's vectors, encoded on a pool thread while the search does its lexical work.

    The encoders (onnxruntime, torch) release the GIL while they run, so the typo check, BM25
    and its coverage gate go on beside the encoding, on another core where there is one.
    ``wait()`` returns the vectors (after the first call at once) and records two steps:
    ``encode`` (what encoding took on its thread, not part of the search's own clock) and
    ``encode_wait`` (how long the search then waited for it). A query whose text vector is
    cached, or one with nothing to overlap (``overlap=False``), is encoded in place.
    """

    def __init__(self, request: SearchRequest, backend: SearchBackend,
                 text: str | None = None, overlap: bool = True) -> None:
        self._vectors: dict[str, np.ndarray] | None = None
        self._future: Future | None = None
        self.timings: dict[str, float] = {}
        text = text or request.query
        if overlap and self._worth_a_thread(request, text):
            self._future = _encoding_threads().submit(self._encode, request, backend, text)
        else:
            self._vectors = self._encode(request, backend, text)

    @staticmethod
    def _worth_a_thread(request: SearchRequest, text: str) -> bool:
        if "visual" in request.signals and visual_model_name():
            return True  # the visual tower's query vectors are not cached
        return "text" in request.signals and text not in get_text_encoder().query_cache

    def _encode(self, request: SearchRequest, backend: SearchBackend,
                text: str) -> dict[str, np.ndarray]:
        return query_vectors(request, backend, stopwatch(self.timings), text)

    def wait(self, timer: Callable[[str], None]) -> dict[str, np.ndarray]:
        """Return the vectors, waiting for the pool thread the first time."""
        if self._vectors is None and self._future is not None:
            self._vectors = self._future.result()
            timer("encode_wait")
        return self._vectors or {}


def typo_terms(request: SearchRequest, backend: SearchBackend) -> tuple[str, ...]:
    """Return the query terms BM25 should match with typo tolerance.

    A term qualifies when it is long enough (retrieval/typos.py) and fewer than
    REELSEARCH['TYPO_MAX_DF'] segments passing the filters hold its exact form.
    """
    if not request.typos:
        return ()
    eligible = tolerant_terms(query_terms(request.query))
    if not eligible:
        return ()
    floor = int(settings.REELSEARCH.get("TYPO_MAX_DF", 2))
    counts = backend.term_counts(eligible, request.filters, cap=floor)
    return tuple(term for term in eligible if counts.get(term, 0) < floor)


def run_signals(request: SearchRequest, backend: SearchBackend, vectors: dict[str, np.ndarray],
                timer: Callable[[str], None], fuzzy: tuple[str, ...] = ()
                ) -> dict[str, list[Hit]]:
    """Ask the backend for each requested signal's top window."""
    return {**dense_signals(request, backend, vectors, timer),
            **lexical_signal(request, backend, timer, fuzzy)}


def dense_signals(request: SearchRequest, backend: SearchBackend,
                  vectors: dict[str, np.ndarray], timer: Callable[[str], None]
                  ) -> dict[str, list[Hit]]:
    """Ask the backend for each vector signal's top window."""
    window = settings.REELSEARCH["SIGNAL_WINDOW"]
    hits: dict[str, list[Hit]] = {}
    for name, vector in vectors.items():
        hits[name] = backend.knn(name, vector, window, request.filters)
        timer("knn" if name == "text" else f"knn_{name}")
    return hits


def lexical_signal(request: SearchRequest, backend: SearchBackend,
                   timer: Callable[[str], None], fuzzy: tuple[str, ...] = ()
                   ) -> dict[str, list[Hit]]:
    """Ask the backend for BM25's top window, when the request asks for that signal."""
    if "bm25" not in request.signals:
        return {}
    hits = backend.bm25(request.query, settings.REELSEARCH["SIGNAL_WINDOW"], request.filters,
                        fuzzy)
    timer("bm25")
    return {"bm25": hits}


def uses_server_fusion(request: SearchRequest, backend: SearchBackend) -> bool:
    """Return True when the backend should fuse this request's signals itself."""
    wanted = request.server_fusion
    if wanted is None:
        wanted = backend.prefers_server_fusion
    if not wanted or request.explain or not backend.supports_server_fusion:
        return False
    if request.min_score is not None or request.min_tier is not None:
        return False  # tiers need each video's best cosine, which only the text signal has
    if request.fusion.rescore or request.fusion.coverage:
        return False  # re-scoring needs the signals' own hits
    return not backend.server_fusion_problem(request.fusion, request.signals)


def fuse_on_backend(request: SearchRequest, backend: SearchBackend,
                    vectors: dict[str, np.ndarray],
                    timer: Callable[[str], None], fuzzy: tuple[str, ...] = ()
                    ) -> list[ScoredSegment]:
    """Let the backend run and fuse every signal (one window each)."""
    text = request.query if "bm25" in request.signals else ""
    fused = backend.hybrid(text, vectors, settings.REELSEARCH["SIGNAL_WINDOW"],
                           request.filters, request.fusion, fuzzy)
    timer("hybrid")
    return fused


def with_default_weights(fusion: FusionSpec) -> FusionSpec:
    """Return the spec with REELSEARCH['SIGNAL_WEIGHTS'] filling the weights it leaves out."""
    defaults = settings.REELSEARCH.get("SIGNAL_WEIGHTS") or {}
    weights = {**{name: float(w) for name, w in defaults.items()}, **fusion.weights}
    return replace(fusion, weights=weights) if weights != dict(fusion.weights) else fusion


def resolve(request: SearchRequest) -> SearchRequest:
    """Fill in the fusion spec and kind weights a request leaves to its profile or settings."""
    kinds = dict(_kind_weights())
    fusion = request.fusion
    if fusion is None:
        profile = get_profile(request.profile)
        fusion, kinds = profile.fusion, {**kinds, **profile.kind_weights}
    if request.kind_weights is not None:
        kinds = {**kinds, **request.kind_weights}
    return replace(request, fusion=with_default_weights(fusion), kind_weights=kinds)


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
    return [s._replace(score=s.score * kind_weight(s.segment_id, weights)) for s in scored]


def search(request: SearchRequest) -> SearchResponse:
    """Answer a query with a page of videos and their moments."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    timer = stopwatch(timings)
    request = resolve(request)
    backend = get_backend(request.backend)
    # the query is encoded on another thread while the typo check and BM25 run
    pending = PendingVectors(request, backend, overlap=not request.like)
    rare = typo_terms(request, backend) if not request.like else ()
    timer("typos")
    fuzzy = rare if "bm25" in request.signals else ()
    respelt = None
    if request.like:
        videos, sizes, relevance, ranked = composed_videos(request, backend,
                                                           pending.wait(timer), timer)
    else:
        videos, sizes, relevance, ranked = plain_videos(request, backend, pending, timer, fuzzy)
        if rare and "text" in request.signals and not confident(relevance):
            # the words as typed found nothing sure: the dense signals try them respelt
            respelt = respell(request.query, rare)
            if respelt:
                timings.update(pending.timings)
                pending = PendingVectors(request, backend, respelt, overlap=False)
                videos, sizes, relevance, ranked = plain_videos(request, backend, pending,
                                                                timer, fuzzy)
    vectors = pending.wait(timer)
    timings.update(pending.timings)
    if relevance and (request.min_score is not None or request.min_tier is not None):
        videos = [v for v in videos
                  if passes(relevance.get(v.video_id), request.min_score, request.min_tier)]
    timer("fuse")
    facets = None
    if request.facets:
        facets = facet_summary(backend, videos, ranked, request.facets)
        timer("facets")
    offset = (request.page - 1) * request.k
    results = hydrate(videos[offset:offset + request.k], request, vectors.get("text"),
                      relevance, near=[(stem(t), max_edits(t)) for t in fuzzy])
    timer("hydrate")
    correction = None
    if request.spelling and request.page == 1 and not any(r.tier == "high" for r in results):
        correction = did_you_mean(request.query, backend)
        timer("spelling")
    # the wall clock: the encoding's own time overlaps the steps on the search's thread
    timings["total"] = round((time.perf_counter() - started) * 1000, 2)
    return SearchResponse(request, results, len(videos), timings, sizes, facets, fuzzy,
                          correction, respelt)


# videos ranked, each signal's size, each video's best cosine, the segments ranked
Ranked = tuple[list[VideoResult], dict[str, int], dict[str, float], list[ScoredSegment]]


def plain_videos(request: SearchRequest, backend: SearchBackend, pending: PendingVectors,
                 timer: Callable[[str], None], fuzzy: tuple[str, ...] = ()) -> Ranked:
    """Rank videos for a text query (fuzzy: its terms BM25 also matches within typos).

    BM25 and its coverage gate run first, while ``pending`` encodes the query.
    """
    relevance: dict[str, float] = {}
    if uses_server_fusion(request, backend):
        fused = fuse_on_backend(request, backend, pending.wait(timer), timer, fuzzy)
        sizes = {"hybrid": len(fused)}
    else:
        lexical = lexical_signal(request, backend, timer, fuzzy)
        gates = {}
        if request.fusion.coverage > 0 and lexical.get("bm25"):
            gates["bm25"] = coverage_gate(bm25_coverage(lexical["bm25"], request.query, fuzzy),
                                          request.fusion.coverage)
            timer("coverage")
        hits = {**dense_signals(request, backend, pending.wait(timer), timer), **lexical}
        relevance = best_similarity(hits.get("text", []))
        if request.fusion.rescore == "dual_softmax" and hits.get("text"):
            hits["text"] = dual_softmax_hits(hits["text"])
            timer("rescore")
        fused = fuse(hits, request.fusion, gates)
        sizes = {name: len(signal) for name, signal in hits.items()}
    weighted = weigh_kinds(fused, request.kind_weights)
    # fuse()'s order stands unless kind weights changed scores (or the backend fused)
    ordered = weighted is fused and "hybrid" not in sizes
    videos = group_by_video(weighted, moments=max(request.moments * 3, 6), ordered=ordered)
    return videos, sizes, relevance, fused


def reference_vector(video_id: str) -> np.ndarray:
    """Return a composed query's reference vector, or raise NoReference saying why not."""
    vector = video_vectors([video_id]).get(video_id)
    if vector is None:
        raise NoReference(f"The video {video_id} has no indexed speech, on-screen text or "
                          "metadata to compare with: wait until it is processed, or pick "
                          "another video for like.")
    return vector


def composed_videos(request: SearchRequest, backend: SearchBackend,
                    vectors: dict[str, np.ndarray], timer: Callable[[str], None]) -> Ranked:
    """Rank videos like request.like, changed as the query says (the reference excluded)."""
    reference = reference_vector(request.like)
    filters = replace(request.filters, exclude_video_ids=(
        *request.filters.exclude_video_ids, request.like))
    weights = composed_weights()
    if "bm25" not in request.signals:
        weights["bm25"] = 0.0
    hits = composed_signals(backend, reference, request.query, vectors.get("text"), filters,
                            weights)
    timer("signals")
    spec = replace(request.fusion, weights=weights, coverage=0.0, rescore="")
    videos = rank_composed(hits, spec, moments=max(request.moments * 3, 6))
    sizes = {name: len(signal) for name, signal in hits.items()}
    return (videos, sizes, best_similarity(hits.get("text", [])),
            [moment for video in videos for moment in video.moments])


def confident(relevance: Mapping[str, float]) -> bool:
    """Return True when some video's best cosine reaches the high relevance tier."""
    return max(relevance.values(), default=-1.0) >= thresholds()["high"]


@functools.cache
def encoder_words() -> frozenset[str]:
    """Return the whole words the text model's tokenizer knows (real words, never respelt).

    A query word the catalog does not hold may still be good English ("noodles" for a
    clip that says "pasta"): one the tokenizer has as a single token is left as typed.
    """
    tokenizer = getattr(get_text_encoder(), "tokenizer", None)
    vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
    return frozenset(w for w in vocab if w.isalpha() and w.islower() and len(w) >= 4)


def respell(query: str, rare: tuple[str, ...]) -> str | None:
    """Return the query with its rare terms spelt as the catalog's nearest frequent words.

    What the dense signals encode when a term matches little: a misspelt word moves an
    embedding far more than it moves BM25. A rare but real word stays as it is (it is its
    own nearest word). None when nothing changes.
    """
    index = current_index()
    known = encoder_words()
    wanted = {fold(term) for term in rare} - known
    respelt = index.correct(query, lambda words: {w for w in words if w in wanted})
    return respelt if respelt and respelt != query else None


def did_you_mean(query: str, backend: SearchBackend) -> str | None:
    """Return the query with words no published video holds respelt, or None.

    The index (not the sampled vocabulary) says which words are unknown. Never waits for
    the vocabulary: until it is built (in the background) there is no correction.
    """
    index = current_index(block=False)
    if index is None:
        return None

    def unknown(words: list[str]) -> set[str]:
        counts = backend.term_counts(words, Filters(published=True), cap=1)
        return {word for word in words if counts.get(word, 0) == 0}

    return index.correct(query, unknown)


def facet_summary(backend: SearchBackend, videos: list[VideoResult],
                  fused: list[ScoredSegment], names: tuple[str, ...]) -> dict[str, list[dict]]:
    """Count the result set's videos per value of each facet asked for."""
    ids = [v.video_id for v in videos]
    counts = backend.facet_counts(ids, [name for name in names if name in BACKEND_FACETS])
    if "kind" in names:
        counts["kind"] = kind_counts(((s.video_id, kind_of(s.segment_id)) for s in fused),
                                     set(ids))
    return {name: duration_values(counts.get(name, {})) if name == "duration"
            else top_values(counts.get(name, {})) for name in names}


BANK_SIZE, BANK_SECONDS = 512, 300.0
_bank: dict[str, tuple[float, np.ndarray, np.ndarray]] = {}


def query_bank() -> tuple[np.ndarray, np.ndarray]:
    """Return synthetic queries for dual softmax and their videos: sampled catalog segments.

    Spoken sentences and on-screen text read like queries. Refreshed every BANK_SECONDS.
    """
    cached = _bank.get("text")
    if cached and time.monotonic() - cached[0] < BANK_SECONDS:
        return cached[1], cached[2]
    rows = list(Segment.objects.filter(kind__in=[SegmentKind.SENTENCE, SegmentKind.OCR])
                .exclude(text_vector=None).order_by("?")
                .values_list("text_vector", "video_id")[:BANK_SIZE])
    vectors = [np.frombuffer(bytes(v), dtype=np.float32) for v, _ in rows]
    bank = np.stack(vectors) if vectors else np.zeros((0, 0), dtype=np.float32)
    videos = np.array([str(video) for _, video in rows])
    _bank["text"] = (time.monotonic(), bank, videos)
    return bank, videos


def dual_softmax_hits(hits: list[Hit], temperature: float = 0.05) -> list[Hit]:
    """Re-score the text signal's hits with CAMoE's dual softmax against the query bank."""
    bank, bank_videos = query_bank()
    rows = Segment.objects.only("id", "text_vector").in_bulk([h.segment_id for h in hits])
    kept = [h for h in hits if h.segment_id in rows and rows[h.segment_id].text_vector]
    if not kept or bank.size == 0:
        return hits
    matrix = np.stack([np.frombuffer(bytes(rows[h.segment_id].text_vector), dtype=np.float32)
                       for h in kept])
    if matrix.shape[1] != bank.shape[1]:
        return hits
    own = bank_videos[:, None] == np.array([h.video_id for h in kept])[None, :]
    scores = dual_softmax(np.array([h.score for h in kept]), bank @ matrix.T, temperature, own)
    rescored = [Hit(h.segment_id, h.video_id, float(v)) for h, v in zip(kept, scores,
                                                                        strict=True)]
    return sorted(rescored, key=lambda h: -h.score)


def bm25_coverage(hits: list[Hit], query: str, fuzzy: tuple[str, ...] = ()
                  ) -> dict[str, float]:
    """Return the share of the query's terms (crudely stemmed) each BM25 hit's text holds.

    A typo-tolerant term (``fuzzy``) counts as held by a text with a word near it.
    """
    terms = query_terms(query)
    patterns = TermPatterns([t for t in terms if t not in fuzzy])
    near = [(stem(t), max_edits(t)) for t in terms if t in fuzzy]
    # The backend's indexed text when it came with the hit (it is searchable_text already)
    texts = {hit.segment_id: hit.text for hit in hits if hit.text is not None}
    missing = [hit.segment_id for hit in hits if hit.text is None]
    if missing:
        floor = concept_floor()
        texts.update((sid, searchable_text(kind, text, floor)) for sid, kind, text in
                     Segment.objects.filter(pk__in=missing).values_list("id", "kind", "text"))
    if not near:
        return dict(zip(texts, patterns.overlaps(texts.values()), strict=True))
    return {sid: typo_overlap(text, patterns, near, len(terms)) for sid, text in texts.items()}


def typo_overlap(text: str, patterns: TermPatterns, near: list[tuple[str, int]],
                 total: int) -> float:
    """Return the share of total query terms a text holds, exactly or (near) within edits."""
    held = patterns.held(text) + len(near_words(text, near))
    return held / total if total else 0.0


def near_words(text: str, near: list[tuple[str, int]]) -> list[str]:
    """Return the typo-tolerant stems that some word of text is near."""
    words = stems(query_terms(text))
    return [s for s, edits in near if any(distance(w, s, edits) <= edits for w in words)]


def best_similarity(text_hits: list[Hit]) -> dict[str, float]:
    """Return each video's best cosine similarity in the text signal's window.

    Visual (concept) segments are left out: their vector mixes every pooled class, weak ones
    included, so a query naming a class nobody is sure of would look relevant. A confident
    concept moment still counts once it is shown (see hydrate).
    """
    best: dict[str, float] = {}
    for hit in text_hits:
        if kind_of(hit.segment_id) == "visual":
            continue
        if hit.score > best.get(hit.video_id, -2.0):
            best[hit.video_id] = hit.score
    return best


def hydrate(page: list[VideoResult], request: SearchRequest, query: np.ndarray | None = None,
            relevance: Mapping[str, float] | None = None,
            near: list[tuple[str, int]] | None = None) -> list[VideoMatch]:
    """Attach catalog rows, segment texts, localised moments and relevance to a page.

    Snippets highlight the query terms' stems and words near the ``near`` (stem, edits).
    """
    relevance = relevance or {}
    wanted = (stems(query_terms(request.query)), tuple(near or ()))
    videos = match_videos([r.video_id for r in page])
    segments = {row[0]: _Row(*row) for row in
                _SEGMENT_ROWS.rows(m.segment_id for result in page for m in result.moments)}
    units = sentence_units({vid: videos[vid].updated_at for vid in
                            dict.fromkeys(r.video_id for r in page) if vid in videos}
                           ) if query is not None else {}
    patterns = TermPatterns(query_terms(request.query))
    matches = []
    for result in page:
        video = videos.get(result.video_id)
        if video is None:
            continue  # deleted since it was indexed
        found = localized_moment(units.get(result.video_id, _Units()), patterns, query)
        moments = _moments(result, segments, request, query, found, wanted)
        best = max([relevance.get(result.video_id, -1.0), *(m.relevance or -1.0
                                                            for m in moments)])
        score = None if best <= -1.0 else round(best, 6)
        if relevance or passes(score, request.min_score, request.min_tier):
            matches.append(VideoMatch(video, result.score, moments, score, tier(score)))
    return matches


class _Unit(NamedTuple):
    segment_id: str
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class _Units:
    """A video's sentence units in time order, and their vectors as one matrix."""

    units: tuple[_Unit, ...] = ()
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))


class _Row(NamedTuple):
    """The columns of a moment's segment that hydration reads."""

    id: str
    kind: str
    start: float
    end: float
    text: str
    text_vector: bytes | None
    box: list[float] | None


# Video columns a search result shows (serialize.py, the admin, the search command); the
# rest load on first use.
MATCH_FIELDS = ("id", "title", "duration", "tags", "language", "source", "published",
                "status", "updated_at")
# Model.from_db() takes the loaded values in the order of the model's fields.
_VIDEO_FIELDS = tuple(f.attname for f in Video._meta.concrete_fields if f.attname in MATCH_FIELDS)
_VIDEO_ROWS = RowsByKey(Video, _VIDEO_FIELDS)
_SEGMENT_ROWS = RowsByKey(Segment, _Row._fields)


def match_videos(video_ids: list[str]) -> dict[str, Video]:
    """Return the videos of a page by id, with the columns a result shows loaded."""
    database = router.db_for_read(Video)
    return {str(video.pk): video for video in
            (Video.from_db(database, _VIDEO_FIELDS, row) for row in _VIDEO_ROWS.rows(video_ids))}
_units: VideoCache[_Units] = VideoCache(256)


def sentence_units(videos: Mapping[str, object]) -> dict[str, _Units]:
    """Return the sentence units (with vectors) of each video, in time order.

    ``videos`` maps a video id to its ``updated_at``; units stay in memory while it holds.
    """
    return _units.get_many(videos, _read_units, _Units())


_UNIT_ROWS = RowsByKey(Segment, ("id", "video_id", "start", "end", "text", "text_vector"),
                       key="video_id", order_by=("start",),
                       where={"kind": SegmentKind.SENTENCE, "text_vector__isnull": False})


def _read_units(video_ids: list[str]) -> dict[str, _Units]:
    found: dict[str, tuple[list[_Unit], list[np.ndarray]]] = {}
    for sid, vid, start, end, text, vector in _UNIT_ROWS.rows(video_ids):
        units, vectors = found.setdefault(str(vid), ([], []))
        units.append(_Unit(sid, start, end, text))
        vectors.append(np.frombuffer(bytes(vector), dtype=np.float32))
    return {vid: _Units(tuple(units), np.stack(vectors))
            for vid, (units, vectors) in found.items()}


def localized_moment(units: _Units, patterns: TermPatterns, query: np.ndarray | None
                     ) -> tuple[Localized, str, str] | None:
    """Return the span of spoken sentences that answers the query, its text and its best unit's.

    ``patterns`` are the query's terms (TermPatterns), which lift a unit holding them.
    """
    if not units.units or query is None or units.vectors.shape[1:] != query.shape:
        return None
    sims = (units.vectors @ query).tolist()
    shares = patterns.overlaps(u.text for u in units.units)
    scored = [Unit(u.segment_id, u.start, u.end, sim + LEXICAL_WEIGHT * share)
              for u, sim, share in zip(units.units, sims, shares, strict=True)]
    found = localize(scored)
    if found is None:
        return None
    inside = [(u, sim) for u, sim in zip(units.units, sims, strict=True)
              if found.start <= u.start and u.end <= found.end]
    pooled = attention_pool(np.array([sim for _, sim in inside]))
    words = " ".join(u.text for u, _ in inside)
    best = next((u.text for u, _ in inside if u.segment_id == found.segment_id), "")
    return Localized(found.segment_id, found.start, found.end, pooled), words, best


def _moments(result: VideoResult, segments: dict[str, _Row], request: SearchRequest,
             query: np.ndarray | None, found: tuple[Localized, str, str] | None,
             wanted: tuple[set[str], tuple]) -> list[Moment]:
    floor = concept_floor()
    texts: dict[str, tuple[str, str, float | None]] = {}  # id -> (kind, text, relevance)
    spans = []
    for m in result.moments:
        row = segments.get(m.segment_id)
        if row is None:
            continue
        shown = display_text(row.kind, row.text, floor)
        if not shown:
            continue  # concepts nobody is sure of are not a moment
        kind = "speech" if row.kind in SPOKEN else row.kind
        texts[row.id] = (kind, shown, cosine(row.text_vector, query), row.id, None)
        spans.append(Span(row.id, kind, row.start, row.end, m.score))
    explained = {m.segment_id: m for m in result.moments}
    spoken = [span for span in spans if span.kind == "speech"]
    spans = _place_localized(spans, found)
    if found is not None:
        texts[LOCALIZED] = ("speech", found[1], found[0].score, found[0].segment_id, found[2])
        if spoken:  # its explain is that of the spoken segment whose rank it took
            explained[LOCALIZED] = explained[max(spoken, key=lambda s: s.score).segment_id]
    if any(span.kind != "metadata" for span in spans):
        spans = [span for span in spans if span.kind != "metadata"]
    boxes = {sid: row.box for sid, row in segments.items() if row.box}
    return [_moment(span, texts, explained, request, wanted, boxes) for span in
            distinct_moments(spans, request.moments)]


def _place_localized(spans: list[Span], found: tuple[Localized, str, str] | None
                     ) -> list[Span]:
    """Put the localised spoken span where the best spoken segment ranked."""
    if found is None:
        return spans
    spoken = [span.score for span in spans if span.kind == "speech"]
    if not spoken and found[0].score < thresholds()["medium"]:
        return spans  # found by other kinds; the speech does not answer it
    score = max(spoken) if spoken else min([s.score for s in spans] or [0.0]) * 0.999
    at = found[0]
    return [Span(LOCALIZED, "speech", at.start, at.end, score),
            *(span for span in spans if span.kind != "speech")] + \
        [span for span in spans if span.kind == "speech"]


def _moment(span: Span, texts: dict, explained: dict, request: SearchRequest,
            wanted: tuple[set[str], tuple], boxes: Mapping[str, list[float]]) -> Moment:
    kind, text, relevance, segment_id, sentence = texts[span.segment_id]
    explain = None
    if request.explain and span.segment_id in explained:
        explain = _explain(explained[span.segment_id])
    rel = None if relevance is None else round(relevance, 6)
    shown = highlighted_snippet(text, wanted[0], sentence, near=wanted[1])
    return Moment(segment_id, kind, span.start, span.end, shown.text, span.score, explain, rel,
                  tier(rel), box=boxes.get(segment_id), highlights=shown.highlights,
                  match=shown.match)


def _explain(segment: ScoredSegment) -> dict:
    explained: dict = {name: {"raw": s.raw, "normalized": s.normalized, "rank": s.rank}
                       for name, s in segment.signals.items()}
    explained["kind_weight"] = kind_weight(segment.segment_id)
    return explained
