"""A catalog-trained low-rank adapter on top of the frozen text encoder (CoVR-style InfoNCE).

The adapter maps a unit text vector x to unit(x + (x @ down) @ up): the identity plus a
rank-r correction, applied to queries and segments alike, so cosine similarity keeps its
meaning. `manage.py train_adapter` fits it (retrieval/adapter_training.py) and writes it as
an .npz file; REELSEARCH['TEXT_ADAPTER'] names the file to use ("" = off, the default).
With an adapter the text encoder's version gains "+adapter-<version>", so segments embedded
before it are found and re-embedded by `manage.py backfill_embeddings`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class Adapter:
    """The two factors of a low-rank residual map and the version they are recorded by."""

    down: np.ndarray  # d x r
    up: np.ndarray  # r x d
    version: str

    @classmethod
    def from_factors(cls, down: np.ndarray, up: np.ndarray) -> Adapter:
        """Build an adapter whose version is a hash of its weights."""
        down, up = (np.ascontiguousarray(m, dtype=np.float32) for m in (down, up))
        digest = hashlib.sha256(down.tobytes() + up.tobytes()).hexdigest()[:12]
        return cls(down, up, digest)

    @property
    def dim(self) -> int:
        """Return the dimension of the vectors it maps."""
        return int(self.down.shape[0])

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """Map rows of unit vectors (or one vector) and make them unit length again."""
        matrix = np.asarray(vectors, dtype=np.float32)
        mapped = matrix + (matrix @ self.down) @ self.up
        norms = np.linalg.norm(mapped, axis=-1, keepdims=True)
        return np.divide(mapped, norms, out=np.zeros_like(mapped), where=norms > 0)

    def save(self, path: Path) -> Path:
        """Write the adapter to an .npz file (atomically) and return its path."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial.npz")
        np.savez(partial, down=self.down, up=self.up, version=np.array(self.version))
        partial.replace(path)
        return path


def load_adapter(path: Path) -> Adapter:
    """Read an adapter file written by Adapter.save."""
    try:
        with np.load(path) as data:
            return Adapter(data["down"], data["up"], str(data["version"]))
    except (OSError, KeyError, ValueError) as exc:
        raise ImproperlyConfigured(
            f"REELSEARCH['TEXT_ADAPTER'] = {str(path)!r} is not a readable adapter ({exc}): "
            "run `manage.py train_adapter`, or set REELSEARCH_TEXT_ADAPTER to empty.") from exc


def configured_adapter() -> Adapter | None:
    """Return the adapter REELSEARCH['TEXT_ADAPTER'] names, or None when it is off."""
    name = str(settings.REELSEARCH.get("TEXT_ADAPTER") or "")
    return load_adapter(Path(name)) if name else None
