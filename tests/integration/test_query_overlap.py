"""The query is encoded on a pool thread while the typo check and BM25 run (PendingVectors)."""

from __future__ import annotations

import threading
import time

import pytest
from django.test import override_settings

from catalog.models import Video
from retrieval.backends import get_backend, reset_backends
from retrieval.backends.embedded import EmbeddedBackend
from retrieval.encoders import get_text_encoder
from retrieval.search import SearchRequest, search
from tests.conftest import storage_settings
from tests.integration.test_api import make_video

pytestmark = [pytest.mark.models, pytest.mark.django_db]

SLOW = 0.3  # seconds the encoder is made to take, so that the overlap is plain to see


@pytest.fixture(scope="module")
def shared_catalog(tmp_path_factory, django_db_setup, django_db_blocker) -> dict[str, Video]:
    root = tmp_path_factory.mktemp("overlap")
    with override_settings(**storage_settings(root)), django_db_blocker.unblock():
        reset_backends()
        videos = {
            "volcano": make_video("Active Volcanoes of Iceland", ["geology"], "en", [
                (0.0, 8.0, "The volcano erupted and lava flowed into the sea.")]),
            "pasta": make_video("Fresh Tagliatelle by Hand", ["cooking"], "it", [
                (0.0, 9.0, "Roll the tagliatelle dough thin and cut it into ribbons.")]),
        }
        yield videos
        Video.objects.all().delete()
        reset_backends()


@pytest.fixture
def events(monkeypatch) -> list[tuple[str, str, float]]:
    """Record (what, thread name, time) of each query encoding and BM25 call."""
    found: list[tuple[str, str, float]] = []
    encoder = get_text_encoder()
    encoder.query_cache.clear()
    encode = type(encoder)._encode_query
    bm25 = EmbeddedBackend.bm25

    def slow_encode(self, text):
        found.append(("encode starts", threading.current_thread().name, time.monotonic()))
        time.sleep(SLOW)
        vector = encode(self, text)
        found.append(("encode ends", threading.current_thread().name, time.monotonic()))
        return vector

    def recorded_bm25(self, *args, **kwargs):
        found.append(("bm25 starts", threading.current_thread().name, time.monotonic()))
        return bm25(self, *args, **kwargs)

    monkeypatch.setattr(type(encoder), "_encode_query", slow_encode)
    monkeypatch.setattr(EmbeddedBackend, "bm25", recorded_bm25)
    yield found
    encoder.query_cache.clear()


def when(events, what: str) -> tuple[str, float]:
    return next((thread, at) for name, thread, at in events if name == what)


def test_bm25_runs_while_the_query_is_encoded_on_another_thread(shared_catalog, events):
    assert isinstance(get_backend(), EmbeddedBackend)
    response = search(SearchRequest("lava from the volcano"))
    assert response.results[0].video.title == "Active Volcanoes of Iceland"
    encoding_thread, encode_ends = when(events, "encode ends")
    bm25_thread, bm25_starts = when(events, "bm25 starts")
    assert encoding_thread.startswith("reelsearch-encode")
    assert bm25_thread == threading.current_thread().name
    assert bm25_starts < encode_ends  # BM25 did not wait for the encoder
    steps = response.timings_ms
    assert steps["encode"] >= SLOW * 1000  # the encoding's own time, on its thread
    assert 0 < steps["encode_wait"] < steps["encode"]  # the search waited for part of it
    # the total is the wall clock, less than the steps added up (encode overlapped them)
    assert steps["total"] < sum(v for k, v in steps.items() if k != "total")
    assert steps["total"] >= steps["encode"]


def test_the_overlap_ranks_as_encoding_first_does(shared_catalog, events):
    overlapped = search(SearchRequest("ribbons of pasta dough"))
    cached = search(SearchRequest("ribbons of pasta dough"))  # the vector is cached now
    assert [m.video.pk for m in overlapped.results] == [m.video.pk for m in cached.results]
    assert [m.score for m in overlapped.results] == [m.score for m in cached.results]
    assert [m.snippet for m in overlapped.results[0].moments] == \
        [m.snippet for m in cached.results[0].moments]


def test_a_cached_query_is_encoded_in_place(shared_catalog, events):
    search(SearchRequest("volcanic eruption"))
    events.clear()
    again = search(SearchRequest("volcanic  eruption"))  # whitespace does not matter
    assert not any(name.startswith("encode") for name, _, _ in events)
    assert "encode_wait" not in again.timings_ms
    assert again.results[0].video.title == "Active Volcanoes of Iceland"


def test_without_bm25_there_is_nothing_to_overlap_but_the_typo_check(shared_catalog, events):
    response = search(SearchRequest("tagliatelle ribbons", signals=("text",)))
    assert response.results[0].video.title == "Fresh Tagliatelle by Hand"
    assert not any(name == "bm25 starts" for name, _, _ in events)
    assert response.signal_sizes.keys() == {"text"}


def test_an_encoder_failure_reaches_the_search(shared_catalog, monkeypatch):
    encoder = get_text_encoder()
    encoder.query_cache.clear()

    def broken(self, text):
        raise RuntimeError("the text model could not run")

    monkeypatch.setattr(type(encoder), "_encode_query", broken)
    with pytest.raises(RuntimeError, match="could not run"):
        search(SearchRequest("lava from the volcano"))
    monkeypatch.undo()
    assert search(SearchRequest("lava from the volcano")).results  # the pool still works
