"""HTTP search and recommendation endpoints (JSON); parameters are validated first.

Errors are {"error": message}: 400 for bad parameters, 404 for unknown videos (see
catalog.http.exception_handler for the rest).
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.auth import HasApiKey, is_privileged
from catalog.http import float_param, int_param, published_video
from catalog.queries import keyframes_by_video
from catalog.serializers import RecommendationSerializer, VideoSummarySerializer

from .backends import BackendUnavailable
from .params import ParameterError, parse_request
from .recommend import DEFAULT_DIVERSITY, Recommendation, recommend_for_user, similar_videos
from .search import search
from .serialize import response_json

MAX_RECOMMENDATIONS = 50
MAX_USER_ID = 120
MAX_QUERY = 500

SEARCH_PARAMETERS = [
    OpenApiParameter("q", OpenApiTypes.STR, required=True, description="What to look for."),
    OpenApiParameter("k", OpenApiTypes.INT, description="Videos per page (1-100, default 10)."),
    OpenApiParameter("page", OpenApiTypes.INT, description="Page number, from 1."),
    OpenApiParameter("profile", OpenApiTypes.STR,
                     description="A named fusion profile (default: `default`; "
                                 "`manage.py tune_fusion` fits more). Ignored when any of "
                                 "fusion, normalization, weights, rank_constant or rescore "
                                 "is given."),
    OpenApiParameter("fusion", OpenApiTypes.STR,
                     description="arithmetic | geometric | harmonic | rrf"),
    OpenApiParameter("normalization", OpenApiTypes.STR, description="min_max | z_score | l2"),
    OpenApiParameter("weights", OpenApiTypes.STR, description="e.g. bm25=0.3,text=0.7"),
    OpenApiParameter("rescore", OpenApiTypes.STR,
                     description="dual_softmax: CAMoE re-scoring of the text signal."),
    OpenApiParameter("min_score", OpenApiTypes.NUMBER,
                     description="Drop results whose relevance (best query-segment cosine, "
                                 "-1..1) is lower."),
    OpenApiParameter("min_tier", OpenApiTypes.STR,
                     description="Drop results below this relevance tier: high | medium | low."),
    OpenApiParameter("explain", OpenApiTypes.BOOL, description="Per-signal scores and timings."),
    OpenApiParameter("server_fusion", OpenApiTypes.BOOL,
                     description="Fuse on the search server when it can (OpenSearch hybrid "
                                 "query); default: the backend's SERVER_FUSION setting."),
    OpenApiParameter("tags", OpenApiTypes.STR, description="Comma-separated; any of them."),
    OpenApiParameter("language", OpenApiTypes.STR),
    OpenApiParameter("min_duration", OpenApiTypes.NUMBER),
    OpenApiParameter("max_duration", OpenApiTypes.NUMBER),
    OpenApiParameter("published", OpenApiTypes.BOOL,
                     description="Staff or API key only: false searches unpublished videos "
                                 "(default true). Ignored for anonymous requests, which "
                                 "always get published videos."),
]


@extend_schema(parameters=SEARCH_PARAMETERS, responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
@permission_classes([AllowAny])
def search_view(request: Request) -> Response:
    """Search published videos and their moments."""
    params = request.query_params
    if not is_privileged(request):  # anonymous callers only ever see published videos
        params = params.copy()
        params.pop("published", None)
    try:
        search_request = parse_request(params, published_default=True)
    except ParameterError as exc:
        return Response({"error": str(exc)}, status=400)
    try:
        return Response(response_json(search(search_request)))
    except BackendUnavailable as exc:
        return Response({"error": f"The search index is unavailable: {exc}"}, status=503)


def _recommendations_json(picks: list[Recommendation], request: Request) -> list[dict]:
    frames = keyframes_by_video(pick.video.pk for pick in picks)
    context = {"request": request, "frames": frames}
    return [{"video": VideoSummarySerializer(pick.video, context=context).data,
             "score": round(pick.score, 6), "reason": pick.reason} for pick in picks]


K_PARAMETER = OpenApiParameter("k", OpenApiTypes.INT,
                               description=f"How many videos (1-{MAX_RECOMMENDATIONS}, "
                                           "default 10).")
Recommendations = inline_serializer("Recommendations", {
    "results": RecommendationSerializer(many=True),
})


@extend_schema(parameters=[K_PARAMETER], responses=Recommendations)
@api_view(["GET"])
@permission_classes([AllowAny])
def similar_view(request: Request, video_id: str) -> Response:
    """More like this: the videos nearest to one video by vectors and text, itself excluded."""
    video = published_video(video_id)
    k = int_param(request.query_params, "k", 10, 1, MAX_RECOMMENDATIONS)
    picks = similar_videos(video, k=k)
    return Response({"video": str(video.pk), "results": _recommendations_json(picks, request)})


@extend_schema(
    parameters=[K_PARAMETER,
                OpenApiParameter("q", OpenApiTypes.STR,
                                 description="Steer the list, e.g. 'Italian recipes'."),
                OpenApiParameter("diversity", OpenApiTypes.NUMBER,
                                 description="MMR trade-off, 0 (relevance only) to 1 "
                                             f"(default {DEFAULT_DIVERSITY}).")],
    responses=Recommendations,
)
@api_view(["GET"])
@permission_classes([HasApiKey])
def user_recommendations_view(request: Request, user_id: str) -> Response:
    """Recommend unwatched videos from a user's recent history (needs an API key)."""
    if not user_id.strip() or len(user_id) > MAX_USER_ID:
        raise ParameterError(f"The user id must be 1 to {MAX_USER_ID} characters.")
    params = request.query_params
    k = int_param(params, "k", 10, 1, MAX_RECOMMENDATIONS)
    diversity = float_param(params, "diversity", DEFAULT_DIVERSITY, 0.0, 1.0)
    query = str(params.get("q") or "").strip()
    if len(query) > MAX_QUERY:
        raise ParameterError(f"q must be at most {MAX_QUERY} characters.")
    picks = recommend_for_user(user_id, query=query, k=k, diversity=diversity)
    return Response({"user": user_id, "query": query,
                     "results": _recommendations_json(picks, request)})
