"""The sparse recipe on tiny real models: a CSR head on a dense base for every column format, SPLADE (or CSR) on a
masked-LM base; each trains 2 steps and loads back as a SparseEncoder."""

from __future__ import annotations

import functools
import json

import numpy as np
import pandas as pd
import pytest
from contrastkit.plugins import hub
from contrastkit.recipes import sparse
from sentence_transformers import SparseEncoder

from tests.conftest import check_mined_mapped_pairs_and_too_few_to_mine

TEXTS = [f"sentence {i} about subject {i % 5} with detail {i * 7 % 11}" for i in range(24)]
PAIRS = pd.DataFrame({"anchor": TEXTS, "positive": TEXTS[::-1]})
PROBE = ["what is subject 3?", TEXTS[3], "an unrelated line of words"]
#: the tiny dense base is 32 wide, so its CSR head has 128 dimensions and trains at most 128 // 4 active
ACTIVE = 8


def _run(tmp_path, model, data, **kw):
    kw = {"max_steps": 2, "batch_size": 4, "logging_steps": 1, "output_dir": str(tmp_path / "out"),
          "active_dims": ACTIVE, **kw}
    return sparse.run(data=data, model=model, **kw)


def _dense(model: SparseEncoder, texts: list[str]) -> np.ndarray:
    return model.encode(texts, convert_to_tensor=True).to_dense().cpu().numpy()


FORMATS = {
    # name: (frame, inner loss, format after mining, the model's similarity, metrics before and after,
    #        the metric the printed before/after table shows)
    # pairs on a CSR head train and search with cosine (similarity=auto)
    "pairs-mined": (PAIRS, "SparseMultipleNegativesRankingLoss", "triplet", "cosine",
                    ("heldout_cosine_mrr@10", "heldout_query_active_dims"), "heldout_cosine_mrr@10"),
    "negatives-as-given": (pd.DataFrame({"anchor": TEXTS, "positive": TEXTS[1:] + TEXTS[:1],
                                         "negative": TEXTS[2:] + TEXTS[:2]}),
                           "SparseMultipleNegativesRankingLoss", "triplet", "cosine",
                           ("heldout_cosine_mrr@10", "heldout_query_active_dims"), "heldout_cosine_mrr@10"),
    # sentence-transformers' SparseCoSENTLoss and SparseCosineSimilarityLoss set the model's similarity to cosine
    "scores": (pd.DataFrame({"sentence1": TEXTS, "sentence2": TEXTS[::-1], "score": [i / 23 for i in range(24)]}),
               "SparseCoSENTLoss", "score", "cosine", ("heldout_spearman_cosine", "heldout_active_dims"),
               "heldout_spearman_cosine"),
    "labels": (pd.DataFrame({"sentence1": TEXTS, "sentence2": TEXTS[::-1], "label": [i % 2 for i in range(24)]}),
               "SparseCosineSimilarityLoss", "binary", "cosine", ("heldout_cosine_ap", "heldout_active_dims"),
               "heldout_cosine_ap"),
}


@pytest.mark.parametrize("case", list(FORMATS))
def test_each_format_trains_a_csr_head_and_loads_back(case, tmp_path, tiny_text_model, capsys):
    frame, inner, kind, similarity, keys, shown = FORMATS[case]
    result = _run(tmp_path, tiny_text_model, frame)
    out, metrics = result.output_dir, result.metrics
    printed = capsys.readouterr().out
    assert metrics["recipe"] == "sparse" and metrics["head"] == "csr" and metrics["format"] == kind
    assert metrics["loss"] == "CSRLoss" and f"{inner} in CSRLoss" in metrics["loss_reason"]
    assert metrics["train"]["global_step"] == 2 and metrics["active_dims"] == ACTIVE
    assert ("mining: " in printed) is (case == "pairs-mined")  # given negatives are used as they are
    saved = json.loads((out / "metrics.json").read_text())
    for key in keys:
        assert key in saved["before"] and key in saved["after"], key
    active = next(k for k in keys if k.endswith("active_dims"))
    assert 0 < saved["after"][active] <= ACTIVE
    assert shown in printed.split("evaluation on the held-out split", 1)[1]
    for name in ("README.md", "config.yaml", "loss.png", "before_after.png"):
        assert (out / name).is_file(), name
    # A plain sentence-transformers SparseEncoder folder, and hub.load gives the same class and vectors
    plain = SparseEncoder(str(out), device="cpu")
    loaded = hub.load(out)
    assert type(loaded) is SparseEncoder
    assert plain.similarity_fn_name == similarity and plain.max_active_dims == ACTIVE
    vectors = _dense(plain, PROBE)
    assert vectors.shape == (3, 4 * 32)
    assert ((vectors != 0).sum(axis=1) <= ACTIVE).all() and (vectors != 0).any(axis=1).all()
    np.testing.assert_allclose(_dense(loaded, PROBE), vectors, atol=1e-6)


