"""Catalog models. They store state; they never run ffmpeg or models (the pipeline does)."""

from __future__ import annotations

import hashlib
import secrets
import uuid

import numpy as np
from django.db import models


class VideoStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    READY = "ready", "Ready"
    INDEX_PENDING = "index_pending", "Index pending"
    FAILED = "failed", "Failed"


class Video(models.Model):
    """A catalog entry and the processing state of its source file."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    auto_tags = models.JSONField(default=list, blank=True)  # strongest visual concepts
    language = models.CharField(max_length=16, default="en", blank=True)
    source = models.FileField(upload_to="videos/%Y/%m/", max_length=500)
    original_name = models.CharField(max_length=300, blank=True)
    sha256 = models.CharField(max_length=64, db_index=True, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    has_video = models.BooleanField(default=True)
    has_audio = models.BooleanField(default=False)
    status = models.CharField(
        max_length=16, choices=VideoStatus.choices, default=VideoStatus.PENDING, db_index=True
    )
    stage = models.CharField(max_length=32, blank=True)
    progress = models.FloatField(default=0.0)
    error = models.TextField(blank=True)
    notices = models.JSONField(default=list, blank=True)
    stage_timings = models.JSONField(default=dict, blank=True)
    # Starts of the current stage that have not ended (workers/pipeline run_stage): more than
    # one means a worker died mid-stage; past REELSEARCH["MAX_ATTEMPTS"] the video fails.
    attempts = models.PositiveIntegerField(default=0)
    # The two branches that run concurrently between probe and embed (workers/pipeline/
    # branches.py): the stage each is at ("" before probe ends, "done" once it ended), how
    # far it got (0..1) and its own count of starts that never ended.
    visual_stage = models.CharField(max_length=32, blank=True)
    visual_progress = models.FloatField(default=0.0)
    visual_attempts = models.PositiveIntegerField(default=0)
    audio_stage = models.CharField(max_length=32, blank=True)
    audio_progress = models.FloatField(default=0.0)
    audio_attempts = models.PositiveIntegerField(default=0)
    model_versions = models.JSONField(default=dict, blank=True)
    # Automatic chapters of a long video, [{"start", "end", "title"}] in order, the first at
    # 0 (workers/pipeline/chapters.py); empty for short videos and before processing.
    chapters = models.JSONField(default=list, blank=True)
    published = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return self.title

    @property
    def is_done(self) -> bool:
        """Return True when processing has finished, successfully or not."""
        return self.status in {VideoStatus.READY, VideoStatus.FAILED, VideoStatus.INDEX_PENDING}

    def filter_fields(self) -> dict[str, object]:
        """Return the values a search backend filters on."""
        return {
            "tags": [str(tag).lower() for tag in self.tags],
            "language": self.language or "",
            "duration": float(self.duration or 0.0),
            "published": bool(self.published),
        }


class SegmentKind(models.TextChoices):
    SPEECH = "speech", "Speech"
    SENTENCE = "sentence", "Spoken sentence"  # 2-8 s units for moments (segment.py)
    OCR = "ocr", "On-screen text"
    VISUAL = "visual", "Visual"
    METADATA = "metadata", "Metadata"


class Segment(models.Model):
    """A timestamped piece of a video with its text and embedding."""

    id = models.CharField(primary_key=True, max_length=80)  # "<video>:<kind>:<n>", stable
    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="segments")
    kind = models.CharField(max_length=16, choices=SegmentKind.choices)
    start = models.FloatField()
    end = models.FloatField()
    text = models.TextField(blank=True)
    text_vector = models.BinaryField(null=True, blank=True)
    visual_vector = models.BinaryField(null=True, blank=True)  # CLIP image embedding
    visual_model = models.CharField(max_length=120, blank=True)
    source_model = models.CharField(max_length=120, blank=True)  # e.g. the ASR model
    embedding_model = models.CharField(max_length=120, blank=True)
    # A region of the frame a visual segment is about: [x, y, width, height] as fractions
    # of the frame (region concepts, workers/pipeline/concepts.py); null = the whole frame.
    box = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("video", "kind", "start")
        indexes = [models.Index(fields=["video", "kind"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.start:.1f}-{self.end:.1f}s"

    @staticmethod
    def make_id(video_id: object, kind: str, index: int) -> str:
        """Build the stable id of the index-th segment of a kind."""
        return f"{video_id}:{kind}:{index}"

    def vector(self) -> np.ndarray | None:
        """Return the stored text vector as float32, or None."""
        if not self.text_vector:
            return None
        return np.frombuffer(bytes(self.text_vector), dtype=np.float32)


class Transcript(models.Model):
    """The recognised words of a video with their times (subtitles are made from them)."""

    video = models.OneToOneField(Video, on_delete=models.CASCADE, primary_key=True,
                                 related_name="transcript_words")
    language = models.CharField(max_length=16, blank=True)
    model = models.CharField(max_length=120, blank=True)
    words = models.JSONField(default=list, blank=True)  # [[start, end, text], ...] in order
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"transcript of {self.video_id} ({len(self.words)} words)"

    def timed_words(self) -> list[tuple[float, float, str]]:
        """Return the words as (start, end, text) tuples."""
        return [(float(start), float(end), str(text)) for start, end, text in self.words]


class WatchEvent(models.Model):
    """A user watched (part of) a video."""

    user_id = models.CharField(max_length=120, db_index=True)
    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="watch_events")
    position = models.FloatField(default=0.0)
    completed = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.user_id} watched {self.video_id} to {self.position:.0f}s"


class ApiKey(models.Model):
    """A key that authorizes writes and per-user endpoints; only its hash is stored."""

    name = models.CharField(max_length=120)
    prefix = models.CharField(max_length=12, db_index=True)
    hashed_key = models.CharField(max_length=64, unique=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash(raw: str) -> str:
        """Return the stored form of a raw key."""
        return hashlib.sha256(raw.encode()).hexdigest()

    @classmethod
    def issue(cls, name: str) -> tuple[ApiKey, str]:
        """Create a key and return it with its raw value (shown once)."""
        raw = secrets.token_urlsafe(32)
        key = cls.objects.create(name=name, prefix=raw[:8], hashed_key=cls.hash(raw))
        return key, raw


class Keyframe(models.Model):
    """A representative frame of a scene, stored as a small JPEG thumbnail."""

    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="keyframes")
    time = models.FloatField()
    image = models.ImageField(upload_to="keyframes/%Y/%m/", max_length=500)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("video", "time")
        constraints = [models.UniqueConstraint(fields=["video", "time"], name="unique_keyframe")]

    def __str__(self) -> str:
        return f"{self.video} @ {self.time:.1f}s"
