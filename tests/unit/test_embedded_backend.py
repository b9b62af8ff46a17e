"""Unit tests for the embedded backend (SQLite FTS5 BM25 + exact cosine over small vectors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured

from retrieval.backends.embedded import EmbeddedBackend
from retrieval.documents import Filters, Hit, SegmentDoc

DIM = 8


def unit(i: int, dim: int = DIM) -> np.ndarray:
    """Return the i-th standard basis vector."""
    vector = np.zeros(dim, dtype=np.float32)
    vector[i] = 1.0
    return vector


def doc(
    doc_id: str,
    video_id: str = "v1",
    text: str = "",
    *,
    kind: str = "speech",
    start: float = 0.0,
    end: float = 5.0,
    vector: np.ndarray | None = None,
    visual: np.ndarray | None = None,
    **filters: object,
) -> SegmentDoc:
    """Build a SegmentDoc; keyword filters become the doc's filter values."""
    vectors = {}
    if vector is not None:
        vectors["text"] = np.asarray(vector, dtype=np.float32)
    if visual is not None:
        vectors["visual"] = np.asarray(visual, dtype=np.float32)
    return SegmentDoc(doc_id, video_id, kind, start, end, text, vectors, dict(filters))


def ids(hits: list[Hit]) -> list[str]:
    """Return the segment ids of hits in ranked order."""
    return [hit.segment_id for hit in hits]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity computed in float64."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def make_backend(path: Path) -> EmbeddedBackend:
    """Build an embedded backend on a directory."""
    return EmbeddedBackend("test", {"PATH": str(path)})


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    return tmp_path / "idx"


@pytest.fixture
def backend(index_dir: Path):
    instance = make_backend(index_dir)
    yield instance
    instance.close()


def index_files(root: Path) -> set[str]:
    """Return the names of the SQLite index files in a backend directory."""
    return {path.name for path in root.glob("index-*.sqlite3")}


# --- setup -----------------------------------------------------------------------------------


def test_missing_path_is_an_actionable_configuration_error() -> None:
    with pytest.raises(ImproperlyConfigured, match="PATH"):
        EmbeddedBackend("test", {})


def test_ensure_index_creates_the_directory_pointer_and_index_file(
    backend: EmbeddedBackend, index_dir: Path
) -> None:
    assert not index_dir.exists()
    backend.ensure_index()
    current = (index_dir / "CURRENT").read_text().strip()
    assert current.startswith("index-") and current.endswith(".sqlite3")
    assert (index_dir / current).is_file()
    assert index_files(index_dir) == {current}
    assert backend.count() == 0


def test_ensure_index_twice_keeps_the_same_index(
    backend: EmbeddedBackend, index_dir: Path
) -> None:
    backend.ensure_index()
    first = (index_dir / "CURRENT").read_text()
    backend.index([doc("a", text="bread")])
    backend.ensure_index()
    assert (index_dir / "CURRENT").read_text() == first
    assert backend.count() == 1


# --- BM25 ------------------------------------------------------------------------------------


FILLER = [
    doc("f1", "vf", "rocket engines burn fuel in orbit"),
    doc("f2", "vf", "tomato seedlings need water every morning"),
    doc("f3", "vf", "the spacecraft climbs into orbit around the earth"),
    doc("f4", "vf", "tie the stems to a wooden stake"),
]


def test_bm25_ranks_the_doc_that_mentions_the_term_more_first(backend: EmbeddedBackend) -> None:
    backend.index([
        doc("once", text="we bake bread in the oven today with friends"),
        doc("thrice", text="bread bread bread in the oven today with friends"),
        doc("never", text="we bake cakes in the oven today with friends"),
        *FILLER,
    ])
    hits = backend.bm25("bread", 10)
    assert ids(hits) == ["thrice", "once"]


def test_bm25_only_returns_docs_containing_a_query_term(backend: EmbeddedBackend) -> None:
    backend.index([doc("bread", text="flour water yeast salt"), *FILLER])
    assert ids(backend.bm25("yeast", 10)) == ["bread"]
    assert backend.bm25("submarine", 10) == []


