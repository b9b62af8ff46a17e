"""Catalog queries shared by the admin and the API (tags live in a JSON list)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from .models import Keyframe, Video


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


Frames = dict[str, list[tuple[float, str]]]


def keyframes_by_video(video_ids: Iterable[object]) -> Frames:
    """Return (time, image url) of each video's keyframes in time order, in one query."""
    frames: Frames = {}
    rows = Keyframe.objects.filter(video_id__in=list(video_ids)).order_by("video_id", "time")
    for keyframe in rows:
        if keyframe.image:
            frames.setdefault(str(keyframe.video_id), []).append((keyframe.time,
                                                                 keyframe.image.url))
    return frames


def nearest_frame(frames: list[tuple[float, str]], time: float | None = None) -> str | None:
    """Return the url of the keyframe nearest a time (the first keyframe without a time)."""
    if not frames:
        return None
    if time is None:
        return frames[0][1]
    return min(frames, key=lambda frame: (abs(frame[0] - time), frame[0]))[1]
