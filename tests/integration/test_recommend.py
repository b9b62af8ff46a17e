"""Recommendations on real narrated clips (espeak-ng, Whisper, MiniLM), ingested once.

Three cooking videos (one Italian, plus a re-upload of it under another title), two about
astronomy and two about cycling. Each test states the behaviour it checks.
"""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from catalog.models import ApiKey, Video, VideoStatus, WatchEvent
from retrieval.backends import reset_backends
from retrieval.recommend import recommend_for_user, similar_videos, video_vectors
from tests import media
from tests.conftest import storage_settings

pytestmark = [pytest.mark.models]

PASTA = ("Today we make fresh Italian pasta. Mix flour and eggs into a dough, roll it thin "
         "and cut it into long ribbons.")
CLIPS = {
    "pasta": (PASTA, "Fresh Italian Pasta", ["cooking", "italian", "pasta"]),
    "pasta_again": (PASTA, "Homemade Pasta Ribbons", ["cooking", "pasta"]),
    "soup": ("A warming vegetable soup: chop onions, carrots and potatoes, then simmer them "
             "in stock for half an hour.", "Vegetable Soup", ["cooking", "soup"]),
    "curry": ("For a spicy chicken curry, fry garlic, ginger and spices, then add the chicken "
              "and coconut milk and cook until tender.", "Chicken Curry", ["cooking", "curry"]),
    "planets": ("On a clear night you can find the planets. Jupiter and Saturn shine brightly, "
                "and a small telescope shows their moons.", "Spotting Planets",
                ["astronomy", "stars"]),
    "moon": ("The Moon has phases because sunlight lights half of it as it orbits the Earth "
             "every month.", "Phases of the Moon", ["astronomy", "moon"]),
    "bike_check": ("Before a long bike ride, pump up the tyres, oil the chain and check that "
                   "both brakes work.", "Bike Check Before a Ride", ["cycling", "bicycle"]),
    "hills": ("To climb hills on a road bike, shift into an easy gear early and keep a steady "
              "pedalling rhythm.", "Climbing Hills on a Bike", ["cycling", "bicycle"]),
}
TOPICS = {"cooking": {"pasta", "pasta_again", "soup", "curry"}, "astronomy": {"planets", "moon"},
          "cycling": {"bike_check", "hills"}}


@pytest.fixture(scope="module")
def shared_topics(media_tools, tmp_path_factory, django_db_setup, django_db_blocker):
    """Make, ingest and index the eight clips once for the module; map name -> video id."""
    root = tmp_path_factory.mktemp("topics")
    paths = []
    for name, (text, title, _tags) in CLIPS.items():
        # The caption differs between the two pasta uploads, so their files (sha256) differ.
        paths.append(media.make_video(root / "in" / f"{name}.mp4", narration=text,
                                      captions=[(0.0, 2.0, title.upper())]))
    metadata = root / "catalog.json"
    metadata.write_text(json.dumps([
        {"file": f"{name}.mp4", "title": title, "tags": tags, "language": "en",
         "description": f"A short video: {title.lower()}."}
        for name, (_text, title, tags) in CLIPS.items()]))
    with override_settings(**storage_settings(root)), django_db_blocker.unblock():
        reset_backends()
        call_command("ingest", *paths, metadata=metadata, no_progress=True)
        yield {name: str(Video.objects.get(original_name=f"{name}.mp4").pk) for name in CLIPS}
        Video.objects.all().delete()
        reset_backends()


def names(picks, ids) -> list[str]:
    by_id = {video_id: name for name, video_id in ids.items()}
    return [by_id[str(pick.video.pk)] for pick in picks]


def watch(user: str, ids: dict, *videos: str, days_ago: float = 0.0, completed=True) -> None:
    for name in videos:
        event = WatchEvent.objects.create(user_id=user, video_id=ids[name], position=5.0,
                                          completed=completed)
        WatchEvent.objects.filter(pk=event.pk).update(
            created_at=timezone.now() - timedelta(days=days_ago))


@pytest.mark.django_db
def test_clips_are_ready(shared_topics):
    assert Video.objects.filter(status=VideoStatus.READY).count() == len(CLIPS)


@pytest.mark.django_db
def test_more_like_this_finds_the_same_topic_and_never_itself(shared_topics):
    ids = shared_topics
    pasta = Video.objects.get(pk=ids["pasta"])
    similar = names(similar_videos(pasta, k=7), ids)
    assert "pasta" not in similar
    assert similar[0] == "pasta_again"  # the re-upload is the nearest
    assert set(similar[:3]) <= TOPICS["cooking"]
    hills = names(similar_videos(Video.objects.get(pk=ids["hills"]), k=3), ids)
    assert hills[0] == "bike_check"


@pytest.mark.django_db
def test_watched_videos_are_excluded(shared_topics):
    watch("ann", shared_topics, "soup", "curry", "planets")
    picks = names(recommend_for_user("ann", k=10), shared_topics)
    assert not {"soup", "curry", "planets"} & set(picks)
    assert len(picks) == len(CLIPS) - 3  # everything else, filled up when needed


