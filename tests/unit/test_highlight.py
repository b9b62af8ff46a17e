"""Unit tests for retrieval.highlight and retrieval.analysis: what snippets mark."""

from __future__ import annotations

from retrieval.analysis import stem, stems, term_highlights
from retrieval.highlight import ELLIPSIS, highlighted_snippet
from retrieval.text import query_terms


def marked(text: str, spans) -> list[str]:
    return [text[start:end] for start, end in spans]


def test_stemmed_and_folded_forms_are_marked():
    text = "Volcanoes erupt; the volcano's crater and a Crème brûlée recipe."
    spans = term_highlights(text, stems(query_terms("volcano creme brulee")))
    assert marked(text, spans) == ["Volcanoes", "volcano", "Crème", "brûlée"]


def test_stems_match_what_fts5_porter_stores():
    assert stem("running") == "run" and stem("tagliatelle") == stem("tagliatell")
    assert stem("generalization") == "gener"


def test_a_word_that_only_starts_like_a_term_is_not_marked():
    text = "Artwork and art galleries"
    assert marked(text, term_highlights(text, stems(["art"]))) == ["art"]


def test_long_text_snippet_keeps_offsets_on_the_snippet():
    text = ("filler words go here " * 20) + "the lava flow reached the sea " + "tail " * 40
    shown = highlighted_snippet(text, stems(["lava"]), width=100)
    assert shown.text.startswith(ELLIPSIS) and shown.text.endswith(ELLIPSIS)
    assert marked(shown.text, shown.highlights) == ["lava"]
    assert shown.match == "terms"


def test_dense_only_match_marks_the_best_sentence():
    text = "Knead the dough well. Let it rest for half an hour. Then roll it thin."
    shown = highlighted_snippet(text, stems(["gluten"]), sentence="Let it rest for half an hour.")
    assert marked(shown.text, shown.highlights) == ["Let it rest for half an hour."]
    assert shown.match == "sentence"


def test_no_match_marks_nothing():
    shown = highlighted_snippet("A quiet street at night.", stems(["volcano"]))
    assert shown.highlights == () and shown.match == "none"


def test_markup_in_text_stays_text():
    text = "<script>alert('lava')</script> lava"
    shown = highlighted_snippet(text, stems(["lava"]))
    assert marked(shown.text, shown.highlights) == ["lava", "lava"]
    assert shown.text == text  # escaping is the page's job; offsets are into the raw text


def test_stems_come_from_the_compiled_stemmer():
    """snowballstemmer uses PyStemmer's C code when it is installed (make install does)."""
    from snowballstemmer.porter_stemmer import PorterStemmer

    from retrieval import analysis

    assert type(analysis._STEMMER).__module__ == "Stemmer"
    pure = PorterStemmer()
    for word in ("generalizations", "running", "ponies", "caresses", "hopefulness"):
        assert stem(word) == pure.stemWord(word)
