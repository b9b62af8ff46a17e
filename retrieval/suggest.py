"""The catalog side of suggestions: which texts feed them, and keeping the index fresh.

Only published videos feed the index, whoever asks: a suggestion or a correction never
shows a draft's title, tags or words. The index is rebuilt when the set of published
videos changes (their count or latest ``updated_at``, checked at most every
REELSEARCH['SUGGEST_CHECK_SECONDS'], default 5): the first build happens in the request,
later ones in a background thread while the previous index keeps answering
(REELSEARCH['SUGGEST_BUILD_IN_BACKGROUND'], default on; off, every build is in the request).
A background rebuild starts no sooner than REBUILD_GAP times the last build's duration
after it ended, so a catalog that changes all the time (workers indexing) costs the web
process at most about a tenth of a core for its suggestions (a 100,000-segment catalog
builds in seconds), and a new video's words wait that long at most.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db.models import Count, Max

from catalog.models import Segment, SegmentKind, Video

from .suggestions import SuggestionIndex

MAX_SAMPLED = 5_000  # spoken segments read for phrases and the vocabulary
REBUILD_GAP = 10.0  # idle time after a build, in multiples of that build's duration

_lock = threading.Lock()
_state: dict[str, object] = {"index": None, "version": None, "checked": 0.0,
                             "building": None, "not_before": 0.0}


def _published():
    return Video.objects.filter(published=True)


def catalog_version() -> tuple:
    """Return what changes when the published videos change (count, latest update)."""
    row = _published().aggregate(n=Count("id"), latest=Max("updated_at"))
    return row["n"], row["latest"]


def build_index() -> SuggestionIndex:
    """Read titles, tags and transcripts of the published videos and index them."""
    videos = list(_published().values_list("id", "title", "tags"))
    titles = [(str(pk), title) for pk, title, _ in videos if title]
    tags = [(str(pk), str(tag)) for pk, _, video_tags in videos for tag in video_tags or []]
    rows = Segment.objects.filter(video__published=True, kind=SegmentKind.SPEECH)
    step = max(1, -(-rows.count() // MAX_SAMPLED))
    spoken = rows.order_by("pk").values_list("video_id", "text").iterator(chunk_size=2000)
    sample = ((str(v), text) for n, (v, text) in enumerate(spoken) if n % step == 0)
    return SuggestionIndex.build(titles, tags, sample)


def _rebuild(version: tuple) -> None:
    started = time.monotonic()
    try:
        index = build_index()
        with _lock:
            _state["index"], _state["version"] = index, version
    finally:
        ended = time.monotonic()
        _state["not_before"] = ended + REBUILD_GAP * (ended - started)
        _state["building"] = None


def current_index(block: bool = True) -> SuggestionIndex | None:
    """Return the suggestion index, building or refreshing it as needed.

    With ``block`` false a missing index is built in the background and None returned.
    """
    now = time.monotonic()
    every = float(settings.REELSEARCH.get("SUGGEST_CHECK_SECONDS", 5.0))
    index = _state["index"]
    in_background = settings.REELSEARCH.get("SUGGEST_BUILD_IN_BACKGROUND", True)
    resting = in_background and now < float(_state["not_before"])
    if index is not None and (now - float(_state["checked"]) < every or resting):
        return index
    _state["checked"] = now
    version = catalog_version()
    if index is not None and version == _state["version"]:
        return index
    if (index is None and block) or not in_background:
        _rebuild(version)
        return _state["index"]
    if _state["building"] is None:
        thread = threading.Thread(target=_rebuild, args=(version,), daemon=True,
                                  name="suggestions")
        _state["building"] = thread
        thread.start()
    return index


def reset() -> None:
    """Forget the index (tests, and after a catalog is swapped under the process)."""
    with _lock:
        _state.update(index=None, version=None, checked=0.0, not_before=0.0)
