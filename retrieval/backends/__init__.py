"""Search backends, configured through settings.RETRIEVAL_BACKENDS like Django's CACHES."""

from __future__ import annotations

from threading import Lock

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .base import BackendUnavailable, SearchBackend

__all__ = ("BackendUnavailable", "SearchBackend", "get_backend", "reset_backends")

_backends: dict[str, SearchBackend] = {}
_lock = Lock()


def _configured(alias: str) -> dict:
    backends = getattr(settings, "RETRIEVAL_BACKENDS", {})
    if alias not in backends:
        raise ImproperlyConfigured(
            f"No search backend named {alias!r}: add it to settings.RETRIEVAL_BACKENDS "
            f"(configured: {', '.join(sorted(backends)) or 'none'})."
        )
    return backends[alias]


def load_backend(alias: str) -> SearchBackend:
    """Instantiate the backend configured under an alias."""
    params = dict(_configured(alias))
    path = params.pop("BACKEND", "")
    try:
        backend_class = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"settings.RETRIEVAL_BACKENDS[{alias!r}]['BACKEND'] = {path!r} cannot be imported "
            f"({exc}); use 'retrieval.backends.embedded.EmbeddedBackend' or "
            "'retrieval.backends.opensearch.OpenSearchBackend'."
        ) from exc
    return backend_class(alias, params)


def get_backend(alias: str = "default") -> SearchBackend:
    """Return the shared backend instance for an alias."""
    with _lock:
        if alias not in _backends:
            _backends[alias] = load_backend(alias)
        return _backends[alias]


def reset_backends() -> None:
    """Close and forget every backend instance (settings changed, tests)."""
    with _lock:
        for backend in _backends.values():
            backend.close()
        _backends.clear()
