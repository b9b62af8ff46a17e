"""Search API extras: highlighted snippets, facet counts, suggestions and spelling help."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.test import override_settings

from catalog.models import Segment, Video
from retrieval.backends import reset_backends
from retrieval.encoders import get_text_encoder
from retrieval.indexing import index_video
from tests.conftest import storage_settings
from tests.integration.test_api import make_video

pytestmark = [pytest.mark.models, pytest.mark.django_db]

ROWS = [
    ("Active Volcanoes of Iceland", ["geology", "travel"], "en",
     [(0.0, 8.0, "The volcano erupted and lava flowed into the sea near the village."),
      (8.0, 70.0, "Volcanic ash closed the airport for three days.")]),
    ("Fresh Tagliatelle by Hand", ["cooking"], "it",
     [(0.0, 9.0, "Roll the tagliatelle dough thin and cut it into ribbons."),
      (9.0, 400.0, "Dry the ribbons on a floured towel before cooking them.")]),
    ("Fixing a Flat Tire", ["cycling", "repair"], "en",
     [(0.0, 30.0, "Patch the inner tube of a bicycle tire after finding the puncture.")]),
]


def add_sentences(video: Video, sentences: list[tuple[float, float, str]]) -> None:
    """Give a video sentence units (what moments are localised over) and re-index it."""
    vectors = get_text_encoder().encode([text for _, _, text in sentences])
    Segment.objects.bulk_create([
        Segment(id=Segment.make_id(video.pk, "sentence", n), video=video, kind="sentence",
                start=start, end=end, text=text,
                text_vector=np.asarray(vector, dtype=np.float32).tobytes())
        for n, ((start, end, text), vector) in enumerate(zip(sentences, vectors, strict=True))])
    index_video(video)


@pytest.fixture(scope="module")
def shared_catalog(tmp_path_factory, django_db_setup, django_db_blocker) -> dict[str, Video]:
    root = tmp_path_factory.mktemp("features")
    with override_settings(**storage_settings(root)), django_db_blocker.unblock():
        reset_backends()
        videos = {row[0]: make_video(*row) for row in ROWS}
        add_sentences(videos["Fresh Tagliatelle by Hand"], [
            (0.0, 4.0, "Roll the tagliatelle dough thin."), (4.0, 9.0, "Cut it into ribbons."),
            (9.0, 14.0, "Dry the ribbons on a floured towel before cooking them.")])
        videos["draft"] = make_video("Volcanology Secrets Draft", ["geology"], "en", [
            (0.0, 5.0, "An unpublished volcanology lecture about volcanic tremors.")],
            published=False)
        yield videos
        Video.objects.all().delete()
        reset_backends()


@pytest.fixture
def catalog(shared_catalog) -> dict[str, Video]:
    cache.clear()
    return shared_catalog


def marks(moment: dict) -> list[str]:
    return [moment["snippet"][start:end] for start, end in moment["highlights"]]


# -- highlights ---------------------------------------------------------------------------

def test_bm25_matches_are_highlighted_in_stemmed_forms(client, catalog):
    body = client.get("/api/search", {"q": "volcanoes lava"}).json()
    top = body["results"][0]
    assert top["title"] == "Active Volcanoes of Iceland"
    moment = top["moments"][0]
    assert moment["match"] == "terms"
    assert {word.lower() for word in marks(moment)} >= {"volcano", "lava"}


def test_dense_only_match_highlights_the_best_sentence(client, catalog):
    body = client.get("/api/search", {"q": "pasta noodles"}).json()
    top = body["results"][0]
    assert top["title"] == "Fresh Tagliatelle by Hand"
    moment = next(m for m in top["moments"] if m["kind"] == "speech")
    assert moment["match"] == "sentence"
    assert marks(moment) and marks(moment)[0].endswith(".")


# -- facets -------------------------------------------------------------------------------

def test_facets_count_the_whole_result_set_not_the_page(client, catalog):
    body = client.get("/api/search", {"q": "volcano tire pasta", "k": "1",
                                      "facets": "tags,language,kind,duration"}).json()
    assert len(body["results"]) == 1 and body["total"] == 3
    facets = body["facets"]
    languages = {v["value"]: v["count"] for v in facets["language"]}
    assert languages == {"en": 2, "it": 1}  # the unpublished draft is not counted
    tags = {v["value"]: v["count"] for v in facets["tags"]}
    assert tags["geology"] == 1 and tags["cooking"] == 1
    durations = {v["value"]: v["count"] for v in facets["duration"]}
    assert durations == {"under_1m": 1, "1m_5m": 1, "5m_20m": 1, "over_20m": 0}
    assert {v["value"] for v in facets["kind"]} >= {"speech"}


def test_facets_follow_the_filters(client, catalog):
    body = client.get("/api/search", {"q": "volcano tire pasta", "language": "en",
                                      "facets": "language"}).json()
    assert body["facets"] == {"language": [{"value": "en", "count": body["total"]}]}


def test_no_facets_unless_asked(client, catalog):
    assert "facets" not in client.get("/api/search", {"q": "volcano"}).json()


@pytest.mark.parametrize("value", ["colour", "tags,colour", ""])
def test_unknown_facets_are_400(client, catalog, value):
    response = client.get("/api/search", {"q": "volcano", "facets": value})
    assert response.status_code == 400
    assert "facet" in response.json()["error"]


# -- suggestions and did you mean ---------------------------------------------------------

def suggested(client, q: str, **params) -> list[str]:
    response = client.get("/api/suggest", {"q": q, **params})
    assert response.status_code == 200, response.content
    return [s["text"] for s in response.json()["suggestions"]]


def test_suggest_completes_titles_tags_and_phrases(client, catalog):
    assert suggested(client, "vol")[0] == "Active Volcanoes of Iceland"
    assert "cooking" in suggested(client, "coo")
    assert "Fresh Tagliatelle by Hand" in suggested(client, "tagl")


def test_suggest_never_shows_unpublished_videos(client, catalog, settings):
    found = suggested(client, "volcanolog") + suggested(client, "secr")
    assert found == []  # the draft's title and words stay private
    assert "Volcanology" not in str(client.get("/api/search", {"q": "volcanolgy"}).json()
                                    .get("did_you_mean"))


def test_background_rebuilds_rest_after_each_build(catalog, settings, monkeypatch):
    """A catalog that keeps changing does not keep a core busy rebuilding suggestions."""
    from retrieval import suggest

    settings.REELSEARCH = {**settings.REELSEARCH, "SUGGEST_BUILD_IN_BACKGROUND": True,
                           "SUGGEST_CHECK_SECONDS": 0.0}
    suggest.reset()
    first = suggest.current_index()  # the first build is in the request
    assert suggest._state["not_before"] > 0
    started = []
    monkeypatch.setattr(suggest, "_rebuild", lambda version: started.append(version))
    changed = Video.objects.filter(pk=catalog["Fixing a Flat Tire"].pk)
    stamp = changed.get().updated_at
    changed.update(updated_at=stamp + timedelta(seconds=1))  # what a worker's write does
    monkeypatch.setitem(suggest._state, "not_before", float("inf"))
    assert suggest.current_index() is first and started == []  # resting: the old index answers
    monkeypatch.setitem(suggest._state, "not_before", 0.0)
    assert suggest.current_index() is first  # it still answers while the new one builds
    suggest._state["building"].join(5)
    assert started == [suggest.catalog_version()]
    changed.update(updated_at=stamp)
    suggest.reset()


@pytest.mark.parametrize("params", [{"q": ""}, {"q": "   "}, {"q": "vol", "k": "0"},
                                    {"q": "vol", "k": "many"}, {"q": "v" * 101},
                                    {"q": "vol", "limit": "3"}, {"q": "vol", "k": ""}])
def test_bad_suggest_parameters_are_400(client, catalog, params):
    response = client.get("/api/suggest", params)
    assert response.status_code == 400
    assert response.json()["error"]


def test_did_you_mean_respells_unknown_words(client, catalog):
    # BM25 alone rates no result a high-tier match (relevance needs the text signal).
    body = client.get("/api/search", {"q": "fixing a flat tirre on a bicyle",
                                      "signals": "bm25"}).json()
    assert body["did_you_mean"] == "fixing a flat tire on a bicycle"


def test_no_correction_when_every_word_is_known(client, catalog):
    assert "did_you_mean" not in client.get("/api/search", {"q": "airport ash",
                                                            "signals": "bm25"}).json()


def test_typo_terms_reach_bm25_and_highlights(client, catalog):
    body = client.get("/api/search", {"q": "tagliatele ribbins", "signals": "bm25"}).json()
    # Each term is counted as the BM25 engine analyses it: tantivy's stem of "tagliatele"
    # ("tagliatel") is not that of "tagliatelle" ("tagliatell"), so it is tolerant too.
    assert body["typo_terms"] == ["tagliatele", "ribbins"]
    top = body["results"][0]
    assert top["title"] == "Fresh Tagliatelle by Hand"
    assert "ribbons" in [w.lower() for m in top["moments"] for w in marks(m)]
    assert client.get("/api/search", {"q": "ribbins", "signals": "bm25"}).json()["results"]
    exact = client.get("/api/search", {"q": "ribbins", "signals": "bm25", "typos": "false"})
    assert exact.json()["results"] == []


def test_search_command_marks_words_and_prints_facets(catalog, capsys):
    call_command("search", "volcanoes lava", "--k", "2", "--facets", "language,duration",
                 "--signals", "bm25")
    out = capsys.readouterr().out
    assert "[volcano]" in out.lower() and "[lava]" in out
    assert "language: en" in out and "duration: < 1 min" in out


def test_dense_signal_encodes_the_respelt_query(client, catalog):
    body = client.get("/api/search", {"q": "tagliatele ribbins"}).json()
    # both are typo-tolerant on tantivy (see test_typo_terms_reach_bm25_and_highlights)
    assert body["respelt_query"] == "tagliatelle ribbons"
    assert body["results"][0]["title"] == "Fresh Tagliatelle by Hand"
    assert "respelt_query" not in client.get("/api/search", {"q": "tagliatelle ribbons"}).json()
    off = client.get("/api/search", {"q": "tagliatele ribbins", "typos": "false"}).json()
    assert "respelt_query" not in off and "typo_terms" not in off
