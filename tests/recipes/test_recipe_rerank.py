"""The rerank recipe on tiny real models: every column format trains 2 steps and loads back as a CrossEncoder."""

from __future__ import annotations

import functools
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from contrastkit.plugins import hub
from contrastkit.recipes import rerank
from sentence_transformers import CrossEncoder

from tests.conftest import check_mined_mapped_pairs_and_too_few_to_mine

TEXTS = [f"sentence {i} about subject {i % 5} with detail {i * 7 % 11}" for i in range(24)]
PAIRS = pd.DataFrame({"anchor": TEXTS, "positive": TEXTS[::-1]})
PROBE = [("what is subject 3?", TEXTS[3]), ("what is subject 3?", TEXTS[4]), (TEXTS[0], TEXTS[0])]


def _run(tmp_path, model, data, **kw):
    """Two steps; the tiny model is also the retriever, so nothing loads the packaged MiniLM (scored or labelled
    pairs use no retriever, and refuse one)."""
    kw = {"max_steps": 2, "batch_size": 4, "logging_steps": 1, "output_dir": str(tmp_path / "out"),
          **({"retriever": model} if "anchor" in data.columns else {}), **kw}
    if list(data.columns) == ["anchor", "positive"] and kw.get("mine_hard_negatives") is not False:
        kw.setdefault("num_negatives", 2)  # only mined pairs read it; elsewhere it is refused
    return rerank.run(data=data, model=model, **kw)


FORMATS = {
    # name: (frame, loss class, format after mining, training rows per input row, metrics before and after,
    #        the metric the printed before/after table shows)
    "pairs-mined": (PAIRS, "MultipleNegativesRankingLoss", "triplet", 1, ("heldout_mrr@10", "heldout_base_mrr@10"),
                    "heldout_mrr@10"),  # each pair + 2 mined negatives -> one (query, positive, 2 negatives) row
    "negatives-as-given": (pd.DataFrame({"anchor": TEXTS, "positive": TEXTS[1:] + TEXTS[:1],
                                         "negative": TEXTS[2:] + TEXTS[:2]}),
                           "MultipleNegativesRankingLoss", "triplet", 1, ("heldout_mrr@10", "heldout_base_mrr@10"),
                           "heldout_mrr@10"),
    "scores": (pd.DataFrame({"sentence1": TEXTS, "sentence2": TEXTS[::-1], "score": [i / 23 for i in range(24)]}),
               "MSELoss", "score", 1, ("heldout_spearman", "heldout_pearson"), "heldout_spearman"),
    "labels": (pd.DataFrame({"sentence1": TEXTS, "sentence2": TEXTS[::-1], "label": [i % 2 for i in range(24)]}),
               "BinaryCrossEntropyLoss", "binary", 1, ("heldout_average_precision", "heldout_accuracy"),
               "heldout_average_precision"),
}


@pytest.mark.parametrize("case", list(FORMATS))
def test_each_format_trains_and_loads_back(case, tmp_path, tiny_text_model, capsys):
    frame, loss, kind, rows_per_row, keys, shown = FORMATS[case]
    model = tiny_text_model
    if case == "scores":  # a reranker base that predicts raw logits, as ms-marco ones are saved
        model = str(tmp_path / "identity-reranker")
        CrossEncoder(tiny_text_model, num_labels=1, activation_fn=torch.nn.Identity(), device="cpu").save(model)
    # the tiny model scores all pairs within 1e-4 of each other: bf16 autocast (precision=auto on a CPU with native
    # bfloat16) rounds them to one value, and a correlation of constant scores is NaN
    result = _run(tmp_path, model, frame, **({"precision": "fp32"} if case == "scores" else {}))
    out, metrics = result.output_dir, result.metrics
    printed = capsys.readouterr().out
    assert metrics["recipe"] == "rerank" and metrics["loss"] == loss and metrics["format"] == kind
    assert metrics["train"]["global_step"] == 2
    assert metrics["train_rows"] == rows_per_row * (len(frame) - metrics["eval_rows"])
    assert ("mining: " in printed) is (case == "pairs-mined")  # given negatives are used as they are
    # the reason says where the negatives came from, as docs/rerank.md prints it
    assert ("pairs with mined negatives ->" in metrics["loss_reason"]) is (case == "pairs-mined")
    assert ("pairs with negative columns ->" in metrics["loss_reason"]) is (case == "negatives-as-given")
    saved = json.loads((out / "metrics.json").read_text())
    for key in keys:
        assert 0 <= saved["before"][key] <= 1 and 0 <= saved["after"][key] <= 1, key
    if kind == "triplet":  # base_*: the retriever's own order, which training the reranker cannot change
        assert saved["before"]["heldout_base_mrr@10"] == saved["after"]["heldout_base_mrr@10"]
        # a reranker that orders worse than its retriever says so, and only then
        loses = saved["after"]["heldout_mrr@10"] < saved["after"]["heldout_base_mrr@10"]
        assert ("warning: the reranker orders the held-out queries worse" in printed) is loses
    assert shown in printed.split("evaluation on the held-out split", 1)[1]
    # the retriever is recorded where one mined or retrieved, and the demo's search says which it reranks
    from contrastkit.demo import retriever

    uses = kind == "triplet"
    assert (saved["retriever"] is not None, saved["top_k"] is not None) == (uses, uses)
    assert (retriever.run_settings(str(out))[2] == "none") is not uses
    for name in ("README.md", "config.yaml", "loss.png", "before_after.png"):
        assert (out / name).is_file(), name
    # A plain sentence-transformers CrossEncoder folder, and hub.load gives the same class and scores
    plain = CrossEncoder(str(out), device="cpu")
    loaded = hub.load(out)
    assert type(loaded) is CrossEncoder
    scores = plain.predict(PROBE)
    assert scores.shape == (3,) and np.isfinite(scores).all()
    if kind in ("score", "binary"):  # trained towards [0, 1] scores or probabilities, and predicts them
        assert isinstance(plain.activation_fn, torch.nn.Sigmoid) and ((0 <= scores) & (scores <= 1)).all()
        assert ("Identity activation -> Sigmoid" in metrics["loss_reason"]) is (case == "scores")
    np.testing.assert_allclose(loaded.predict(PROBE), scores, atol=1e-6)


