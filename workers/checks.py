"""System checks for ingestion prerequisites: the exported concept classifier."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured


@register("reelsearch")
def check_concept_model(app_configs, **kwargs) -> list:
    """Report an ONNX concept classifier that `make install` has not exported yet."""
    from .pipeline import concept_net
    from .pipeline.concepts import classifier_weights

    name = settings.REELSEARCH.get("CONCEPT_MODEL") or ""
    if not name:
        return []
    try:
        if concept_net.runtime() != "onnx":
            return []
        path = concept_net.onnx_path(name, classifier_weights(name)[1])
    except ImproperlyConfigured as exc:  # the packages missing: reelsearch.E003 says which
        return [Error(str(exc), id="reelsearch.E006")]
    if path.exists():
        return []
    return [Error(f"The ONNX concept classifier {path} is missing.",
                  hint=f"{concept_net.EXPORT_HINT.capitalize()}, or set "
                       "REELSEARCH_VISUAL_RUNTIME=torch.",
                  id="reelsearch.E006")]
