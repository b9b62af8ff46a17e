"""Register files or folders of videos and process them, with a progress bar per file.

Only regular files are ingested: symbolic links are followed only into
REELSEARCH["INGEST_ROOTS"], and folders named like media files are refused (see
workers/ingest.py); each refusal is reported and makes the command exit non-zero.
"""

from __future__ import annotations

import json
from pathlib import Path

from celery import current_app
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.models import Video, VideoStatus
from workers import pipeline, progress
from workers.ingest import expand, register

BAR_FORMAT = "{desc:<40} {percentage:3.0f}%|{bar:20}|"


class Command(BaseCommand):
    help = "Add video files (or folders of them) to the catalog and process them."

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--metadata", type=Path,
                            help="JSON list of {file, title, description, tags, language}.")
        parser.add_argument("--wait", action="store_true",
                            help="With a broker, wait until every video has finished.")
        parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                            help="With --wait, give up waiting after SECONDS.")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, paths: list[Path], metadata: Path | None, wait: bool,
               timeout: float | None, no_progress: bool, **options) -> None:
        catalog = self._metadata(metadata)
        failures, registered = 0, []
        for path in expand(paths):
            outcome = self._ingest(path, catalog.get(path.name), no_progress)
            failures += outcome is None
            if outcome is not None:
                registered.append(outcome)
        if wait:
            self._wait(registered, no_progress, timeout)
        failures += self._report(registered)
        if failures:
            raise CommandError(f"{failures} file(s) could not be ingested; see the messages above.")

    def _metadata(self, path: Path | None) -> dict[str, dict]:
        if path is None:
            return {}
        try:
            entries = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CommandError(f"--metadata {path}: cannot read it as JSON ({exc}).") from exc
        return {Path(entry["file"]).name: entry for entry in entries}

    def _ingest(self, path: Path, metadata: dict | None, quiet: bool) -> Video | None:
        quiet = quiet or not current_app.conf.task_always_eager  # a worker does the work
        bar = None if quiet else tqdm(total=100, desc=path.name[:28], unit="%", leave=True,
                                      bar_format=BAR_FORMAT)

        def observe(video_id: str, stage: str, overall: float) -> None:
            if bar is not None:
                bar.set_description_str(f"{path.name[:28]} [{stage}]")
                bar.update(round(overall * 100) - bar.n)

        pipeline.observers.append(observe)
        try:
            outcome = register(path, metadata)
        finally:
            pipeline.observers.remove(observe)
            if bar is not None:
                bar.close()
        if outcome.action in {"missing", "refused"}:
            self.stderr.write(self.style.ERROR(f"✗ {outcome.message}"))
            return None
        if outcome.message:
            self.stdout.write(f"  {path.name}: {outcome.message}")
        return outcome.video

    def _wait(self, videos: list[Video], quiet: bool, timeout: float | None) -> None:
        bars: dict[object, tqdm] = {}

        def show(rows: list[Video]) -> None:
            for video in rows:
                if video.pk not in bars:
                    bars[video.pk] = tqdm(total=100, unit="%", leave=True, bar_format=BAR_FORMAT)
                bar = bars[video.pk]
                bar.set_description_str(f"{video.original_name[:28]} [{video.stage or 'queued'}]")
                done = 100 if video.status == VideoStatus.READY else round(video.progress * 100)
                bar.update(done - bar.n)

        try:
            running = progress.wait_for([v.pk for v in videos], timeout,
                                        on_poll=None if quiet else show)
        finally:
            for bar in bars.values():
                bar.close()
        if running:
            raise CommandError(
                f"{len(running)} video(s) still pending or processing after {timeout:g} s: "
                "are the workers running? See `manage.py status`.")

    def _report(self, videos: list[Video]) -> int:
        failed = 0
        for video in videos:
            video.refresh_from_db()
            if video.status == VideoStatus.FAILED:
                failed += 1
                self.stderr.write(self.style.ERROR(f"✗ {video.original_name}: {video.error}"))
            elif video.status == VideoStatus.READY:
                notes = f" ({'; '.join(video.notices)})" if video.notices else ""
                count = video.segments.count()
                self.stdout.write(self.style.SUCCESS(
                    f"✓ {video.original_name}: ready, {count} segments{notes}"))
            else:
                self.stdout.write(f"… {video.original_name}: {video.status} ({video.stage})")
        return failed
