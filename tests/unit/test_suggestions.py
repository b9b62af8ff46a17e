"""Unit tests for retrieval.suggestions: prefix completion, ranking and corrections."""

from __future__ import annotations

from retrieval.suggestions import SuggestionIndex, phrases, typed

TITLES = [("v1", "Active Volcanoes of Iceland"), ("v2", "Volleyball for Beginners"),
          ("v3", "Fresh Tagliatelle by Hand")]
TAGS = [("v1", "geology"), ("v2", "sport"), ("v3", "cooking"), ("v1", "Volcanoes")]
SPOKEN = [("v1", "The lava flow reached the sea. The lava flow cooled."),
          ("v2", "Serve the volleyball over the net; the volleyball net is high."),
          ("v3", "Roll the tagliatelle thin and cut the tagliatelle into ribbons.")]


def index() -> SuggestionIndex:
    return SuggestionIndex.build(TITLES, TAGS, SPOKEN)


def texts(found) -> list[str]:
    return [s.text for s in found]


def test_prefix_of_any_word_completes():
    found = texts(index().suggest("vol", 10))
    assert "Active Volcanoes of Iceland" in found and "Volleyball for Beginners" in found
    assert "Volcanoes" in found  # the tag


def test_titles_rank_before_phrases_and_case_and_accents_do_not_matter():
    found = index().suggest("VÓLLEY", 10)
    assert found[0].text == "Volleyball for Beginners" and found[0].source == "title"
    assert found[0].video_id == "v2"
    assert "volleyball" in texts(found)  # the repeated transcript word


def test_several_words_match_in_order():
    assert texts(index().suggest("lava fl", 5)) == ["lava flow"]
    assert index().suggest("flow lava", 5) == []


def test_a_complete_last_word_is_not_a_prefix():
    assert texts(index().suggest("lava ", 10)) == ["lava flow"]  # not "lava" alone
    assert "Volleyball for Beginners" in texts(index().suggest("volleyball ", 10))
    assert index().suggest("lav ", 5) == []


def test_k_limits_and_nothing_matches_nothing():
    assert len(index().suggest("v", 2)) == 2
    assert index().suggest("zzz", 5) == [] and index().suggest("   ", 5) == []


def test_phrases_need_to_be_said_twice_and_skip_stopword_edges():
    found = dict(phrases(SPOKEN))
    assert "lava flow" in found and "tagliatelle" in found
    assert not any(p.startswith("the ") or p.endswith(" the") for p in found)
    assert "ribbons" not in found  # said once


def test_typed_keeps_a_trailing_space():
    assert typed("Lava  Fl") == "lava fl" and typed("lava ") == "lava "


def test_corrections_use_the_catalog_spelling():
    assert index().correct("tagliatele ribons") == "tagliatelle ribbons"
    assert index().correct("volcanoes of iceland") is None  # every word is known
    assert index().correct("lvaa") is None  # under 5 letters: no edit allowed
    assert index().correct("xylophone") is None  # nothing near
