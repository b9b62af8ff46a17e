"""Unit tests for retrieval.facets and retrieval.typos: names, buckets, edit budgets."""

from __future__ import annotations

import math

import pytest

from retrieval.facets import bucket_of, duration_values, kind_counts, parse_facets, top_values
from retrieval.typos import candidates, distance, max_edits, tolerant_terms


def test_facet_names_are_checked_and_deduplicated():
    assert parse_facets(" tags, duration,tags ") == ("tags", "duration")
    with pytest.raises(ValueError, match="colour"):
        parse_facets("tags,colour")


@pytest.mark.parametrize("seconds, key", [(0, "under_1m"), (59.9, "under_1m"), (60, "1m_5m"),
                                          (299, "1m_5m"), (300, "5m_20m"), (1200, "over_20m"),
                                          (math.nan, "under_1m")])
def test_duration_buckets_include_their_lower_bound(seconds, key):
    assert bucket_of(seconds) == key


def test_every_duration_bucket_is_listed_with_its_filter():
    values = duration_values({"1m_5m": 2})
    assert [v["count"] for v in values] == [0, 2, 0, 0]
    assert values[1]["min_duration"] == 60.0 and values[-1]["max_duration"] is None


def test_values_are_most_frequent_first_then_by_name():
    assert top_values({"b": 2, "a": 2, "c": 5, "z": 0}) == [
        {"value": "c", "count": 5}, {"value": "a", "count": 2}, {"value": "b", "count": 2}]


def test_kinds_count_videos_of_the_result_set_once():
    segments = [("v1", "speech"), ("v1", "speech"), ("v2", "ocr"), ("v3", "ocr")]
    assert kind_counts(segments, {"v1", "v2"}) == {"speech": 1, "ocr": 1}


@pytest.mark.parametrize("term, edits", [("lava", 0), ("magma", 1), ("volcanoe", 1),
                                         ("tagliatele", 2)])
def test_edit_budget_follows_the_term_length(term, edits):
    assert max_edits(term) == edits


def test_numbers_and_short_terms_are_not_tolerant():
    assert tolerant_terms(["lava", "123456", "volcano"]) == ["volcano"]


@pytest.mark.parametrize("a, b, d", [("volcano", "vlocano", 1), ("volcano", "volcanoes", 2),
                                     ("tire", "tyre", 1), ("abc", "abc", 0),
                                     ("kitten", "sitting", 3)])
def test_distance_counts_swaps_as_one_edit(a, b, d):
    assert distance(a, b, 3) == d
    if d:
        assert distance(a, b, d - 1) == d  # over the limit: limit + 1


def test_candidates_prefer_fewer_edits_then_frequency():
    vocabulary = [("ribbon", 3), ("robbin", 9), ("ribbit", 1), ("rabbit", 20), ("ribbin", 5)]
    assert candidates("ribbin", vocabulary, 1) == ["robbin", "ribbon", "ribbit"]
    assert candidates("ribbin", vocabulary, 2) == ["robbin", "ribbon", "ribbit", "rabbit"]
