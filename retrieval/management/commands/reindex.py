"""Rebuild the search index from the database, swapping it in atomically."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from catalog.models import Video, VideoStatus
from retrieval.backends import BackendUnavailable, get_backend
from retrieval.indexing import index_video, iter_catalog_docs


class Command(BaseCommand):
    help = "Rebuild the index with zero downtime, or (--pending) index videos waiting for it."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--backend", default="default")
        parser.add_argument("--pending", action="store_true",
                            help="Only index videos whose indexing failed earlier.")

    def handle(self, *args, backend: str, pending: bool, **options) -> None:
        try:
            if pending:
                self._pending(backend)
            else:
                report = get_backend(backend).rebuild(iter_catalog_docs())
                self.stdout.write(self.style.SUCCESS(
                    f"Rebuilt the {backend!r} index: {report.indexed} segments."))
                for doc_id, reason in list(report.failed.items())[:20]:
                    self.stderr.write(f"  not indexed: {doc_id}: {reason}")
        except BackendUnavailable as exc:
            raise CommandError(f"The search backend {backend!r} is unavailable: {exc}") from exc

    def _pending(self, backend: str) -> None:
        videos = Video.objects.filter(status=VideoStatus.INDEX_PENDING)
        for video in videos:
            report = index_video(video, backend)
            if report.ok:
                Video.objects.filter(pk=video.pk).update(
                    status=VideoStatus.READY, stage="done", progress=1.0, error="")
        self.stdout.write(self.style.SUCCESS(f"Indexed {len(videos)} pending video(s)."))
