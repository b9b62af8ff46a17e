"""Catalog API: the video list, video detail with moments, and watch events.

Every error body is {"error": message} (plus "fields" for per-field validation errors):
400 for bad parameters, 401 for a missing or wrong API key, 404 for unknown ids,
429 when throttled, 503 when the search index is unavailable.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import NotAuthenticated, NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from retrieval.backends import BackendUnavailable
from retrieval.documents import Filters
from retrieval.params import ParameterError
from retrieval.search import SearchRequest, search
from retrieval.serialize import moment_json

from .auth import HasApiKey
from .models import Video, VideoStatus
from .queries import keyframes_by_video, with_any_tag
from .serializers import VideoDetailSerializer, VideoSummarySerializer, WatchEventSerializer

MAX_PAGE_SIZE = 100


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Describe API-key authentication in the OpenAPI schema."""

    target_class = "catalog.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema) -> dict:
        """Return the apiKey security scheme (the X-Api-Key header)."""
        return {"type": "apiKey", "in": "header", "name": "X-Api-Key",
                "description": "Or send 'Authorization: Api-Key <key>'."}


def _flatten(detail: object, prefix: str = "") -> list[str]:
    if isinstance(detail, Mapping):
        return [line for key, value in detail.items()
                for line in _flatten(value, f"{prefix}{key}: " if key != "non_field_errors"
                                     else prefix)]
    if isinstance(detail, list):
        return [line for item in detail for line in _flatten(item, prefix)]
    return [f"{prefix}{detail}"]


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """Answer API errors as {"error": message}; map ParameterError to 400, index outages to 503."""
    if isinstance(exc, ParameterError):
        return Response({"error": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, BackendUnavailable):
        return Response({"error": f"The search index is unavailable: {exc}"},
                        status=status.HTTP_503_SERVICE_UNAVAILABLE)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, NotAuthenticated):
        response.data = {"error": HasApiKey.message}
    elif isinstance(exc, ValidationError):
        response.data = {"error": "; ".join(_flatten(exc.detail)) or "Invalid input.",
                         "fields": exc.detail}
    elif isinstance(response.data, Mapping) and "detail" in response.data:
        response.data = {"error": str(response.data["detail"])}
    return response


# -- parameters ---------------------------------------------------------------------------

def int_param(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """Return an integer query parameter within [low, high], or raise ParameterError."""
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(str(raw))
    except ValueError:
        raise ParameterError(f"{name} must be an integer (got {raw!r}).") from None
    if not low <= value <= high:
        raise ParameterError(f"{name} must be between {low} and {high} (got {value}).")
    return value


def published_video(video_id: str) -> Video:
    """Return the published video with this id, or raise NotFound (also for non-UUID ids)."""
    try:
        pk = uuid.UUID(str(video_id))
    except ValueError:
        raise NotFound(f"No video with id {video_id!r}.") from None
    video = Video.objects.filter(pk=pk, published=True).first()
    if video is None:
        raise NotFound(f"No video with id {video_id!r}.")
    return video


# -- views --------------------------------------------------------------------------------

PAGE_PARAMETERS = [
    OpenApiParameter("page", OpenApiTypes.INT, description="Page number, from 1."),
    OpenApiParameter("page_size", OpenApiTypes.INT,
                     description=f"Videos per page (1-{MAX_PAGE_SIZE}, default 20)."),
]

VideoPage = inline_serializer("VideoPage", {
    "count": serializers.IntegerField(), "page": serializers.IntegerField(),
    "page_size": serializers.IntegerField(),
    "results": VideoSummarySerializer(many=True),
})


@extend_schema(
    parameters=[*PAGE_PARAMETERS,
                OpenApiParameter("tags", OpenApiTypes.STR, description="Comma-separated; any."),
                OpenApiParameter("language", OpenApiTypes.STR)],
    responses=VideoPage, operation_id="videos_list",
)
@api_view(["GET"])
def video_list(request: Request) -> Response:
    """List published, ready videos, newest first."""
    params = request.query_params
    page = int_param(params, "page", 1, 1, 10**6)
    size = int_param(params, "page_size", 20, 1, MAX_PAGE_SIZE)
    videos = Video.objects.filter(published=True, status=VideoStatus.READY)
    if params.get("language"):
        videos = videos.filter(language=params["language"])
    videos = with_any_tag(videos, str(params.get("tags") or "").split(","))
    total = videos.count()
    rows = list(videos.order_by("-created_at", "pk")[(page - 1) * size:page * size])
    context = {"request": request, "frames": keyframes_by_video(v.pk for v in rows)}
    return Response({"count": total, "page": page, "page_size": size,
                     "results": VideoSummarySerializer(rows, many=True, context=context).data})


@extend_schema(
    parameters=[OpenApiParameter("q", OpenApiTypes.STR,
                                 description="Rank this video's moments for a query."),
                OpenApiParameter("moments", OpenApiTypes.INT,
                                 description="How many moments for q (1-20, default 5).")],
    responses=VideoDetailSerializer, operation_id="videos_retrieve",
)
@api_view(["GET"])
def video_detail(request: Request, video_id: str) -> Response:
    """Return a video with its keyframes and moments (its segments, or the best ones for q)."""
    video = published_video(video_id)
    context: dict = {"request": request}
    query = str(request.query_params.get("q") or "").strip()
    if query:
        count = int_param(request.query_params, "moments", 5, 1, 20)
        found = search(SearchRequest(query=query[:500], k=1, moments=count,
                                     filters=Filters(video_ids=(str(video.pk),),
                                                     published=True)))
        frames = keyframes_by_video([video.pk]).get(str(video.pk), [])
        context["moments"] = [moment_json(moment, frames)
                              for match in found.results for moment in match.moments]
    return Response(VideoDetailSerializer(video, context=context).data)


@extend_schema(request=WatchEventSerializer, responses={201: WatchEventSerializer})
@api_view(["POST"])
@permission_classes([HasApiKey])
def watch_events(request: Request) -> Response:
    """Record that a user watched a video up to a position (needs an API key)."""
    serializer = WatchEventSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    serializer.save()
    return Response(serializer.data, status=status.HTTP_201_CREATED)
