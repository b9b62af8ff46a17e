"""Processing progress as text: the `status` table and waiting for videos to finish."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from catalog.models import Video, VideoStatus

from .pipeline.branches import BRANCHES, DONE, position

DONE_STATUSES = (VideoStatus.READY, VideoStatus.FAILED, VideoStatus.INDEX_PENDING)
COLUMNS = (("Title", 28), ("Status", 13), ("Stage", 8), ("Progress", 27),
           ("Branches", 40), ("Duration", 8), ("Error", 0))


def bar(fraction: float, width: int = 20) -> str:
    """Return a text progress bar with a percentage, e.g. `[██████░░░░░░]  50%`."""
    fraction = max(0.0, min(float(fraction or 0.0), 1.0))
    filled = round(fraction * width)
    return f"[{'█' * filled}{'░' * (width - filled)}] {fraction * 100:3.0f}%"


def _clip(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if width <= 0 or len(text) <= width else text[: width - 1] + "…"


def _duration(seconds: float | None) -> str:
    if not seconds:
        return "-"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"


def branch_cells(video: Video) -> str:
    """Return where each branch is while they run, e.g. `visual ocr 63% · audio asr 41%`."""
    if video.status not in (VideoStatus.PENDING, VideoStatus.PROCESSING):
        return "-"
    cells = []
    for branch in BRANCHES:
        at = position(video, branch)
        if at:
            percent = round(100 * float(getattr(video, branch.progress_field) or 0.0))
            cells.append(f"{branch.name} {at} {percent}%" if at != DONE else
                         f"{branch.name} done")
    return " · ".join(cells) or "-"


def row(video: Video) -> list[str]:
    """Return the table cells of one video."""
    progress = 1.0 if video.status == VideoStatus.READY else video.progress
    return [video.title, video.status, video.stage or "-", bar(progress), branch_cells(video),
            _duration(video.duration), video.error]


def table(videos: Iterable[Video], error_width: int = 60) -> str:
    """Render videos as an aligned text table."""
    widths = [width or error_width for _, width in COLUMNS]
    lines = ["  ".join(name.ljust(w) for (name, _), w in zip(COLUMNS, widths, strict=True))
             .rstrip()]
    for video in videos:
        cells = [_clip(cell, w) for cell, w in zip(row(video), widths, strict=True)]
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    return "\n".join(lines)


def summary(videos: Iterable[Video]) -> str:
    """Return a count per status, e.g. `3 ready, 1 processing`."""
    counts: dict[str, int] = {}
    for video in videos:
        counts[video.status] = counts.get(video.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no videos"


def all_done(videos: Iterable[Video]) -> bool:
    """Return True when no video is pending or processing."""
    return all(video.status in DONE_STATUSES for video in videos)


def wait_for(video_ids: Iterable[object], timeout: float | None = None, interval: float = 1.0,
             on_poll: Callable[[list[Video]], None] | None = None) -> list[Video]:
    """Poll until every video has finished (or is gone); return the ones still running."""
    ids = list(video_ids)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        videos = list(Video.objects.filter(pk__in=ids).order_by("created_at"))
        if on_poll is not None:
            on_poll(videos)
        running = [video for video in videos if video.status not in DONE_STATUSES]
        if not running or (deadline is not None and time.monotonic() >= deadline):
            return running
        time.sleep(interval)
