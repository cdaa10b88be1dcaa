"""choose_loss and check_options: options that a loss would ignore take effect or are refused in one line."""

from __future__ import annotations

import pytest
from contrastkit.plugins.errors import UserError
from contrastkit.plugins.st.losses import check_options, choose_loss
from datasets import Dataset

PAIRS = Dataset.from_dict({"anchor": [f"q{i}" for i in range(8)], "positive": [f"a{i}" for i in range(8)]})
TEXTS = Dataset.from_dict({"text": [f"line {i}" for i in range(8)]})


@pytest.fixture(scope="module")
def model(tiny_text_model):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(tiny_text_model, device="cpu")


@pytest.mark.parametrize("loss,data,cls", [("mnrl", PAIRS, "CachedMultipleNegativesRankingLoss"),
                                           ("gist", PAIRS, "CachedGISTEmbedLoss"),
                                           ("simcse", TEXTS, "CachedMultipleNegativesRankingLoss")])
def test_mini_batch_size_switches_to_the_cached_twin_and_says_so(model, tiny_text_model, loss, data, cls):
    guide = tiny_text_model if loss == "gist" else None  # the other losses refuse a guide they would not read
    choice = choose_loss(model, data, loss, batch_size=8, mini_batch_size=4, guide_model=guide, scale=None)
    assert type(choice.loss).__name__ == cls
    assert choice.loss.mini_batch_size == 4
    assert "mini_batch_size=4" in choice.reason and "cached" in choice.reason
    assert choice.in_batch_negatives


def test_scale_reaches_the_cached_twin(model):
    choice = choose_loss(model, TEXTS, "simcse", batch_size=8, mini_batch_size=4, scale=7.0)
    assert choice.loss.scale == 7.0 and choice.loss.mini_batch_size == 4


@pytest.mark.parametrize("args,words", [
    (("cosent", "score", 8, None), ["mini_batch_size=", "loss=cosent", "no cached"]),
    (("auto", "binary", 8, None), ["mini_batch_size=", "online_contrastive", "loss=auto"]),
    (("gist", "pair", None, 10.0), ["scale=", "loss=gist", "no similarity scale"]),
    (("triplet", "triplet", None, 10.0), ["scale=", "loss=triplet"]),
    (("auto", "binary", None, 10.0), ["scale=", "online_contrastive"]),
])
def test_options_the_loss_would_ignore_are_refused(args, words):
    with pytest.raises(UserError) as err:
        check_options(*args)
    assert all(w in str(err.value) for w in words), str(err.value)


@pytest.mark.parametrize("loss,kind", [("cosent", "score"), ("triplet", "triplet"), ("auto", "labeled")])
def test_length_batching_needs_in_batch_negatives(loss, kind):
    with pytest.raises(UserError, match="length_batching=true applies only to the in-batch-negative losses"):
        check_options(loss, kind, length_batching=True)
    check_options("auto", "pair", length_batching=True)  # MNRL on pairs: allowed


@pytest.mark.parametrize("kwargs", [{"mini_batch_size": 4}, {"length_batching": True}])
def test_the_in_batch_negative_losses_the_refusals_name_are_the_ones_that_take_the_option(kwargs):
    from contrastkit.plugins.st.losses import LOSSES, in_batch_negatives

    with pytest.raises(UserError) as err:
        check_options("cosent", "score", **kwargs)
    named = str(err.value).split("(", 1)[1].split(")", 1)[0].replace(" and ", ", ").split(", ")
    assert named == [name for name in LOSSES if in_batch_negatives(name)], str(err.value)
    for name in named:
        check_options(name, "pair", **kwargs)  # each one it names takes the option


@pytest.mark.parametrize("loss,kind", [("mnrl", "pair"), ("auto", "pair"), ("cosent", "score")])
def test_guide_model_without_gist_is_refused(loss, kind):
    with pytest.raises(UserError, match="guide_model= applies only to loss=gist or cached_gist"):
        check_options(loss, kind, guide_model="some/guide")
    check_options("gist", "pair", guide_model="some/guide")  # GIST reads it
    check_options("cached_gist", "pair", guide_model="some/guide")


def test_triplet_loss_says_which_negative_columns_it_leaves_out(model):
    rows = Dataset.from_dict({"anchor": [f"q{i}" for i in range(8)], "positive": [f"a{i}" for i in range(8)],
                              "negative_1": [f"n{i}" for i in range(8)], "negative_2": [f"m{i}" for i in range(8)]})
    choice = choose_loss(model, rows, "triplet")
    assert choice.dataset.column_names == ["anchor", "positive", "negative_1"]
    assert "negative_2 not used" in choice.reason, choice.reason


def test_matryoshka_dims_given_twice_train_once(model):
    choice = choose_loss(model, PAIRS, "mnrl", matryoshka_dims=[16, 32, 16])
    assert list(choice.loss.matryoshka_dims) == [32, 16] and "MatryoshkaLoss[32, 16]" in choice.reason


def test_a_guide_model_that_does_not_load_is_named_as_guide_model(model, tmp_path):
    with pytest.raises(UserError, match="guide_model folder .* does not exist; pass guide_model="):
        choose_loss(model, PAIRS, "gist", guide_model=str(tmp_path / "no-such-guide"))


@pytest.mark.parametrize("mini", [16, 64])
def test_a_mini_batch_not_below_the_batch_is_refused(mini):
    """GradCache with mini-batches as large as the batch splits nothing: the same memory, one forward pass more."""
    with pytest.raises(UserError, match=f"mini_batch_size={mini} is not below batch_size=16"):
        check_options("mnrl", "pair", mini_batch_size=mini, batch_size=16)
    check_options("mnrl", "pair", mini_batch_size=8, batch_size=16)
