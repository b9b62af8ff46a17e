"""Django admin for editors: upload videos, edit metadata, watch processing, search moments.

The change page shows a player, the keyframes and the transcript with clickable timestamps
(catalog/static/catalog/video_admin.js seeks the player). The changelist search box runs the
hybrid search (retrieval.search) and lists each video's best moments; title matches of
videos not indexed yet are kept below the ranked ones.
"""

from __future__ import annotations

import hashlib
import json
import secrets

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.main import ORDER_VAR, ChangeList
from django.db import transaction
from django.db.models import Case, IntegerField, Q, QuerySet, TextField, Value, When
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from .models import (
    ApiKey,
    Keyframe,
    Segment,
    SegmentKind,
    Transcript,
    Video,
    VideoStatus,
    WatchEvent,
)
from .queries import all_tags, with_any_tag

UPLOAD_TYPES = ("video/", "audio/")
GENERIC_TYPES = {"application/octet-stream", ""}  # browsers that do not know the type
METADATA_FIELDS = {"title", "description", "tags"}
INDEXED_FIELDS = {"published", "language"}
ADMIN_SEARCH_RESULTS = 100
STATUS_COLOURS = {VideoStatus.PENDING: "#777", VideoStatus.PROCESSING: "#2f6fbf",
                  VideoStatus.READY: "#2e8540", VideoStatus.INDEX_PENDING: "#b7791f",
                  VideoStatus.FAILED: "#c0392b"}


def clock(seconds: float | None) -> str:
    """Format seconds as m:ss."""
    whole = int(max(seconds or 0.0, 0.0))
    return f"{whole // 60}:{whole % 60:02d}"


def upload_suffixes() -> set[str]:
    """Return the file name suffixes the pipeline accepts."""
    from workers.ingest import MEDIA_SUFFIXES

    return set(MEDIA_SUFFIXES)


def auto_tag_label(entry: object) -> str:
    """Return the label of an auto tag (a string, or a dict with a label)."""
    if isinstance(entry, dict):
        return str(entry.get("label") or entry.get("name") or entry.get("tag") or entry)
    return str(entry)


class TagsField(forms.CharField):
    """Tags typed as comma-separated text, stored as a JSON list."""

    def prepare_value(self, value):
        """Show a list as "a, b, c"."""
        if isinstance(value, list):
            return ", ".join(str(tag) for tag in value)
        if isinstance(value, str) and value.startswith("["):
            try:
                return ", ".join(str(tag) for tag in json.loads(value))
            except ValueError:
                return value
        return value

    def to_python(self, value) -> list[str]:
        """Split on commas, trim, drop empties and duplicates (case-insensitive)."""
        text = super().to_python(value) or ""
        if "\x00" in text:  # PostgreSQL refuses it; the list's text hides it from validators
            raise forms.ValidationError("Tags cannot contain NUL characters (\\u0000).")
        tags: dict[str, str] = {}
        for part in text.split(","):
            tag = part.strip()
            if len(tag) > 60:
                raise forms.ValidationError(f"The tag “{tag[:20]}…” is longer than 60 "
                                            "characters.")
            if tag:
                tags.setdefault(tag.lower(), tag)
        return list(tags.values())


