"""Top-level URLs: the search page, admin, the REST API, its schema and docs, and media."""

import re

from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import path, re_path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)

from catalog import api as catalog_api
from catalog.media import serve_media
from retrieval import api as retrieval_api
from retrieval.views import search_page

urlpatterns = [
    path("", search_page, name="search-page"),
    path("admin/", admin.site.urls),
    path("api/search", retrieval_api.search_view, name="api-search"),
    path("api/suggest", retrieval_api.suggest_view, name="api-suggest"),
    path("api/videos", catalog_api.video_list, name="api-videos"),
    path("api/videos/<str:video_id>", catalog_api.video_detail, name="api-video"),
    path("api/videos/<str:video_id>/subtitles.vtt", catalog_api.video_subtitles_vtt,
         name="api-video-subtitles-vtt"),
    path("api/videos/<str:video_id>/subtitles.srt", catalog_api.video_subtitles_srt,
         name="api-video-subtitles-srt"),
    path("api/videos/<str:video_id>/similar", retrieval_api.similar_view,
         name="api-video-similar"),
    path("api/users/<str:user_id>/recommendations", retrieval_api.user_recommendations_view,
         name="api-user-recommendations"),
    path("api/watch-events", catalog_api.watch_events, name="api-watch-events"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]
urlpatterns += staticfiles_urlpatterns()  # DEBUG only; production serves STATIC_ROOT
if settings.REELSEARCH.get("SERVE_MEDIA", settings.DEBUG) and "://" not in settings.MEDIA_URL:
    # Range-capable, so <video> players can seek; production serves MEDIA_URL itself.
    prefix = re.escape(settings.MEDIA_URL.lstrip("/"))
    urlpatterns.append(re_path(rf"^{prefix}(?P<path>.+)$", serve_media, name="media"))
