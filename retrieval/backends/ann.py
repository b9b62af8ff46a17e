"""An HNSW graph (faiss) over the rows of a VectorStore matrix: candidates for exact re-scoring.

The graph keeps each vector as 8-bit codes (a scalar quantizer trained on the rows it is built
from: 384 bytes a vector instead of 1,536), since its only job is to find candidates, which
the VectorStore then scores exactly from its float matrix. Graph ids are matrix row numbers
(rows are only ever appended). Filters and deleted rows are
applied inside the graph walk through a bitmap of allowed rows, so a selective filter still
yields k candidates. The graph is saved next to the index file it was built from, with the
segment ids of its rows, and reloaded when those rows are still the store's first rows.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from pathlib import Path

import numpy as np


def available() -> bool:
    """Return True when faiss is installed."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


TRAINING_ROWS = 100_000  # rows whose per-dimension range the 8-bit codes span
RANGE_MARGIN = 0.05


class HnswIndex:
    """Inner-product HNSW over unit vectors (inner product = cosine), vectors stored in 8 bits."""

    def __init__(self, dim: int, links: int = 32, ef_construction: int = 80,
                 ef_search: int = 128) -> None:
        import faiss

        self.graph = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, links,
                                       faiss.METRIC_INNER_PRODUCT)
        self.graph.hnsw.efConstruction = ef_construction
        storage = faiss.downcast_index(self.graph.storage)
        storage.sq.rangestat_arg = RANGE_MARGIN  # min/max widened by this share of the range
        self.ef_search = ef_search
        self.stale: set[int] = set()  # rows whose vector changed after they joined the graph
        self._lock = threading.Lock()  # faiss does not search a graph while it grows

    @property
    def size(self) -> int:
        """Return how many rows the graph holds."""
        return int(self.graph.ntotal)

    def add(self, vectors: np.ndarray) -> None:
        """Append rows (their ids continue from size).

        The first rows ever added also train the quantizer: each dimension's range over up to
        TRAINING_ROWS of them spread evenly (a row appended later outside that range has its
        codes clipped: it can only be found less easily, and is scored exactly when found).
        """
        if not len(vectors):
            return
        with self._lock:
            if not self.graph.is_trained:
                sample = vectors[::max(1, len(vectors) // TRAINING_ROWS)]
                self.graph.train(np.ascontiguousarray(sample, dtype=np.float32))
            self.graph.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def candidates(self, vector: np.ndarray, count: int, allowed: np.ndarray) -> np.ndarray:
        """Return the row numbers near vector among the rows allowed (a bool mask).

        At least count of them, when the graph has that many allowed: every row the walk ends
        with (ef_search), since the 8-bit distances only roughly order them, and re-scoring a
        few more rows exactly costs microseconds.
        """
        import faiss

        bits = np.packbits(allowed[:self.size], bitorder="little")  # bools pack as 0/1
        selector = faiss.IDSelectorBitmap(self.size, faiss.swig_ptr(bits))
        ef = max(self.ef_search, count)
        params = faiss.SearchParametersHNSW(sel=selector, efSearch=ef)
        with self._lock:
            _, rows = self.graph.search(vector.reshape(1, -1).astype(np.float32), ef,
                                        params=params)
        rows = rows[0]
        return rows[rows >= 0]

    def save(self, path: Path, segment_ids: list[str]) -> None:
        """Write the graph and the segment ids of its rows (atomically, under new names)."""
        import faiss

        token = f".{os.getpid()}.{secrets.token_hex(4)}.tmp"
        graph_tmp, ids_tmp = Path(f"{path}{token}"), Path(f"{path}.ids{token}")
        try:
            faiss.write_index(self.graph, str(graph_tmp))
            ids_tmp.write_text(json.dumps(segment_ids[:self.size]))
            os.replace(ids_tmp, f"{path}.ids")
            os.replace(graph_tmp, path)
        finally:
            graph_tmp.unlink(missing_ok=True)
            ids_tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path, segment_ids: list[str], ef_search: int) -> HnswIndex | None:
        """Read a saved graph whose rows are still the first rows of segment_ids, else None."""
        import faiss

        try:
            saved = json.loads(Path(f"{path}.ids").read_text())
            graph = faiss.read_index(str(path))
        except (OSError, ValueError, RuntimeError):
            return None
        if graph.ntotal != len(saved) or saved != segment_ids[:len(saved)]:
            return None
        index = cls.__new__(cls)
        index.graph, index.ef_search, index.stale = graph, ef_search, set()
        index._lock = threading.Lock()
        return index