@pytest.mark.parametrize("loss,cls,rows_per_pair", [("bce", "BinaryCrossEntropyLoss", 3),
                                                    ("mnrl", "MultipleNegativesRankingLoss", 1),
                                                    ("lambda", "LambdaLoss", 1), ("listnet", "ListNetLoss", 1)])
def test_each_loss_trains_on_mined_pairs(loss, cls, rows_per_pair, tmp_path, tiny_text_model):
    """bce reads one labelled (query, document) row per document; mnrl the (query, positive, negatives) tuples as
    they are; the listwise losses one (query, [documents], [labels]) row per query."""
    result = _run(tmp_path, tiny_text_model, PAIRS, loss=loss)
    metrics = result.metrics
    assert metrics["loss"] == cls and metrics["train"]["global_step"] == 2
    assert metrics["loss_reason"].startswith(f"loss={loss} was set")
    assert metrics["train_rows"] == rows_per_pair * (len(PAIRS) - metrics["eval_rows"])
    assert CrossEncoder(str(result.output_dir), device="cpu").predict(PROBE[:1]).shape == (1,)


def test_pairs_without_mining_train_with_in_batch_negatives(tmp_path, tiny_text_model, capsys):
    result = _run(tmp_path, tiny_text_model, PAIRS, mine_hard_negatives=False)
    assert "mining: " not in capsys.readouterr().out
    assert result.metrics["format"] == "pair" and result.metrics["loss"] == "MultipleNegativesRankingLoss"
    # loss=auto: the reason says why, not "loss=mnrl was set", and not that negatives were mined
    assert result.metrics["loss_reason"] == ("query/document pairs without negatives -> MultipleNegativesRankingLoss "
                                             "on other queries' documents in the batch")
    assert result.metrics["train_rows"] == len(PAIRS) - result.metrics["eval_rows"]


def test_resume_continues_from_the_last_checkpoint(tmp_path, tiny_text_model):
    first = _run(tmp_path, tiny_text_model, PAIRS, save_steps=1)
    assert first.metrics["train"]["global_step"] == 2
    after_two = CrossEncoder(str(first.output_dir), device="cpu").predict(PROBE)
    again = _run(tmp_path, tiny_text_model, PAIRS, max_steps=4, save_steps=1, resume=True)
    assert again.metrics["train"]["global_step"] == 4
    steps = sorted(int(p.name.split("-")[1]) for p in (again.output_dir / "checkpoints").glob("checkpoint-*"))
    assert steps[-1] == 4
    # "before" is the untouched model's, as in the first run, not the checkpoint's
    assert again.metrics["before"] == first.metrics["before"]
    after_four = CrossEncoder(str(again.output_dir), device="cpu").predict(PROBE)
    assert not np.allclose(after_four, after_two, rtol=0, atol=1e-7)  # steps 3 and 4 did train


def test_a_seed_repeats_a_run_with_a_new_classifier_head(tmp_path, tiny_text_model):
    """The tiny base has no classifier; CrossEncoder adds one, and seed= must start it alike."""
    def scores(name, seed=42):
        result = _run(tmp_path, tiny_text_model, PAIRS, mine_hard_negatives=False, output_dir=str(tmp_path / name),
                      seed=seed)
        return CrossEncoder(str(result.output_dir), device="cpu").predict([("a query", t) for t in TEXTS[:4]])

    first, again, other = scores("first"), scores("again"), scores("other", seed=7)
    assert np.allclose(first, again)
    assert not np.allclose(first, other)


