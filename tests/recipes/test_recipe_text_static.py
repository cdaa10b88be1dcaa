"""The text recipe with model=static: static embeddings distilled (model2vec) from the tiny real model, trained
2 steps, compared with that dense model, saved and loaded back by plain sentence-transformers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from contrastkit.plugins.st import static
from contrastkit.recipes import text
from sentence_transformers import SentenceTransformer

PAIRS = [{"question": f"how do I fix problem {i} in part {i % 4}?",
          "answer": f"for problem {i}, replace part {i % 4} and restart step {i * 3 % 7}."} for i in range(24)]


def _run(tmp_path, tiny_text_model, **kw):
    kw = {"max_steps": 2, "batch_size": 8, "logging_steps": 1, "output_dir": str(tmp_path / "out"), **kw}
    return text.run(data=PAIRS, eval_data=PAIRS[:6], model="static", distill_from=tiny_text_model, **kw)


def test_static_trains_2_steps_and_loads_back(tmp_path, tiny_text_model, capsys):
    result = _run(tmp_path, tiny_text_model)
    out = result.output_dir
    printed = capsys.readouterr().out
    assert "static embeddings distilled from" in printed and "sentences/s static vs" in printed

    # a plain sentence-transformers folder: the loaded model is the trained one, and static
    loaded = SentenceTransformer(str(out), device="cpu")
    assert static.is_static_model(loaded)
    assert loaded.get_embedding_dimension() == 32  # the tiny model's width: PCA keeps at most that
    texts = [PAIRS[0]["question"], PAIRS[1]["answer"]]
    assert (loaded.encode(texts) == result.model.encode(texts)).all()

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["static"]["distilled_from"] == tiny_text_model
    assert metrics["static"]["static_sentences_per_s"] > 0 and metrics["static"]["dense_sentences_per_s"] > 0
    assert metrics["static"]["speed_texts"] == len({t for row in PAIRS for t in row.values()})
    assert "heldout_cosine_mrr@10" in metrics["static"]["dense_heldout"]
    assert "heldout_cosine_mrr@10" in metrics["before_after"]  # before: distilled; after: trained
    assert metrics["train"]["global_step"] == 2 and metrics["train"]["learning_rate"] == static.LEARNING_RATE
    assert metrics["loss"] == "MultipleNegativesRankingLoss" and metrics["mined_hard_negatives"]
    assert metrics["static"]["dense_heldout"]["heldout_cosine_mrr@10"] != metrics["after"]["heldout_cosine_mrr@10"]
    card = (out / "README.md").read_text()
    assert "## Static embeddings" in card and "sentences/s" in card
    # the card says what the model is, beside its evaluation, and names no local path
    name = Path(tiny_text_model).name
    assert f"\n# Static embeddings distilled from {name}\n" in card and tiny_text_model not in card
    assert card.index("## Before and after") < card.index("## Static embeddings") < card.index("## Training Details")
    assert '"before" is the distilled static table, "after" is this model' in card

    # "Maximum Sequence Length: inf" holds: model2vec's tokenizer cut texts at 512 tokens, silently
    assert loaded.max_seq_length == float("inf") and loaded[0].tokenizer.truncation is None
    long = " ".join(["part"] * 600)
    assert not np.allclose(loaded.encode([long]), loaded.encode([long + " restart the router"]))
    from contrastkit.plugins.hub import load  # contrastkit's loader gives the same model

    assert (load(str(out), device="cpu").encode([long, *texts]) == result.model.encode([long, *texts])).all()
    assert yaml.safe_load((out / "config.yaml").read_text())["model"] == "static"


def test_static_with_matryoshka_and_a_large_batch_keeps_plain_mnrl(tmp_path, tiny_text_model):
    # batch 128 would make a transformer's MNRL cached on a CPU; a static model keeps the plain loss
    result = _run(tmp_path, tiny_text_model, matryoshka_dims=[32, 8], batch_size=None, mine_hard_negatives=False)
    assert result.metrics["loss"] == "MatryoshkaLoss"
    assert "MultipleNegativesRankingLoss" in result.metrics["loss_reason"]
    assert "Cached" not in result.metrics["loss_reason"]
    loaded = SentenceTransformer(str(result.output_dir), device="cpu", truncate_dim=8)
    assert loaded.encode(["a question"]).shape == (1, 8)


@pytest.mark.parametrize("model, expected", [("static", True), ("Static", True), ("all-MiniLM-L6-v2", False),
                                             ("./static", False)])
def test_only_the_word_static_asks_for_static_embeddings(model, expected):
    assert static.wanted(model) is expected  # a folder named static is still a folder: ./static


@pytest.mark.parametrize("option, message", [
    ({"mini_batch_size": 16}, "mini_batch_size=16 does not apply to model=static"),  # was a ValueError at step 1
    ({"loss": "cached_mnrl"}, "loss=cached_mnrl cannot train model=static: GradCache"),
    ({"length_batching": True}, "length_batching=true does not apply to model=static: a static model pads nothing"),
    pytest.param({"precision": "bf16"}, "precision=bf16 changes nothing for model=static on a CPU",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a CPU's autocast")),
])
def test_options_a_static_model_cannot_use_are_refused_before_any_work(tmp_path, option, message):
    from contrastkit.plugins.errors import UserError

    with pytest.raises(UserError, match=message):
        text.run(data=PAIRS, model="static", output_dir=str(tmp_path / "out"), **option)
    assert not (tmp_path / "out").exists()
