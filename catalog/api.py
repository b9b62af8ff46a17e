"""Catalog API: the video list, video detail with moments and chapters, subtitles, and
watch events.

Parameter parsing, lookups and the error format ({"error": message}) live in
``catalog.http``, shared with the retrieval API; a detail view's ``?q=`` moments come from
``retrieval.serialize.video_moments_json``.
"""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view, permission_classes, renderer_classes
from rest_framework.exceptions import NotFound
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from retrieval.params import ParameterError
from retrieval.serialize import video_moments_json

from .auth import HasApiKey, is_privileged
from .http import error_responses, int_param, int_schema, published_video, reject_unknown
from .models import Transcript, Video, VideoStatus
from .queries import keyframes_by_video, with_any_tag
from .serializers import VideoDetailSerializer, VideoSummarySerializer, WatchEventSerializer
from .subtitles import make_cues, to_srt, to_webvtt

MAX_PAGE_SIZE = 100
MAX_PAGE = 10**6
MAX_MOMENTS = 20
MAX_QUERY = 500


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Describe API-key authentication in the OpenAPI schema."""

    target_class = "catalog.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema) -> dict:
        """Return the apiKey security scheme (the X-Api-Key header)."""
        return {"type": "apiKey", "in": "header", "name": "X-Api-Key",
                "description": "Or send 'Authorization: Api-Key <key>'."}


# -- views --------------------------------------------------------------------------------

PAGE_PARAMETERS = [
    OpenApiParameter("page", int_schema(1, MAX_PAGE), description="Page number, from 1."),
    OpenApiParameter("page_size", int_schema(1, MAX_PAGE_SIZE),
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
    responses={200: VideoPage, **error_responses(400, 401, 429)}, operation_id="videos_list",
)
@api_view(["GET"])
def video_list(request: Request) -> Response:
    """List published, ready videos, newest first."""
    params = request.query_params
    reject_unknown(params, ("page", "page_size", "tags", "language"))
    page = int_param(params, "page", 1, 1, MAX_PAGE)
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
    parameters=[OpenApiParameter("video_id", {"type": "string", "format": "uuid"},
                                 OpenApiParameter.PATH),
                OpenApiParameter("q", {"type": "string", "maxLength": MAX_QUERY},
                                 description="Rank this video's moments for a query "
                                             f"(at most {MAX_QUERY} characters)."),
                OpenApiParameter("moments", int_schema(1, MAX_MOMENTS),
                                 description=f"How many moments for q (1-{MAX_MOMENTS}, "
                                             "default 5).")],
    responses={200: VideoDetailSerializer, **error_responses(400, 401, 404, 429, 503)},
    operation_id="videos_retrieve",
)
@api_view(["GET"])
def video_detail(request: Request, video_id: str) -> Response:
    """Return a video with its keyframes and moments (its segments, or the best ones for q).

    Only published, ready videos, except to staff and API-key callers (404 otherwise)."""
    params = request.query_params
    reject_unknown(params, ("q", "moments"))
    video = published_video(video_id, privileged=is_privileged(request))
    context: dict = {"request": request}
    query = str(params.get("q") or "").strip()
    if len(query) > MAX_QUERY:
        raise ParameterError(f"q must be at most {MAX_QUERY} characters.")
    count = int_param(params, "moments", 5, 1, MAX_MOMENTS)  # checked even without q
    if query:
        context["moments"] = video_moments_json(str(video.pk), query, count)
    return Response(VideoDetailSerializer(video, context=context).data)


class SubtitleRenderer(BaseRenderer):
    """Let clients ask for a subtitle type (Accept: text/vtt) without a 406.

    Subtitles are sent as they are; errors are JSON whatever was asked (JsonErrorsMiddleware
    rewrites any other error body under /api/), so this renders only as a fallback.
    """

    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        """Render an error body as its message."""
        message = data.get("error", "") if isinstance(data, dict) else str(data or "")
        return str(message).encode(self.charset)


class VttRenderer(SubtitleRenderer):
    media_type, format = "text/vtt", "vtt"


class SrtRenderer(SubtitleRenderer):
    media_type, format = "application/x-subrip", "srt"


def _subtitles(request: Request, video_id: str, render, media_type: str) -> HttpResponse:
    """Answer a video's subtitles, with the visibility rules of the video detail."""
    video = published_video(video_id, privileged=is_privileged(request))
    transcript = Transcript.objects.filter(video=video).first()
    if transcript is None:
        raise NotFound(f"Video {video.pk} has no stored transcript (it was processed before "
                       "transcripts were kept): reprocess it to get subtitles.")
    body = render(make_cues(transcript.timed_words()))
    return HttpResponse(body, content_type=f"{media_type}; charset=utf-8")


SUBTITLE_PARAMETERS = [OpenApiParameter("video_id", {"type": "string", "format": "uuid"},
                                        OpenApiParameter.PATH)]
SUBTITLE_ERRORS = error_responses(401, 404, 429)


@extend_schema(parameters=SUBTITLE_PARAMETERS, operation_id="videos_subtitles_vtt",
               responses={(200, "text/vtt"): OpenApiTypes.STR, **SUBTITLE_ERRORS},
               description="WebVTT subtitles from the transcript's word timestamps: cues of "
                           "at most two 42-character lines and 7 seconds, never overlapping. "
                           "Same visibility as the video.")
@api_view(["GET"])
@renderer_classes([JSONRenderer, VttRenderer])
def video_subtitles_vtt(request: Request, video_id: str) -> HttpResponse:
    """Return the video's subtitles as WebVTT."""
    return _subtitles(request, video_id, to_webvtt, VttRenderer.media_type)


@extend_schema(parameters=SUBTITLE_PARAMETERS, operation_id="videos_subtitles_srt",
               responses={(200, "application/x-subrip"): OpenApiTypes.STR, **SUBTITLE_ERRORS},
               description="SubRip subtitles, the same cues as subtitles.vtt.")
@api_view(["GET"])
@renderer_classes([JSONRenderer, SrtRenderer])
def video_subtitles_srt(request: Request, video_id: str) -> HttpResponse:
    """Return the video's subtitles as SubRip (.srt)."""
    return _subtitles(request, video_id, to_srt, SrtRenderer.media_type)


@extend_schema(request=WatchEventSerializer,
               responses={201: WatchEventSerializer, **error_responses(400, 401, 413, 415)})
@api_view(["POST"])
@permission_classes([HasApiKey])
def watch_events(request: Request) -> Response:
    """Record that a user watched a video up to a position (needs an API key)."""
    serializer = WatchEventSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    serializer.save()
    return Response(serializer.data, status=status.HTTP_201_CREATED)
