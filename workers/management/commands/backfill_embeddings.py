"""Re-embed segments made by another text model than the configured one, and reindex them."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from retrieval.backends import BackendUnavailable, get_backend
from retrieval.encoders import get_text_encoder
from retrieval.indexing import iter_catalog_docs
from workers.backfill import BackfillError, backfill_batch, dimension_changes, stale_segments


class Command(BaseCommand):
    help = ("Re-embed, in resumable batches, the segments whose recorded embedding model "
            "differs from the configured text model, and update them in the search index.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--model", required=True,
                            help="The configured text model (REELSEARCH_TEXT_MODEL), as a check "
                                 "that workers and queries use the same one.")
        parser.add_argument("--batch-size", type=int, default=256)
        parser.add_argument("--limit", type=int, default=None,
                            help="Stop after about this many segments (run again to continue).")
        parser.add_argument("--dry-run", action="store_true",
                            help="Only count the segments that need re-embedding.")
        parser.add_argument("--backend", default="default")

    def handle(self, *args, model: str, batch_size: int, limit: int | None, dry_run: bool,
               backend: str, **options) -> None:
        configured = settings.REELSEARCH["TEXT_MODEL"]
        if model != configured:
            raise CommandError(
                f"--model {model!r} is not the configured text model ({configured!r}): set "
                f"REELSEARCH_TEXT_MODEL={model} (and REELSEARCH_TEXT_DIM, "
                "REELSEARCH_TEXT_MODEL_PATH) for the workers and the web processes, then run "
                "this again.")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        encoder = get_text_encoder()
        label = encoder.info.label
        total = stale_segments(label).count()
        self.stdout.write(f"{total} segment(s) to re-embed with {label}.")
        if dry_run or not total:
            return
        rebuild = dimension_changes(encoder)  # mixed dimensions cannot share an index
        if rebuild:
            self.stdout.write("The vector dimension changes: the index is rebuilt at the end.")
        done = self._batches(encoder, batch_size, limit, total, index=not rebuild,
                             backend=backend)
        left = stale_segments(label).count()
        if rebuild and not left:
            report = get_backend(backend).rebuild(iter_catalog_docs())
            self.stdout.write(f"Rebuilt the index: {report.indexed} segments.")
        tail = f"; {left} left: run the command again to continue" if left else ""
        self.stdout.write(self.style.SUCCESS(f"Re-embedded {done} segment(s){tail}."))

    def _batches(self, encoder, batch_size: int, limit: int | None, total: int, *,
                 index: bool, backend: str) -> int:
        done, number, started = 0, 0, time.monotonic()
        while limit is None or done < limit:
            size = batch_size if limit is None else min(batch_size, limit - done)
            try:
                report = backfill_batch(encoder, size, index=index, backend_alias=backend)
            except (BackendUnavailable, BackfillError) as exc:
                raise CommandError(
                    f"Stopped after {done} segment(s): {exc}. Nothing of the failed batch was "
                    "saved; run the command again to continue.") from exc
            if report is None:
                break
            done, number = done + report.segments, number + 1
            rate = done / max(time.monotonic() - started, 1e-6)
            self.stdout.write(f"batch {number}: {report.segments} segment(s) of "
                              f"{report.videos} video(s), {report.indexed} indexed "
                              f"({done}/{total}, {rate:.0f} segments/s)")
        return done