def test_bm25_scores_are_positive_and_sorted_descending(backend: EmbeddedBackend) -> None:
    backend.index([
        doc("a", text="orbit"),
        doc("b", text="orbit orbit rocket"),
        doc("c", text="a long sentence that mentions orbit only once among many other words"),
        doc("d", text="rocket rocket rocket orbit"),
        *FILLER,
    ])
    hits = backend.bm25("orbit rocket", 10)
    assert set(ids(hits)) == {"a", "b", "c", "d", "f1", "f3"}  # any of the terms
    scores = [hit.score for hit in hits]
    assert all(score > 0 for score in scores)
    assert scores == sorted(scores, reverse=True)
    assert ids(hits)[0] in {"b", "d"}  # both terms in a short doc
    assert ids(hits)[-1] == "c"  # one mention in a long doc


def test_bm25_respects_k(backend: EmbeddedBackend) -> None:
    backend.index([doc(f"d{i}", text="orbit " * (i + 1)) for i in range(6)] + FILLER)
    assert len(backend.bm25("orbit", 3)) == 3
    assert backend.bm25("orbit", 0) == []


def test_bm25_porter_stemming_matches_inflections(backend: EmbeddedBackend) -> None:
    backend.index([doc("knead", text="knead the dough for ten minutes"), *FILLER])
    assert ids(backend.bm25("kneading", 5)) == ["knead"]
    backend.index([doc("rising", text="the dough is rising slowly")])
    assert ids(backend.bm25("rises", 5)) == ["rising"]


def test_stopword_only_query_still_matches(backend: EmbeddedBackend) -> None:
    backend.index([
        doc("hamlet", text="to be or not to be"),
        doc("other", text="rockets and tomatoes"),
    ])
    assert ids(backend.bm25("to be", 5)) == ["hamlet"]


@pytest.mark.parametrize("query", ["", "   ", "!!! ??? ...", "\n\t"])
def test_empty_query_returns_nothing(backend: EmbeddedBackend, query: str) -> None:
    backend.index([doc("a", text="bread and butter")])
    assert backend.bm25(query, 5) == []


@pytest.mark.parametrize(
    "query", ['bread" OR', "bread AND NOT", "NEAR(bread)", "bread*", "text:bread", "-bread"]
)
def test_fts_syntax_in_the_query_is_treated_as_words(backend: EmbeddedBackend, query: str) -> None:
    backend.index([doc("a", text="bread and butter"), *FILLER])
    assert "a" in ids(backend.bm25(query, 5))


# --- kNN -------------------------------------------------------------------------------------


def test_knn_is_exact_cosine(backend: EmbeddedBackend) -> None:
    vectors = {
        "same": np.array([2, 0, 0, 0], dtype=np.float32),  # same direction, longer
        "close": np.array([3, 1, 0, 0], dtype=np.float32),
        "diag": np.array([1, 1, 1, 1], dtype=np.float32),
        "ortho": np.array([0, 0, 5, 0], dtype=np.float32),
        "opposite": np.array([-1, 0.5, 0, 0], dtype=np.float32),
    }
    backend.index([doc(name, vector=vector) for name, vector in vectors.items()])
    query = np.array([0.9, 0.1, 0.0, 0.0], dtype=np.float32)
    expected = sorted(vectors, key=lambda name: -cosine(vectors[name], query))
    hits = backend.knn("text", query, 5)
    assert ids(hits) == expected
    for hit in hits:
        assert hit.score == pytest.approx(cosine(vectors[hit.segment_id], query), abs=1e-6)
    assert hits[-1].score < 0  # negative similarities are returned, not clipped


def test_knn_respects_k_and_returns_best_first(backend: EmbeddedBackend) -> None:
    backend.index([doc(f"d{i}", vector=unit(0) + 0.2 * i * unit(1)) for i in range(6)])
    hits = backend.knn("text", unit(0), 2)
    assert ids(hits) == ["d0", "d1"]
    assert hits[0].score == pytest.approx(1.0)
    assert backend.knn("text", unit(0), 0) == []


