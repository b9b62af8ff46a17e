"""The search page: a server-rendered shell; search.js calls /api/search and plays moments."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from .api import SEARCH_PARAMETER_NAMES

# The facets the page asks /api/search for, when the API offers `facets=`.
PAGE_FACETS = ("tags", "language", "kind")


@require_safe
def search_page(request: HttpRequest) -> HttpResponse:
    """Render the search page (a ?q= in the URL is searched on load, with its filters and
    ?like= composed)."""
    facets = ",".join(PAGE_FACETS) if "facets" in SEARCH_PARAMETER_NAMES else ""
    return render(request, "retrieval/search.html",
                  {"query": request.GET.get("q", "")[:500], "facets": facets,
                   "like": request.GET.get("like", "")[:36]})
