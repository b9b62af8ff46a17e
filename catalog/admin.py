"""Django admin for editors: the catalog, its processing state and segments."""

from django.contrib import admin

from .models import ApiKey, Segment, Video, WatchEvent


class SegmentInline(admin.TabularInline):
    model = Segment
    fields = ("kind", "start", "end", "text", "embedding_model")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False


@admin.register(Video)
class VideoAdmin(admin.ModelAdmin):
    list_display = ("title", "status", "stage", "progress", "duration", "language", "published",
                    "created_at")
    list_filter = ("status", "language", "published")
    search_fields = ("title", "description")
    readonly_fields = ("sha256", "size_bytes", "duration", "width", "height", "has_video",
                       "has_audio", "status", "stage", "progress", "error", "notices",
                       "stage_timings", "model_versions", "created_at", "updated_at")
    inlines = (SegmentInline,)


@admin.register(WatchEvent)
class WatchEventAdmin(admin.ModelAdmin):
    list_display = ("user_id", "video", "position", "completed", "created_at")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "active", "created_at")
    readonly_fields = ("prefix", "hashed_key")
