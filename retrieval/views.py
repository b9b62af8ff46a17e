"""The search page: a server-rendered shell; search.js calls /api/search and plays moments."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe


@require_safe
def search_page(request: HttpRequest) -> HttpResponse:
    """Render the search page (a ?q= in the URL is searched on load, with ?like= composed)."""
    return render(request, "retrieval/search.html", {"query": request.GET.get("q", "")[:500],
                                                     "like": request.GET.get("like", "")[:36]})
