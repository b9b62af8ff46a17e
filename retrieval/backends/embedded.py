"""Embedded backend: SQLite for the record, tantivy (or FTS5) for BM25, in-process vectors.

Layout of PATH (a directory):
    CURRENT                 name of the live index file (swapped atomically by rebuild)
    BUILDING                name of an index file being rebuilt (writes go to both)
    index-<stamp>.sqlite3   documents, FTS5 table, vectors (float32 blobs), change log
    index-<stamp>.sqlite3.lexical/   the tantivy BM25 index derived from it (lexical.py)
    .lock                   flock()ed by every process that creates or swaps an index file

Several processes (web workers, task workers, a reindex command) share the directory, so
creating the first index, pointing CURRENT or BUILDING elsewhere and retiring an old file
happen under an exclusive flock on .lock, after re-reading the pointers; pointer files are
written under a per-process temporary name and os.replace()d. Writes hold the lock shared
while they read the pointers and write, so a rebuild's swap never retires a file that a
write is still going into, and every write that starts after BUILDING is set goes to both.

The vectors are the source of truth inside the SQLite file, so a restart loads them back
without re-embedding. Each process keeps a normalized float32 matrix per vector field and
refreshes it incrementally when another process (a worker) has written.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import os
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
from django.core.exceptions import ImproperlyConfigured

from retrieval.analysis import stem
from retrieval.documents import Filters, Hit, IndexReport, SegmentDoc
from retrieval.facets import DURATION_BUCKETS
from retrieval.text import query_terms
from retrieval.typos import Vocabulary, by_length, max_edits, near_terms

from .ann import HnswIndex
from .ann import available as ann_available
from .base import BackendUnavailable, SearchBackend, invalid_document, unit_vector
from .lexical import LexicalIndex, forget_log, log_rows, prune_log, tantivy_available

logger = logging.getLogger("reelsearch.embedded")

SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    rowid INTEGER PRIMARY KEY,
    id TEXT UNIQUE NOT NULL,
    video_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    text TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]',
    language TEXT NOT NULL DEFAULT '',
    duration REAL NOT NULL DEFAULT 0,
    published INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS docs_video ON docs(video_id);
CREATE VIRTUAL TABLE IF NOT EXISTS docs_fts USING fts5(
    text, content='docs', content_rowid='rowid',
    tokenize='porter unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE IF NOT EXISTS docs_vocab USING fts5vocab(docs_fts, 'row');
CREATE TABLE IF NOT EXISTS vectors (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    segment_id TEXT NOT NULL,
    field TEXT NOT NULL,
    vec BLOB NOT NULL,
    UNIQUE (segment_id, field)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lexical_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, row INTEGER);
INSERT OR IGNORE INTO meta VALUES ('generation', '0');
"""


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def fts5_available() -> bool:
    """Return True when this Python's SQLite has FTS5 compiled in."""
    try:
        sqlite3.connect(":memory:").execute("CREATE VIRTUAL TABLE t USING fts5(x)")
    except sqlite3.OperationalError:
        return False
    return True


T = TypeVar("T")
LOAD_BLOCK = 8192  # vectors normalized at a time when a field is first read


@dataclass(frozen=True)
class VideoScope:
    """The indexed videos that pass a set of filters, and those that do not."""

    allowed: frozenset[str]
    excluded: frozenset[str]


