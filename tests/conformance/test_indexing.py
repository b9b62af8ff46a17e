"""Storing, replacing, deleting and reporting documents: the same behaviour on every backend."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.backends.base import SearchBackend

from .conftest import skip_unless
from .corpus import FILLER, doc, ids, unit


def test_an_empty_index_answers_with_nothing(backend: SearchBackend) -> None:
    backend.ensure_index()
    backend.ensure_index()  # idempotent
    assert backend.count() == 0
    assert backend.bm25("bread", 10) == []
    assert backend.knn("text", unit(0), 10) == []
    assert backend.vectors_for_video("v1").shape[0] == 0
    backend.delete_video("v1")  # nothing to delete is fine
    backend.clear()
    assert backend.count() == 0


def test_queries_create_the_index_on_first_use(backend: SearchBackend) -> None:
    assert backend.bm25("bread", 10) == []
    assert backend.index([doc("a", text="bread")]).ok
    assert ids(backend.bm25("bread", 10)) == ["a"]


def test_reindexing_the_same_id_replaces_the_document(backend: SearchBackend) -> None:
    backend.index([doc("a", "v1", "bread and butter", vector=unit(0)), *FILLER])
    backend.knn("text", unit(0), 5)  # load the vectors before the replacement
    backend.index([doc("a", "v2", "rocket science", vector=unit(1))])
    assert backend.count() == 1 + len(FILLER)
    assert backend.bm25("bread", 5) == []
    rocket = backend.bm25("rocket", 5)
    assert rocket[0].segment_id == "a" and rocket[0].video_id == "v2"
    hits = backend.knn("text", unit(1), 5)
    assert ids(hits) == ["a"]
    assert hits[0].video_id == "v2"
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert backend.knn("text", unit(0), 5)[0].score == pytest.approx(0.0, abs=1e-5)


def test_duplicate_ids_in_one_batch_keep_the_last(backend: SearchBackend) -> None:
    report = backend.index([doc("a", text="first"), doc("a", text="second")])
    assert report.ok
    assert backend.count() == 1
    assert ids(backend.bm25("second", 5)) == ["a"]
    assert backend.bm25("first", 5) == []


def test_delete_video_removes_it_from_both_signals(backend: SearchBackend) -> None:
    backend.index([
        doc("a1", "va", "bread bread", vector=unit(0)),
        doc("a2", "va", "bread", vector=unit(0) + unit(1)),
        doc("b1", "vb", "bread", vector=unit(1)),
        *FILLER,
    ])
    backend.knn("text", unit(0), 5)  # load the vectors before the delete
    backend.delete_video("va")
    assert backend.count() == 1 + len(FILLER)
    assert ids(backend.bm25("bread", 10)) == ["b1"]
    assert ids(backend.knn("text", unit(0), 10)) == ["b1"]
    assert backend.vectors_for_video("va").shape[0] == 0
    backend.delete_video("never-indexed")  # no error
    assert backend.count() == 1 + len(FILLER)


def test_clear_removes_everything_and_the_index_stays_usable(backend: SearchBackend) -> None:
    backend.index([doc("a", text="bread", vector=unit(0)), doc("b", text="bread", vector=unit(1))])
    backend.knn("text", unit(0), 5)
    backend.clear()
    assert backend.count() == 0
    assert backend.bm25("bread", 5) == []
    assert backend.knn("text", unit(0), 5) == []
    backend.index([doc("c", text="bread", vector=unit(2))])
    assert ids(backend.bm25("bread", 5)) == ["c"]
    assert ids(backend.knn("text", unit(2), 5)) == ["c"]


def test_another_instance_sees_new_replaced_and_deleted_docs(make_backend) -> None:
    writer, reader = make_backend(), make_backend()
    writer.index([doc("a", "va", "bread", vector=unit(0))])
    assert ids(reader.knn("text", unit(0), 5)) == ["a"]
    writer.index([doc("b", "vb", "bread bread", vector=unit(1)), *FILLER])
    assert ids(reader.knn("text", unit(1), 5)) == ["b", "a"]
    assert ids(reader.bm25("bread", 5)) == ["b", "a"]
    writer.index([doc("a", "va", "bread", vector=unit(1))])  # a moves next to b
    assert [hit.score for hit in reader.knn("text", unit(1), 5)] == pytest.approx(
        [1.0, 1.0], abs=1e-5)
    writer.delete_video("vb")
    assert ids(reader.knn("text", unit(1), 5)) == ["a"]
    assert ids(reader.bm25("bread", 5)) == ["a"]
    writer.clear()
    assert reader.knn("text", unit(1), 5) == []
    assert reader.count() == 0


def test_vectors_for_video_returns_normalized_rows(backend: SearchBackend) -> None:
    backend.index([
        doc("a", "v1", vector=np.array([3, 4, 0, 0, 0, 0, 0, 0])),
        doc("b", "v1", vector=np.array([0, 0, 2, 0, 0, 0, 0, 0])),
        doc("c", "v2", vector=unit(0)),
        doc("d", "v1", text="no vector"),
    ])
    rows = backend.vectors_for_video("v1")
    assert rows.shape == (2, 8)
    expected = [(0, 0, 1, 0, 0, 0, 0, 0), (0.6, 0.8, 0, 0, 0, 0, 0, 0)]
    np.testing.assert_allclose(sorted(map(tuple, rows)), expected, atol=1e-6)
    assert backend.vectors_for_video("missing").shape[0] == 0


# --- index reports ------------------------------------------------------------------------------


def test_invalid_documents_are_reported_and_valid_ones_stored(backend: SearchBackend) -> None:
    nan = unit(0).copy()
    nan[1] = np.nan
    inf = unit(0).copy()
    inf[0] = np.inf
    report = backend.index([
        doc("good1", text="bread", vector=unit(0)),
        doc("backwards", text="bread", start=10.0, end=5.0, vector=unit(1)),
        doc("nan", text="bread", vector=nan),
        doc("inf", text="bread", vector=inf),
        doc("", text="bread"),
        doc("good2", text="bread", vector=unit(1)),
    ])
    assert not report.ok
    assert report.indexed == 2
    assert set(report.failed) == {"backwards", "nan", "inf", ""}
    assert "end" in report.failed["backwards"] and "start" in report.failed["backwards"]
    assert "NaN" in report.failed["nan"]
    assert "infinite" in report.failed["inf"]
    assert backend.count() == 2
    assert set(ids(backend.bm25("bread", 10))) == {"good1", "good2"}
    assert set(ids(backend.knn("text", unit(0), 10))) == {"good1", "good2"}


def test_a_valid_batch_reports_ok(backend: SearchBackend) -> None:
    report = backend.index([doc("a", text="x", start=1.0, end=1.0), doc("b", text="y")])
    assert report.ok
    assert report.indexed == 2
    assert report.failed == {}


def test_a_vector_of_another_dimension_is_refused_and_knn_keeps_working(
    backend: SearchBackend,
) -> None:
    backend.index([doc("a", vector=np.ones(8))])
    assert ids(backend.knn("text", np.ones(8), 5)) == ["a"]
    report = backend.index([doc("b", vector=np.ones(4)), doc("c", vector=np.ones(8))])
    assert set(report.failed) == {"b"}
    assert "dimension 4" in report.failed["b"] and "8" in report.failed["b"]
    assert report.indexed == 1
    assert ids(backend.knn("text", np.ones(8), 5)) == ["a", "c"]
    mixed = backend.index([doc("x", vector=unit(1), visual=np.ones(4)),
                           doc("y", visual=np.ones(5))])
    assert set(mixed.failed) == {"y"}
    assert ids(backend.knn("visual", np.ones(4), 5)) == ["x"]


def test_after_clear_the_index_takes_another_dimension(backend: SearchBackend) -> None:
    skip_unless(backend, backend.conformance_name.startswith("embedded"),
                "vector dimensions are fixed by the index mapping (configured DIMENSIONS); a "
                "new dimension needs a changed setting and a reindex")
    backend.index([doc("a", vector=np.ones(4))])
    backend.clear()
    assert backend.index([doc("a", vector=unit(1)), doc("c", vector=unit(2))]).ok
    assert ids(backend.knn("text", unit(1), 5)) == ["a", "c"]