def test_knn_fields_are_separate(backend: EmbeddedBackend) -> None:
    backend.index([
        doc("text-only", vector=unit(0)),
        doc("both", vector=unit(1), visual=unit(0, 4)),
    ])
    assert ids(backend.knn("visual", unit(0, 4), 5)) == ["both"]
    assert ids(backend.knn("text", unit(0), 5)) == ["text-only", "both"]


def test_knn_on_an_empty_index_returns_nothing(backend: EmbeddedBackend) -> None:
    assert backend.knn("text", unit(0), 5) == []


def test_query_dimension_mismatch_raises_a_clear_value_error(backend: EmbeddedBackend) -> None:
    backend.index([doc("a", vector=np.ones(4, dtype=np.float32))])
    with pytest.raises(ValueError, match=r"dimension 8.*holds 4"):
        backend.knn("text", np.ones(8, dtype=np.float32), 3)


def test_vectors_for_video_returns_normalized_rows(backend: EmbeddedBackend) -> None:
    backend.index([
        doc("a", "v1", vector=np.array([3, 4, 0, 0])),
        doc("b", "v1", vector=np.array([0, 0, 2, 0])),
        doc("c", "v2", vector=np.array([1, 0, 0, 0])),
    ])
    rows = backend.vectors_for_video("v1")
    assert rows.shape == (2, 4)
    np.testing.assert_allclose(sorted(map(tuple, rows)), [(0, 0, 1, 0), (0.6, 0.8, 0, 0)],
                               atol=1e-6)
    assert backend.vectors_for_video("missing").shape[0] == 0


# --- replace, delete, clear ------------------------------------------------------------------


def test_reindexing_the_same_id_replaces_the_document(backend: EmbeddedBackend) -> None:
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
    assert hits[0].score == pytest.approx(1.0)
    assert backend.knn("text", unit(0), 5)[0].score == pytest.approx(0.0)


def test_duplicate_ids_in_one_batch_keep_the_last(backend: EmbeddedBackend) -> None:
    report = backend.index([doc("a", text="first"), doc("a", text="second")])
    assert report.ok
    assert backend.count() == 1
    assert ids(backend.bm25("second", 5)) == ["a"]
    assert backend.bm25("first", 5) == []


def test_delete_video_removes_it_from_both_signals(backend: EmbeddedBackend) -> None:
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
    backend.delete_video("never-indexed")  # no error
    assert backend.count() == 1 + len(FILLER)


def test_clear_removes_everything_and_the_index_stays_usable(backend: EmbeddedBackend) -> None:
    backend.index([doc("a", text="bread", vector=unit(0)), doc("b", text="bread", vector=unit(1))])
    backend.knn("text", unit(0), 5)
    backend.clear()
    assert backend.count() == 0
    assert backend.bm25("bread", 5) == []
    assert backend.knn("text", unit(0), 5) == []
    backend.index([doc("c", text="bread", vector=unit(2))])
    assert ids(backend.bm25("bread", 5)) == ["c"]
    assert ids(backend.knn("text", unit(2), 5)) == ["c"]


# --- index reports ---------------------------------------------------------------------------


def test_invalid_documents_are_reported_and_valid_ones_stored(backend: EmbeddedBackend) -> None:
    nan = np.array([1.0, np.nan, 0.0, 0.0], dtype=np.float32)
    inf = np.array([np.inf, 0.0, 0.0, 0.0], dtype=np.float32)
    report = backend.index([
        doc("good1", text="bread", vector=unit(0, 4)),
        doc("backwards", text="bread", start=10.0, end=5.0, vector=unit(1, 4)),
        doc("nan", text="bread", vector=nan),
        doc("inf", text="bread", vector=inf),
        doc("", text="bread"),
        doc("good2", text="bread", vector=unit(1, 4)),
    ])
    assert not report.ok
    assert report.indexed == 2
    assert set(report.failed) == {"backwards", "nan", "inf", ""}
    assert "end" in report.failed["backwards"] and "start" in report.failed["backwards"]
    assert "NaN" in report.failed["nan"]
    assert "infinite" in report.failed["inf"]
    assert backend.count() == 2
    assert set(ids(backend.bm25("bread", 10))) == {"good1", "good2"}
    assert set(ids(backend.knn("text", unit(0, 4), 10))) == {"good1", "good2"}