class VideoAdminForm(forms.ModelForm):
    """Upload checks (size, type, duplicates) and editable tags and auto tags."""

    tags = TagsField(required=False, help_text="Comma-separated, e.g. “cooking, italian”.")
    auto_tags = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Visual concepts found by the pipeline; untick one to remove it.")

    class Meta:
        model = Video
        fields = ("source", "title", "description", "tags", "auto_tags", "language",
                  "published")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        labels = [auto_tag_label(entry) for entry in self.instance.auto_tags or []]
        self.fields["auto_tags"].choices = [(label, label) for label in labels]
        self.initial["auto_tags"] = labels
        self.digest = ""

    def clean_source(self):
        """Refuse files that are too large, not audio/video, empty or already uploaded."""
        upload = self.cleaned_data.get("source")
        if upload is None or not hasattr(upload, "content_type"):
            return upload  # unchanged (change form) or missing (the field says so)
        name, limit = upload.name, settings.REELSEARCH["MAX_UPLOAD_BYTES"]
        suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
        allowed = upload_suffixes()
        content_type = (upload.content_type or "").lower()
        if upload.size == 0:
            raise forms.ValidationError(f"“{name}” is empty (0 bytes): upload the file again.")
        if upload.size > limit:
            raise forms.ValidationError(
                f"“{name}” is {filesizeformat(upload.size)}; the upload limit is "
                f"{filesizeformat(limit)} (REELSEARCH_MAX_UPLOAD_BYTES). Trim or re-encode it, "
                "or register it from disk with `manage.py ingest`.")
        if suffix not in allowed or not (content_type.startswith(UPLOAD_TYPES)
                                         or content_type in GENERIC_TYPES):
            raise forms.ValidationError(
                f"“{name}” is not a video or audio file (type {content_type or 'unknown'}). "
                f"Upload one of: {', '.join(sorted(allowed))}.")
        self.digest = self._sha256(upload)
        existing = Video.objects.filter(sha256=self.digest).exclude(pk=self.instance.pk).first()
        if existing is not None:
            raise forms.ValidationError(
                f"This file is already in the catalog as “{existing.title}” ({existing.pk}).")
        return upload

    @staticmethod
    def _sha256(upload) -> str:
        digest = hashlib.sha256()
        for chunk in upload.chunks():
            digest.update(chunk)
        upload.seek(0)
        return digest.hexdigest()

    def clean_auto_tags(self) -> list:
        """Keep the original entries whose label is still ticked."""
        kept = set(self.cleaned_data.get("auto_tags") or [])
        return [entry for entry in self.instance.auto_tags or []
                if auto_tag_label(entry) in kept]

    def save(self, commit: bool = True) -> Video:
        """Record the upload's original name, size and SHA-256."""
        video = super().save(commit=False)
        if self.digest:
            upload = self.cleaned_data["source"]
            video.sha256, video.size_bytes = self.digest, upload.size
            video.original_name = upload.name[:300]
        if commit:
            video.save()
        return video


class TagFilter(admin.SimpleListFilter):
    """Filter by one editor tag."""

    title = "tag"
    parameter_name = "tag"

    def lookups(self, request, model_admin) -> list[tuple[str, str]]:
        """Offer every tag in use."""
        return [(tag, tag) for tag in all_tags()]

    def queryset(self, request, queryset):
        """Keep videos with the chosen tag."""
        return with_any_tag(queryset, [self.value()]) if self.value() else queryset


class SegmentInline(admin.TabularInline):
    model = Segment
    fields = ("kind", "start", "end", "text", "embedding_model")
    readonly_fields = fields
    ordering = ("start", "kind")
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        """Segments come from the pipeline only."""
        return False


def _sure_moments(moments: list) -> list:
    """Hide low-tier moments (keep the best one when every moment is low)."""
    sure = [m for m in moments if m.tier != "low"]
    return sure or moments[:1]


class RankedChangeList(ChangeList):
    """Order by the hybrid search rank while searching, unless a column sort is chosen."""

    def get_queryset(self, request, exclude_parameters=None):
        """Re-order search results by rank (see VideoAdmin.get_search_results)."""
        queryset = super().get_queryset(request, exclude_parameters)
        if ORDER_VAR not in self.params and "search_rank" in queryset.query.annotations:
            return queryset.order_by("search_rank", "-created_at", "-pk")
        return queryset


@admin.register(Video)
class VideoAdmin(admin.ModelAdmin):
    form = VideoAdminForm
    list_display = ("title", "status_badge", "stage", "progress_bar", "duration_display",
                    "language", "tag_list", "published", "created_at")
    list_filter = ("status", "language", TagFilter, "published")
    search_fields = ("title", "description", "original_name")
    search_help_text = ("Hybrid search over transcripts and metadata, with the best moments; "
                        "title matches of videos not indexed yet follow.")
    list_per_page = 50
    actions = ("reprocess", "reindex")
    processing_fields = ("status_badge", "stage", "progress_bar", "error", "notices",
                         "stage_timings", "model_versions", "created_at", "updated_at")
    file_fields = ("source", "original_name", "sha256", "size_bytes", "duration", "width",
                   "height", "has_video", "has_audio")
    preview_fields = ("player", "chapter_list", "keyframe_strip", "transcript")

    class Media:
        css = {"all": ("catalog/video_admin.css",)}
        js = ("catalog/video_admin.js",)

    # -- forms and pages -------------------------------------------------------------------
    def get_fieldsets(self, request, obj=None):
        """Upload and metadata when adding; everything, with a preview, when changing."""
        metadata = ("title", "description", "tags", "language", "published")
        if obj is None:
            return ((None, {"fields": ("source", *metadata)}),)
        return (
            ("Metadata", {"fields": (*metadata[:3], "auto_tags", *metadata[3:])}),
            ("Processing", {"fields": self.processing_fields}),
            ("Preview", {"fields": self.preview_fields}),
            ("File", {"fields": self.file_fields, "classes": ("collapse",)}),
        )

    def get_readonly_fields(self, request, obj=None):
        """Processing state is read-only; the file cannot be swapped (reprocess instead)."""
        if obj is None:
            return ()
        return (*self.processing_fields, *self.preview_fields, *self.file_fields)

    def get_inlines(self, request, obj):
        """Show the segments on the change page."""
        return (SegmentInline,) if obj is not None else ()

    def save_model(self, request, obj: Video, form, change: bool) -> None:
        """Save, and on a metadata change bring the search index up to date."""
        super().save_model(request, obj, form, change)
        if not change:
            self.message_user(request, "Uploaded; processing has been queued.")
            return
        changed = set(form.changed_data)
        if obj.status not in (VideoStatus.READY, VideoStatus.INDEX_PENDING):
            return  # the running pipeline picks the new metadata up, or a reprocess will
        if changed & METADATA_FIELDS:
            self._refresh_metadata_segment(obj)
            self._enqueue(obj, "embed")
            self.message_user(request, "The metadata will be re-embedded and re-indexed.")
        elif changed & INDEXED_FIELDS:
            self._enqueue(obj, "index")
            self.message_user(request, "The search index will be updated.")

    @staticmethod
    def _refresh_metadata_segment(video: Video) -> None:
        from workers.pipeline.segment import metadata_text

        text = metadata_text(video.title, video.description, video.tags)
        Segment.objects.filter(video=video, kind=SegmentKind.METADATA).update(
            text=text, text_vector=None, embedding_model="")

    @staticmethod
    def _enqueue(video: Video, first_stage: str | None = None) -> None:
        from workers.tasks import enqueue_video

        video_id = str(video.pk)
        transaction.on_commit(lambda: enqueue_video(video_id, first_stage))

    # -- actions ---------------------------------------------------------------------------
    @admin.action(description="Reprocess from the first stage")
    def reprocess(self, request: HttpRequest, queryset: QuerySet[Video]) -> None:
        """Run the whole pipeline again for the selected videos."""
        for video in queryset:
            self._enqueue(video)
        self.message_user(request, f"Queued {queryset.count()} video(s) for processing "
                                   "from the first stage.")

    @admin.action(description="Reindex (send segments to the search backend again)")
    def reindex(self, request: HttpRequest, queryset: QuerySet[Video]) -> None:
        """Replace the selected videos' documents in the index."""
        from retrieval.backends import BackendUnavailable
        from retrieval.indexing import index_video

        ready = queryset.filter(status__in=[VideoStatus.READY, VideoStatus.INDEX_PENDING])
        skipped = queryset.count() - ready.count()
        done, failed = 0, []
        for video in ready:
            try:
                report = index_video(video)
            except BackendUnavailable as exc:
                self.message_user(request, f"The search index is unavailable ({exc}); try "
                                           "again later or run `manage.py reindex --pending`.",
                                  messages.ERROR)
                return
            if report.ok:
                Video.objects.filter(pk=video.pk).update(status=VideoStatus.READY, error="")
                done += 1
            else:
                failed.append(f"{video.title}: {len(report.failed)} segment(s) not indexed")
        self._report_reindex(request, done, skipped, failed)

    def _report_reindex(self, request, done: int, skipped: int, failed: list[str]) -> None:
        self.message_user(request, f"Reindexed {done} video(s).")
        if skipped:
            self.message_user(request, f"Skipped {skipped} video(s) that are not processed "
                                       "yet (reprocess them instead).", messages.WARNING)
        for line in failed:
            self.message_user(request, line, messages.ERROR)

    # -- hybrid search in the changelist ---------------------------------------------------
    def get_search_results(self, request, queryset, search_term):
        """Rank by the hybrid search (with moments); append plain title matches."""
        term = search_term.strip()
        if not term:
            return queryset, False
        ranked, moments = self._hybrid(request, term)
        text_matches, _ = super().get_search_results(request, queryset, term)
        matches = queryset.filter(Q(pk__in=ranked) | Q(pk__in=text_matches.values("pk")))
        rank = Case(*[When(pk=pk, then=Value(i)) for i, pk in enumerate(ranked)],
                    default=Value(len(ranked)), output_field=IntegerField())
        found = Case(*[When(pk=pk, then=Value(json.dumps(moments[pk]))) for pk in ranked],
                     default=Value(""), output_field=TextField())
        return matches.annotate(search_rank=rank, search_moments=found), False

    def _hybrid(self, request, term: str) -> tuple[list, dict]:
        from retrieval.backends import BackendUnavailable
        from retrieval.documents import Filters
        from retrieval.search import SearchRequest, search

        try:
            response = search(SearchRequest(query=term[:500], k=ADMIN_SEARCH_RESULTS,
                                            filters=Filters(), moments=3))
        except BackendUnavailable as exc:
            self.message_user(request, f"The search index is unavailable ({exc}); showing "
                                       "title matches only.", messages.WARNING)
            return [], {}
        moments = {match.video.pk: [{"start": m.start, "end": m.end, "kind": m.kind,
                                     "snippet": m.snippet}
                                    for m in _sure_moments(match.moments)]
                   for match in response.results}
        return [match.video.pk for match in response.results], moments

    def get_changelist(self, request, **kwargs):
        """Use a changelist that orders search results by their hybrid rank."""
        return RankedChangeList

    def get_list_display(self, request):
        """Add the moments column while searching."""
        if request.GET.get("q", "").strip():
            return ("title", "moments", *self.list_display[1:])
        return self.list_display

    # -- columns and read-only fields ------------------------------------------------------
    @admin.display(description="moments")
    def moments(self, video: Video) -> str:
        """Link each best moment to the change page, which seeks the player there."""
        found = json.loads(getattr(video, "search_moments", "") or "[]")
        if not found:
            return "—"
        url = reverse("admin:catalog_video_change", args=[video.pk])
        return format_html("<ul class='rs-moments'>{}</ul>", format_html_join(
            "", "<li><a href='{}#t={}'>{}</a> <small>{}</small> {}</li>",
            ((url, round(m["start"], 2), clock(m["start"]), m["kind"], m["snippet"])
             for m in found)))

    @admin.display(description="status", ordering="status")
    def status_badge(self, video: Video) -> str:
        """Show the status as a coloured label."""
        return format_html("<span class='rs-status' style='background:{}'>{}</span>",
                           STATUS_COLOURS.get(video.status, "#777"),
                           video.get_status_display())

    @admin.display(description="progress", ordering="progress")
    def progress_bar(self, video: Video) -> str:
        """Show progress as a bar and a percentage."""
        percent = round(100 * max(0.0, min(video.progress or 0.0, 1.0)))
        return format_html("<progress class='rs-progress' value='{}' max='100'>{}%</progress> "
                           "{}%", percent, percent, percent)

    @admin.display(description="duration", ordering="duration")
    def duration_display(self, video: Video) -> str:
        """Show the duration as m:ss."""
        return clock(video.duration) if video.duration else "—"

    @admin.display(description="tags")
    def tag_list(self, video: Video) -> str:
        """Show the editor tags."""
        return ", ".join(str(tag) for tag in video.tags) or "—"

    @admin.display(description="player")
    def player(self, video: Video) -> str:
        """An HTML5 player the keyframes and transcript seek."""
        if not video.source:
            return "—"
        if not Transcript.objects.filter(video=video).exists():
            return format_html("<video id='rs-player' class='rs-player' src='{}' controls "
                               "preload='metadata'></video>", video.source.url)
        return format_html(
            "<video id='rs-player' class='rs-player' src='{}' controls preload='metadata'>"
            "<track kind='subtitles' src='{}' srclang='{}' label='Transcript' default>"
            "</video>", video.source.url,
            reverse("api-video-subtitles-vtt", args=[video.pk]), video.language or "en")

    @admin.display(description="chapters")
    def chapter_list(self, video: Video) -> str:
        """The automatic chapters; a click plays from a chapter's start."""
        if not video.chapters:
            return ("None: chapters are made for videos over "
                    f"{clock(settings.REELSEARCH['CHAPTER_MIN_VIDEO_SECONDS'])} with topic shifts.")
        return format_html("<ol class='rs-chapters'>{}</ol>", format_html_join(
            "", "<li><button type='button' class='rs-seek' data-seek='{}'>{}</button> {}</li>",
            ((c["start"], clock(c["start"]), c["title"]) for c in video.chapters)))

    @admin.display(description="keyframes")
    def keyframe_strip(self, video: Video) -> str:
        """Keyframe thumbnails; a click plays from that frame."""
        frames = [k for k in Keyframe.objects.filter(video=video).order_by("time") if k.image]
        if not frames:
            return "No keyframes."
        return format_html("<div class='rs-keyframes'>{}</div>", format_html_join(
            "", "<button type='button' class='rs-seek rs-keyframe' data-seek='{}'>"
                "<img src='{}' alt='frame at {}'><span>{}</span></button>",
            ((round(k.time, 2), k.image.url, clock(k.time), clock(k.time)) for k in frames)))

    @admin.display(description="transcript")
    def transcript(self, video: Video) -> str:
        """The timed segments in order; a click on a timestamp plays from there."""
        segments = (Segment.objects.filter(video=video).exclude(kind=SegmentKind.METADATA)
                    .order_by("start", "kind"))
        if not segments:
            return "No transcript (yet)."
        return format_html("<div class='rs-transcript'>{}</div>", format_html_join(
            "", "<p><button type='button' class='rs-seek' data-seek='{}'>{}</button> "
                "<small>{}</small> {}</p>",
            ((round(s.start, 2), clock(s.start), s.kind, s.text) for s in segments)))


@admin.register(WatchEvent)
class WatchEventAdmin(admin.ModelAdmin):
    list_display = ("user_id", "video", "position", "completed", "created_at")
    list_filter = ("completed",)
    search_fields = ("user_id",)
    raw_id_fields = ("video",)


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ("name", "active")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ("name", "prefix", "active", "created_at")
    readonly_fields = ("prefix", "created_at")

    def save_model(self, request, obj: ApiKey, form, change: bool) -> None:
        """On creation, generate the key and show it once."""
        if not change:
            raw = secrets.token_urlsafe(32)
            obj.prefix, obj.hashed_key = raw[:8], ApiKey.hash(raw)
            super().save_model(request, obj, form, change)
            self.message_user(request, f"The key for “{obj.name}” is {raw} — copy it now, it "
                                       "is not stored and will not be shown again.",
                              messages.WARNING)
            return
        super().save_model(request, obj, form, change)
