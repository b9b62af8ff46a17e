"""HTTP search and recommendation endpoints (JSON); parameters are validated first.

Errors are {"error": message}: 400 for bad parameters, 404 for unknown videos (see
catalog.http.exception_handler for the rest).
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.auth import HasApiKey, is_privileged
from catalog.http import (
    error_responses,
    float_param,
    int_param,
    int_schema,
    number_schema,
    published_video,
    reject_empty,
    reject_unknown,
)
from catalog.queries import keyframes_by_video
from catalog.serializers import (
    MEDIA_URL_SCHEMA,
    MOMENT_SCHEMA,
    RecommendationSerializer,
    VideoSummarySerializer,
)

from .backends import BackendUnavailable
from .compose import NoReference
from .facets import FACETS
from .fusion import COMBINATIONS, NORMALIZATIONS
from .params import (
    KINDS,
    MAX_COVERAGE,
    MAX_MOMENTS,
    MAX_PAGE,
    MAX_RANK_CONSTANT,
    ParameterError,
    parse_request,
)
from .profiles import DEFAULT as DEFAULT_PROFILE
from .profiles import all_profiles
from .recommend import DEFAULT_DIVERSITY, Recommendation, recommend_for_user, similar_videos
from .relevance import TIERS
from .search import MAX_K, SIGNALS, search
from .serialize import response_json
from .suggest import current_index

MAX_RECOMMENDATIONS = 50
MAX_USER_ID = 120
MAX_QUERY = 500
# Longer than the other endpoints' q (MAX_QUERY): tests/integration/test_api.py searches with a
# 2,400-character query and expects a 200.
MAX_SEARCH_QUERY = 4000
# A query with at least one non-space character (all-space queries are a 400).
NOT_BLANK = r"\S"
# Typed search parameters: present but empty (`k=`) is a 400, not the default.
TYPED_SEARCH_PARAMETERS = ("k", "page", "moments", "min_score", "explain", "server_fusion",
                           "min_duration", "max_duration", "published", "profile", "fusion",
                           "normalization", "weights", "rescore", "min_tier", "signals", "kinds",
                           "rank_constant", "coverage", "like", "facets", "typos")
# A weights value: signal=number pairs, comma-separated (checked again when parsed).
_SIGNAL = f"({'|'.join(SIGNALS)})"
_WEIGHT = rf"{_SIGNAL}\s*=\s*\d{{1,6}}(\.\d{{1,6}})?"
_POSITIVE = rf"{_SIGNAL}\s*=\s*(0*[1-9]\d{{0,5}}(\.\d{{1,6}})?|0*\.\d{{0,5}}[1-9]\d{{0,5}})"
# signal=number pairs, comma-separated, at least one above 0 (checked again when parsed).
WEIGHTS_PATTERN = (rf"^\s*({_WEIGHT}\s*,\s*)*{_POSITIVE}(\s*,\s*{_WEIGHT})*\s*$")
BOOL = {"type": "boolean"}


def choices_pattern(choices) -> str:
    """Return a pattern for a comma-separated list of some of these words."""
    word = f"\\s*({'|'.join(choices)})\\s*"
    return rf"^{word}(,{word})*$"


SEARCH_PARAMETERS = [
    OpenApiParameter("q", {"type": "string", "minLength": 1, "maxLength": MAX_SEARCH_QUERY,
                           "pattern": NOT_BLANK},
                     required=True,
                     description=f"What to look for; with like, the change to make (at most "
                                 f"{MAX_SEARCH_QUERY} characters)."),
    OpenApiParameter("like", {"type": "string", "format": "uuid"},
                     description="A composed query: videos like this one (its id), changed "
                                 "as q says, e.g. like=<id>&q=but at night; the video itself "
                                 "is left out. An unknown or unpublished video is a 404 "
                                 "(staff and API keys may start from any video)."),
    OpenApiParameter("k", int_schema(1, MAX_K),
                     description=f"Videos per page (1-{MAX_K}, default 10)."),
    OpenApiParameter("page", int_schema(1, MAX_PAGE), description="Page number, from 1."),
    OpenApiParameter("moments", int_schema(1, MAX_MOMENTS),
                     description=f"Moments per video (1-{MAX_MOMENTS}, default 3)."),
    OpenApiParameter("profile", {"type": "string",
                                 "enum": sorted({DEFAULT_PROFILE, *all_profiles()})},
                     description="A named fusion profile (default: `default`; "
                                 "`manage.py tune_fusion` fits more; the list is the one "
                                 "known when the server started). Ignored when any of "
                                 "fusion, normalization, weights, rank_constant or rescore "
                                 "is given."),
    OpenApiParameter("fusion", {"type": "string", "enum": list(COMBINATIONS)},
                     description="How to combine the signals (default arithmetic)."),
    OpenApiParameter("normalization", {"type": "string", "enum": list(NORMALIZATIONS)},
                     description="How to normalize each signal (default min_max); z_score "
                                 "does not go with geometric or harmonic fusion (400)."),
    OpenApiParameter("weights", {"type": "string", "pattern": WEIGHTS_PATTERN},
                     description=f"Per-signal weights, e.g. bm25=0.3,text=0.7; signals: "
                                 f"{', '.join(SIGNALS)}; at least one above 0."),
    OpenApiParameter("rescore", {"type": "string", "enum": ["dual_softmax"]},
                     description="dual_softmax: CAMoE re-scoring of the text signal."),
    OpenApiParameter("min_score", number_schema(-1.0, 1.0),
                     description="Drop results whose relevance (best query-segment cosine, "
                                 "-1..1) is lower."),
    OpenApiParameter("min_tier", {"type": "string", "enum": list(TIERS)},
                     description="Drop results below this relevance tier."),
    OpenApiParameter("explain", BOOL, description="Per-signal scores and timings."),
    OpenApiParameter("server_fusion", BOOL,
                     description="Fuse on the search server when it can (OpenSearch hybrid "
                                 "query); default: the backend's SERVER_FUSION setting."),
    OpenApiParameter("tags", OpenApiTypes.STR, description="Comma-separated; any of them."),
    OpenApiParameter("language", OpenApiTypes.STR),
    OpenApiParameter("min_duration", {"type": "number", "minimum": 0},
                     description="Seconds; not above max_duration (400)."),
    OpenApiParameter("max_duration", {"type": "number", "minimum": 0}, description="Seconds."),
    OpenApiParameter("published", BOOL,
                     description="Staff or API key only: false searches unpublished videos "
                                 "(default true). Ignored for anonymous requests, which "
                                 "always get published videos."),
    OpenApiParameter("signals", {"type": "string", "pattern": choices_pattern(SIGNALS)},
                     description=f"Comma-separated signals to ask (default all: "
                                 f"{', '.join(SIGNALS)}); visual alone needs a visual "
                                 "model (400 otherwise)."),
    OpenApiParameter("kinds", {"type": "string", "pattern": choices_pattern(KINDS)},
                     description=f"Comma-separated segment kinds to search ({', '.join(KINDS)};"
                                 " default all)."),
    OpenApiParameter("rank_constant", int_schema(1, MAX_RANK_CONSTANT),
                     description="The k of reciprocal rank fusion (default 60); only with "
                                 "fusion=rrf (400 otherwise)."),
    OpenApiParameter("coverage", number_schema(0.0, MAX_COVERAGE),
                     description="Scale normalized BM25 by (share of query terms matched) to "
                                 "this power (default 0: off)."),
    OpenApiParameter("facets", {"type": "string", "pattern": choices_pattern(FACETS)},
                     description=f"Comma-separated facets to count ({', '.join(FACETS)}): "
                                 "videos per value over the whole result set (every video "
                                 "the search ranks, on all pages: `total` of them), not the "
                                 "page. Counted only when asked."),
    OpenApiParameter("typos", BOOL,
                     description="Let BM25 match a query term of 5 or more characters within "
                                 "one edit (two from 9 characters) when its exact form matches "
                                 "fewer than TYPO_MAX_DF segments (default true)."),
]
SEARCH_PARAMETER_NAMES = frozenset(parameter.name for parameter in SEARCH_PARAMETERS)


SEARCH_RESULT = {
    "type": "object",
    "required": ["id", "title", "score", "relevance", "tier", "duration", "tags", "language",
                 "url", "thumbnail", "moments"],
    "properties": {
        "id": {"type": "string", "format": "uuid"}, "title": {"type": "string"},
        "score": {"type": "number"}, "relevance": {"type": "number", "nullable": True},
        "tier": {"type": "string"}, "duration": {"type": "number", "nullable": True},
        "tags": {"type": "array", "items": {"type": "string"}},
        "language": {"type": "string"}, "url": MEDIA_URL_SCHEMA,
        "thumbnail": MEDIA_URL_SCHEMA, "moments": {"type": "array", "items": MOMENT_SCHEMA},
    },
}
FACET_VALUE = {
    "type": "object", "required": ["value", "count"],
    "properties": {"value": {"type": "string"}, "count": {"type": "integer", "minimum": 0},
                   "label": {"type": "string"},
                   "min_duration": {"type": "number"},
                   "max_duration": {"type": "number", "nullable": True}},
}
FACETS_SCHEMA = {
    "type": "object",
    "description": "Only with facets=: per facet asked for, its values with the number of "
                   "result-set videos holding each, most frequent first (duration: every "
                   "bucket in order, with the min_duration/max_duration that select it).",
    "properties": {name: {"type": "array", "items": FACET_VALUE} for name in FACETS},
}
SEARCH_RESPONSE = {
    "type": "object",
    "required": ["query", "k", "page", "total", "fusion", "results"],
    "properties": {
        "query": {"type": "string"}, "k": {"type": "integer"}, "page": {"type": "integer"},
        "like": {"type": "string", "format": "uuid",
                 "description": "The reference video of a composed query."},
        "total": {"type": "integer"},
        "fusion": {"type": "object", "required": ["method", "normalization", "weights"],
                   "properties": {"method": {"type": "string"},
                                  "normalization": {"type": "string"},
                                  "weights": {"type": "object",
                                              "additionalProperties": {"type": "number"}}}},
        "results": {"type": "array", "items": SEARCH_RESULT},
        "facets": FACETS_SCHEMA,
        "did_you_mean": {"type": "string", "nullable": True,
                         "description": "The query spelt as the catalog spells it, when no "
                                        "result is a high-tier match and some query word "
                                        "is in no published video but a near one is."},
        "typo_terms": {"type": "array", "items": {"type": "string"},
                       "description": "Query terms BM25 matched with typo tolerance (only "
                                      "when there are some)."},
        "respelt_query": {"type": "string",
                          "description": "What the dense signals encoded instead of q: its "
                                         "typo-tolerant terms spelt as the catalog's nearest "
                                         "frequent words (only when that differs from q)."},
        "explain": {"type": "object", "additionalProperties": True},
    },
}


@extend_schema(parameters=SEARCH_PARAMETERS,
               responses={200: OpenApiResponse(SEARCH_RESPONSE, description="Ranked videos."),
                          **error_responses(400, 401, 404, 429, 503)})
@api_view(["GET"])
@permission_classes([AllowAny])
def search_view(request: Request) -> Response:
    """Search published videos and their moments (with like: a composed query)."""
    params = request.query_params
    try:
        reject_unknown(params, SEARCH_PARAMETER_NAMES)
        reject_empty(params, TYPED_SEARCH_PARAMETERS)
        if len(str(params.get("q") or "")) > MAX_SEARCH_QUERY:
            raise ParameterError(f"q must be at most {MAX_SEARCH_QUERY} characters.")
    except ParameterError as exc:
        return Response({"error": str(exc)}, status=400)
    if not is_privileged(request):  # anonymous callers only ever see published videos
        params = params.copy()
        params.pop("published", None)
    try:
        search_request = parse_request(params, published_default=True)
    except ParameterError as exc:
        return Response({"error": str(exc)}, status=400)
    if search_request.like:  # 404 for a reference this caller may not see
        published_video(search_request.like, privileged=is_privileged(request))
    try:
        return Response(response_json(search(search_request)))
    except NoReference as exc:
        return Response({"error": str(exc)}, status=400)
    except BackendUnavailable as exc:
        return Response({"error": f"The search index is unavailable: {exc}"}, status=503)


MAX_SUGGESTIONS = 20
MAX_SUGGEST_QUERY = 100
SUGGEST_PARAMETERS = [
    OpenApiParameter("q", {"type": "string", "minLength": 1, "maxLength": MAX_SUGGEST_QUERY,
                           "pattern": NOT_BLANK}, required=True,
                     description="What the user has typed so far; its last word may be "
                                 f"partial (at most {MAX_SUGGEST_QUERY} characters)."),
    OpenApiParameter("k", int_schema(1, MAX_SUGGESTIONS),
                     description=f"How many suggestions (1-{MAX_SUGGESTIONS}, default 8)."),
]
SUGGEST_RESPONSE = {
    "type": "object", "required": ["query", "suggestions"],
    "properties": {
        "query": {"type": "string"},
        "suggestions": {"type": "array", "items": {
            "type": "object", "required": ["text", "source", "videos", "video_id"],
            "properties": {
                "text": {"type": "string"},
                "source": {"type": "string", "enum": ["title", "tag", "phrase"]},
                "videos": {"type": "integer", "minimum": 1,
                           "description": "Published videos that hold it."},
                "video_id": {"type": "string", "format": "uuid", "nullable": True,
                             "description": "The video of a title held by one video."}}}},
    },
}


@extend_schema(parameters=SUGGEST_PARAMETERS,
               responses={200: OpenApiResponse(SUGGEST_RESPONSE,
                                               description="Completions, best first."),
                          **error_responses(400, 401, 429)})
@api_view(["GET"])
@permission_classes([AllowAny])
def suggest_view(request: Request) -> Response:
    """Complete a partly typed query from published titles, tags and transcript phrases."""
    params = request.query_params
    reject_unknown(params, frozenset({"q", "k"}))
    reject_empty(params, ("k",))
    query = str(params.get("q") or "")
    if not query.strip():
        raise ParameterError("q is empty: pass the text typed so far.")
    if len(query) > MAX_SUGGEST_QUERY:
        raise ParameterError(f"q must be at most {MAX_SUGGEST_QUERY} characters.")
    k = int_param(params, "k", 8, 1, MAX_SUGGESTIONS)
    found = current_index().suggest(query, k)
    return Response({"query": query, "suggestions": [
        {"text": s.text, "source": s.source, "videos": s.videos, "video_id": s.video_id}
        for s in found]})


def _recommendations_json(picks: list[Recommendation], request: Request) -> list[dict]:
    frames = keyframes_by_video(pick.video.pk for pick in picks)
    context = {"request": request, "frames": frames}
    return [{"video": VideoSummarySerializer(pick.video, context=context).data,
             "score": round(pick.score, 6), "reason": pick.reason} for pick in picks]


K_PARAMETER = OpenApiParameter("k", int_schema(1, MAX_RECOMMENDATIONS),
                               description=f"How many videos (1-{MAX_RECOMMENDATIONS}, "
                                           "default 10).")
Recommendations = inline_serializer("Recommendations", {
    "results": RecommendationSerializer(many=True),
})


@extend_schema(parameters=[OpenApiParameter("video_id", {"type": "string", "format": "uuid"},
                                            OpenApiParameter.PATH), K_PARAMETER],
               responses={200: Recommendations, **error_responses(400, 401, 404, 429, 503)})
@api_view(["GET"])
@permission_classes([AllowAny])
def similar_view(request: Request, video_id: str) -> Response:
    """More like this: the videos nearest to one video by vectors and text, itself excluded."""
    reject_unknown(request.query_params, ("k",))
    video = published_video(video_id)
    k = int_param(request.query_params, "k", 10, 1, MAX_RECOMMENDATIONS)
    picks = similar_videos(video, k=k)
    return Response({"video": str(video.pk), "results": _recommendations_json(picks, request)})


@extend_schema(
    parameters=[OpenApiParameter("user_id", {"type": "string", "minLength": 1,
                                             "maxLength": MAX_USER_ID,
                                             "pattern": r"^[^/]*\S[^/]*$"},
                                 OpenApiParameter.PATH),
                K_PARAMETER,
                OpenApiParameter("q", {"type": "string", "maxLength": MAX_QUERY},
                                 description="Steer the list, e.g. 'Italian recipes' (at most "
                                             f"{MAX_QUERY} characters)."),
                OpenApiParameter("diversity", number_schema(0.0, 1.0),
                                 description="MMR trade-off, 0 (relevance only) to 1 "
                                             f"(default {DEFAULT_DIVERSITY}).")],
    responses={200: Recommendations, **error_responses(400, 401, 503)},
)
@api_view(["GET"])
@permission_classes([HasApiKey])
def user_recommendations_view(request: Request, user_id: str) -> Response:
    """Recommend unwatched videos from a user's recent history (needs an API key)."""
    if not user_id.strip() or len(user_id) > MAX_USER_ID:
        raise ParameterError(f"The user id must be 1 to {MAX_USER_ID} characters.")
    params = request.query_params
    reject_unknown(params, ("k", "q", "diversity"))
    k = int_param(params, "k", 10, 1, MAX_RECOMMENDATIONS)
    diversity = float_param(params, "diversity", DEFAULT_DIVERSITY, 0.0, 1.0)
    query = str(params.get("q") or "").strip()
    if len(query) > MAX_QUERY:
        raise ParameterError(f"q must be at most {MAX_QUERY} characters.")
    picks = recommend_for_user(user_id, query=query, k=k, diversity=diversity)
    return Response({"user": user_id, "query": query,
                     "results": _recommendations_json(picks, request)})
