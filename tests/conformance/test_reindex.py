"""Rebuilding the index: atomic swap, writes kept meanwhile, searches never fail, interruptions."""

from __future__ import annotations

import threading
import time

import pytest

from retrieval.backends.base import SearchBackend

from .conftest import live_index, rebuilding, skip_unless, stored_indices
from .corpus import FILLER, doc, ids, unit


def test_rebuild_swaps_in_new_docs_and_keeps_writes_made_meanwhile(make_backend) -> None:
    backend, other = make_backend(), make_backend()
    skip_unless(backend, backend.supports_rebuild, "no rebuild()")
    backend.index([doc("old1", "vo", "stale bread", vector=unit(0)),
                   doc("old2", "vo", "stale bread", vector=unit(1)), *FILLER])
    assert backend.knn("text", unit(0), 5)  # vectors loaded from the old index
    old = live_index(backend)
    assert ids(other.knn("text", unit(0), 5))[0] == "old1"
    seen: dict[str, object] = {}

    def docs():
        yield doc("new1", "vn", "fresh bread", vector=unit(2))
        assert rebuilding(backend)
        backend.index([doc("late", "vl", "late bread", vector=unit(3))])
        backend.index([doc("new1", "vn", "fresh updated bread", vector=unit(2))])
        # the live index still answers from the old index (plus the live writes)
        seen["stale"] = set(ids(backend.bm25("stale", 10)))
        seen["count"] = backend.count()
        yield doc("new2", "vn", "fresh bread", vector=unit(4))
        yield from FILLER

    report = backend.rebuild(docs(), batch_size=1)
    assert report.ok
    assert report.indexed == 2 + len(FILLER)
    assert seen == {"stale": {"old1", "old2"}, "count": 4 + len(FILLER)}
    new = live_index(backend)
    assert new != old
    assert not rebuilding(backend)
    assert stored_indices(backend) == {new}

    assert backend.count() == 3 + len(FILLER)
    assert backend.bm25("stale", 10) == []
    assert set(ids(backend.bm25("bread", 10))) == {"new1", "new2", "late"}
    assert ids(backend.bm25("updated", 10)) == ["new1"]
    assert ids(backend.knn("text", unit(3), 1)) == ["late"]
    assert set(ids(backend.knn("text", unit(0), 10))) == {"new1", "new2", "late"}
    # an instance that had read the old index switches over too
    assert set(ids(other.knn("text", unit(0), 10))) == {"new1", "new2", "late"}
    assert other.count() == 3 + len(FILLER)


def test_a_video_deleted_during_a_rebuild_stays_deleted(backend: SearchBackend) -> None:
    skip_unless(backend, backend.supports_rebuild, "no rebuild()")
    backend.index([doc("gone1", "vg", "bread", vector=unit(0)), *FILLER])

    def docs():
        yield doc("gone1", "vg", "bread", vector=unit(0))
        yield doc("gone2", "vg", "bread", vector=unit(1))
        backend.delete_video("vg")
        yield doc("kept", "vk", "bread", vector=unit(2))
        yield from FILLER

    backend.rebuild(docs(), batch_size=2)
    assert ids(backend.bm25("bread", 10)) == ["kept"]
    assert ids(backend.knn("text", unit(0), 10)) == ["kept"]


def test_rebuild_reports_invalid_docs(backend: SearchBackend) -> None:
    skip_unless(backend, backend.supports_rebuild, "no rebuild()")
    report = backend.rebuild(iter([doc("ok", text="bread"),
                                   doc("bad", text="bread", start=3.0, end=1.0), *FILLER]))
    assert report.indexed == 1 + len(FILLER)
    assert set(report.failed) == {"bad"}
    assert ids(backend.bm25("bread", 5)) == ["ok"]


def test_rebuild_of_nothing_leaves_an_empty_usable_index(backend: SearchBackend) -> None:
    skip_unless(backend, backend.supports_rebuild, "no rebuild()")
    backend.index([doc("a", text="bread", vector=unit(0))])
    assert backend.rebuild(iter([])).indexed == 0
    assert backend.count() == 0
    assert backend.knn("text", unit(0), 5) == []
    backend.index([doc("b", text="bread", vector=unit(0))])
    assert ids(backend.knn("text", unit(0), 5)) == ["b"]


def test_an_interrupted_rebuild_leaves_the_old_index_serving(make_backend) -> None:
    backend, reader = make_backend(), make_backend()
    skip_unless(backend, backend.supports_rebuild, "no rebuild()")
    backend.index([doc(f"old{i}", "vo", "bread", vector=unit(i % 8)) for i in range(6)] + FILLER)
    old = live_index(backend)

    def docs():
        for i in range(4):
            yield doc(f"new{i}", "vn", "bread", vector=unit(1))
        raise RuntimeError("catalog went away")

    with pytest.raises(RuntimeError, match="catalog went away"):
        backend.rebuild(docs(), batch_size=1)
    assert live_index(backend) == old
    assert not rebuilding(backend)
    assert stored_indices(backend) == {old}  # the half-built index is gone
    for instance in (backend, reader):
        assert instance.count() == 6 + len(FILLER)
        assert set(ids(instance.bm25("bread", 20))) == {f"old{i}" for i in range(6)}
        assert ids(instance.knn("text", unit(1), 1)) == ["old1"]
    backend.index([doc("after", "va", "bread")])  # writes go to the live index only
    assert backend.count() == 7 + len(FILLER)
    assert backend.rebuild(iter([doc("fresh", "vf", "bread")])).ok  # a later rebuild works
    assert ids(reader.bm25("bread", 5)) == ["fresh"]


def test_searches_during_a_rebuild_all_succeed_and_see_a_complete_index(make_backend) -> None:
    backend, reader = make_backend(), make_backend()
    skip_unless(backend, backend.supports_rebuild, "no rebuild()")
    old = {f"old{i:02d}" for i in range(40)}
    new = {f"new{i:02d}" for i in range(40)}
    backend.index([doc(name, "vo", "anchor", vector=unit(0)) for name in sorted(old)] + FILLER)
    answers: list[tuple[str, frozenset]] = []
    failures: list[BaseException] = []
    done = threading.Event()

    def search_loop() -> None:
        while not done.is_set():
            try:
                answers.append(("bm25", frozenset(ids(reader.bm25("anchor", 100)))))
                answers.append(("knn", frozenset(ids(reader.knn("text", unit(0), 100)))))
            except BaseException as exc:  # noqa: BLE001 - every failure is a test failure
                failures.append(exc)

    def docs():
        for name in sorted(new):
            time.sleep(0.01)  # a rebuild that takes a while
            yield doc(name, "vn", "anchor", vector=unit(0))
        yield from FILLER

    thread = threading.Thread(target=search_loop)
    thread.start()
    try:
        time.sleep(0.2)
        started = len(answers)
        backend.rebuild(docs(), batch_size=5)
        during = len(answers) - started
        time.sleep(0.2)
    finally:
        done.set()
        thread.join(timeout=30)
    assert not failures, failures[:3]
    assert during >= 4, "the searches ran while the rebuild did"
    assert {answer for _, answer in answers} <= {frozenset(old), frozenset(new)}
    assert answers[0][1] == frozenset(old)
    assert answers[-1][1] == frozenset(new)
