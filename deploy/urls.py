"""Top-level URLs: admin, the search API and the schema."""

from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import path

from retrieval import api as retrieval_api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/search", retrieval_api.search_view, name="api-search"),
]
if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