def test_a_valid_batch_reports_ok(backend: EmbeddedBackend) -> None:
    report = backend.index([doc("a", text="x", start=1.0, end=1.0), doc("b", text="y")])
    assert report.ok
    assert report.indexed == 2
    assert report.failed == {}


# --- filters (inside both signals, before top-k) ---------------------------------------------

VIDEOS = {
    "v1": {"tags": ["Cooking", "Bread"], "language": "en", "duration": 100.0, "published": True},
    "v2": {"tags": ["space"], "language": "fr", "duration": 600.0, "published": True},
    "v3": {"tags": ["cooking"], "language": "en", "duration": 30.0, "published": False},
    "v4": {"tags": [], "language": "de", "duration": 1200.0, "published": True},
}
# Rank order without filters is the list order: v4 and v3 (excluded by most filters) come first.
RANKED = [("v4", "speech"), ("v3", "speech"), ("v2", "speech"), ("v1", "speech"),
          ("v4", "ocr"), ("v3", "ocr"), ("v2", "ocr"), ("v1", "ocr")]


def filter_corpus() -> list[SegmentDoc]:
    """Eight matching docs whose BM25 and cosine ranks follow RANKED, plus non-matching filler."""
    docs = []
    for i, (video_id, kind) in enumerate(RANKED):
        text = " ".join(["bread"] * (8 - i) + ["filler"] * i)  # equal length, fewer mentions
        angle = 0.15 * i
        vector = np.cos(angle) * unit(0) + np.sin(angle) * unit(1 + i % (DIM - 1))
        docs.append(doc(f"{video_id}-{kind}", video_id, text, kind=kind, vector=vector,
                        **VIDEOS[video_id]))
    # Docs without the term or a vector make the term's IDF positive without matching.
    docs += [doc(f"pad{i}", "v5", f"rockets orbit the planet {i}", tags=["misc"], language="en",
                 duration=50.0) for i in range(10)]
    return docs


def allowed(filters: Filters) -> list[str]:
    """The matching doc ids that pass filters, best first (a reference implementation)."""
    result = []
    for video_id, kind in RANKED:
        meta = VIDEOS[video_id]
        if filters.tags and not {t.lower() for t in filters.tags} & {
                t.lower() for t in meta["tags"]}:
            continue
        if filters.language and meta["language"] != filters.language:
            continue
        if filters.min_duration is not None and meta["duration"] < filters.min_duration:
            continue
        if filters.max_duration is not None and meta["duration"] > filters.max_duration:
            continue
        if filters.published is not None and meta["published"] != filters.published:
            continue
        if filters.video_ids and video_id not in filters.video_ids:
            continue
        if video_id in filters.exclude_video_ids:
            continue
        if filters.kinds and kind not in filters.kinds:
            continue
        result.append(f"{video_id}-{kind}")
    return result


FILTER_CASES = {
    "tags any-of, case-insensitive": Filters(tags=("COOKING", "no-such-tag")),
    "tags single": Filters(tags=("bread",)),
    "language": Filters(language="en"),
    "min_duration": Filters(min_duration=60.0),
    "max_duration": Filters(max_duration=200.0),
    "duration range": Filters(min_duration=100.0, max_duration=600.0),
    "published": Filters(published=True),
    "unpublished": Filters(published=False),
    "kinds": Filters(kinds=("ocr",)),
    "video_ids": Filters(video_ids=("v1", "v2")),
    "exclude_video_ids": Filters(exclude_video_ids=("v4", "v3")),
    "combined": Filters(tags=("cooking",), published=True, kinds=("speech",)),
    "kinds and video": Filters(kinds=("ocr",), language="en"),
}


