"""Show every video's processing status, stage and progress; --watch refreshes until done."""

from __future__ import annotations

import argparse
import textwrap
import time

from django.core.management.base import BaseCommand

from catalog.models import Video
from workers import progress

CLEAR_SCREEN = "\x1b[H\x1b[2J"
#: Errors longer than this are cut in the table (progress.table's default) and shown whole
#: below it.
TABLE_ERROR_WIDTH = 60
WRAP_WIDTH = 100


def full_errors(videos: list[Video], width: int = WRAP_WIDTH) -> str:
    """Return the whole error of every video whose error the table cut, wrapped and indented."""
    blocks = []
    for video in videos:
        text = " ".join(str(video.error or "").split())
        if len(text) <= TABLE_ERROR_WIDTH:
            continue
        body = textwrap.fill(text, width, initial_indent="    ", subsequent_indent="    ",
                             break_long_words=False, break_on_hyphens=False)
        blocks.append(f"  {video.title} (#{video.pk}):\n{body}")
    return "Errors in full:\n" + "\n".join(blocks) if blocks else ""


class Command(BaseCommand):
    help = "Show each video's status, stage and progress (with --watch, refresh until done)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--watch", nargs="?", type=float, const=2.0, default=None,
                            metavar="SECONDS",
                            help="Refresh every SECONDS (default 2) until no video is pending "
                                 "or processing, or Ctrl-C.")
        parser.add_argument("--status", action="append", default=[],
                            help="Only videos with this status (repeatable).")
        parser.add_argument("--limit", type=int, default=200,
                            help="Show at most this many videos, newest first (default 200).")
        parser.add_argument("--full", action=argparse.BooleanOptionalAction, default=True,
                            help="Below the table, show in full each error the table cuts "
                                 "(default; --no-full shows the table only).")

    def handle(self, *args, watch: float | None, status: list[str], limit: int,
               full: bool = True, **options) -> None:
        self.full = full
        if watch is None:
            self._show(status, limit)
            return
        interactive = self.stdout.isatty()
        try:
            while True:
                if interactive:
                    self.stdout.write(CLEAR_SCREEN, ending="")
                videos = self._show(status, limit)
                if progress.all_done(videos):
                    break
                self.stdout.write(f"(refreshing every {watch:g} s; Ctrl-C to stop)\n")
                self.stdout.flush()
                time.sleep(max(watch, 0.1))
        except KeyboardInterrupt:
            self.stdout.write("")

    def _show(self, statuses: list[str], limit: int) -> list[Video]:
        videos = Video.objects.order_by("-created_at")
        if statuses:
            videos = videos.filter(status__in=statuses)
        shown = list(videos[:limit])
        self.stdout.write(progress.table(shown, error_width=TABLE_ERROR_WIDTH))
        errors = full_errors(shown) if getattr(self, "full", True) else ""
        if errors:
            self.stdout.write(f"\n{errors}")
        total = videos.count() if len(shown) == limit else len(shown)
        more = f" (showing the newest {limit} of {total})" if total > len(shown) else ""
        self.stdout.write(f"\n{progress.summary(shown)}{more}")
        return shown