@pytest.mark.parametrize("similarity,scale,want", [("auto", None, ("cosine", 20.0)), ("dot", None, ("dot", 1.0)),
                                                   ("cosine", 5.0, ("cosine", 5.0))])
def test_similarity_and_scale_reach_the_loss_and_the_saved_model(similarity, scale, want, tmp_path, tiny_text_model):
    result = _run(tmp_path, tiny_text_model, PAIRS, similarity=similarity, scale=scale)
    name, value = want
    assert f"{name} similarity, scale {value:g}" in result.metrics["loss_reason"]
    assert f"heldout_{name}_mrr@10" in result.metrics["after"]
    assert SparseEncoder(str(result.output_dir), device="cpu").similarity_fn_name == name


def test_pairs_without_mining_train_on_in_batch_negatives(tmp_path, tiny_text_model, capsys):
    result = _run(tmp_path, tiny_text_model, PAIRS, mine_hard_negatives=False)
    assert "mining: " not in capsys.readouterr().out
    assert result.metrics["format"] == "pair"
    assert "SparseMultipleNegativesRankingLoss" in result.metrics["loss_reason"]
    assert result.metrics["train_rows"] == len(PAIRS) - result.metrics["eval_rows"]


@pytest.mark.parametrize("head", ["auto", "splade"])
def test_a_masked_lm_base_gets_splade(head, tmp_path, tiny_mlm_model, tiny_text_model, capsys):
    import logging

    from sentence_transformers.sparse_encoder.modules import SpladePooling

    trainer_log, warned = logging.getLogger("sentence_transformers.sparse_encoder.trainer"), []
    collect = logging.Handler()
    collect.emit = lambda record: warned.append(record.getMessage())  # type: ignore[method-assign]
    trainer_log.addHandler(collect)
    try:
        result = _run(tmp_path, tiny_mlm_model, PAIRS, head=head, retriever=tiny_text_model, active_dims=None)
    finally:
        trainer_log.removeHandler(collect)
    metrics = result.metrics
    printed = capsys.readouterr().out
    assert metrics["head"] == "splade" and metrics["loss"] == "SpladeLoss"
    # the recipe gives the trainer the weight schedule itself, instead of a warning that the trainer added it
    assert not [m for m in warned if "SpladeLoss detected without" in m], warned
    assert "SparseMultipleNegativesRankingLoss in SpladeLoss" in metrics["loss_reason"]
    assert "each reached over the first third of training" in metrics["loss_reason"]  # ST schedules them from 0
    assert metrics["active_dims"] is None and metrics["train"]["global_step"] == 2
    assert "SPLADE over the 30,522-word vocabulary" in printed  # MiniLM's tokenizer, not the 32-wide hidden size
    assert f"from {tiny_text_model}" in printed  # retriever= mined the negatives, not the masked-LM base
    for key in ("heldout_dot_mrr@10", "heldout_query_active_dims"):
        assert key in metrics["before"] and key in metrics["after"], key
    model = SparseEncoder(str(result.output_dir), device="cpu")
    assert isinstance(list(model)[-1], SpladePooling)
    assert type(hub.load(result.output_dir)) is SparseEncoder
    vectors = _dense(model, PROBE)
    assert vectors.shape == (3, 30522) and (vectors >= 0).all() and (vectors > 0).any(axis=1).all()
    if head == "auto":
        # head=csr on that SPLADE folder puts a new CSR head on its encoder; the run says so, not that it kept the
        # folder's own (the missing retriever then stops it, before any training)
        from contrastkit.plugins.errors import UserError

        with pytest.raises(UserError, match="retriever folder '/nonexistent/retriever' does not exist"):
            _run(tmp_path, str(result.output_dir), PAIRS, head="csr", active_dims=4,
                 retriever="/nonexistent/retriever", output_dir=str(tmp_path / "csr"))
        assert "model: a new CSR head (head=csr), 4 of 128 dimensions active" in capsys.readouterr().out


@pytest.mark.parametrize("base", ["dense", "masked-lm"])
def test_head_csr_honours_active_dims(base, tmp_path, tiny_text_model, tiny_mlm_model, capsys, monkeypatch):
    from sentence_transformers.sparse_encoder.modules import SparseAutoEncoder

    model_path = tiny_text_model if base == "dense" else tiny_mlm_model
    result = _run(tmp_path, model_path, PAIRS, head="csr", active_dims=4, retriever=tiny_text_model)
    # a masked-LM base is no dense one, and head=csr, not its absence, chose CSR
    assert "model: a new CSR head (head=csr), 4 of 128 dimensions active (active_dims=)\n" in capsys.readouterr().out
    assert result.metrics["head"] == "csr" and result.metrics["active_dims"] == 4
    assert result.metrics["loss"] == "CSRLoss"
    assert 0 < result.metrics["after"]["heldout_query_active_dims"] <= 4
    model = SparseEncoder(str(result.output_dir), device="cpu")
    head = list(model)[-1]
    assert isinstance(head, SparseAutoEncoder) and head.k == 4 and model.max_active_dims == 4
    assert [type(m).__name__ for m in model][:2] == ["Transformer", "Pooling"]
    vectors = _dense(model, PROBE)
    assert vectors.shape == (3, 128) and ((vectors != 0).sum(axis=1) <= 4).all()
    if base == "dense":
        # training on from that folder keeps its 4 active dims (not the default 128) and mines with the default
        # bi-encoder: a SparseEncoder is no retriever
        from contrastkit.plugins.st import sparse as plugin

        reads = []  # the saved type is read once a run (it may read a Hub cache)
        monkeypatch.setattr(plugin, "is_sparse_model", lambda name, read=plugin.is_sparse_model: reads.append(name)
                            or read(name))
        again = _run(tmp_path, str(result.output_dir), PAIRS, active_dims=None, max_steps=1,
                     output_dir=str(tmp_path / "again"))
        assert reads == [str(result.output_dir)]
        printed = capsys.readouterr().out
        assert "the base's own CSR head, 4 of 128 dimensions active (as it was trained" in printed
        assert "from all-MiniLM-L6-v2" in printed and again.metrics["active_dims"] == 4
        assert list(SparseEncoder(str(again.output_dir), device="cpu"))[-1].k == 4


def test_prompts_train_and_are_saved_and_a_seed_repeats_a_run(tmp_path, tiny_text_model, capsys):
    def trained(name, **kw):
        result = _run(tmp_path, tiny_text_model, PAIRS, mine_hard_negatives=False, output_dir=str(tmp_path / name),
                      **kw)
        model = SparseEncoder(str(result.output_dir), device="cpu")
        # no prompt at encode time: only the trained weights can make two models differ
        return result, model, model.encode(PROBE, prompt="", convert_to_tensor=True).to_dense().cpu().numpy()

    given, model, vectors = trained("given", prompts={"query": "q: ", "document": "d: "})
    assert "prompts: query 'q: ', document 'd: '" in capsys.readouterr().out
    assert given.metrics["prompts"] == {"query": "q: ", "document": "d: "}
    assert model.prompts["query"] == "q: " and model.prompts["document"] == "d: "
    _, _, plain = trained("plain")
    _, _, again = trained("again")
    assert np.allclose(plain, again)  # the CSR head is new, and seed= starts it alike
    assert not np.allclose(vectors, plain)  # training read the prompts


def test_mapped_columns_are_mined_with_the_prompts_and_too_few_pairs_train_in_batch(tmp_path, tiny_text_model,
                                                                                     capsys):
    check_mined_mapped_pairs_and_too_few_to_mine(functools.partial(_run, tmp_path, tiny_text_model), PAIRS, capsys)


def test_active_dims_on_a_splade_base_and_a_retriever_that_mines_nothing_are_refused(tmp_path, tiny_mlm_model,
                                                                                      tiny_text_model):
    from contrastkit.plugins.errors import UserError

    # head=auto finds SPLADE only once the base has loaded; active_dims= would have done nothing there
    with pytest.raises(UserError, match="active_dims= applies only to a CSR head"):
        _run(tmp_path, tiny_mlm_model, PAIRS, retriever=tiny_text_model)
    # retriever= only mines pairs: on scored pairs, or with mining off, the run would have ignored it
    for frame, kw, why in ((FORMATS["scores"][0], {}, "the data is score data"),
                           (PAIRS, {"mine_hard_negatives": False}, "mining is off for these pairs")):
        with pytest.raises(UserError, match=f"^retriever=/nonexistent/retriever mines hard negatives for "
                                            f"anchor/positive pairs, and {why}; drop retriever=$"):
            _run(tmp_path, "/nonexistent/model", frame, retriever="/nonexistent/retriever", **kw)
    assert not (tmp_path / "out").exists()