@pytest.mark.parametrize("filters", FILTER_CASES.values(), ids=FILTER_CASES.keys())
@pytest.mark.parametrize("signal", ["bm25", "knn"])
def test_filters_apply_inside_the_signal_before_top_k(
    backend: EmbeddedBackend, filters: Filters, signal: str
) -> None:
    backend.index(filter_corpus())

    def run(k: int, flt: Filters | None = None) -> list[Hit]:
        flt = flt or Filters()
        if signal == "bm25":
            return backend.bm25("bread", k, flt)
        return backend.knn("text", unit(0), k, flt)

    # The unfiltered ranking is the RANKED order (BM25: pad docs never match the term;
    # kNN: pad docs have no vector).
    assert ids(run(20)) == [f"{v}-{kind}" for v, kind in RANKED]

    expected = allowed(filters)
    assert expected, "every case keeps at least one doc"
    everything = ids(run(20, filters))
    assert everything == expected  # filtered-out docs never appear, order kept

    k = min(2, len(expected))
    top = ids(run(k, filters))
    # The unfiltered top-k holds filtered-out docs, so filtering after top-k would return fewer.
    assert ids(run(k)) != expected[:k]
    assert top == expected[:k]
    assert len(top) == k


def test_filters_that_match_nothing_return_nothing(backend: EmbeddedBackend) -> None:
    backend.index(filter_corpus())
    none = Filters(language="xx")
    assert backend.bm25("bread", 5, none) == []
    assert backend.knn("text", unit(0), 5, none) == []


def test_filters_see_metadata_written_by_a_reindex(backend: EmbeddedBackend) -> None:
    backend.index([doc("a", "v1", "bread", vector=unit(0), published=False)])
    published = Filters(published=True)
    assert backend.bm25("bread", 5, published) == []
    assert backend.knn("text", unit(0), 5, published) == []
    backend.index([doc("a", "v1", "bread", vector=unit(0), published=True)])
    assert ids(backend.bm25("bread", 5, published)) == ["a"]
    assert ids(backend.knn("text", unit(0), 5, published)) == ["a"]


# --- persistence and several instances -------------------------------------------------------


def test_a_new_instance_sees_the_stored_vectors_without_reindexing(index_dir: Path) -> None:
    first = make_backend(index_dir)
    vectors = {"a": np.array([1, 2, 3, 4.0]), "b": np.array([4, 3, 2, 1.0])}
    first.index([doc(name, text=f"{name} bread", vector=v) for name, v in vectors.items()])
    first.close()

    second = make_backend(index_dir)
    try:
        assert second.count() == 2
        query = np.array([1, 1, 3, 4.0])
        hits = second.knn("text", query, 5)
        assert ids(hits) == ["a", "b"]
        for hit in hits:
            assert hit.score == pytest.approx(cosine(vectors[hit.segment_id], query), abs=1e-6)
        assert set(ids(second.bm25("bread", 5))) == {"a", "b"}
    finally:
        second.close()


def test_another_instance_sees_new_replaced_and_deleted_docs(index_dir: Path) -> None:
    writer, reader = make_backend(index_dir), make_backend(index_dir)
    try:
        writer.index([doc("a", "va", "bread", vector=unit(0))])
        assert ids(reader.knn("text", unit(0), 5)) == ["a"]  # reader has loaded its vectors

        writer.index([doc("b", "vb", "bread bread", vector=unit(1))])
        assert ids(reader.knn("text", unit(1), 5)) == ["b", "a"]
        assert ids(reader.bm25("bread", 5)) == ["b", "a"]

        writer.index([doc("a", "va", "bread", vector=unit(1))])  # a moves next to b
        hits = reader.knn("text", unit(1), 5)
        assert [hit.score for hit in hits] == pytest.approx([1.0, 1.0])

        writer.delete_video("vb")
        assert ids(reader.knn("text", unit(1), 5)) == ["a"]
        assert ids(reader.bm25("bread", 5)) == ["a"]

        writer.clear()
        assert reader.knn("text", unit(1), 5) == []
        assert reader.count() == 0
    finally:
        writer.close()
        reader.close()


# --- rebuild ---------------------------------------------------------------------------------


