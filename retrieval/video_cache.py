"""Per-video data kept in memory between searches while the video does not change.

The pipeline stamps ``Video.updated_at`` whenever a stage starts and when a run ends, so a
video's stamp changes whenever its segments, vectors or keyframes may have been rewritten;
an entry is reused only while the stamp it was read under is the video's stamp now.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class VideoCache(Generic[T]):
    """A thread-safe LRU of per-video values, each valid for one ``updated_at`` stamp."""

    def __init__(self, max_videos: int = 256) -> None:
        self.max_videos = max_videos
        self._entries: OrderedDict[str, tuple[object, T]] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, stamps: Mapping[str, object],
                 load: Callable[[list[str]], dict[str, T]], empty: T) -> dict[str, T]:
        """Return each video's value, loading those not cached under their stamp at once.

        ``load`` gets the missing ids and returns the values it found; a video it leaves
        out gets ``empty`` (cached too: the video has nothing of this kind).
        """
        found: dict[str, T] = {}
        with self._lock:
            for video_id, stamp in stamps.items():
                entry = self._entries.get(video_id)
                if entry is not None and entry[0] == stamp:
                    self._entries.move_to_end(video_id)
                    found[video_id] = entry[1]
        missing = [video_id for video_id in stamps if video_id not in found]
        if missing:
            loaded = load(missing)
            with self._lock:
                for video_id in missing:
                    value = loaded.get(video_id, empty)
                    found[video_id] = value
                    self._entries[video_id] = (stamps[video_id], value)
                    self._entries.move_to_end(video_id)
                while len(self._entries) > self.max_videos:
                    self._entries.popitem(last=False)
        return found

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()
