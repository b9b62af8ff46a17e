"""Export the concept classifier to ONNX for onnxruntime (run once, by `make install`)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from workers.pipeline import concept_net
from workers.pipeline.concepts import classifier_weights


class Command(BaseCommand):
    help = ("Export the concept classifier (EfficientNet-Lite pooled over boxes, see "
            "workers/pipeline/concept_net.py) to ONNX in REELSEARCH_TEXT_ONNX_DIR. A file "
            "already there is kept.")

    requires_system_checks: list[str] = []  # the checks report the file this command makes

    def add_arguments(self, parser) -> None:
        parser.add_argument("--force", action="store_true", help="Export again over the file.")

    def handle(self, *args, **opts) -> None:
        name = settings.REELSEARCH.get("CONCEPT_MODEL") or ""
        if not name:
            self.stdout.write("concept tags are off (REELSEARCH_CONCEPT_MODEL=''): nothing to "
                              "export")
            return
        started = time.perf_counter()
        try:
            path = concept_net.export(name, *classifier_weights(name), force=opts["force"])
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{path} ({path.stat().st_size / 1e6:.0f} MB)")
        self.stdout.write(f"concept classifier ready in {time.perf_counter() - started:.1f} s")