def test_rebuild_swaps_in_new_docs_and_keeps_writes_made_meanwhile(
    backend: EmbeddedBackend, index_dir: Path
) -> None:
    backend.index([doc("old1", "vo", "stale bread", vector=unit(0)),
                   doc("old2", "vo", "stale bread", vector=unit(1))])
    assert backend.knn("text", unit(0), 5)  # vectors loaded from the old file
    old_file = (index_dir / "CURRENT").read_text().strip()
    other = make_backend(index_dir)
    assert ids(other.knn("text", unit(0), 5))[0] == "old1"
    seen_during_rebuild: dict[str, object] = {}

    def docs():
        yield doc("new1", "vn", "fresh bread", vector=unit(2))
        assert (index_dir / "BUILDING").exists()
        backend.index([doc("late", "vl", "late bread", vector=unit(3))])
        backend.index([doc("new1", "vn", "fresh updated bread", vector=unit(2))])
        # the live index still answers from the old file (plus the live write)
        seen_during_rebuild["bm25"] = set(ids(backend.bm25("stale", 10)))
        seen_during_rebuild["count"] = backend.count()
        yield doc("new2", "vn", "fresh bread", vector=unit(4))

    try:
        report = backend.rebuild(docs(), batch_size=1)
        assert report.ok
        assert report.indexed == 2
        assert seen_during_rebuild == {"bm25": {"old1", "old2"}, "count": 4}

        new_file = (index_dir / "CURRENT").read_text().strip()
        assert new_file != old_file
        assert not (index_dir / "BUILDING").exists()
        assert index_files(index_dir) == {new_file}
        for suffix in ("", "-wal", "-shm"):
            assert not (index_dir / f"{old_file}{suffix}").exists()

        assert backend.count() == 3
        assert backend.bm25("stale", 10) == []
        assert set(ids(backend.bm25("bread", 10))) == {"new1", "new2", "late"}
        assert ids(backend.bm25("updated", 10)) == ["new1"]
        assert ids(backend.knn("text", unit(3), 1)) == ["late"]
        assert set(ids(backend.knn("text", unit(0), 10))) == {"new1", "new2", "late"}
        # an instance that had loaded the old file switches over too
        assert set(ids(other.knn("text", unit(0), 10))) == {"new1", "new2", "late"}
        assert other.count() == 3
    finally:
        other.close()


def test_rebuild_reports_invalid_docs(backend: EmbeddedBackend) -> None:
    report = backend.rebuild(iter([doc("ok", text="bread"),
                                   doc("bad", text="bread", start=3.0, end=1.0)]))
    assert report.indexed == 1
    assert set(report.failed) == {"bad"}
    assert ids(backend.bm25("bread", 5)) == ["ok"]


def test_a_failed_rebuild_leaves_the_live_index_untouched(
    backend: EmbeddedBackend, index_dir: Path
) -> None:
    backend.index([doc("old", text="bread", vector=unit(0))])
    old_file = (index_dir / "CURRENT").read_text().strip()

    def docs():
        yield doc("new", text="bread", vector=unit(1))
        raise RuntimeError("catalog went away")

    with pytest.raises(RuntimeError, match="catalog went away"):
        backend.rebuild(docs(), batch_size=1)
    assert (index_dir / "CURRENT").read_text().strip() == old_file
    assert not (index_dir / "BUILDING").exists()
    assert index_files(index_dir) == {old_file}
    assert ids(backend.bm25("bread", 5)) == ["old"]
    assert ids(backend.knn("text", unit(1), 5)) == ["old"]
    backend.index([doc("after", text="bread")])  # writes no longer go to the dropped file
    assert backend.count() == 2


# --- text edge cases -------------------------------------------------------------------------