def test_mapped_columns_are_mined_and_too_few_pairs_fall_back_to_in_batch_negatives(tmp_path, tiny_text_model,
                                                                                    capsys):
    few = check_mined_mapped_pairs_and_too_few_to_mine(functools.partial(_run, tmp_path, tiny_text_model), PAIRS,
                                                       capsys)
    with pytest.raises(Exception, match="mining found no hard negatives among 4 pairs"):
        _run(tmp_path, tiny_text_model, few, eval_data=few, overwrite=True, loss="bce")


def test_a_classifier_base_and_a_loss_without_negatives_are_refused_before_mining(tmp_path, tiny_text_model, capsys):
    """An NLI-style CrossEncoder (3 labels) failed every loss with a traceback after mining; loss=bce with mining off
    is known from the config, before the retriever or the model loads."""
    from contrastkit.plugins.errors import UserError

    three = tmp_path / "three-labels"
    CrossEncoder(tiny_text_model, num_labels=3, device="cpu").save(str(three))
    capsys.readouterr()
    with pytest.raises(UserError, match=r"model '.*three-labels' is a CrossEncoder with 3 output labels .*pass "
                                        r"model= a reranker \(a 1-label CrossEncoder\) or a bi-encoder"):
        _run(tmp_path, str(three), PAIRS, retriever=tiny_text_model)
    assert "mining: " not in capsys.readouterr().out
    with pytest.raises(UserError, match="loss=bce needs negatives, and mine_hard_negatives=false"):
        _run(tmp_path, "/nonexistent/model", PAIRS, retriever="/nonexistent/retriever", loss="bce",
             mine_hard_negatives=False)
    # retriever= and top_k= on scored pairs, which use no retriever: the run would have ignored them
    scores = FORMATS["scores"][0]
    with pytest.raises(UserError, match=r"retriever=/nonexistent/retriever mines negatives .* does neither \(the "
                                        r"training rows are score data; the held-out rows are score data, scored "
                                        r"without a retriever\); drop retriever=$"):
        _run(tmp_path, "/nonexistent/model", scores, retriever="/nonexistent/retriever")
    with pytest.raises(UserError, match=r"top_k=5 sets how many .* reranks none \(the held-out rows are score "
                                        r"data, scored without a retriever\); drop top_k=$"):
        _run(tmp_path, "/nonexistent/model", scores, top_k=5)
    assert not (tmp_path / "out").exists()


def test_a_reranker_or_sparse_folder_is_not_taken_apart_as_a_bi_encoder(tmp_path, tiny_text_model):
    from contrastkit.plugins.errors import UserError
    from contrastkit.recipes import text

    run = _run(tmp_path, tiny_text_model, PAIRS, mine_hard_negatives=False, max_steps=3, logging_steps=5)
    # a run shorter than logging_steps still records its loss, at its last step
    assert [h["step"] for h in run.metrics["loss_history"]] == [3]
    assert run.metrics["train"]["final_loss"] == run.metrics["loss_history"][0]["loss"] > 0
    reranker = run.output_dir
    with pytest.raises(UserError, match=r"retriever folder '.*' holds a CrossEncoder, and retriever= needs a "
                                        r"SentenceTransformer"):
        _run(tmp_path, tiny_text_model, PAIRS, retriever=str(reranker), output_dir=str(tmp_path / "again"))
    with pytest.raises(UserError, match="model folder '.*' holds a CrossEncoder"):
        text.run(data=PAIRS, model=str(reranker), max_steps=1, output_dir=str(tmp_path / "text"))
    assert not (tmp_path / "again").exists() and not (tmp_path / "text").exists()
    # a retriever or model folder copied without its tokenizer: transformers would build an empty one, and every
    # text would embed the same
    half = tmp_path / "half-copied"
    shutil.copytree(tiny_text_model, half, ignore=shutil.ignore_patterns("tokenizer*", "vocab.txt"))
    with pytest.raises(UserError, match=r"retriever folder '.*half-copied' has no tokenizer files \(tokenizer.json"):
        _run(tmp_path, tiny_text_model, PAIRS, retriever=str(half), output_dir=str(tmp_path / "again"))
    with pytest.raises(UserError, match=r"model folder '.*half-copied' has no tokenizer files"):
        text.run(data=PAIRS, model=str(half), max_steps=1, output_dir=str(tmp_path / "text"))
    assert not (tmp_path / "again").exists() and not (tmp_path / "text").exists()
