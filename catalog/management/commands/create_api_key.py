"""Issue an API key for a front end or service and print it once."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from catalog.models import ApiKey


class Command(BaseCommand):
    help = "Create an API key (for watch events and per-user endpoints) and print it once."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="Who the key is for, e.g. 'web-frontend'.")

    def handle(self, *args, name: str, **options) -> None:
        name = name.strip()
        if not name or len(name) > 120:
            raise CommandError("NAME must be 1 to 120 characters.")
        key, raw = ApiKey.issue(name)
        self.stderr.write(f"API key {key.prefix}… for {name!r} (stored hashed; shown once):")
        self.stdout.write(raw)