def test_unicode_text_is_indexed_and_found(backend: EmbeddedBackend) -> None:
    backend.index([
        doc("fr", text="Crème brûlée au caramel"),
        doc("ja", text="Visiting 東京 at night"),
        doc("de", text="Straße und Größe"),
        *FILLER,
    ])
    assert ids(backend.bm25("brûlée", 5)) == ["fr"]
    assert ids(backend.bm25("creme brulee", 5)) == ["fr"]  # diacritics folded
    assert ids(backend.bm25("CRÈME", 5)) == ["fr"]
    assert ids(backend.bm25("東京", 5)) == ["ja"]
    assert ids(backend.bm25("größe", 5)) == ["de"]


@pytest.mark.xfail(strict=True, reason="unicode61 does not split unspaced CJK text into words")
def test_japanese_word_inside_unspaced_text_is_found(backend: EmbeddedBackend) -> None:
    backend.index([doc("ja", text="東京タワーの夜景"), *FILLER])
    assert ids(backend.bm25("東京", 5)) == ["ja"]


def test_very_long_text_is_indexed_and_found(backend: EmbeddedBackend) -> None:
    text = " ".join(f"word{i % 997}" for i in range(8000))[:49_991] + " zeppelin"
    assert len(text) == 50_000 and text.endswith("zeppelin")
    report = backend.index([doc("long", text=text, vector=unit(0)), *FILLER])
    assert report.ok
    hits = backend.bm25("zeppelin", 5)
    assert ids(hits) == ["long"]
    assert hits[0].score > 0


def test_a_first_read_in_many_blocks_keeps_every_row_and_the_newest_vector(
    index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retrieval.backends import embedded

    monkeypatch.setattr(embedded, "LOAD_BLOCK", 7)  # 50 rows in 8 blocks
    rng = np.random.default_rng(11)
    vectors = rng.standard_normal((50, DIM)).astype(np.float32)
    first = make_backend(index_dir)
    first.index([doc(f"s{n}", f"v{n % 3}", vector=v) for n, v in enumerate(vectors)])
    vectors[20] = -vectors[20]
    first.index([doc("s20", "v9", vector=vectors[20])])  # re-embedded: a later seq
    first.close()

    second = make_backend(index_dir)
    try:
        store = second._store("text")
        assert len(store.ids) == 50 and store.matrix.shape[0] >= 50
        for n, vector in enumerate(vectors):
            hit = second.knn("text", vector, 1)[0]
            assert hit.segment_id == f"s{n}" and hit.score == pytest.approx(1.0, abs=1e-6)
        assert second.knn("text", vectors[20], 1)[0].video_id == "v9"
    finally:
        second.close()


def test_a_vector_of_another_dimension_is_refused_and_knn_keeps_working(
    backend: EmbeddedBackend,
) -> None:
    backend.index([doc("a", vector=np.ones(4))])
    assert ids(backend.knn("text", np.ones(4), 5)) == ["a"]
    report = backend.index([doc("b", vector=np.ones(8)), doc("c", vector=np.ones(4))])
    assert set(report.failed) == {"b"}
    assert "dimension 8" in report.failed["b"] and "4" in report.failed["b"]
    assert report.indexed == 1
    assert ids(backend.knn("text", np.ones(4), 5)) == ["a", "c"]
    fresh = backend.index([doc("x", vector=np.ones(4), visual=np.ones(3)),
                           doc("y", visual=np.ones(5))])  # one batch, new field
    assert set(fresh.failed) == {"y"}
    assert ids(backend.knn("visual", np.ones(3), 5)) == ["x"]


def test_after_clear_the_index_takes_another_dimension(index_dir: Path) -> None:
    writer, reader = make_backend(index_dir), make_backend(index_dir)
    try:
        writer.index([doc("a", vector=np.ones(4)), doc("b", vector=unit(0, 4))])
        assert ids(reader.knn("text", unit(0, 4), 5)) == ["b", "a"]
        assert ids(writer.knn("text", unit(0, 4), 5)) == ["b", "a"]
        writer.clear()
        assert writer.index([doc("a", vector=unit(1)), doc("c", vector=unit(2))]).ok
        for instance in (writer, reader):
            hits = instance.knn("text", unit(1), 5)
            assert ids(hits) == ["a", "c"]
            assert hits[0].score == pytest.approx(1.0)
    finally:
        writer.close()
        reader.close()
