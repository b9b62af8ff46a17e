from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"
    verbose_name = "Ingestion workers"

    def ready(self) -> None:
        """Register the system checks."""
        from . import checks  # noqa: F401
