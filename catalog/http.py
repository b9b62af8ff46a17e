"""HTTP helpers shared by the catalog and retrieval API views (neither imports the other's).

Every error body is {"error": message} (plus "fields" for per-field validation errors):
400 for bad parameters, 401 for a missing or wrong API key, 404 for unknown ids,
429 when throttled, 503 when the search index is unavailable.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from rest_framework import status
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


def float_param(params: Mapping[str, str], name: str, default: float, low: float,
                high: float) -> float:
    """Return a number query parameter within [low, high], or raise ParameterError."""
    raw = params.get(name)
    if raw in (None, ""):
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
