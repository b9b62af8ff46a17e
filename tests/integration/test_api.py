"""The REST API: schema and docs, catalog list and detail, watch events, API keys,
throttling, and clear 4xx answers (never a 500) to bad input.

The catalog here is built from rows (texts embedded with the real MiniLM model and indexed),
so no media processing is needed.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.test import override_settings

from catalog.models import ApiKey, Keyframe, Segment, Video, VideoStatus, WatchEvent
from retrieval.backends import reset_backends
from retrieval.encoders import get_text_encoder
from retrieval.indexing import index_video
from tests.conftest import storage_settings

pytestmark = [pytest.mark.models, pytest.mark.django_db]

ROWS = [
    ("Sourdough Basics", ["cooking", "bread"], "en",
     [(0.0, 8.0, "Feed the sourdough starter with flour and water the night before."),
      (8.0, 16.0, "Bake the loaf in a very hot oven inside a covered pot.")]),
    ("Comets Explained", ["astronomy"], "en",
     [(0.0, 9.0, "A comet is a ball of ice and dust; near the Sun it grows a bright tail.")]),
    ("Réparer un vélo", ["cycling"], "fr",
     [(0.0, 7.0, "Changer la chambre à air d'un vélo en cinq minutes.")]),
]
JPEG = bytes.fromhex(  # a 1x1 grey JPEG
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b"
    "0c1912130f141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ff"
    "c0000b080001000101011100ffc4001f0000010501010101010100000000000000000102030405060708090a0b"
    "ffc400b5100002010303020403050504040000017d01020300041105122131410613516107227114328191a108"
    "2342b1c11552d1f02433627282090a161718191a25262728292a3435363738393a434445464748494a53545556"
    "5758595a636465666768696a737475767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9"
    "aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7"
    "f8f9faffda0008010100003f00fbd3ffd9")


def make_video(title: str, tags: list[str], language: str, parts, **fields) -> Video:
    """Create a ready video with embedded, indexed segments (no media processing)."""
    video, = Video.objects.bulk_create([Video(  # bulk: no signal, so no pipeline run
        title=title, tags=tags, language=language, source=f"videos/{uuid.uuid4().hex}.mp4",
        duration=parts[-1][1], status=VideoStatus.READY, **fields)])
    texts = [text for _, _, text in parts] + [f"{title}. Tags: {', '.join(tags)}"]
    vectors = get_text_encoder().encode(texts)
    rows = [Segment(id=Segment.make_id(video.pk, "speech", n), video=video, kind="speech",
                    start=start, end=end, text=text) for n, (start, end, text) in enumerate(parts)]
    rows.append(Segment(id=Segment.make_id(video.pk, "metadata", 0), video=video,
                        kind="metadata", start=0.0, end=parts[-1][1], text=texts[-1]))
    for row, vector in zip(rows, vectors, strict=True):
        row.text_vector = np.asarray(vector, dtype=np.float32).tobytes()
    Segment.objects.bulk_create(rows)
    index_video(video)
    return video


def add_keyframe(video: Video, time: float) -> Keyframe:
    keyframe = Keyframe(video=video, time=time, width=1, height=1)
    keyframe.image.save("k.jpg", ContentFile(JPEG), save=True)
    return keyframe


@pytest.fixture(scope="module")
def shared_catalog(tmp_path_factory, django_db_setup, django_db_blocker) -> dict[str, Video]:
    """Three published videos and an unpublished draft, indexed once for the module."""
    root = tmp_path_factory.mktemp("api")
    with override_settings(**storage_settings(root)), django_db_blocker.unblock():
        reset_backends()
        videos = {row[0]: make_video(*row) for row in ROWS}
        videos["hidden"] = make_video("Secret Draft", ["cooking"], "en", [
            (0.0, 5.0, "An unpublished bread recipe draft.")], published=False)
        add_keyframe(videos["Sourdough Basics"], 9.0)
        yield videos
        Video.objects.all().delete()
        reset_backends()


@pytest.fixture
def catalog(shared_catalog) -> dict[str, Video]:
    return shared_catalog


@pytest.fixture
def api_key() -> str:
    return ApiKey.issue("tests")[1]


@pytest.fixture(autouse=True)
def fresh_throttle():
    cache.clear()
    yield
    cache.clear()


def error_of(response) -> str:
    body = response.json()
    assert set(body) <= {"error", "fields"}, body
    return body["error"]


# -- schema and docs ----------------------------------------------------------------------

def test_schema_lists_every_endpoint(client):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    assert {"/api/search", "/api/videos", "/api/videos/{video_id}",
            "/api/videos/{video_id}/similar", "/api/users/{user_id}/recommendations",
            "/api/watch-events", "/api/suggest"} <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["ApiKey"]["type"] == "apiKey"
    search_params = {p["name"] for p in schema["paths"]["/api/search"]["get"]["parameters"]}
    assert {"q", "k", "page", "fusion", "weights", "explain", "tags", "language",
            "min_duration", "max_duration", "facets", "typos"} <= search_params


def test_docs_are_served_without_a_cdn(client):
    for url in ("/api/docs/", "/api/redoc/"):
        response = client.get(url)
        assert response.status_code == 200
        page = response.content.decode()
        assert "/static/drf_spectacular_sidecar/" in page
        assert "cdn.jsdelivr" not in page and "unpkg.com" not in page


# -- catalog ------------------------------------------------------------------------------

def test_video_list_pages_and_filters(client, catalog):
    data = client.get("/api/videos", {"page_size": 2}).json()
    assert data["count"] == 3  # the unpublished draft is not listed
    assert len(data["results"]) == 2 and data["page"] == 1
    rest = client.get("/api/videos", {"page_size": 2, "page": 2}).json()["results"]
    assert len(rest) == 1
    assert client.get("/api/videos", {"page": 99}).json()["results"] == []
    titles = [v["title"] for v in client.get("/api/videos", {"tags": "COOKING,astronomy"})
              .json()["results"]]
    assert sorted(titles) == ["Comets Explained", "Sourdough Basics"]
    french = client.get("/api/videos", {"language": "fr"}).json()["results"]
    assert [v["title"] for v in french] == ["Réparer un vélo"]


def test_video_detail_with_segments_keyframes_and_query_moments(client, catalog):
    bread = catalog["Sourdough Basics"]
    data = client.get(f"/api/videos/{bread.pk}").json()
    assert [m["start"] for m in data["moments"]] == [0.0, 8.0]
    assert data["keyframes"][0]["time"] == 9.0
    assert data["thumbnail"] == data["keyframes"][0]["url"]
    ranked = client.get(f"/api/videos/{bread.pk}", {"q": "hot oven", "moments": 1}).json()
    assert len(ranked["moments"]) == 1 and "oven" in ranked["moments"][0]["snippet"]
    assert ranked["moments"][0]["thumbnail"].endswith(".jpg")


def test_search_results_carry_thumbnails(client, catalog):
    data = client.get("/api/search", {"q": "bake a loaf in the oven"}).json()
    top = data["results"][0]
    assert top["title"] == "Sourdough Basics"
    assert top["thumbnail"] and top["moments"][0]["thumbnail"] == top["thumbnail"]
    assert all(r["title"] != "Secret Draft" for r in data["results"])


@pytest.mark.parametrize("url", [
    "/api/videos/not-a-uuid", "/api/videos/../../etc", f"/api/videos/{uuid.uuid4()}",
    f"/api/videos/{uuid.uuid4()}/similar", "/api/videos/%00/similar",
])
def test_unknown_videos_are_404(client, catalog, url):
    response = client.get(url)
    assert response.status_code == 404
    if response["Content-Type"] == "application/json":
        assert "No video" in error_of(response)


def test_unpublished_videos_are_404(client, catalog):
    hidden = catalog["hidden"].pk
    assert client.get(f"/api/videos/{hidden}").status_code == 404
    assert client.get(f"/api/videos/{hidden}/similar").status_code == 404


# -- watch events and API keys ------------------------------------------------------------

def post_event(client, body, **headers):
    return client.post("/api/watch-events", body, content_type="application/json", **headers)


def test_watch_events_need_a_valid_key(client, catalog, api_key):
    body = {"user": "u1", "video": str(catalog["Comets Explained"].pk), "position": 3}
    response = post_event(client, body)
    assert response.status_code == 401 and "API key" in error_of(response)
    assert response["WWW-Authenticate"] == "Api-Key"
    response = post_event(client, body, HTTP_X_API_KEY="wrong")
    assert response.status_code == 401 and "Invalid" in error_of(response)
    ApiKey.objects.filter(hashed_key=ApiKey.hash(api_key)).update(active=False)
    assert post_event(client, body, HTTP_AUTHORIZATION=f"Api-Key {api_key}").status_code == 401
    assert not WatchEvent.objects.exists()


def test_watch_event_is_recorded(client, catalog, api_key):
    video = catalog["Comets Explained"]
    response = post_event(client, {"user": " u1 ", "video": str(video.pk), "position": 3.5,
                                   "completed": True}, HTTP_AUTHORIZATION=f"Api-Key {api_key}")
    assert response.status_code == 201
    event = WatchEvent.objects.get()
    assert (event.user_id, event.video_id, event.position, event.completed) == \
        ("u1", video.pk, 3.5, True)
    assert response.json()["user"] == "u1"


@pytest.mark.parametrize("body,field", [
    ({"position": -1}, "position"), ({"position": "NaN"}, "position"),
    ({"position": "1e400"}, "position"), ({"position": "soon"}, "position"),
    ({"video": "not-a-uuid"}, "video"), ({"video": str(uuid.uuid4())}, "video"),
    ({"user": ""}, "user"), ({"user": "x" * 500}, "user"), ({"completed": "maybe"}, "completed"),
])
def test_bad_watch_events_are_400(client, catalog, api_key, body, field):
    valid = {"user": "u1", "video": str(catalog["Comets Explained"].pk), "position": 1}
    response = post_event(client, {**valid, **body}, HTTP_X_API_KEY=api_key)
    assert response.status_code == 400
    assert error_of(response).startswith(f"{field}: ")
    assert field in response.json()["fields"]


def test_unpublished_video_cannot_be_watched(client, catalog, api_key):
    body = {"user": "u1", "video": str(catalog["hidden"].pk), "position": 1}
    assert post_event(client, body, HTTP_X_API_KEY=api_key).status_code == 400


@pytest.mark.parametrize("raw", ["[1, 2]", "{not json", "null", '"text"'])
def test_malformed_bodies_are_400(client, catalog, api_key, raw):
    response = client.post("/api/watch-events", raw, content_type="application/json",
                           HTTP_X_API_KEY=api_key)
    assert response.status_code == 400 and error_of(response)


def test_create_api_key_command_prints_a_working_key(client, catalog, capsys):
    call_command("create_api_key", "mobile-app")
    raw = capsys.readouterr().out.strip()
    assert ApiKey.objects.get(name="mobile-app").hashed_key == ApiKey.hash(raw)
    response = client.get("/api/users/someone/recommendations", HTTP_X_API_KEY=raw)
    assert response.status_code == 200


# -- recommendations ----------------------------------------------------------------------

def test_recommendations_need_a_key(client, catalog):
    response = client.get("/api/users/u1/recommendations")
    assert response.status_code == 401 and "API key" in error_of(response)


def test_unknown_user_gets_a_cold_start_list(client, catalog, api_key):
    response = client.get("/api/users/never-seen/recommendations", {"k": 2},
                          HTTP_X_API_KEY=api_key)
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 2 and {r["reason"] for r in results} == {"recent"}
    steered = client.get("/api/users/never-seen/recommendations", {"q": "comet tail"},
                         HTTP_X_API_KEY=api_key).json()["results"]
    assert steered[0]["video"]["title"] == "Comets Explained"


@pytest.mark.parametrize("params,message", [
    ({"k": "0"}, "k must be between"), ({"k": "1000000000000000000000"}, "k must be between"),
    ({"k": "ten"}, "k must be an integer"), ({"diversity": "2"}, "diversity must be between"),
    ({"diversity": "nan"}, "diversity must be between"), ({"q": "x" * 600}, "at most"),
])
def test_bad_recommendation_parameters_are_400(client, catalog, api_key, params, message):
    response = client.get("/api/users/u1/recommendations", params, HTTP_X_API_KEY=api_key)
    assert response.status_code == 400 and message in error_of(response)


def test_overlong_user_id_is_400(client, catalog, api_key):
    response = client.get(f"/api/users/{'u' * 200}/recommendations", HTTP_X_API_KEY=api_key)
    assert response.status_code == 400


def test_similar_excludes_itself(client, catalog):
    bread = catalog["Sourdough Basics"]
    data = client.get(f"/api/videos/{bread.pk}/similar", {"k": 5}).json()
    ids = [r["video"]["id"] for r in data["results"]]
    assert str(bread.pk) not in ids and str(catalog["hidden"].pk) not in ids
    assert client.get(f"/api/videos/{bread.pk}/similar", {"k": "-3"}).status_code == 400


# -- search: nasty input ------------------------------------------------------------------

@pytest.mark.parametrize("params", [
    {"q": "bread", "k": "99999999999999999999"}, {"q": "bread", "page": "-1"},
    {"q": "bread", "page": "1.5"}, {"q": "bread", "weights": "bm25=lots"},
    {"q": "bread", "weights": "==,"}, {"q": "bread", "min_duration": "abc"},
    {"q": "bread", "min_duration": "10", "max_duration": "5"},
    {"q": "bread", "fusion": "rrf", "rank_constant": "0"},
    {"q": "bread", "normalization": "z_score", "fusion": "geometric"},
    {"q": "bread", "explain": "maybe"}, {"q": "bread", "signals": "telepathy"},
    {"q": "bread", "moments": "lots"}, {"q": "   "},
    # Values and names that used to be silently ignored.
    {"q": "bread", "kinds": "subtitles"}, {"q": "bread", "rank_constant": "5"},
    {"q": "bread", "fusion": "rrf", "normalization": "l2"}, {"q": "bread", "coverage": "-2"},
    {"q": "bread", "tag": "cooking"}, {"q": "bread", "signals": ""}, {"q": "bread", "kinds": ""},
])
def test_bad_search_parameters_are_400(client, catalog, params):
    response = client.get("/api/search", params)
    assert response.status_code == 400, response.content
    assert error_of(response)


@pytest.mark.parametrize("params", [
    {"q": "bread " * 400}, {"q": "\x00\u202e💥' OR 1=1 --"}, {"q": '"unterminated'},
    {"q": "NEAR(bread oven)"}, {"q": "bread", "min_duration": "nan"},
    {"q": "bread", "max_duration": "inf"}, {"q": "bread", "tags": ",,,"},
    {"q": "bread", "language": "zz" * 50}, {"q": "bread", "page": "100000"},
])
def test_odd_but_valid_searches_answer_200(client, catalog, params):
    response = client.get("/api/search", params)
    assert response.status_code == 200, response.content
    assert isinstance(response.json()["results"], list)


# -- throttling ---------------------------------------------------------------------------

def test_anonymous_reads_are_throttled_but_key_holders_are_not(client, catalog, api_key,
                                                                 settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"anon": "3/minute"}}
    for _ in range(3):
        assert client.get("/api/videos").status_code == 200
    response = client.get("/api/videos")
    assert response.status_code == 429 and "throttled" in error_of(response)
    assert client.get("/api/search", {"q": "bread"}).status_code == 429
    assert client.get("/api/videos", HTTP_X_API_KEY=api_key).status_code == 200


def test_media_is_served_with_ranges(client, catalog, settings):
    path = Path(settings.MEDIA_ROOT) / "videos" / "range-test.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"0123456789" * 10)
    Video.objects.bulk_create([Video(title="Range test", source="videos/range-test.mp4",
                                     status=VideoStatus.READY)])  # only catalog files are served
    response = client.get("/media/videos/range-test.mp4", HTTP_RANGE="bytes=10-19")
    assert response.status_code == 206
    assert b"".join(response.streaming_content) == b"0123456789"


def test_an_unknown_search_parameter_is_named_in_the_error(client, catalog):
    response = client.get("/api/search", {"q": "bread", "tag": "cooking", "sizee": "3"})
    assert response.status_code == 400
    message = error_of(response)
    assert "Unknown parameter(s) ['sizee', 'tag']" in message and "tags" in message


def test_every_endpoint_names_an_unknown_parameter(client, catalog, api_key):
    video = catalog["Sourdough Basics"].pk
    for url, known in (("/api/videos", {"page": "1"}), (f"/api/videos/{video}", {"q": "bread"}),
                       (f"/api/videos/{video}/similar", {"k": "2"}),
                       ("/api/users/u1/recommendations", {"k": "2"})):
        response = client.get(url, {**known, "pagesize": "3"}, HTTP_X_API_KEY=api_key)
        assert response.status_code == 400, (url, response.content)
        assert "Unknown parameter(s) ['pagesize']" in error_of(response), url
    response = client.get("/api/videos", {"page": "1"}, HTTP_X_API_KEY=api_key)
    assert response.status_code == 200


def test_listed_fusion_parameters_shape_the_answer(client, catalog):
    for params in ({"fusion": "rrf", "rank_constant": "5"}, {"coverage": "1.5"},
                   {"kinds": "speech,metadata", "signals": "bm25,text"}):
        response = client.get("/api/search", {"q": "bread", **params})
        assert response.status_code == 200, (params, response.content)
