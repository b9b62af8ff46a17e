"""Plain-JSON form of search responses, shared by the APIs and the `search` command."""

from __future__ import annotations

from catalog.queries import Frames, keyframes_by_video, nearest_frame

from .documents import Filters
from .search import Moment, SearchRequest, SearchResponse, VideoMatch, search
from .video_cache import VideoCache

_keyframes: VideoCache[list[tuple[float, str]]] = VideoCache(256)


def cached_keyframes(videos: dict[str, object]) -> Frames:
    """Return keyframes_by_video() of videos (id -> updated_at), kept while the stamp holds."""
    return _keyframes.get_many(videos, keyframes_by_video, [])


def moment_json(moment: Moment, frames: list[tuple[float, str]] | None = None) -> dict:
    """Return one moment as JSON-ready data (with the keyframe nearest its start)."""
    data = {"segment_id": moment.segment_id, "kind": moment.kind,
            "start": round(moment.start, 2), "end": round(moment.end, 2),
            "snippet": moment.snippet, "score": round(moment.score, 6),
            "relevance": moment.relevance, "tier": moment.tier,
            "highlights": [list(span) for span in moment.highlights], "match": moment.match,
            "thumbnail": nearest_frame(frames or [], moment.start)}
    if moment.box is not None:
        data["box"] = moment.box
    if moment.explain is not None:
        data["explain"] = moment.explain
    return data


def match_json(match: VideoMatch, frames: Frames | None = None) -> dict:
    """Return one ranked video as JSON-ready data; thumbnails come from its keyframes."""
    video = match.video
    own = (frames or {}).get(str(video.pk), [])
    best = match.moments[0].start if match.moments else None
    return {
        "id": str(video.pk), "title": video.title, "score": round(match.score, 6),
        "relevance": match.relevance, "tier": match.tier,
        "duration": video.duration, "tags": video.tags, "language": video.language,
        "url": video.source.url if video.source else None,
        "thumbnail": nearest_frame(own, best),
        "moments": [moment_json(moment, own) for moment in match.moments],
    }


def response_json(response: SearchResponse) -> dict:
    """Return a whole search response as JSON-ready data."""
    request = response.request
    frames = cached_keyframes({str(match.video.pk): match.video.updated_at
                               for match in response.results})
    data = {
        "query": request.query, "k": request.k, "page": request.page, "total": response.total,
        "fusion": {"method": request.fusion.method,
                   "normalization": request.fusion.normalization,
                   "weights": dict(request.fusion.weights)},
        "results": [match_json(match, frames) for match in response.results],
    }
    if request.like:
        data["like"] = request.like
    if response.did_you_mean:
        data["did_you_mean"] = response.did_you_mean
    if response.fuzzy:
        data["typo_terms"] = list(response.fuzzy)
    if response.respelt:
        data["respelt_query"] = response.respelt
    if response.facets is not None:
        data["facets"] = response.facets
    if request.explain:
        data["explain"] = {"timings_ms": response.timings_ms,
                           "signal_sizes": response.signal_sizes}
    return data


def video_moments_json(video_id: str, query: str, count: int) -> list[dict]:
    """Return one published video's best moments for a query, as JSON-ready data."""
    found = search(SearchRequest(query=query, k=1, moments=count,
                                 filters=Filters(video_ids=(video_id,), published=True)))
    frames = keyframes_by_video([video_id]).get(video_id, [])
    return [moment_json(moment, frames) for match in found.results for moment in match.moments]
