"""The embedded backend's BM25 engine: a tantivy index derived from the SQLite index file.

SQLite stays the record: every write logs the rows it inserted or deleted in
``lexical_log`` (a NULL row: everything was cleared) in the same transaction. A tantivy
index in ``<index file>.lexical/`` follows that log: whichever process searches first after
a write replays the log entries past ``APPLIED`` (re-reading those rows from SQLite, in one
read transaction so rows and log agree), commits, then records the last entry it applied.
One process replays at a time (a non-blocking flock on ``.lock`` in that folder); a search
that finds the index behind and the lock taken answers from FTS5 instead, so a search never
waits and never misses a write. Replaying an entry twice is harmless (delete, then add the
row as it is now), so a crash between tantivy's commit and ``APPLIED`` loses nothing.

tantivy scores with Lucene's BM25 (k1 1.2, b 0.75) and, for a disjunction of terms, skips
blocks that cannot reach the top k (block-max WAND): queries of frequent words do not score
every matching row, as FTS5's ``ORDER BY bm25()`` does. Its analyzer folds the text as
FTS5's ``porter unicode61 remove_diacritics 2`` does (lowercase, accents removed, English
stemming; tantivy's stemmer is Snowball English, the successor of Porter's).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

from retrieval.typos import Vocabulary, by_length, max_edits, near_terms

logger = logging.getLogger("reelsearch.lexical")

ANALYZER = "reelsearch_en"
WRITER_HEAP = 64_000_000  # bytes tantivy buffers before it writes a segment
CHUNK = 500  # rows read from SQLite per query while replaying
NEAR_CACHE_SIZE = 4096  # query terms whose typo neighbours are kept until the index changes


def tantivy_available() -> bool:
    """Return True when the tantivy package can be imported."""
    try:
        import tantivy  # noqa: F401
    except ImportError:
        return False
    return True


@cache
def _analyzer():
    import tantivy

    return (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
            .filter(tantivy.Filter.remove_long(100))
            .filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.ascii_fold())
            .filter(tantivy.Filter.stemmer("english"))
            .build())


def _schema():
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field("row", indexed=True, fast=True)
    builder.add_text_field("video_id", tokenizer_name="raw")
    builder.add_text_field("kind", tokenizer_name="raw")
    builder.add_text_field("text", tokenizer_name=ANALYZER)
    return builder.build()


def log_rows(conn: sqlite3.Connection, rows: Iterable[int | None]) -> None:
    """Record rows a write inserted or deleted (None: every row was cleared)."""
    conn.executemany("INSERT INTO lexical_log (row) VALUES (?)", [(row,) for row in rows])


def log_head(conn: sqlite3.Connection) -> int:
    """Return the sequence number of the last logged change (0 if none)."""
    found = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'lexical_log'").fetchone()
    return int(found[0]) if found else 0


def prune_log(conn: sqlite3.Connection, folder: Path) -> None:
    """Drop log entries the tantivy index has applied (inside the caller's write)."""
    applied = _read_applied(folder)
    if applied > 0:
        conn.execute("DELETE FROM lexical_log WHERE seq <= ?", (applied,))


def forget_log(conn: sqlite3.Connection, folder: Path) -> None:
    """Drop the whole log (FTS5 answers); a later tantivy index is built from the rows."""
    conn.execute("DELETE FROM lexical_log")
    (folder / "APPLIED").unlink(missing_ok=True)


def _read_applied(folder: Path) -> int:
    """Return the last log entry the index holds; -1 when it must be built from the rows."""
    try:
        return int((folder / "APPLIED").read_text().strip())
    except (FileNotFoundError, ValueError):
        return -1


class LexicalIndex:
    """The tantivy index of one SQLite index file, kept up to date from its change log."""

    def __init__(self, folder: Path) -> None:
        import tantivy

        self.folder = folder
        self._tantivy = tantivy
        self._lock = threading.Lock()
        self._index = None
        self._loaded = -1  # the APPLIED value this process's searcher reflects
        self._near: dict[str, list[str]] = {}  # query term -> its near index terms
        self._vocabulary: tuple[int, Vocabulary] = (-2, {})

    # -- replaying the log -----------------------------------------------------------------
    def current(self, conn: sqlite3.Connection) -> bool:
        """Bring the index up to the log's head if possible; return whether it is there."""
        head = log_head(conn)
        if self._loaded >= head and self._index is not None:
            return True
        with self._lock:
            applied = _read_applied(self.folder)
            if applied < head or applied < 0:
                applied = self._replay(conn)
            if applied >= head:
                self._reload(applied)
            return self._loaded >= head

    def _replay(self, conn: sqlite3.Connection) -> int:
        """Apply the log past APPLIED under the folder's flock; return APPLIED after."""
        with self._replaying() as held:
            if not held:
                return _read_applied(self.folder)  # another process is at it
            applied = _read_applied(self.folder)
            index = self._open(fresh=applied < 0)
            conn.execute("BEGIN")  # one snapshot: the log and the rows agree
            try:
                applied = self._apply(conn, index, applied)
            finally:
                conn.execute("COMMIT")
            self._write_applied(applied)
            return applied

    def _apply(self, conn: sqlite3.Connection, index, applied: int) -> int:
        head = log_head(conn)
        entries = conn.execute("SELECT seq, row FROM lexical_log WHERE seq > ? ORDER BY seq",
                               (applied,)).fetchall()
        writer = index.writer(heap_size=WRITER_HEAP, num_threads=1)
        rows = [row for _, row in entries]
        cleared = None in rows
        if cleared:  # only what came after the last clear matters
            rows = rows[len(rows) - rows[::-1].index(None):]
        if applied < 0 or cleared:
            writer.delete_all_documents()
        if applied < 0:  # a new index: every row, not only those still in the log
            rows = [row for (row,) in conn.execute("SELECT rowid FROM docs")]
        rows = list(dict.fromkeys(rows))
        for start in range(0, len(rows), CHUNK):
            part = rows[start:start + CHUNK]
            if applied >= 0:  # (a term deletion would not match the unsigned field's terms)
                writer.delete_documents_by_query(
                    self._tantivy.Query.term_set_query(index.schema, "row", part))
            for row, video_id, kind, text in conn.execute(
                    "SELECT rowid, video_id, kind, text FROM docs "  # noqa: S608
                    f"WHERE rowid IN ({', '.join('?' * len(part))})", part):
                doc = self._tantivy.Document()
                doc.add_unsigned("row", row)
                doc.add_text("video_id", video_id)
                doc.add_text("kind", kind)
                doc.add_text("text", text)
                writer.add_document(doc)
        writer.commit()
        writer.wait_merging_threads()
        return head

    @contextlib.contextmanager
    def _replaying(self) -> Iterator[bool]:
        """Hold the folder's flock if no other process does; yield whether it is held."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def _open(self, fresh: bool):
        """Open the index folder, creating it (anew when fresh) if need be."""
        tantivy = self._tantivy
        data = self.folder / "index"
        if fresh and data.exists():
            shutil.rmtree(data)  # APPLIED is gone: whatever is there is of unknown age
        data.mkdir(parents=True, exist_ok=True)
        if tantivy.Index.exists(str(data)):
            index = tantivy.Index.open(str(data))
        else:
            index = tantivy.Index(_schema(), path=str(data))
        index.register_tokenizer(ANALYZER, _analyzer())
        return index

    def _write_applied(self, applied: int) -> None:
        tmp = self.folder / f".APPLIED.{os.getpid()}.tmp"
        tmp.write_text(str(applied))
        os.replace(tmp, self.folder / "APPLIED")

    def _reload(self, applied: int) -> None:
        if self._index is None:
            self._index = self._open(fresh=False)
        self._index.reload()
        self._loaded = applied

    # -- searching -------------------------------------------------------------------------
    def near_words(self, terms: Iterable[str]) -> list[str]:
        """Return the index's terms within each query term's edit budget of its stem."""
        if self._vocabulary[0] != self._loaded:  # the term dictionary as last reloaded
            terms_now = self._index.searcher().terms_with_prefix("text", "")
            self._vocabulary = (self._loaded, by_length(terms_now))
            self._near = {}
        vocabulary, found = self._vocabulary[1], []
        for term in terms:
            near = self._near.get(term)  # each term's neighbours, until the index changes
            if near is None:
                near = [word for own in _analyzer().analyze(term)
                        for word in near_terms(own, vocabulary, max_edits(term))]
                if len(self._near) >= NEAR_CACHE_SIZE:
                    self._near = {}
                self._near[term] = near
            found += near
        return list(dict.fromkeys(found))

    def search(self, terms: list[str], k: int, videos: set[str] | None,
               kinds: set[str] | None, near: Iterable[str] = (),
               excluded: set[str] | None = None) -> list[tuple[int, float]]:
        """Return up to k (row, BM25 score) pairs, best first, for any of the terms.

        Only rows of ``videos`` (None: any) not in ``excluded`` count. ``near`` holds index
        terms as they are (typo alternatives from near_words()).
        """
        tantivy, schema = self._tantivy, self._index.schema
        tokens = list(dict.fromkeys([token for term in terms
                                     for token in _analyzer().analyze(term)] + list(near)))
        if not tokens or videos is not None and not videos:
            return []
        query = tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, tantivy.Query.term_query(schema, "text", token))
             for token in tokens])
        searcher = self._index.searcher()
        hits = searcher.search(self._filtered(query, videos, kinds, excluded), k,
                               count=False).hits
        rows = searcher.fast_field_values("row", [address for _, address in hits])
        return [(int(row), float(score)) for row, (score, _) in zip(rows, hits, strict=True)]

    def count(self, term: str, cap: int, videos: set[str] | None, kinds: set[str] | None,
              excluded: set[str] | None = None) -> int:
        """Return how many rows (passing the filters) hold every token of term, up to cap."""
        tantivy, schema = self._tantivy, self._index.schema
        tokens = list(dict.fromkeys(_analyzer().analyze(term)))
        if not tokens or videos is not None and not videos or cap <= 0:
            return 0
        query = tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, tantivy.Query.term_query(schema, "text", token))
             for token in tokens])
        hits = self._index.searcher().search(self._filtered(query, videos, kinds, excluded),
                                             cap, count=False).hits
        return len(hits)

    def _filtered(self, query, videos: set[str] | None, kinds: set[str] | None,
                  excluded: set[str] | None):
        """Return query restricted to videos and kinds, minus excluded (scores unchanged)."""
        tantivy, schema = self._tantivy, self._index.schema
        must = []
        if videos is not None:
            must.append(tantivy.Query.term_set_query(schema, "video_id", sorted(videos)))
        if kinds:
            must.append(tantivy.Query.term_set_query(schema, "kind", sorted(kinds)))
        if not must and not excluded:
            return query
        return tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, query),
             *((tantivy.Occur.Must, tantivy.Query.const_score_query(q, 0.0)) for q in must),
             *([(tantivy.Occur.MustNot, tantivy.Query.term_set_query(
                 schema, "video_id", sorted(excluded)))] if excluded else [])])

    def remove(self) -> None:
        """Delete the folder (its SQLite file was retired)."""
        self._index = None
        shutil.rmtree(self.folder, ignore_errors=True)