class VectorStore:
    """A normalized float32 matrix per field, with segment metadata rows for filtering."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.row: dict[str, int] = {}
        self.video: list[str] = []
        self.codes: dict[str, int] = {}  # video ids and kinds -> small ints for masks
        self.matrix = np.zeros((0, 0), dtype=np.float32)
        self.video_code = np.zeros(0, dtype=np.int32)
        self.kind_code = np.zeros(0, dtype=np.int32)
        self.alive = np.zeros(0, dtype=bool)
        self.last_seq = 0
        self.ann: HnswIndex | None = None  # set by the backend above ANN_MIN_SIZE rows
        self.building: threading.Thread | None = None  # a graph being built in the background
        self.replaced_during_build: set[int] | None = None

    def put(self, segment_id: str, video_id: str, kind: str, vector: np.ndarray) -> None:
        """Insert or replace one vector (normalized on the way in)."""
        vector = unit_vector(vector)
        if self.matrix.shape[1] not in (0, vector.shape[0]):
            raise ValueError(f"vector of dimension {vector.shape[0]}, index holds "
                             f"{self.matrix.shape[1]}")
        index = self._slot(segment_id, video_id, vector.shape[0])
        self.matrix[index] = vector
        self.video_code[index] = self.code(video_id)
        self.kind_code[index] = self.code(kind)
        self.alive[index] = True

    def load(self, blocks: Iterable[list[tuple]], expected: int = 0) -> None:
        """Fill an empty store from blocks of (seq, segment id, video id, kind, float32 blob) rows.

        The matrix is allocated once for ``expected`` rows (grown if more come) and filled a
        block at a time, normalized on the way in, so the rows' blobs are never all in memory
        beside it. A segment id that appears again keeps its last vector (rows come in seq
        order).
        """
        for block in blocks:
            dim = len(block[0][4]) // 4
            self._grow(dim, max(expected, len(self.ids) + len(block)))
            positions = [self._slot(row[1], row[2], dim) for row in block]
            matrix = np.frombuffer(b"".join(row[4] for row in block), dtype=np.float32)
            matrix = matrix.reshape(len(block), dim)
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            self.matrix[positions] = matrix / np.where(norms > 0, norms, 1.0)
            self.video_code[positions] = [self.code(row[2]) for row in block]
            self.kind_code[positions] = [self.code(row[3]) for row in block]
            self.alive[positions] = True
            self.last_seq = block[-1][0]

    def _slot(self, segment_id: str, video_id: str, dim: int) -> int:
        """Return the row of a segment (a new one at the end for a new id), now of video_id.

        A known row's vector is about to change: the graph learns it is stale.
        """
        index = self.row.get(segment_id)
        if index is None:
            self._grow(dim)
            index = len(self.ids)
            self.ids.append(segment_id)
            self.video.append(video_id)
            self.row[segment_id] = index
            return index
        if self.ann is not None and index < self.ann.size:
            self.ann.stale.add(index)
        if self.replaced_during_build is not None:
            self.replaced_during_build.add(index)
        self.video[index] = video_id
        return index

    def code(self, value: str) -> int:
        """Return the small integer that stands for a video id or kind in masks."""
        return self.codes.setdefault(value, len(self.codes))

    def _grow(self, dim: int, needed: int = 0) -> None:
        """Make room for one more row, or for ``needed`` rows in all."""
        size = len(self.ids)
        if max(needed, size + 1) <= self.matrix.shape[0]:
            return
        capacity = max(1024, size * 2, needed)
        matrix = np.zeros((capacity, dim), dtype=np.float32)
        if size:
            matrix[:size] = self.matrix[:size]
        self.matrix = matrix
        for name in ("video_code", "kind_code", "alive"):
            old = getattr(self, name)
            grown = np.zeros(capacity, dtype=old.dtype)
            grown[:size] = old[:size]
            setattr(self, name, grown)

    def _member(self, codes: np.ndarray, values: set[str]) -> np.ndarray:
        """Return which rows have one of the values (a lookup table over the small codes)."""
        table = np.zeros(len(self.codes) + 1, dtype=bool)
        table[[self.codes[value] for value in values if value in self.codes]] = True
        return table[codes]

    def drop(self, segment_ids: Iterable[str]) -> None:
        """Forget vectors (their rows are masked out)."""
        for segment_id in segment_ids:
            index = self.row.get(segment_id)
            if index is not None:
                self.alive[index] = False

    def search(
        self, vector: np.ndarray, k: int, videos: set[str] | None, kinds: set[str] | None
    ) -> list[Hit]:
        """Return the k most similar alive rows, optionally restricted to videos and kinds."""
        size = len(self.ids)
        if not size or k <= 0:
            return []
        if vector.shape[0] != self.matrix.shape[1]:
            raise ValueError(f"query vector has dimension {vector.shape[0]}, the index holds "
                             f"{self.matrix.shape[1]}")
        vector = unit_vector(vector)
        mask = self.alive[:size].copy()
        if videos is not None:
            mask &= self._member(self.video_code[:size], videos)
        if kinds:
            mask &= self._member(self.kind_code[:size], kinds)
        allowed = int(mask.sum())
        k = min(k, allowed)
        if k == 0:
            return []
        if self.ann is not None and allowed > 4 * self.ann.ef_search:
            rows = self._ann_candidates(vector, k, mask)
        elif allowed < size // 4:
            rows = np.flatnonzero(mask)  # a selective filter: score only its rows
        else:
            rows = None
        if rows is None:
            scores = np.where(mask, self.matrix[:size] @ vector, -np.inf)
            top = np.argpartition(-scores, k - 1)[:k] if k < size else np.arange(size)
            scores = scores[top]
        else:
            scores = self.matrix[rows] @ vector  # exact cosine of every candidate
            top = rows
            if k < len(rows):
                pick = np.argpartition(-scores, k - 1)[:k]
                top, scores = rows[pick], scores[pick]
        order = np.lexsort((top, -scores))
        ids, videos = self.ids, self.video
        return [Hit(ids[i], videos[i], score) for i, score in
                zip(top[order].tolist(), scores[order].tolist(), strict=True)]

    def _ann_candidates(self, vector: np.ndarray, k: int, mask: np.ndarray) -> np.ndarray:
        """Return graph candidates, plus the rows the graph does not know as they are now.

        Rows appended since the last sync and rows re-embedded since the graph was built
        are scored exactly whatever the graph says.
        """
        candidates = [self.ann.candidates(vector, k, mask),
                      np.flatnonzero(mask[self.ann.size:]) + self.ann.size]
        if self.ann.stale:
            stale = np.fromiter(self.ann.stale, dtype=np.int64)
            candidates.append(stale[mask[stale]])
        return np.unique(np.concatenate(candidates))

    def sync_ann(self) -> None:
        """Add the rows appended since the graph last grew."""
        if self.ann is not None and self.ann.size < len(self.ids):
            self.ann.add(self.matrix[self.ann.size:len(self.ids)])


class EmbeddedBackend(SearchBackend):
    """Single-machine backend: no server, one directory of files."""

    supports_vectors = True
    supports_rebuild = True
    vector_fields = ("text", "visual")

    def __init__(self, alias: str, params: Mapping[str, object]) -> None:
        super().__init__(alias, params)
        if not params.get("PATH"):
            raise ImproperlyConfigured(
                f"settings.RETRIEVAL_BACKENDS[{alias!r}]['PATH'] is empty: set it to a "
                "writable directory (or set REELSEARCH_INDEX_DIR)."
            )
        self.root = Path(str(params["PATH"]))
        self.bm25_engine = _bm25_engine(alias, params)
        self._lexicals: dict[str, LexicalIndex] = {}
        self._local = threading.local()
        self._lock = threading.RLock()
        self._stores: dict[str, VectorStore] = {}
        self._loaded: tuple[str, str] | None = None  # (file name, generation)
        self._allowed_cache: dict[tuple, VideoScope] = {}
        self._pointers: dict[str, tuple[tuple, str | None]] = {}  # name -> (stat key, value)
        self._vocabulary: tuple[tuple | None, Vocabulary] = (None, {})
        self._flock_fd: int | None = None  # the open .lock while this instance holds it
        self._flock_mode = 0  # fcntl.LOCK_SH or fcntl.LOCK_EX while held

    # -- the directory lock ----------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self, mode: int = fcntl.LOCK_EX) -> Iterator[None]:
        """Hold the directory's flock (shared or exclusive) against other processes.

        Re-entrant within this instance: a nested section reuses the held lock, upgrading a
        shared one to exclusive for the rest of the outer section if it has to. The thread
        lock is held throughout, so threads of one process take turns as well. The lock file
        is opened anew for each outermost section (never inherited across a fork).
        """
        with self._lock:
            if self._flock_fd is not None:
                if mode == fcntl.LOCK_EX and self._flock_mode != fcntl.LOCK_EX:
                    fcntl.flock(self._flock_fd, fcntl.LOCK_EX)
                    self._flock_mode = fcntl.LOCK_EX
                yield
                return
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            except OSError as exc:
                raise self._unusable(exc) from exc
            try:
                fcntl.flock(fd, mode)
                self._flock_fd, self._flock_mode = fd, mode
                yield
            finally:
                self._flock_fd, self._flock_mode = None, 0
                os.close(fd)  # releases the flock

    # -- files and connections -------------------------------------------------------------
    def _pointer(self, name: str) -> str | None:
        """Return a pointer file's value; re-read only when the file was replaced or changed."""
        path = self.root / name
        try:
            stat = path.stat()
            key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            cached = self._pointers.get(name)
            if cached is not None and cached[0] == key:
                return cached[1]
            value = path.read_text().strip() or None
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._unusable(exc) from exc
        self._pointers[name] = (key, value)
        return value

    def _unusable(self, exc: OSError) -> BackendUnavailable:
        return BackendUnavailable(
            f"the index directory {self.root} is not usable ({exc}): check that it is a "
            "writable directory (RETRIEVAL_BACKENDS['default']['PATH'] / REELSEARCH_INDEX_DIR)."
        )

    def _set_pointer(self, name: str, value: str | None) -> None:
        target = self.root / name
        if value is None:
            target.unlink(missing_ok=True)
            return
        tmp = self.root / f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            tmp.write_text(value)
            os.replace(tmp, target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise self._unusable(exc) from exc

    def _new_index_file(self) -> str:
        """Create an empty index file under a name no other file has (lock held)."""
        while True:
            name = f"index-{time.time_ns()}.sqlite3"
            if not (self.root / name).exists():
                self._conn(name)
                return name

    def _conn(self, filename: str) -> sqlite3.Connection:
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        if filename not in conns:
            try:
                conns[filename] = _connect(self.root / filename)
                conns[filename].executescript(SCHEMA)
            except sqlite3.Error as exc:
                raise BackendUnavailable(f"cannot open the index {self.root / filename}: {exc}") \
                    from exc
        return conns[filename]

    def _current(self) -> str:
        current = self._pointer("CURRENT")
        if current is None:
            current = self._ensure_current()
        return current

    def ensure_index(self) -> None:
        """Create the index directory and an empty index file if none exists.

        Safe to call from several processes at once: the pointer is re-read under the
        directory lock, so they all end up on the one index file the first of them made.
        """
        self._ensure_current()

    def _ensure_current(self) -> str:
        """Return the live index file's name, creating the directory and file if need be."""
        current = self._pointer("CURRENT") if self.root.is_dir() else None
        if current is not None:
            return current
        with self._locked():
            current = self._pointer("CURRENT")
            if current is None:
                current = self._new_index_file()
                self._set_pointer("CURRENT", current)
            return current

    # -- writes ----------------------------------------------------------------------------
    def _targets(self) -> list[str]:
        """The files a write goes to: the live one and one being rebuilt (lock held)."""
        current = self._current()
        building = self._pointer("BUILDING")
        return [current] + ([building] if building and building != current else [])

    def _writing(self) -> contextlib.AbstractContextManager[None]:
        """Hold the directory lock shared for a write: rebuild swaps wait for it to finish."""
        self.ensure_index()  # outside the shared lock: creating the index takes it exclusively
        return self._locked(fcntl.LOCK_SH)

    def index(self, docs: Iterable[SegmentDoc]) -> IndexReport:
        """Insert or replace documents in the live index (and in one being rebuilt)."""
        docs = list(docs)
        report = IndexReport()
        with self._writing():
            for target in self._targets():
                report = self._write(target, docs)
        return report

    def _write(self, filename: str, docs: list[SegmentDoc]) -> IndexReport:
        conn = self._conn(filename)
        failed: dict[str, str] = {}
        dims: dict[str, int] = {}
        with self._lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                kept: dict[str, SegmentDoc] = {}
                for doc in docs:
                    problem = invalid_document(doc) or _dimension_mismatch(conn, doc, dims)
                    if problem:
                        failed[doc.id] = problem
                    else:
                        kept.pop(doc.id, None)
                        kept[doc.id] = doc  # the last copy of an id in a batch wins
                self._delete_ids(conn, list(kept))
                self._insert_many(conn, list(kept.values()))
                self._prune_log(conn, filename)
                _bump(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return IndexReport(indexed=len(docs) - len(failed), failed=failed)

    @classmethod
    def _delete_ids(cls, conn: sqlite3.Connection, ids: list[str], chunk: int = 500) -> None:
        """Delete the stored rows of these segment ids (one query per chunk of ids)."""
        for start in range(0, len(ids), chunk):
            part = ids[start:start + chunk]
            cls._delete_rows(conn, f"id IN ({', '.join('?' * len(part))})", tuple(part))

    @staticmethod
    def _insert_many(conn: sqlite3.Connection, docs: list[SegmentDoc]) -> None:
        """Insert documents, their FTS rows and their vectors with one statement each."""
        if not docs:
            return
        start = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM docs").fetchone()[0] + 1
        rows = []
        for rowid, doc in enumerate(docs, start):
            filters = doc.filters
            rows.append((rowid, doc.id, doc.video_id, doc.kind, doc.start, doc.end, doc.text,
                         json.dumps([str(t).lower() for t in filters.get("tags", [])]),
                         str(filters.get("language", "")),
                         float(filters.get("duration", 0.0) or 0.0),
                         int(bool(filters.get("published", True)))))
        conn.executemany(
            'INSERT INTO docs (rowid, id, video_id, kind, start, "end", text, tags, language,'
            " duration, published) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.executemany("INSERT INTO docs_fts (rowid, text) VALUES (?, ?)",
                         [(row[0], row[6]) for row in rows])
        log_rows(conn, [row[0] for row in rows])
        conn.executemany(
            "INSERT INTO vectors (segment_id, field, vec) VALUES (?, ?, ?)",
            [(doc.id, field, np.asarray(vector, dtype=np.float32).tobytes())
             for doc in docs for field, vector in doc.vectors.items()])

    @staticmethod
    def _delete_rows(conn: sqlite3.Connection, where: str, args: tuple) -> None:
        rows = conn.execute(f"SELECT rowid, id, text FROM docs WHERE {where}", args).fetchall()  # noqa: S608
        for rowid, segment_id, text in rows:
            conn.execute("INSERT INTO docs_fts (docs_fts, rowid, text) VALUES ('delete', ?, ?)",
                         (rowid, text))
            conn.execute("DELETE FROM docs WHERE rowid = ?", (rowid,))
            conn.execute("DELETE FROM vectors WHERE segment_id = ?", (segment_id,))
        log_rows(conn, [rowid for rowid, _, _ in rows])

    def delete_video(self, video_id: str) -> None:
        """Remove every segment of a video from the live index (and one being rebuilt)."""
        with self._writing():
            for target in self._targets():
                conn = self._conn(target)
                conn.execute("BEGIN IMMEDIATE")
                try:
                    self._delete_rows(conn, "video_id = ?", (video_id,))
                    self._prune_log(conn, target)
                    _bump(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise

    def clear(self) -> None:
        """Remove every document."""
        with self._writing():
            for target in self._targets():
                conn = self._conn(target)
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute("DELETE FROM docs")
                    conn.execute("INSERT INTO docs_fts (docs_fts) VALUES ('delete-all')")
                    conn.execute("DELETE FROM vectors")
                    log_rows(conn, [None])
                    self._prune_log(conn, target)
                    _bump(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise

    def rebuild(self, docs: Iterable[SegmentDoc], batch_size: int = 500) -> IndexReport:
        """Build a new index file from docs, then swap it in; writes meanwhile go to both.

        Creating the new file and setting BUILDING, and later swapping CURRENT, clearing
        BUILDING and retiring the old file, each happen under the exclusive directory lock,
        so no write of another process is halfway between reading the pointers and writing.
        """
        with self._locked():
            self.ensure_index()
            name = self._new_index_file()
            self._set_pointer("BUILDING", name)
        indexed, failed = 0, {}
        try:
            batch: list[SegmentDoc] = []
            for doc in docs:
                batch.append(doc)
                if len(batch) >= batch_size:
                    report = self._write(name, batch)
                    indexed, failed = indexed + report.indexed, {**failed, **report.failed}
                    batch = []
            report = self._write(name, batch)
            indexed, failed = indexed + report.indexed, {**failed, **report.failed}
            if self.bm25_engine == "tantivy":  # built before the swap, not by a first search
                self._lexical(name).current(self._conn(name))
        except BaseException:
            with self._locked():
                if self._pointer("BUILDING") == name:
                    self._set_pointer("BUILDING", None)
                self._retire(name)
            raise
        with self._locked():
            old = self._current()
            self._set_pointer("CURRENT", name)
            if self._pointer("BUILDING") == name:  # another rebuild may have started since
                self._set_pointer("BUILDING", None)
            if old != name:
                self._retire(old)
        return IndexReport(indexed=indexed, failed=failed)

    def _retire(self, filename: str) -> None:
        conns = getattr(self._local, "conns", {})
        conn = conns.pop(filename, None)
        if conn is not None:
            conn.close()
        for suffix in ("", "-wal", "-shm"):
            (self.root / f"{filename}{suffix}").unlink(missing_ok=True)
        for graph in self.root.glob(f"{filename}.*.hnsw*"):
            graph.unlink(missing_ok=True)
        self._lexicals.pop(filename, None)
        shutil.rmtree(self._lexical_folder(filename), ignore_errors=True)

    # -- the BM25 engine -------------------------------------------------------------------
    def _lexical_folder(self, filename: str) -> Path:
        return self.root / f"{filename}.lexical"

    def _lexical(self, filename: str) -> LexicalIndex:
        with self._lock:
            if filename not in self._lexicals:
                self._lexicals[filename] = LexicalIndex(self._lexical_folder(filename))
            return self._lexicals[filename]

    def _prune_log(self, conn: sqlite3.Connection, filename: str) -> None:
        """Drop change-log entries nobody needs any more (inside a write)."""
        if self.bm25_engine == "tantivy":
            prune_log(conn, self._lexical_folder(filename))
        else:
            forget_log(conn, self._lexical_folder(filename))

    # -- reads -----------------------------------------------------------------------------
    def count(self) -> int:
        """Return the number of stored segments."""
        return self._conn(self._current()).execute("SELECT COUNT(*) FROM docs").fetchone()[0]

    def bm25(self, text: str, k: int, filters: Filters = Filters(),
             fuzzy: Sequence[str] = ()) -> list[Hit]:
        """Rank segments by BM25 (tantivy, or FTS5's bm25()), filters inside the query.

        A term in ``fuzzy`` also matches the index's terms (Porter stems, from fts5vocab)
        within its edit budget of its stem: they join the query as alternatives.
        """
        terms = query_terms(text)
        if not terms or k <= 0:
            return []
        tolerant = [term for term in terms if term in fuzzy]
        hits = self._ask_tantivy("answer", lambda conn, lexical: self._tantivy_hits(
            conn, lexical, terms, lexical.near_words(tolerant), k, filters))
        if hits is not None:
            return hits
        near = list(dict.fromkeys(word for term in tolerant for word in self._near_words(term)))
        return self._fts5_hits(terms, near, k, filters)

    def _ask_tantivy(self, what: str, ask: Callable[[sqlite3.Connection, LexicalIndex], T]
                     ) -> T | None:
        """Return ask(conn, lexical) on the current tantivy index, or None for FTS5 to answer.

        None on the FTS5 engine, while another process is catching the index up, or when the
        index was retired by a rebuild meanwhile.
        """
        if self.bm25_engine != "tantivy":
            return None
        current = self._current()
        conn = self._conn(current)
        lexical = self._lexical(current)
        try:
            if lexical.current(conn):
                return ask(conn, lexical)
        except (OSError, ValueError) as exc:
            logger.warning("tantivy could not %s (%s); FTS5 does instead", what, exc)
        return None

    def _tantivy_hits(self, conn: sqlite3.Connection, lexical: LexicalIndex, terms: list[str],
                      near: list[str], k: int, filters: Filters) -> list[Hit]:
        videos, excluded = self._tantivy_scope(filters)
        scored = lexical.search(terms, k, videos, set(filters.kinds) or None, near=near,
                                excluded=excluded)
        if not scored:
            return []
        rows = dict(scored)
        # The filters again, on the rows found: a video written since the scope was read
        # is judged by its own row.
        where, args = _filter_sql(filters)
        found = conn.execute(
            "SELECT d.rowid, d.id, d.video_id, d.text FROM docs d "  # noqa: S608 (fixed clauses)
            f"WHERE d.rowid IN ({', '.join('?' * len(rows))}) {where}",
            [*rows, *args]).fetchall()
        hits = [Hit(segment_id, video_id, rows[rowid], text)
                for rowid, segment_id, video_id, text in found]
        return sorted(hits, key=lambda hit: (-hit.score, hit.segment_id))

    def _tantivy_scope(self, filters: Filters) -> tuple[set[str] | None, set[str] | None]:
        """Return (videos let in, videos left out) for tantivy: the shorter list, other None."""
        video_filters = replace(filters, kinds=())
        if video_filters.is_empty():
            return None, None
        scope = self._video_scope(video_filters)
        if len(scope.excluded) < len(scope.allowed):
            return None, set(scope.excluded)
        return set(scope.allowed), None

    def _fts5_hits(self, terms: list[str], near: list[str], k: int,
                   filters: Filters) -> list[Hit]:
        # A MATCH string is stemmed again, so a stem the stemmer would change ("caus") is
        # asked for as a prefix ("caus"*), which prefix queries leave unstemmed.
        alternatives = [_quoted(word) if stem(word) == word else _quoted(word) + "*"
                        for word in near]
        match = " OR ".join(dict.fromkeys([_quoted(term) for term in terms] + alternatives))
        where, args = _filter_sql(filters)
        sql = (  # `where` holds only fixed clauses with ? placeholders
            "SELECT d.id, d.video_id, -bm25(docs_fts) AS score, d.text FROM docs_fts "  # noqa: S608
            "JOIN docs d ON d.rowid = docs_fts.rowid "
            f"WHERE docs_fts MATCH ? {where} ORDER BY bm25(docs_fts), d.id LIMIT ?"
        )
        try:
            rows = self._conn(self._current()).execute(sql, (match, *args, k)).fetchall()
        except sqlite3.OperationalError as exc:
            raise BackendUnavailable(f"BM25 query failed: {exc}") from exc
        return [Hit(segment_id, video_id, float(score), text)
                for segment_id, video_id, score, text in rows]

    def term_counts(self, terms: Sequence[str], filters: Filters = Filters(),
                    cap: int = 10) -> dict[str, int]:
        """Return how many segments (passing filters) hold each term, counted up to cap."""
        def count(conn: sqlite3.Connection, lexical: LexicalIndex) -> dict[str, int]:
            videos, excluded = self._tantivy_scope(filters)
            kinds = set(filters.kinds) or None
            return {term: lexical.count(term, cap, videos, kinds, excluded) for term in terms}

        counts = self._ask_tantivy("count terms", count)
        if counts is not None:
            return counts
        where, args = _filter_sql(filters)
        sql = ("SELECT COUNT(*) FROM (SELECT 1 FROM docs_fts "  # noqa: S608 (fixed clauses)
               "JOIN docs d ON d.rowid = docs_fts.rowid "
               f"WHERE docs_fts MATCH ? {where} LIMIT ?)")
        conn = self._conn(self._current())
        try:
            return {term: int(conn.execute(sql, (_quoted(term), *args, cap)).fetchone()[0])
                    for term in terms}
        except sqlite3.OperationalError as exc:
            raise BackendUnavailable(f"term count failed: {exc}") from exc

    def _near_words(self, term: str) -> list[str]:
        """Return the FTS5 index terms (Porter stems) within the term's edit budget of its stem.

        Candidates come from the FTS5 vocabulary (fts5vocab), most common first; the tantivy
        engine asks its own term dictionary (LexicalIndex.near_words).
        """
        return near_terms(stem(term), self._vocabulary_by_length(), max_edits(term))

    def _vocabulary_by_length(self) -> Vocabulary:
        """Return the index's (term, document count) pairs by length, cached per generation."""
        current = self._current()
        conn = self._conn(current)
        generation = conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0]
        key = (current, generation)
        if self._vocabulary[0] != key:
            self._vocabulary = (key, by_length(conn.execute("SELECT term, doc FROM docs_vocab")))
        return self._vocabulary[1]

    def knn(
        self, field: str, vector: np.ndarray, k: int, filters: Filters = Filters()
    ) -> list[Hit]:
        """Return the k nearest segments by exact cosine, filters applied before ranking."""
        store = self._store(field)
        video_filters = replace(filters, kinds=())
        videos = None
        if not video_filters.is_empty():
            scope = self._video_scope(video_filters)
            videos = set(scope.allowed) if scope.excluded else None  # None: every video passes
        return store.search(vector, k, videos, set(filters.kinds) or None)

    def facet_counts(self, video_ids: Sequence[str], names: Sequence[str]
                     ) -> dict[str, dict[str, int]]:
        """Count these videos per tag, language and duration bucket (one row per video)."""
        counts: dict[str, dict[str, int]] = {name: {} for name in names if name in _FACET_SQL}
        if not counts or not video_ids:
            return counts
        conn = self._conn(self._current())
        marks = ", ".join("?" * len(video_ids))
        one_row = ("WITH v AS (SELECT MIN(rowid) AS r FROM docs "  # noqa: S608 (fixed SQL)
                   f"WHERE video_id IN ({marks}) GROUP BY video_id) ")
        for name in counts:
            sql = one_row + _FACET_SQL[name]
            counts[name] = {str(value): int(n) for value, n in conn.execute(sql, list(video_ids))}
        return counts

    def vectors_for_video(self, video_id: str, field: str = "text") -> np.ndarray:
        """Return the normalized vectors of a video's segments."""
        store = self._store(field)
        rows = [i for i, v in enumerate(store.video) if v == video_id and store.alive[i]]
        return store.matrix[rows] if rows else np.zeros((0, max(store.matrix.shape[1], 1)))

    def _video_scope(self, filters: Filters) -> VideoScope:
        """Return the videos that pass the filters and those that do not (cached per write)."""
        current = self._current()
        conn = self._conn(current)
        generation = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]
        key = (current, generation, filters)
        if key not in self._allowed_cache:
            where, args = _filter_sql(filters)
            sql = f"SELECT DISTINCT d.video_id FROM docs d WHERE 1 = 1 {where}"  # noqa: S608
            allowed = frozenset(row[0] for row in conn.execute(sql, args))
            every = frozenset(row[0] for row in conn.execute("SELECT DISTINCT video_id FROM docs"))
            self._allowed_cache = {key: VideoScope(allowed, every - allowed)}
        return self._allowed_cache[key]

    def _store(self, field: str) -> VectorStore:
        with self._lock:
            current = self._current()
            conn = self._conn(current)
            generation = conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0]
            if self._loaded is None or self._loaded[0] != current:
                self._stores = {}
            if self._loaded != (current, generation) or field not in self._stores:
                self._refresh(conn, field)
                self._loaded = (current, generation)
            store = self._stores.setdefault(field, VectorStore())
            self._ensure_ann(store, current, field)
            return store

    def _ensure_ann(self, store: VectorStore, current: str, field: str) -> None:
        """Give a store past ANN_MIN_SIZE rows its HNSW graph: the saved one, or a new one.

        A new graph is built in a background thread (ANN_BUILD_IN_BACKGROUND, default on):
        searches stay exact meanwhile, and no request waits for the build. A graph with more
        than a twentieth of its rows re-embedded since it was built is rebuilt the same way
        (re-scoring uses the new vectors, but the graph would lead to the old ones).
        """
        threshold = int(self.params.get("ANN_MIN_SIZE", 0) or 0)
        if threshold <= 0 or len(store.ids) < threshold or not ann_available():
            store.ann = None
            return
        path = self.root / f"{current}.{field}.hnsw"
        ef_search = int(self.params.get("ANN_EF_SEARCH", 128))
        if store.ann is None and store.building is None:
            store.ann = HnswIndex.load(path, store.ids, ef_search)
        stale = store.ann is None or len(store.ann.stale) > store.ann.size // 20
        if stale and store.building is None:
            build = functools.partial(self._build_ann, store, path, current, ef_search)
            if self.params.get("ANN_BUILD_IN_BACKGROUND", True):
                store.building = threading.Thread(target=build, daemon=True,
                                                  name=f"hnsw-{field}")
                store.replaced_during_build = set()
                store.building.start()
            else:
                store.replaced_during_build = set()
                build()
        store.sync_ann()

    def _build_ann(self, store: VectorStore, path: Path, current: str, ef_search: int) -> None:
        """Build a graph over the store's rows as they are now, install it, save it."""
        try:
            rows, matrix = len(store.ids), store.matrix
            index = HnswIndex(matrix.shape[1], ef_search=ef_search)
            index.add(matrix[:rows])
            with self._lock:
                index.stale = {row for row in store.replaced_during_build or () if row < rows}
                store.replaced_during_build, store.ann = None, index
                store.sync_ann()
                ids = list(store.ids[:rows])
            with self._locked(fcntl.LOCK_SH):
                if self._current() == current:  # not retired by a rebuild meanwhile
                    index.save(path, ids)
        except Exception:  # a failed build leaves the exact search in place
            logger.exception("building the HNSW graph of %s failed", path.name)
        finally:
            store.building = None

    def wait_for_ann(self, timeout: float | None = None) -> None:
        """Wait for graphs being built in the background (tests, benchmarks)."""
        for store in list(self._stores.values()):
            thread = store.building
            if thread is not None:
                thread.join(timeout)

    def _refresh(self, conn: sqlite3.Connection, field: str) -> None:
        for name in {field, *self._stores}:
            store = self._stores.setdefault(name, VectorStore())
            rows = [] if not store.ids else _vector_rows(conn, name, store.last_seq)
            if rows and store.matrix.shape[1] != len(rows[0][4]) // 4:
                # cleared and re-embedded with another dimension: load the field afresh
                store = self._stores[name] = VectorStore()
                rows = []
            if not store.ids:  # a first load: block by block, a matrix operation each
                store.load(_vector_blocks(conn, name), _vector_count(conn, name))
            for _, segment_id, video_id, kind, blob in rows:
                store.put(segment_id, video_id, kind, np.frombuffer(blob, dtype=np.float32))
            if rows:
                store.last_seq = rows[-1][0]
            live = {row[0] for row in conn.execute(
                "SELECT segment_id FROM vectors WHERE field = ?", (name,))}
            store.drop([sid for sid in store.row if sid not in live])

    def close(self) -> None:
        """Close this thread's connections."""
        for conn in getattr(self._local, "conns", {}).values():
            conn.close()
        self._local.conns = {}


def _duration_case() -> str:
    """Return an SQL CASE that names the duration bucket of d.duration."""
    arms = [f"WHEN d.duration < {float(b.high)!r} THEN '{b.key}'"
            for b in DURATION_BUCKETS if b.high is not None]
    return f"CASE {' '.join(arms)} ELSE '{DURATION_BUCKETS[-1].key}' END"


_FACET_SQL = {  # each counts one docs row per video (v.r), joined as d
    "tags": "SELECT t.value, COUNT(*) FROM v JOIN docs d ON d.rowid = v.r, json_each(d.tags) t "
            "GROUP BY t.value",
    "language": "SELECT d.language, COUNT(*) FROM v JOIN docs d ON d.rowid = v.r "
                "WHERE d.language != '' GROUP BY d.language",
    "duration": f"SELECT {_duration_case()}, COUNT(*) FROM v JOIN docs d ON d.rowid = v.r "  # noqa: S608
                "GROUP BY 1",
}


_VECTOR_ROWS = ("SELECT v.seq, v.segment_id, d.video_id, d.kind, v.vec FROM vectors v "
                "JOIN docs d ON d.id = v.segment_id WHERE v.field = ? AND v.seq > ? "
                "ORDER BY v.seq")


def _vector_rows(conn: sqlite3.Connection, field: str, after: int) -> list[tuple]:
    return conn.execute(_VECTOR_ROWS, (field, after)).fetchall()


def _vector_blocks(conn: sqlite3.Connection, field: str) -> Iterator[list[tuple]]:
    """Yield a field's vector rows in blocks of LOAD_BLOCK, in seq order."""
    cursor = conn.execute(_VECTOR_ROWS, (field, 0))
    while block := cursor.fetchmany(LOAD_BLOCK):
        yield block


def _vector_count(conn: sqlite3.Connection, field: str) -> int:
    return conn.execute("SELECT COUNT(*) FROM vectors WHERE field = ?", (field,)).fetchone()[0]


def _quoted(term: str) -> str:
    """Return a term as an FTS5 string (no operator or column syntax inside)."""
    return '"' + term.replace('"', '""') + '"'


def _bump(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")


def _dimension_mismatch(conn: sqlite3.Connection, doc: SegmentDoc, dims: dict[str, int]) -> str:
    """Refuse a vector whose dimension differs from the field's stored vectors (or batch)."""
    for field, vector in doc.vectors.items():
        size = np.asarray(vector).size
        if field not in dims:
            row = conn.execute("SELECT length(vec) FROM vectors WHERE field = ? LIMIT 1",
                               (field,)).fetchone()
            dims[field] = row[0] // 4 if row else size  # float32 blobs
        if size != dims[field]:
            return (f"vector {field!r} has dimension {size}, the index holds {dims[field]}: "
                    "re-embed with the index's model or rebuild the index")
    return ""


def _filter_sql(filters: Filters) -> tuple[str, list]:
    """Translate filters into an SQL condition on the docs table aliased as d."""
    clauses: list[str] = []
    args: list = []
    if filters.tags:
        marks = ", ".join("?" * len(filters.tags))
        clauses.append(f"EXISTS (SELECT 1 FROM json_each(d.tags) WHERE value IN ({marks}))")  # noqa: S608
        args += [tag.lower() for tag in filters.tags]
    if filters.language:
        clauses.append("d.language = ?")
        args.append(filters.language)
    if filters.min_duration is not None:
        clauses.append("d.duration >= ?")
        args.append(filters.min_duration)
    if filters.max_duration is not None:
        clauses.append("d.duration <= ?")
        args.append(filters.max_duration)
    if filters.published is not None:
        clauses.append("d.published = ?")
        args.append(int(filters.published))
    for column, values, op in (("video_id", filters.video_ids, "IN"),
                               ("video_id", filters.exclude_video_ids, "NOT IN"),
                               ("kind", filters.kinds, "IN")):
        if values:
            clauses.append(f"d.{column} {op} ({', '.join('?' * len(values))})")
            args += list(values)
    return "".join(f" AND {clause}" for clause in clauses), args


def _bm25_engine(alias: str, params: Mapping[str, object]) -> str:
    """Return the configured BM25 engine, checking that it can run."""
    engine = str(params.get("BM25_ENGINE") or "tantivy").lower()
    if engine not in ("tantivy", "fts5"):
        raise ImproperlyConfigured(
            f"settings.RETRIEVAL_BACKENDS[{alias!r}]['BM25_ENGINE'] = {engine!r}: use "
            "'tantivy' (the default) or 'fts5' (REELSEARCH_BM25_ENGINE).")
    if engine == "tantivy" and not tantivy_available():
        raise ImproperlyConfigured(
            "the embedded backend's BM25 engine is tantivy, which is not installed: "
            "`pip install tantivy` (a dependency of reelsearch), or set "
            f"settings.RETRIEVAL_BACKENDS[{alias!r}]['BM25_ENGINE'] = 'fts5'.")
    return engine
