"""The embedded backend's tantivy BM25 index: derived from SQLite, never behind a search."""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from retrieval.backends.embedded import EmbeddedBackend
from retrieval.backends.lexical import log_head

from .test_embedded_backend import doc


def backend_at(path: Path, engine: str = "tantivy") -> EmbeddedBackend:
    return EmbeddedBackend("test", {"PATH": str(path), "BM25_ENGINE": engine})


def ids(hits) -> list[str]:
    return [hit.segment_id for hit in hits]


def lexical_folder(backend: EmbeddedBackend) -> Path:
    return backend.root / f"{backend._current()}.lexical"


def applied(backend: EmbeddedBackend) -> int:
    return int((lexical_folder(backend) / "APPLIED").read_text())


def test_another_instances_writes_are_found_by_the_next_search(tmp_path: Path) -> None:
    reader, writer = backend_at(tmp_path), backend_at(tmp_path)
    writer.index([doc("a", "v1", "sourdough bread"), doc("b", "v2", "rye crackers")])
    assert ids(reader.bm25("bread", 5)) == ["a"]
    writer.index([doc("c", "v3", "bread rolls")])
    writer.delete_video("v1")
    assert ids(reader.bm25("bread", 5)) == ["c"]
    writer.index([doc("c", "v3", "crusty rolls")])  # replaced: its old text is gone
    assert reader.bm25("bread", 5) == []
    assert ids(reader.bm25("crusty", 5)) == ["c"]


def test_ranks_by_bm25_with_stemming_and_folding(tmp_path: Path) -> None:
    backend = backend_at(tmp_path)
    backend.index([doc("once", "v1", "a runner ran along the road to the old town"),
                   doc("twice", "v2", "running running"),
                   doc("cafe", "v3", "the Café opens at nine")])
    assert ids(backend.bm25("run", 5)) == ["twice"]
    assert ids(backend.bm25("cafe", 5)) == ["cafe"]
    assert ids(backend.bm25("runs road", 5)) == ["twice", "once"]  # tf 2 in 2 words first


def test_a_search_while_another_process_replays_answers_from_fts5(tmp_path: Path) -> None:
    backend = backend_at(tmp_path)
    backend.index([doc("a", "v1", "bread")])
    assert ids(backend.bm25("bread", 5)) == ["a"]
    folder = lexical_folder(backend)
    fd = os.open(folder / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a replaying process would
        backend.index([doc("b", "v2", "fresh bread")])
        assert set(ids(backend.bm25("bread", 5))) == {"a", "b"}  # FTS5 answered
        assert applied(backend) < log_head(backend._conn(backend._current()))
    finally:
        os.close(fd)
    assert set(ids(backend.bm25("bread", 5))) == {"a", "b"}
    assert applied(backend) == log_head(backend._conn(backend._current()))


def test_a_lost_lexical_folder_is_rebuilt_from_the_rows(tmp_path: Path) -> None:
    backend = backend_at(tmp_path)
    backend.index([doc("a", "v1", "bread"), doc("b", "v2", "butter")])
    backend.bm25("bread", 5)
    backend.index([doc("c", "v3", "bread")])  # its log entries are all that is left
    shutil.rmtree(lexical_folder(backend))
    fresh = backend_at(tmp_path)
    assert set(ids(fresh.bm25("bread", 5))) == {"a", "c"}
    assert ids(fresh.bm25("butter", 5)) == ["b"]


def test_the_change_log_keeps_only_what_the_index_has_not_applied(tmp_path: Path) -> None:
    backend = backend_at(tmp_path)
    backend.index([doc(f"s{n}", "v1", "bread") for n in range(20)])
    backend.bm25("bread", 5)
    backend.index([doc("late", "v2", "bread")])
    conn = backend._conn(backend._current())
    left = conn.execute("SELECT COUNT(*), MIN(seq) FROM lexical_log").fetchone()
    assert left[0] == 1 and left[1] > applied(backend)


def test_clear_empties_the_lexical_index(tmp_path: Path) -> None:
    backend = backend_at(tmp_path)
    backend.index([doc("a", "v1", "bread")])
    backend.bm25("bread", 5)
    backend.clear()
    backend.index([doc("b", "v2", "bread")])
    assert ids(backend.bm25("bread", 5)) == ["b"]


def test_a_rebuild_builds_the_new_files_lexical_index_before_the_swap(tmp_path: Path) -> None:
    backend = backend_at(tmp_path)
    backend.index([doc("old", "v1", "stale bread")])
    backend.bm25("bread", 5)
    old = backend._current()
    backend.rebuild(iter([doc("new", "v2", "fresh bread")]))
    assert backend._current() != old
    assert not (tmp_path / f"{old}.lexical").exists()
    assert applied(backend) == log_head(backend._conn(backend._current()))
    assert ids(backend.bm25("bread", 5)) == ["new"]


def test_fts5_engine_answers_the_same_and_keeps_no_change_log(tmp_path: Path) -> None:
    backend = backend_at(tmp_path, "fts5")
    backend.index([doc("a", "v1", "sourdough bread"), doc("b", "v2", "bread bread")])
    assert ids(backend.bm25("bread", 5)) == ["b", "a"]
    conn = backend._conn(backend._current())
    assert conn.execute("SELECT COUNT(*) FROM lexical_log").fetchone()[0] == 0
    assert not lexical_folder(backend).exists()


def test_an_unknown_engine_is_refused_with_the_setting_named(tmp_path: Path) -> None:
    with pytest.raises(ImproperlyConfigured, match="BM25_ENGINE"):
        backend_at(tmp_path, "lucene")


def test_an_index_written_with_fts5_is_searchable_when_tantivy_takes_over(
        tmp_path: Path) -> None:
    tantivy_first = backend_at(tmp_path)
    tantivy_first.index([doc("a", "v1", "bread")])
    assert ids(tantivy_first.bm25("bread", 5)) == ["a"]
    fts5 = backend_at(tmp_path, "fts5")  # an older release, or a switched setting
    fts5.index([doc("b", "v2", "bread"), doc("c", "v3", "bread")])
    fts5.delete_video("v1")
    tantivy_later = backend_at(tmp_path)
    assert set(ids(tantivy_later.bm25("bread", 5))) == {"b", "c"}
