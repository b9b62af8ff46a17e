"""Catalog queries shared by the admin and the API (tags live in a JSON list)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.core.files.storage import FileSystemStorage
from django.db.models import QuerySet

from .models import Keyframe, Video

_PLAIN = re.compile(r"[A-Za-z0-9_.\-/]+")  # needs no percent-encoding


def with_any_tag(queryset: QuerySet[Video], tags: Iterable[str]) -> QuerySet[Video]:
    """Keep videos having any of the tags (case-insensitive); works on every database."""
    wanted = {str(tag).strip().lower() for tag in tags if str(tag).strip()}
    if not wanted:
        return queryset
    matching = [pk for pk, video_tags in queryset.values_list("pk", "tags")
                if wanted & {str(tag).lower() for tag in video_tags or []}]
    return queryset.filter(pk__in=matching)


def all_tags(queryset: QuerySet[Video] | None = None) -> list[str]:
    """Return the distinct lower-cased editor tags in use, sorted."""
    queryset = Video.objects.all() if queryset is None else queryset
    found = {str(tag).strip().lower() for tags in queryset.values_list("tags", flat=True)
             for tag in tags or [] if str(tag).strip()}
    return sorted(found)


Frames = dict[str, list[tuple[float, str]]]  # video id -> (time, image file name), by time


def keyframes_by_video(video_ids: Iterable[object]) -> Frames:
    """Return (time, image file name) of each video's keyframes in time order, in one query."""
    frames: Frames = {}
    rows = (Keyframe.objects.filter(video_id__in=list(video_ids)).exclude(image="")
            .order_by("video_id", "time").values_list("video_id", "time", "image"))
    for video_id, time, name in rows:
        frames.setdefault(str(video_id), []).append((time, name))
    return frames


def frame_url(name: str) -> str:
    """Return the URL of a keyframe image file.

    On the file system storage the URL is the media URL followed by the file's path, which
    is built here without ``urljoin`` (a search page asks for dozens of them); other storages
    (signed URLs, CDNs) build their own.
    """
    storage = Keyframe._meta.get_field("image").storage
    if storage.__class__ is FileSystemStorage and _plain_name(name):  # (a lazy default too)
        base = storage.base_url
        if base.endswith("/"):
            return base + name
    return storage.url(name)


def _plain_name(name: str) -> bool:
    """Return True for a relative path with nothing urljoin or quoting would change."""
    return _PLAIN.fullmatch(name) is not None and all(
        part not in ("", ".", "..") for part in name.split("/"))


def nearest_frame(frames: list[tuple[float, str]], time: float | None = None) -> str | None:
    """Return the URL of the keyframe nearest a time (the first keyframe without a time)."""
    if not frames:
        return None
    if time is None:
        return frame_url(frames[0][1])
    return frame_url(min(frames, key=lambda frame: (abs(frame[0] - time), frame[0]))[1])
