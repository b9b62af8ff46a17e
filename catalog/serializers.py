"""REST representations of catalog rows: videos (summary and detail) and watch events."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import SegmentKind, Transcript, Video, VideoStatus, WatchEvent
from .queries import frame_url, keyframes_by_video, nearest_frame

MAX_POSITION_SECONDS = 7 * 24 * 3600.0

# Media urls are MEDIA_URL-relative paths (/media/...) unless MEDIA_URL is absolute: a plain
# string, no `format: uri`.
MEDIA_URL_SCHEMA = {"type": "string", "nullable": True,
                    "description": "Media url (a path under MEDIA_URL); null when absent."}

# A moment: a timed segment (video detail without q), or a ranked one with its score,
# relevance, tier and thumbnail (search results, video detail with q).
MOMENT_SCHEMA = {
    "type": "object", "required": ["segment_id", "kind", "start", "end", "snippet"],
    "properties": {
        "segment_id": {"type": "string"}, "kind": {"type": "string"},
        "start": {"type": "number"}, "end": {"type": "number"}, "snippet": {"type": "string"},
        "score": {"type": "number"}, "relevance": {"type": "number", "nullable": True},
        "tier": {"type": "string"}, "thumbnail": MEDIA_URL_SCHEMA,
        "highlights": {
            "type": "array",
            "description": "What to mark in snippet: [start, end) character offsets, in order "
                           "(search moments only).",
            "items": {"type": "array", "items": {"type": "integer", "minimum": 0},
                      "minItems": 2, "maxItems": 2}},
        "match": {"type": "string", "enum": ["terms", "sentence", "none"],
                  "description": "What highlights mark: query words BM25 matched (stemmed "
                                 "forms and typo corrections included), the best-scoring "
                                 "sentence of a match found by meaning alone, or nothing."},
        "explain": {"type": "object", "additionalProperties": True},
        "box": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4,
                "description": "A region concept's [x, y, width, height], fractions of the "
                               "frame (absent for the whole frame)."},
    },
}


CHAPTER_SCHEMA = {
    "type": "object", "required": ["start", "end", "title"],
    "properties": {"start": {"type": "number", "description": "Seconds; the first is 0."},
                   "end": {"type": "number"}, "title": {"type": "string"}},
}


class VideoSummarySerializer(serializers.ModelSerializer):
    """A video as lists show it: metadata, media url and a thumbnail."""

    url = serializers.SerializerMethodField()
    thumbnail = serializers.SerializerMethodField()

    class Meta:
        model = Video
        fields = ("id", "title", "description", "tags", "language", "duration", "url",
                  "thumbnail", "created_at")
        read_only_fields = fields

    @extend_schema_field(MEDIA_URL_SCHEMA)
    def get_url(self, video: Video) -> str | None:
        """Return the media url of the source file."""
        return video.source.url if video.source else None

    @extend_schema_field(MEDIA_URL_SCHEMA)
    def get_thumbnail(self, video: Video) -> str | None:
        """Return the first keyframe's url, or None when the video has no keyframes."""
        frames = self.context.get("frames")
        if frames is None:
            frames = keyframes_by_video([video.pk])
        return nearest_frame(frames.get(str(video.pk), []))


class VideoDetailSerializer(VideoSummarySerializer):
    """A video with its processing state, keyframes, transcript and moments."""

    keyframes = serializers.SerializerMethodField()
    chapters = serializers.SerializerMethodField()
    subtitles = serializers.SerializerMethodField()
    moments = serializers.SerializerMethodField()

    class Meta(VideoSummarySerializer.Meta):
        fields = (*VideoSummarySerializer.Meta.fields, "auto_tags", "width", "height",
                  "has_video", "has_audio", "status", "keyframes", "chapters", "subtitles",
                  "moments")
        read_only_fields = fields

    @extend_schema_field({"type": "array", "items": CHAPTER_SCHEMA,
                          "description": "Automatic chapters of a video over five minutes, "
                                         "in order (empty otherwise)."})
    def get_chapters(self, video: Video) -> list[dict]:
        """Return the automatic chapters (start, end, title), in order."""
        return list(video.chapters or [])

    @extend_schema_field({
        "type": "object", "nullable": True, "required": ["vtt", "srt"],
        "properties": {"vtt": {"type": "string"}, "srt": {"type": "string"}},
        "description": "Urls of the subtitles made from the transcript; null when no "
                       "transcript is stored (reprocess the video)."})
    def get_subtitles(self, video: Video) -> dict | None:
        """Return the subtitle urls when the video has a stored transcript."""
        if not Transcript.objects.filter(video=video).exists():
            return None
        base = reverse("api-video", args=[video.pk])
        return {"vtt": f"{base}/subtitles.vtt", "srt": f"{base}/subtitles.srt"}

    @extend_schema_field({"type": "array", "items": {
        "type": "object", "required": ["time", "url"],
        "properties": {"time": {"type": "number"}, "url": {"type": "string"}}}})
    def get_keyframes(self, video: Video) -> list[dict]:
        """Return every keyframe's time and image url."""
        frames = keyframes_by_video([video.pk]).get(str(video.pk), [])
        return [{"time": round(time, 2), "url": frame_url(name)} for time, name in frames]

    @extend_schema_field({"type": "array", "items": MOMENT_SCHEMA})
    def get_moments(self, video: Video) -> list[dict]:
        """Return the moments given in the context, else every timed segment in order."""
        if "moments" in self.context:
            return self.context["moments"]
        segments = video.segments.exclude(kind=SegmentKind.METADATA).order_by("start", "kind")
        return [{"segment_id": s.pk, "kind": s.kind, "start": round(s.start, 2),
                 "end": round(s.end, 2), "snippet": s.text} for s in segments]


class RecommendationSerializer(serializers.Serializer):
    """A recommended video with its score and the reason it was picked."""

    video = VideoSummarySerializer()
    score = serializers.FloatField()
    reason = serializers.CharField()


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": 120, "pattern": r"\S"})
class UserIdField(serializers.CharField):
    """A user id: 1 to 120 characters, not only spaces (it is trimmed)."""


class WatchEventSerializer(serializers.ModelSerializer):
    """A user watched a video up to a position (seconds), possibly to the end."""

    user = UserIdField(source="user_id", max_length=120, trim_whitespace=True)
    video = serializers.UUIDField(source="video_id")
    position = serializers.FloatField(min_value=0.0, max_value=MAX_POSITION_SECONDS)
    completed = serializers.BooleanField(default=False)

    class Meta:
        model = WatchEvent
        fields = ("id", "user", "video", "position", "completed", "created_at")
        read_only_fields = ("id", "created_at")

    def validate_video(self, value):
        """Accept only a published video that exists."""
        if not Video.objects.filter(pk=value, published=True).exclude(
                status=VideoStatus.FAILED).exists():
            raise serializers.ValidationError(f"No published video with id {value}.")
        return value
