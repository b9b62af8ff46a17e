"""Recommendations: more-like-this for a video, and a diversified list for a user.

Candidates come from the search backend (k-NN over segment text vectors and BM25, with the
source video or the watched videos excluded inside the search by Filters), are fused by
`retrieval.fusion` and grouped to videos. For a user, the k-NN vector is a profile: the mean
of the watched videos' vectors weighted by recency (half-life) and completion; a query adds
its own k-NN and BM25 signals, which steer the list; MMR then trades relevance for variety.
A user with no history gets popular, then recent, videos.

Only segments that say what a video is about count (speech, on-screen text, editor
metadata: CONTENT_KINDS); visual-concept labels are left out, since low-confidence class
names (the same "jellyfish (4%)" on every dark frame) would make unrelated videos look alike.

The scoring helpers (`recency_weight`, `completion_weight`, `history_weights`,
`weighted_profile`, `mmr`) are pure and unit-tested without Django.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from catalog.models import Segment, Video, VideoStatus, WatchEvent

from .backends import get_backend
from .documents import Filters, Hit
from .encoders import get_text_encoder
from .fusion import FusionSpec, fuse, group_by_video

HALF_LIFE_DAYS = 14.0
DEFAULT_DIVERSITY = 0.3
MAX_K = 50
HISTORY_EVENTS = 500
POPULAR_DAYS = 30
SIMILAR_WEIGHTS = {"vector": 1.0, "text": 0.5}
USER_WEIGHTS = {"profile": 1.0, "query_text": 0.6, "query_bm25": 0.4}
CONTENT_KINDS = ("speech", "ocr", "metadata")


@dataclass(frozen=True)
class Recommendation:
    """One recommended video, its score and why it was picked."""

    video: Video
    score: float
    reason: str  # "similar", "profile", "query", "popular" or "recent"


@dataclass(frozen=True)
class View:
    """One watch event reduced to what the profile needs (plain values)."""

    video_id: str
    age_seconds: float
    completed: bool
    fraction: float  # position / duration, 0..1


# -- pure scoring helpers ------------------------------------------------------------------

def recency_weight(age_seconds: float, half_life_seconds: float) -> float:
    """Return 0.5 ** (age / half-life): 1.0 now, 0.5 one half-life ago (future counts as now)."""
    if half_life_seconds <= 0:
        raise ValueError(f"half_life_seconds must be positive, got {half_life_seconds!r}")
    return 0.5 ** (max(age_seconds, 0.0) / half_life_seconds)


def completion_weight(completed: bool, fraction: float) -> float:
    """Return 1.0 for a finished video, else 0.25 plus 0.75 times the watched fraction."""
    if completed:
        return 1.0
    fraction = 0.0 if not math.isfinite(fraction) else min(max(fraction, 0.0), 1.0)
    return 0.25 + 0.75 * fraction


def history_weights(views: Iterable[View], half_life_seconds: float) -> dict[str, float]:
    """Weight each watched video by its strongest view (recency times completion)."""
    weights: dict[str, float] = {}
    for view in views:
        weight = (recency_weight(view.age_seconds, half_life_seconds)
                  * completion_weight(view.completed, view.fraction))
        weights[view.video_id] = max(weights.get(view.video_id, 0.0), weight)
    return weights


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def weighted_profile(vectors: Mapping[str, np.ndarray],
                     weights: Mapping[str, float]) -> np.ndarray | None:
    """Return the unit-length weighted mean of the videos' unit vectors (None if none)."""
    keys = [key for key in weights if key in vectors and weights[key] > 0]
    if not keys:
        return None
    stacked = _unit(np.stack([np.asarray(vectors[k], dtype=np.float32) for k in keys]))
    mean = (stacked * np.asarray([weights[k] for k in keys], dtype=np.float32)[:, None]).sum(0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else None


def mmr(relevance: Sequence[float], vectors: np.ndarray, k: int,
        diversity: float = DEFAULT_DIVERSITY) -> list[int]:
    """Pick k indices by Maximal Marginal Relevance.

    Each step takes the argmax of (1 - diversity) * relevance - diversity * (highest cosine
    to an already picked item); relevance is scaled by its maximum. diversity=0 keeps the
    relevance order; ties go to the earlier index.
    """
    if not 0.0 <= diversity <= 1.0:
        raise ValueError(f"diversity must be between 0 and 1, got {diversity!r}")
    count = len(relevance)
    if count == 0 or k <= 0:
        return []
    rel = np.asarray(relevance, dtype=np.float64)
    top = float(np.max(np.abs(rel)))
    rel = rel / top if top > 0 else rel
    unit = _unit(np.asarray(vectors, dtype=np.float64).reshape(count, -1))
    similarity = unit @ unit.T
    penalty = np.zeros(count)
    picked: list[int] = []
    for _ in range(min(k, count)):
        scores = (1.0 - diversity) * rel - diversity * penalty
        scores[picked] = -np.inf
        best = int(np.argmax(scores))
        picked.append(best)
        penalty = similarity[best] if len(picked) == 1 else np.maximum(penalty,
                                                                        similarity[best])
    return picked


# -- catalog and backend glue --------------------------------------------------------------

def video_vectors(video_ids: Iterable[str]) -> dict[str, np.ndarray]:
    """Return each video's unit mean text vector over its content segments, in one query."""
    sums: dict[str, np.ndarray] = {}
    rows = Segment.objects.filter(video_id__in=list(video_ids), kind__in=CONTENT_KINDS,
                                  text_vector__isnull=False)
    for video_id, blob in rows.values_list("video_id", "text_vector"):
        vector = _unit(np.frombuffer(bytes(blob), dtype=np.float32))
        key = str(video_id)
        sums[key] = sums[key] + vector if key in sums else vector.copy()
    return {key: _unit(total) for key, total in sums.items()}


def _window() -> int:
    return int(settings.REELSEARCH["SIGNAL_WINDOW"])


def _half_life_seconds() -> float:
    days = float(settings.REELSEARCH.get("RECOMMEND_HALF_LIFE_DAYS", HALF_LIFE_DAYS))
    return days * 86400.0


def _hydrate(scored: list[tuple[str, float, str]]) -> list[Recommendation]:
    videos = Video.objects.in_bulk([video_id for video_id, _, _ in scored])
    found = {str(pk): video for pk, video in videos.items()}
    return [Recommendation(found[video_id], score, reason)
            for video_id, score, reason in scored if video_id in found]


def _fused(signals: dict[str, list[Hit]], weights: Mapping[str, float],
           limit: int) -> list[tuple[str, float]]:
    spec = FusionSpec(weights=dict(weights))
    grouped = group_by_video(fuse(signals, spec), moments=1)
    return [(result.video_id, result.score) for result in grouped[:limit]]


def metadata_query(video: Video) -> str:
    """Return the text a video is matched by in more-like-this: title, description, tags."""
    return " ".join([video.title, video.description, *(str(tag) for tag in video.tags)])


def similar_videos(video: Video, k: int = 10, backend: str = "default") -> list[Recommendation]:
    """Return the videos nearest to one video by vectors and by text, itself excluded."""
    search_backend = get_backend(backend)
    filters = Filters(published=True, exclude_video_ids=(str(video.pk),), kinds=CONTENT_KINDS)
    signals: dict[str, list[Hit]] = {}
    vector = video_vectors([str(video.pk)]).get(str(video.pk))
    if vector is not None:
        signals["vector"] = search_backend.knn("text", vector, _window(), filters)
    signals["text"] = search_backend.bm25(metadata_query(video), _window(), filters)
    ranked = _fused(signals, SIMILAR_WEIGHTS, k)
    return _hydrate([(video_id, score, "similar") for video_id, score in ranked])


def user_views(user_id: str, now: datetime) -> list[View]:
    """Return a user's latest watch events as Views."""
    events = (WatchEvent.objects.filter(user_id=user_id).select_related("video")
              .order_by("-created_at")[:HISTORY_EVENTS])
    return [
        View(str(event.video_id), (now - event.created_at).total_seconds(), event.completed,
             event.position / event.video.duration if event.video.duration else 0.5)
        for event in events
    ]


def popular_videos(k: int, exclude: Iterable[str] = (), now: datetime | None = None
                   ) -> list[Recommendation]:
    """Return published, ready videos by distinct recent viewers, then newest first."""
    since = (now or timezone.now()) - timedelta(days=POPULAR_DAYS)
    plays = Count("watch_events__user_id", distinct=True,
                  filter=Q(watch_events__created_at__gte=since))
    videos = (Video.objects.filter(published=True, status=VideoStatus.READY)
              .exclude(pk__in=list(exclude)).annotate(plays=plays)
              .order_by("-plays", "-created_at")[:k])
    return [Recommendation(video, float(video.plays), "popular" if video.plays else "recent")
            for video in videos]


def _personal(profile: np.ndarray | None, query: str, watched: Sequence[str],
              backend: str) -> list[tuple[str, float, str]]:
    search_backend = get_backend(backend)
    filters = Filters(published=True, exclude_video_ids=tuple(watched), kinds=CONTENT_KINDS)
    window = _window()
    signals: dict[str, list[Hit]] = {}
    if profile is not None:
        signals["profile"] = search_backend.knn("text", profile, window, filters)
    if query:
        vector = get_text_encoder().encode_query(query)
        signals["query_text"] = search_backend.knn("text", vector, window, filters)
        signals["query_bm25"] = search_backend.bm25(query, window, filters)
    reason = "query" if query else "profile"
    return [(video_id, score, reason)
            for video_id, score in _fused(signals, USER_WEIGHTS, MAX_K * 2)]


def _diversify(scored: list[tuple[str, float, str]], k: int,
               diversity: float) -> list[tuple[str, float, str]]:
    vectors = video_vectors(video_id for video_id, _, _ in scored)
    dim = next(iter(vectors.values())).shape[0] if vectors else 1
    matrix = np.stack([vectors.get(video_id, np.zeros(dim, dtype=np.float32))
                       for video_id, _, _ in scored]) if scored else np.zeros((0, dim))
    order = mmr([score for _, score, _ in scored], matrix, k, diversity)
    return [scored[i] for i in order]


def recommend_for_user(user_id: str, query: str = "", k: int = 10,
                       diversity: float = DEFAULT_DIVERSITY, now: datetime | None = None,
                       backend: str = "default") -> list[Recommendation]:
    """Return up to k unwatched videos for a user, steered by an optional query."""
    now = now or timezone.now()
    views = user_views(user_id, now)
    watched = sorted({view.video_id for view in views})
    weights = history_weights(views, _half_life_seconds())
    profile = weighted_profile(video_vectors(weights), weights)
    picks: list[Recommendation] = []
    if profile is not None or query.strip():
        scored = _personal(profile, query.strip(), watched, backend)
        picks = _hydrate(_diversify(scored, k, diversity))
    if len(picks) < k:  # cold start, or a small catalog: fill with popular videos
        taken = set(watched) | {str(pick.video.pk) for pick in picks}
        picks += popular_videos(k - len(picks), exclude=taken, now=now)
    return picks[:k]
