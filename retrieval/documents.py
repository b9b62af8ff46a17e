"""Plain values passed between the catalog, the backends and fusion (no Django here)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SEGMENT_KINDS = ("speech", "sentence", "ocr", "visual", "metadata")


@dataclass(frozen=True)
class SegmentDoc:
    """One indexable segment, as a backend stores it."""

    id: str
    video_id: str
    kind: str
    start: float
    end: float
    text: str
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    filters: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Filters:
    """Restrictions applied inside every signal's search (never after it)."""

    tags: tuple[str, ...] = ()
    language: str | None = None
    min_duration: float | None = None
    max_duration: float | None = None
    published: bool | None = None
    video_ids: tuple[str, ...] = ()
    exclude_video_ids: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        """Return True when nothing is restricted."""
        return self == Filters()


@dataclass(frozen=True)
class Hit:
    """One segment in one signal's ranked answer."""

    segment_id: str
    video_id: str
    score: float
    # The segment's indexed text, when the backend returned it with the hit (BM25 does).
    text: str | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class IndexReport:
    """What happened to a batch of documents sent to a backend."""

    indexed: int = 0
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Return True when every document was stored."""
        return not self.failed
