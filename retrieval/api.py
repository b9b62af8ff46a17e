"""HTTP search endpoint (JSON); parameters are validated into a SearchRequest."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from .backends import BackendUnavailable
from .params import ParameterError, parse_request
from .search import search
from .serialize import response_json

SEARCH_PARAMETERS = [
    OpenApiParameter("q", OpenApiTypes.STR, required=True, description="What to look for."),
    OpenApiParameter("k", OpenApiTypes.INT, description="Videos per page (1-100, default 10)."),
    OpenApiParameter("page", OpenApiTypes.INT, description="Page number, from 1."),
    OpenApiParameter("fusion", OpenApiTypes.STR,
                     description="arithmetic | geometric | harmonic | rrf"),
    OpenApiParameter("normalization", OpenApiTypes.STR, description="min_max | z_score | l2"),
    OpenApiParameter("weights", OpenApiTypes.STR, description="e.g. bm25=0.3,text=0.7"),
    OpenApiParameter("explain", OpenApiTypes.BOOL, description="Per-signal scores and timings."),
    OpenApiParameter("tags", OpenApiTypes.STR, description="Comma-separated; any of them."),
    OpenApiParameter("language", OpenApiTypes.STR),
    OpenApiParameter("min_duration", OpenApiTypes.NUMBER),
    OpenApiParameter("max_duration", OpenApiTypes.NUMBER),
]


@extend_schema(parameters=SEARCH_PARAMETERS, responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
@permission_classes([AllowAny])
def search_view(request: Request) -> Response:
    """Search published videos and their moments."""
    try:
        search_request = parse_request(request.query_params, published_default=True)
    except ParameterError as exc:
        return Response({"error": str(exc)}, status=400)
    try:
        return Response(response_json(search(search_request)))
    except BackendUnavailable as exc:
        return Response({"error": f"The search index is unavailable: {exc}"}, status=503)
