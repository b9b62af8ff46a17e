"""HTTP helpers shared by the catalog and retrieval API views (neither imports the other's).

Every error body is {"error": message} (plus "fields" for per-field validation errors):
400 for bad parameters, 401 for a missing or wrong API key, 404 for unknown ids,
413 for a body over DATA_UPLOAD_MAX_MEMORY_SIZE, 415 for a body type no parser reads,
429 when throttled, 503 when the search index is unavailable. `JsonErrorsMiddleware` gives
the errors Django answers itself under /api/ (unknown routes, oversized bodies) the same body.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping

from django.conf import settings
from django.http import JsonResponse
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotAuthenticated, NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from retrieval.backends import BackendUnavailable
from retrieval.params import ParameterError

from .auth import HasApiKey
from .models import Video, VideoStatus


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


# -- schema ------------------------------------------------------------------------------

ErrorBody = inline_serializer("Error", {
    "error": serializers.CharField(help_text="What went wrong, and how to fix it."),
})
ERROR_MEANINGS = {
    400: "A parameter or the body is invalid.",
    401: "A missing (where required), wrong or revoked API key.",
    404: "No such (published, ready) video.",
    413: "The request body is too large.",
    415: "The body's content type is not supported.",
    429: "Too many anonymous requests: slow down, or send an API key.",
    503: "The search index is unavailable.",
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """Document these error statuses, each with the {"error": message} body."""
    return {code: OpenApiResponse(ErrorBody, description=ERROR_MEANINGS[code])
            for code in codes}


def int_schema(low: int, high: int) -> dict:
    """An integer parameter's schema with its bounds."""
    return {"type": "integer", "minimum": low, "maximum": high}


def number_schema(low: float, high: float) -> dict:
    """A number parameter's schema with its bounds."""
    return {"type": "number", "minimum": low, "maximum": high}


# -- parameters ---------------------------------------------------------------------------

def int_param(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """Return an integer query parameter within [low, high], or raise ParameterError.

    Absent: the default. Present but empty (`page=`) is an error, as for any non-integer."""
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(str(raw))
    except ValueError:
        raise ParameterError(f"{name} must be an integer (got {raw!r}).") from None
    if not low <= value <= high:
        raise ParameterError(f"{name} must be between {low} and {high} (got {value}).")
    return value


def reject_unknown(params: Mapping[str, str], names: Collection[str]) -> None:
    """Raise ParameterError for a parameter the endpoint does not know (a typo, say)."""
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise ParameterError(f"Unknown parameter(s) {unknown}: this endpoint takes "
                             f"{', '.join(sorted(names))}.")


def reject_empty(params: Mapping[str, str], names: tuple[str, ...]) -> None:
    """Raise ParameterError for a typed parameter sent without a value (`k=`)."""
    for name in names:
        if name in params and not str(params.get(name)).strip():
            raise ParameterError(f"{name} is empty: give it a value or leave it out.")


def float_param(params: Mapping[str, str], name: str, default: float, low: float,
                high: float) -> float:
    """Return a number query parameter within [low, high], or raise ParameterError (also
    when it is present but empty)."""
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ParameterError(f"{name} must be a number (got {raw!r}).") from None
    if not low <= value <= high:  # also rejects NaN
        raise ParameterError(f"{name} must be between {low} and {high} (got {raw}).")
    return value


# -- lookups ------------------------------------------------------------------------------

def published_video(video_id: str, *, privileged: bool = False) -> Video:
    """Return the published, ready video with this id, or raise NotFound (also for non-UUID
    ids). `privileged` callers (staff, API keys: see catalog.auth.is_privileged) get any
    video, so that drafts and failed videos can be inspected."""
    try:
        pk = uuid.UUID(str(video_id))
    except ValueError:
        raise NotFound(f"No video with id {video_id!r}.") from None
    videos = Video.objects.filter(pk=pk)
    if not privileged:
        videos = videos.filter(published=True, status=VideoStatus.READY)
    video = videos.first()
    if video is None:
        raise NotFound(f"No video with id {video_id!r}.")
    return video


# -- middleware ---------------------------------------------------------------------------

class JsonErrorsMiddleware:
    """Answer every 4xx under /api/ as {"error": message}, also the ones Django gives itself.

    A body larger than DATA_UPLOAD_MAX_MEMORY_SIZE (by its Content-Length) is refused with a
    413 before any view reads it; non-JSON 4xx answers (an unknown /api/ route, Django's own
    400 page) are replaced by the same status with a JSON body.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            return JsonResponse({"error": f"The request body is too large ({length} bytes; "
                                          f"at most {limit})."},
                                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        response = self.get_response(request)
        content_type = response.get("Content-Type", "")
        if 400 <= response.status_code < 500 and "json" not in content_type:
            message = {404: f"No video or API endpoint at {request.path!r}."}.get(
                response.status_code, response.reason_phrase)
            replaced = JsonResponse({"error": message}, status=response.status_code)
            for header in ("Allow", "WWW-Authenticate", "Retry-After"):
                if header in response:
                    replaced[header] = response[header]
            return replaced
        return response
