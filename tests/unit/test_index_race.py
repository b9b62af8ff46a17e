"""Several worker processes writing the first documents into a brand-new embedded index.

Each writer is a separate Python process (multiprocessing, spawn) configured with the Django
settings `tests.settings` and the same fresh index PATH (REELSEARCH_INDEX_DIR). They wait on
one barrier, then each calls ensure_index() and index() with a distinct video's segments
(random vectors of the configured text dimension, a word no other video uses). The parent
then checks, on a fresh backend instance, that every document is stored and found by BM25
and k-NN, and that no orphan index file was left behind. No models are needed.

bench/index_race.py runs the same race many times in a row.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

WRITERS = 4
SEGMENTS_PER_VIDEO = 3
# One word per video that no other video's text contains (and that is no stopword).
WORDS = ("aardvark", "bison", "cheetah", "dingo", "echidna", "flamingo", "gazelle", "hyena",
         "ibex", "jackal", "kestrel", "lemur", "marmot", "narwhal", "ocelot", "pangolin")
BARRIER_TIMEOUT_S = 120


def video_docs(number: int, dim: int, seed: int):
    """Return the SegmentDocs of video number `number` (random unit vectors of dim)."""
    from retrieval.documents import SegmentDoc

    rng = np.random.default_rng([seed, number])
    word = WORDS[number]
    docs = []
    for n in range(SEGMENTS_PER_VIDEO):
        vector = rng.standard_normal(dim).astype(np.float32)
        vector /= np.linalg.norm(vector)
        docs.append(SegmentDoc(f"race-v{number}-s{n}", f"race-v{number}", "speech", n * 5.0,
                               n * 5.0 + 5.0, f"segment {n} of the video about the {word}",
                               {"text": vector}, {"duration": 15.0, "published": True}))
    return docs


def _writer(number: int, index_dir: str, seed: int, barrier, results) -> None:
    """One worker process: configure Django, wait for the others, then write one video."""
    try:
        os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
        os.environ["REELSEARCH_INDEX_DIR"] = index_dir
        import django

        django.setup()
        from django.conf import settings

        from retrieval.backends import get_backend

        assert settings.RETRIEVAL_BACKENDS["default"]["PATH"] == index_dir
        backend = get_backend()
        docs = video_docs(number, settings.REELSEARCH["TEXT_DIM"], seed)
        barrier.wait()  # everyone starts on the same brand-new index at the same moment
        backend.ensure_index()
        report = backend.index(docs)
        backend.close()
        results.put((number, "" if report.ok else f"index report: {report.failed}"))
    except BaseException:
        results.put((number, traceback.format_exc()))
        raise


@dataclass
class RaceResult:
    """What one race left behind: crashed writers, missing documents, orphan files."""

    crashed: dict[int, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    index_files: list[str] = field(default_factory=list)

    @property
    def lost_docs(self) -> bool:
        return bool(self.problems)

    @property
    def ok(self) -> bool:
        return not self.crashed and not self.problems


def race(index_dir: Path, dim: int, writers: int = WRITERS, seed: int = 0) -> RaceResult:
    """Run `writers` processes against a fresh index_dir at once; check what they stored."""
    from retrieval.backends.embedded import EmbeddedBackend

    assert not index_dir.exists(), "the race needs a brand-new index directory"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(writers, timeout=BARRIER_TIMEOUT_S)
    results = context.Queue()
    processes = [context.Process(target=_writer, args=(n, str(index_dir), seed, barrier, results))
                 for n in range(writers)]
    for process in processes:
        process.start()
    outcome = RaceResult()
    reported: dict[int, str] = {}
    try:
        for _ in range(writers):
            number, error = results.get(timeout=BARRIER_TIMEOUT_S * 2)
            reported[number] = error
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
    for n, process in enumerate(processes):
        error = reported.get(n, "no result")
        if error or process.exitcode != 0:
            outcome.crashed[n] = error or f"exit code {process.exitcode}"

    outcome.index_files = sorted(path.name for path in index_dir.glob("index-*.sqlite3"))
    backend = EmbeddedBackend("race-check", {"PATH": str(index_dir)})
    try:
        expected = writers * SEGMENTS_PER_VIDEO
        if backend.count() != expected:
            outcome.problems.append(f"count {backend.count()}, expected {expected}")
        for n in range(writers):
            docs = video_docs(n, dim, seed)
            found = {hit.segment_id for hit in backend.bm25(WORDS[n], 10)}
            if found != {doc.id for doc in docs}:
                outcome.problems.append(f"bm25 {WORDS[n]!r}: {sorted(found)}")
            for doc in docs:
                hits = backend.knn("text", doc.vectors["text"], 1)
                if not hits or hits[0].segment_id != doc.id or hits[0].score < 0.999:
                    outcome.problems.append(f"knn {doc.id}: {hits}")
    finally:
        backend.close()
    if len(outcome.index_files) != 1:
        outcome.problems.append(f"index files {outcome.index_files} (orphans hold rows)")
    return outcome


def test_concurrent_first_writers_share_one_index_and_every_doc_is_found(
    tmp_path: Path, settings
) -> None:
    index_dir = tmp_path / "index"
    result = race(index_dir, settings.REELSEARCH["TEXT_DIM"], writers=WRITERS, seed=1)
    assert result.crashed == {}
    assert result.problems == []
    current = (index_dir / "CURRENT").read_text().strip()
    assert result.index_files == [current]
    assert not list(index_dir.glob("*.tmp")), "a pointer temp file was left behind"


# --- the same guarantees, without timing: one process, two instances, a held lock ----------


def _holds_lock(backend) -> bool:
    """Whether this instance is inside its directory-lock section (read before the lock?)."""
    return getattr(backend, "_flock_fd", None) is not None


def test_ensure_index_rereads_the_pointer_under_the_lock(tmp_path: Path, monkeypatch) -> None:
    """A process that saw no CURRENT before another created it reuses that index."""
    from retrieval.backends.embedded import EmbeddedBackend

    index_dir = tmp_path / "index"
    index_dir.mkdir()  # an empty directory: a worker reads the pointer before any lock
    first = EmbeddedBackend("first", {"PATH": str(index_dir)})
    late = EmbeddedBackend("late", {"PATH": str(index_dir)})
    real_pointer = late._pointer
    stale_reads = []

    def pointer_read_before_first_created_it(name: str):
        if name == "CURRENT" and not stale_reads and not _holds_lock(late):
            stale_reads.append(name)
            first.ensure_index()  # the other process wins the race right after our read
            return None
        return real_pointer(name)

    monkeypatch.setattr(late, "_pointer", pointer_read_before_first_created_it)
    try:
        late.ensure_index()
        created = (index_dir / "CURRENT").read_text().strip()
        assert stale_reads == ["CURRENT"]
        assert sorted(path.name for path in index_dir.glob("index-*.sqlite3")) == [created]
    finally:
        first.close()
        late.close()


def test_a_rebuild_swap_waits_for_a_write_holding_the_directory_lock(tmp_path: Path) -> None:
    """Another process in the middle of a write (lock held shared) delays the swap."""
    import fcntl
    import threading

    from retrieval.backends.embedded import EmbeddedBackend
    from retrieval.documents import SegmentDoc

    index_dir = tmp_path / "index"
    backend = EmbeddedBackend("rebuilder", {"PATH": str(index_dir)})
    backend.ensure_index()
    old = (index_dir / "CURRENT").read_text().strip()
    # its own open file description, so the flock conflicts like another process's
    fd = os.open(index_dir / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_SH)
    done = threading.Event()

    def rebuild() -> None:
        backend.rebuild(iter([SegmentDoc("n", "vn", "speech", 0.0, 1.0, "fresh", {}, {})]))
        done.set()

    thread = threading.Thread(target=rebuild, daemon=True)
    thread.start()
    try:
        assert not done.wait(0.5), "the rebuild went ahead while a write held the lock"
        assert (index_dir / "CURRENT").read_text().strip() == old
    finally:
        os.close(fd)  # the write finishes
    assert done.wait(30)
    thread.join()
    assert (index_dir / "CURRENT").read_text().strip() != old
    assert backend.count() == 1
    backend.close()
