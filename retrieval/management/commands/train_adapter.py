"""Train the text adapter on catalog pairs; keep it only when it beats the frozen encoder."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from retrieval.adapter_pairs import collect_pairs, encode_pairs
from retrieval.adapter_training import train_adapter


class Command(BaseCommand):
    help = ("Fit a low-rank adapter on top of the frozen text encoder with InfoNCE, from "
            "pairs the catalog has (metadata, on-screen text, spoken sentences and the "
            "speech of the same video), and write it when it beats the frozen encoder on "
            "held-out videos.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--out", type=Path, default=None,
                            help="Where to write the adapter (default: "
                                 "<VAR_DIR>/adapters/text-adapter-<version>.npz).")
        parser.add_argument("--max-pairs", type=int, default=10_000)
        parser.add_argument("--per-video", type=int, default=20,
                            help="At most this many pairs of each kind per video.")
        parser.add_argument("--rank", type=int, default=32)
        parser.add_argument("--temperature", type=float, default=0.05,
                            help="InfoNCE temperature tau.")
        parser.add_argument("--epochs", type=int, default=30)
        parser.add_argument("--holdout", type=float, default=0.2,
                            help="Share of videos held out to compare with the frozen encoder.")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **opts) -> None:
        for name in ("max_pairs", "per_video", "rank", "epochs"):
            if opts[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be at least 1.")
        pairs = collect_pairs(opts["max_pairs"], opts["per_video"], opts["seed"])
        self.stdout.write(f"{len(pairs)} pair(s) from "
                          f"{len({pair[0] for pair in pairs})} video(s); encoding...")
        try:
            report = train_adapter(encode_pairs(pairs), rank=opts["rank"],
                                   temperature=opts["temperature"], epochs=opts["epochs"],
                                   holdout=opts["holdout"], seed=opts["seed"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"held-out R@1 over {report.heldout_queries} anchor(s): frozen "
            f"{report.frozen_r1:.1f}, adapter {report.adapted_r1:.1f} "
            f"({report.train_pairs} training pairs, {report.epochs} epoch(s), "
            f"{report.seconds:.1f} s)")
        if not report.beats_frozen:
            self.stdout.write(self.style.WARNING(
                "The adapter does not beat the frozen encoder on the held-out videos: "
                "nothing was written, and the frozen encoder stays in use."))
            return
        default = Path(settings.VAR_DIR) / "adapters" / f"text-adapter-{report.adapter.version}.npz"
        path = report.adapter.save((opts["out"] or default).resolve())
        self.stdout.write(self.style.SUCCESS(
            f"Wrote {path}. To use it, set REELSEARCH_TEXT_ADAPTER={path} for the web and "
            "worker processes, then run `manage.py backfill_embeddings --model "
            f"{settings.REELSEARCH['TEXT_MODEL']}` to re-embed the catalog with it."))
