"""Prompts reach the model where mining, evaluation and users of the saved model read them."""

from __future__ import annotations

import numpy as np
import pytest
from contrastkit.plugins.errors import UserError
from contrastkit.plugins.st import prompts
from contrastkit.plugins.values import parse_overrides
from sentence_transformers import SentenceTransformer


@pytest.fixture
def e5_style(tiny_text_model, tmp_path):
    """The tiny model saved with query/passage prompts, as E5 models are, and loaded back."""
    SentenceTransformer(tiny_text_model, device="cpu", prompts={"query": "query: ", "passage": "passage: "}).save(
        str(tmp_path / "e5"))
    return SentenceTransformer(str(tmp_path / "e5"), device="cpu")


def _same(a, b):
    return np.allclose(a, b, atol=1e-6)


def test_auto_uses_the_base_models_prompts_for_documents_too(e5_style):
    text = ["a short document"]
    notes = []
    assert prompts.apply("auto", e5_style, "pair", notes.append) == ("query: ", "passage: ")
    assert "query 'query: ' and document 'passage: '" in notes[0]
    # encode_document reads "document" before "passage"; the loaded model's "document" prompt was empty
    assert _same(e5_style.encode_document(text), e5_style.encode(["passage: " + text[0]]))
    assert _same(e5_style.encode_query(text), e5_style.encode(["query: " + text[0]]))


def test_auto_without_prompts_and_none_leave_training_without(tiny_text_model, e5_style):
    plain = SentenceTransformer(tiny_text_model, device="cpu")
    assert prompts.apply("auto", plain, "pair", print) is None
    assert prompts.apply("none", e5_style, "pair", print) is None
    text = ["a query"]
    assert _same(e5_style.encode_query(text), e5_style.encode(text))


def test_auto_skips_the_base_models_prompts_for_data_without_a_query_side(e5_style):
    notes = []
    assert prompts.apply("auto", e5_style, "score", notes.append) is None
    assert "score data has no query side" in notes[0]


def test_one_prompt_goes_before_every_text_and_becomes_the_default(e5_style):
    assert prompts.apply("cluster: ", e5_style, "score", print) == ("cluster: ", "cluster: ")
    assert e5_style.default_prompt_name == "query"
    text = ["some text"]
    assert _same(e5_style.encode(text), e5_style.encode(["cluster: " + text[0]], prompt=""))
    assert prompts.for_columns(("cluster: ", "cluster: "), ["s1", "s2"]) == {"s1": "cluster: ", "s2": "cluster: "}


def test_query_and_document_prompts_map_to_the_columns(tiny_text_model):
    model = SentenceTransformer(tiny_text_model, device="cpu")
    pair = prompts.apply({"query": "q: ", "passage": "d: "}, model, "triplet", print)
    assert prompts.for_columns(pair, ["anchor", "positive", "negative"]) == {
        "anchor": "q: ", "positive": "d: ", "negative": "d: "}
    assert prompts.for_columns(("q: ", ""), ["anchor", "positive"]) == {"anchor": "q: "}
    with pytest.raises(UserError, match="binary data has no query side"):
        prompts.apply({"query": "q: "}, model, "binary", print)


@pytest.mark.parametrize("setting, message", [
    ({"querry": "q: "}, "unknown key 'querry'; use query and document.*query"),
    ({"query": 3}, "prompts' query must be text"),
    ({"document": "d: ", "passage": "p: "}, "document prompt twice"),
    (["q: "], "use prompts=auto"),
])
def test_bad_prompt_settings_are_one_line_errors(setting, message):
    with pytest.raises(UserError, match=message):
        prompts.check(setting)


def test_a_cli_prompt_with_a_colon_stays_text():
    assert parse_overrides(["prompts=query: "]) == {"prompts": "query: "}
    assert parse_overrides(["prompts={query: 'q: ', document: 'd: '}"]) == {
        "prompts": {"query": "q: ", "document": "d: "}}
    assert parse_overrides(["columns={anchor: q}"]) == {"columns": {"anchor": "q"}}


@pytest.mark.parametrize("nothing", [None, False, "None", "NONE", ""])
def test_yamls_spellings_of_nothing_mean_no_prompts(nothing, e5_style):
    prompts.check(nothing)
    assert prompts.apply(nothing, e5_style, "pair", print) is None
    assert e5_style.prompts["query"] == "" and e5_style.default_prompt_name is None


def test_an_unquoted_mapping_is_refused_not_taken_as_one_prompt():
    setting = parse_overrides(["prompts={query: q: , document: d: }"])["prompts"]
    with pytest.raises(UserError, match="not a valid mapping; quote each prompt"):
        prompts.check(setting)
    with pytest.raises(UserError, match="single data has no query side"):
        prompts.check_fits({"query": "q: "}, "single")


def test_prompts_follow_the_columns_a_loss_renames(tiny_text_model):
    """SimCSE trains on the text twice, as anchor and positive: the one prompt goes before both."""
    import datasets

    renamed = datasets.Dataset.from_dict({"anchor": ["a"], "positive": ["a"], "label": [1]})
    assert prompts.for_columns(("u: ", "u: "), renamed) == {"anchor": "u: ", "positive": "u: "}