@pytest.mark.django_db
def test_a_cooking_fan_gets_cooking_first(shared_topics):
    watch("chef", shared_topics, "soup", "curry")
    picks = names(recommend_for_user("chef", k=5), shared_topics)
    assert picks[0] in TOPICS["cooking"], picks
    by_relevance = names(recommend_for_user("chef", k=6, diversity=0.0), shared_topics)
    unwatched_cooking = TOPICS["cooking"] - {"soup", "curry"}
    assert set(by_relevance[:len(unwatched_cooking)]) == unwatched_cooking, by_relevance


@pytest.mark.django_db
def test_recent_views_count_more_than_old_ones(shared_topics):
    watch("drifter", shared_topics, "moon", days_ago=90)
    watch("drifter", shared_topics, "hills", days_ago=0.5)
    picks = names(recommend_for_user("drifter", k=3), shared_topics)
    assert picks[0] == "bike_check", picks
    watch("stargazer", shared_topics, "moon", days_ago=0.5)
    watch("stargazer", shared_topics, "hills", days_ago=90)
    assert names(recommend_for_user("stargazer", k=3), shared_topics)[0] == "planets"


@pytest.mark.django_db
def test_a_query_steers_the_list(shared_topics):
    ids = shared_topics
    watch("cook", ids, "soup")
    plain = names(recommend_for_user("cook", k=7), ids)
    italian = names(recommend_for_user("cook", query="Italian recipes", k=7), ids)
    assert italian[0] == "pasta", italian
    stars = names(recommend_for_user("cook", query="planets in the night sky", k=7), ids)
    assert stars.index("planets") < plain.index("planets"), (plain, stars)
    assert "soup" not in italian + stars


def redundancy(picks) -> float:
    """Return the highest cosine between two of the picked videos."""
    vectors = video_vectors(str(p.video.pk) for p in picks)
    matrix = np.stack([vectors[str(p.video.pk)] for p in picks])
    return float((matrix @ matrix.T)[np.triu_indices(len(picks), 1)].max())


@pytest.mark.django_db
def test_mmr_keeps_a_near_duplicate_out_of_the_top(shared_topics):
    ids = shared_topics
    vectors = video_vectors(ids.values())
    pair = float(vectors[ids["pasta"]] @ vectors[ids["pasta_again"]])
    others = [float(vectors[a] @ vectors[b]) for a in ids.values() for b in ids.values()
              if a < b and {a, b} != {ids["pasta"], ids["pasta_again"]}]
    assert pair > 0.75 and pair > max(others) + 0.2  # the two uploads are near-duplicates
    watch("foodie", ids, "soup")
    plain = recommend_for_user("foodie", query="Italian pasta", k=4, diversity=0.0)
    assert set(names(plain, ids)[:2]) == {"pasta", "pasta_again"}, names(plain, ids)
    diverse = recommend_for_user("foodie", query="Italian pasta", k=4)
    assert names(diverse, ids)[0] in {"pasta", "pasta_again"}
    assert not {"pasta", "pasta_again"} <= set(names(diverse, ids)[:2]), names(diverse, ids)
    assert redundancy(diverse[:2]) < redundancy(plain[:2])


@pytest.mark.django_db
def test_cold_start_gets_popular_then_recent_videos(shared_topics):
    ids = shared_topics
    picks = recommend_for_user("nobody-yet", k=4)
    assert len(picks) == 4 and {p.reason for p in picks} == {"recent"}
    for user in ("u1", "u2", "u3"):
        watch(user, ids, "moon")
    watch("u1", ids, "hills")
    picks = recommend_for_user("nobody-yet", k=4)
    assert names(picks, ids)[:2] == ["moon", "hills"]
    assert [p.reason for p in picks[:2]] == ["popular", "popular"]


# -- over HTTP ---------------------------------------------------------------------------

@pytest.fixture
def api_key(db) -> str:
    return ApiKey.issue("tests")[1]


@pytest.mark.django_db
def test_http_watch_events_then_recommendations(shared_topics, client, api_key):
    ids = shared_topics
    auth = {"HTTP_X_API_KEY": api_key}
    for name in ("soup", "curry"):
        response = client.post("/api/watch-events", {"user": "web-7", "video": ids[name],
                                                      "position": 6.5, "completed": True},
                               content_type="application/json", **auth)
        assert response.status_code == 201, response.json()
        assert response.json()["user"] == "web-7"
    response = client.get("/api/users/web-7/recommendations", {"q": "Italian recipes", "k": 3},
                          HTTP_AUTHORIZATION=f"Api-Key {api_key}")
    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["results"][0]["video"]["id"] == ids["pasta"]
    assert {"soup", "curry"}.isdisjoint(r["video"]["title"] for r in data["results"])
    assert data["results"][0]["reason"] == "query"


@pytest.mark.django_db
def test_http_similar(shared_topics, client):
    response = client.get(f"/api/videos/{shared_topics['planets']}/similar", {"k": 2})
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0]["video"]["id"] == shared_topics["moon"]
    assert all(r["video"]["id"] != shared_topics["planets"] for r in results)
    assert results[0]["video"]["url"].endswith(".mp4")


@pytest.mark.django_db
def test_http_video_detail_with_moments_for_a_query(shared_topics, client):
    response = client.get(f"/api/videos/{shared_topics['bike_check']}", {"q": "brakes"})
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "ready" and data["title"] == "Bike Check Before a Ride"
    assert any("brake" in m["snippet"].lower() for m in data["moments"])
