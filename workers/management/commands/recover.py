"""Requeue videos stuck in pending/processing now (Celery beat does the same periodically)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from workers.recover import recover


class Command(BaseCommand):
    help = ("Requeue videos left pending or processing by a dead worker or a lost broker "
            "message (idle longer than their timeout), from the stage recorded on each.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true",
                            help="Only list the stuck videos.")

    def handle(self, *args, dry_run: bool, **options) -> None:
        found = recover(dry_run=dry_run)
        for recovery in found:
            self.stdout.write(f"  {recovery.describe()}")
        requeued = sum(recovery.requeued for recovery in found)
        if dry_run:
            self.stdout.write(f"{len(found)} stuck video(s); nothing requeued (--dry-run).")
        else:
            self.stdout.write(f"{requeued} stuck video(s) requeued.")
