"""Export the configured text model to ONNX for onnxruntime (run once, by `make install`)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from retrieval.onnx_text import PRECISIONS, export


class Command(BaseCommand):
    help = ("Export the text model (transformer, mean pooling, normalization) to ONNX in "
            "REELSEARCH_TEXT_ONNX_DIR, as fp32 and int8 files. Files already there are kept.")

    requires_system_checks: list[str] = []  # the checks report the file this command makes

    def add_arguments(self, parser) -> None:
        parser.add_argument("--precision", choices=PRECISIONS, action="append",
                            help="Export only this precision (repeatable; default: both).")
        parser.add_argument("--force", action="store_true", help="Export again over the files.")

    def handle(self, *args, **opts) -> None:
        started = time.perf_counter()
        paths = export(tuple(opts["precision"] or PRECISIONS), force=opts["force"])
        for path in paths:
            self.stdout.write(f"{path} ({path.stat().st_size / 1e6:.0f} MB)")
        self.stdout.write(f"text model ready in {time.perf_counter() - started:.1f} s")
