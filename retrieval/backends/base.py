"""The contract every search backend fulfils; backends store and return plain values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from retrieval.documents import Filters, Hit, IndexReport, SegmentDoc

if TYPE_CHECKING:
    from retrieval.fusion import FusionSpec, ScoredSegment


class BackendUnavailable(RuntimeError):
    """The backend cannot be reached now; the operation may succeed when retried."""


class SearchBackend:
    """Base class for search backends; subclasses override the hooks they support."""

    supports_vectors = False
    supports_server_fusion = False
    prefers_server_fusion = False  # fuse in the backend by default, when it can
    supports_rebuild = False
    vector_fields: tuple[str, ...] = ("text",)

    def __init__(self, alias: str, params: Mapping[str, object]) -> None:
        self.alias = alias
        self.params = dict(params)

    @property
    def name(self) -> str:
        """Return a human name for messages."""
        return type(self).__name__

    def unsupported(self, what: str) -> NotImplementedError:
        """Build the error raised for a missing capability."""
        return NotImplementedError(f"{self.name} does not support {what}")

    def ensure_index(self) -> None:
        """Create the index (and its storage) if it does not exist."""
        raise self.unsupported("ensure_index()")

    def index(self, docs: Iterable[SegmentDoc]) -> IndexReport:
        """Store or replace documents; report per-document failures."""
        raise self.unsupported("index()")

    def delete_video(self, video_id: str) -> None:
        """Remove every segment of a video."""
        raise self.unsupported("delete_video()")

    def bm25(self, text: str, k: int, filters: Filters = Filters(),
             fuzzy: Sequence[str] = ()) -> list[Hit]:
        """Return the top-k segments by BM25, best first.

        The query terms in ``fuzzy`` also match words within retrieval.typos.max_edits of
        them (their exact form still matches).
        """
        raise self.unsupported("BM25 search")

    def term_counts(self, terms: Sequence[str], filters: Filters = Filters(),
                    cap: int = 10) -> dict[str, int]:
        """Return how many segments hold each term (analysed as BM25 does), up to cap."""
        raise self.unsupported("term counts")

    def knn(
        self, field: str, vector: np.ndarray, k: int, filters: Filters = Filters()
    ) -> list[Hit]:
        """Return the top-k segments by cosine similarity of a vector field, best first."""
        raise self.unsupported("vector search")

    def server_fusion_problem(self, spec: FusionSpec, signals: Iterable[str]) -> str:
        """Return why the backend cannot fuse these signals with this spec itself ("" if it can)."""
        return f"{self.name} does not support server-side fusion"

    def hybrid(
        self, text: str, vectors: Mapping[str, np.ndarray], k: int, filters: Filters,
        spec: FusionSpec, fuzzy: Sequence[str] = (),
    ) -> list[ScoredSegment]:
        """Run BM25 (when text) and k-NN (per vector field) and fuse them in the backend."""
        raise self.unsupported("server-side fusion")

    def facet_counts(self, video_ids: Sequence[str], names: Sequence[str]
                     ) -> dict[str, dict[str, int]]:
        """Count these videos per tag, language and duration bucket (retrieval.facets)."""
        raise self.unsupported("facet counts")

    def vectors_for_video(self, video_id: str, field: str = "text") -> np.ndarray:
        """Return the stored vectors of a video's segments (rows), for recommendations."""
        raise self.unsupported("vector lookup")

    def rebuild(self, docs: Iterable[SegmentDoc]) -> IndexReport:
        """Build a fresh index from docs and swap it in atomically."""
        raise self.unsupported("rebuild()")

    def count(self) -> int:
        """Return the number of stored segments."""
        raise self.unsupported("count()")

    def clear(self) -> None:
        """Remove every document (tests and throwaway catalogs)."""
        raise self.unsupported("clear()")

    def close(self) -> None:
        """Release connections and file handles."""


def invalid_document(doc: SegmentDoc) -> str:
    """Return why a document cannot be stored ("" when it can)."""
    if not doc.id or not doc.video_id:
        return "document needs an id and a video_id"
    if doc.end < doc.start:
        return f"end ({doc.end}) is before start ({doc.start})"
    for field, vector in doc.vectors.items():
        if not np.all(np.isfinite(np.asarray(vector, dtype=np.float32))):
            return f"vector {field!r} has NaN or infinite values"
    return ""


def unit_vector(vector, dtype=np.float32) -> np.ndarray:
    """Return a vector scaled to length 1, as a flat array of ``dtype``.

    A zero vector stays zero: it has no direction (backends neither store nor search it).
    """
    vector = np.asarray(vector, dtype=dtype).reshape(-1)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector
