"""Unit tests for retrieval.params: string parameters to a SearchRequest, or a clear error."""

from __future__ import annotations

import pytest

from retrieval.documents import Filters
from retrieval.params import ParameterError, parse_filters, parse_fusion, parse_request
from retrieval.search import MAX_K, SIGNALS, SearchRequest


@pytest.mark.parametrize(
    "params, message",
    [
        ({}, "query is empty"),
        ({"q": ""}, "query is empty"),
        ({"q": "   "}, "query is empty"),
        ({"q": "bread", "k": "0"}, "k must be between 1 and 100"),
        ({"q": "bread", "k": "101"}, "k must be between 1 and 100"),
        ({"q": "bread", "k": "-3"}, "k must be between 1 and 100"),
        ({"q": "bread", "k": "abc"}, "k must be a"),
        ({"q": "bread", "k": "2.5"}, "k must be a"),
        ({"q": "bread", "page": "0"}, "page must be 1 or more"),
        ({"q": "bread", "page": "x"}, "page must be a"),
        ({"q": "bread", "fusion": "median"}, "unknown fusion method 'median'"),
        ({"q": "bread", "normalization": "softmax"}, "unknown normalization 'softmax'"),
        ({"q": "bread", "fusion": "geometric", "normalization": "z_score"}, "z_score"),
        ({"q": "bread", "fusion": "harmonic", "normalization": "zscore"}, "z_score"),
        ({"q": "bread", "weights": "text"}, "bad weight 'text'"),
        ({"q": "bread", "weights": "text=heavy"}, "bad weight 'text=heavy'"),
        ({"q": "bread", "weights": "=2"}, "bad weight '=2'"),
        ({"q": "bread", "weights": "text=-1"}, "must be >= 0"),
        ({"q": "bread", "weights": "text=nan"}, "finite number"),
        ({"q": "bread", "rank_constant": "0"}, "rank_constant"),
        ({"q": "bread", "rank_constant": "many"}, "rank_constant must be a"),
        ({"q": "bread", "min_duration": "60", "max_duration": "30"}, "min_duration is larger"),
        ({"q": "bread", "min_duration": "long"}, "min_duration must be a"),
        ({"q": "bread", "min_duration": "-1.5"}, "min_duration must be a number of seconds, 0"),
        ({"q": "bread", "max_duration": "-1e308"}, "max_duration must be a number of seconds, 0"),
        ({"q": "bread", "max_duration": "-inf"}, "max_duration must be a number of seconds, 0"),
        ({"q": "bread", "published": "maybe"}, "published must be true or false"),
        ({"q": "bread", "explain": "perhaps"}, "explain must be true or false"),
        ({"q": "bread", "signals": "bm25,colbert"}, "Unknown signal(s) ['colbert']"),
        # Values that used to be silently ignored (no results, or a spec without them).
        ({"q": "bread", "kinds": "speech,subtitles"},
         "Unknown segment kind(s) ['subtitles'] in kinds"),
        ({"q": "bread", "rank_constant": "10"}, "rank_constant applies only to fusion=rrf"),
        ({"q": "bread", "fusion": "arithmetic", "rank_constant": "10"}, "only to fusion=rrf"),
        ({"q": "bread", "fusion": "rrf", "normalization": "z_score"},
         "normalization does not apply to fusion=rrf"),
        ({"q": "bread", "fusion": "rrf", "rank_constant": "1000000"},
         "rank_constant must be between 1 and 10000"),
        ({"q": "bread", "coverage": "-1"}, "coverage must be between 0 and 10"),
        ({"q": "bread", "coverage": "1e9"}, "coverage must be between 0 and 10"),
    ],
)
def test_bad_input_raises_parameter_error_with_a_clear_message(
    params: dict[str, str], message: str
) -> None:
    with pytest.raises(ParameterError) as caught:
        parse_request(params)
    assert message in str(caught.value)


def test_parameter_error_is_a_value_error() -> None:
    assert issubclass(ParameterError, ValueError)


def test_defaults() -> None:
    request = parse_request({"q": "knead dough"})
    assert request == SearchRequest(
        query="knead dough", k=10, page=1, fusion=None, filters=Filters(published=True),
        signals=SIGNALS, moments=3, explain=False, profile="default",
    )  # no fusion named: the default profile decides (retrieval/profiles.py)


def test_a_profile_is_named_or_rejected() -> None:
    assert parse_request({"q": "bread", "profile": "default"}).profile == "default"
    with pytest.raises(ParameterError, match="Unknown fusion profile 'nope'"):
        parse_request({"q": "bread", "profile": "nope"})


def test_relevance_floors_are_parsed_and_checked() -> None:
    request = parse_request({"q": "bread", "min_score": "0.4", "min_tier": "high"})
    assert (request.min_score, request.min_tier) == (0.4, "high")
    with pytest.raises(ParameterError, match="unknown tier"):
        parse_request({"q": "bread", "min_tier": "best"})
    with pytest.raises(ParameterError, match="min_score"):
        parse_request({"q": "bread", "min_score": "two"})


def test_empty_strings_mean_defaults() -> None:
    request = parse_request({"q": "bread", "k": "", "page": "", "fusion": "", "weights": "",
                             "published": "", "tags": "", "language": ""})
    assert request == parse_request({"q": "bread"})


def test_good_input_builds_the_expected_request() -> None:
    request = parse_request({
        "q": "crème brûlée", "k": "25", "page": "2", "fusion": "RRF", "rank_constant": "20",
        "weights": "bm25=2, text=0.5", "tags": "Cooking, dessert,, ", "language": "fr",
        "min_duration": "30", "max_duration": "600.5", "published": "no", "kinds": "speech,ocr",
        "signals": "bm25", "moments": "5", "explain": "yes",
    })
    assert request.query == "crème brûlée"
    assert (request.k, request.page, request.moments, request.explain) == (25, 2, 5, True)
    assert request.signals == ("bm25",)
    assert request.fusion.method == "rrf"
    assert request.fusion.rank_constant == 20
    assert dict(request.fusion.weights) == {"bm25": 2.0, "text": 0.5}
    assert request.filters == Filters(
        tags=("Cooking", "dessert"), language="fr", min_duration=30.0, max_duration=600.5,
        published=False, kinds=("speech", "ocr"),
    )
    assert isinstance(request.filters.tags, tuple)


@pytest.mark.parametrize(
    "given, method, normalization",
    [
        ({"normalization": "min_max"}, "arithmetic", "min_max"),
        ({"fusion": "geometric_mean"}, "geometric", "min_max"),
        ({"fusion": "Harmonic", "normalization": "L2"}, "harmonic", "l2"),
        ({"fusion": "reciprocal-rank-fusion"}, "rrf", "min_max"),
        ({"fusion": "arithmetic", "normalization": "zscore"}, "arithmetic", "z_score"),
    ],
)
def test_fusion_names_and_aliases(given: dict[str, str], method: str, normalization: str) -> None:
    spec = parse_fusion(given)
    assert (spec.method, spec.normalization) == (method, normalization)


@pytest.mark.parametrize("k", ["1", str(MAX_K)])
def test_k_bounds_are_inclusive(k: str) -> None:
    assert parse_request({"q": "bread", "k": k}).k == int(k)


@pytest.mark.parametrize("raw, expected", [("1", True), ("TRUE", True), ("on", True),
                                           ("0", False), ("False", False), ("off", False)])
def test_published_accepts_common_booleans(raw: str, expected: bool) -> None:
    assert parse_filters({"published": raw}, published_default=True).published is expected


def test_published_default_applies_only_when_absent() -> None:
    assert parse_filters({}, published_default=None).published is None
    assert parse_filters({}, published_default=True).published is True
    assert parse_request({"q": "x"}, published_default=None).filters == Filters()


def test_equal_min_and_max_duration_is_allowed() -> None:
    filters = parse_filters({"min_duration": "60", "max_duration": "60"}, None)
    assert (filters.min_duration, filters.max_duration) == (60.0, 60.0)


def test_overrides_are_passed_to_the_request() -> None:
    assert parse_request({"q": "bread"}, backend="other").backend == "other"


@pytest.mark.parametrize("name, value", [("k", "abc"), ("page", "x"), ("min_duration", "long"),
                                         ("published", "maybe")])
def test_a_rejected_value_is_quoted_back(name: str, value: str) -> None:
    with pytest.raises(ParameterError, match=f"{name} must be .*'{value}'"):
        parse_request({"q": "bread", name: value})
