"""The text recipe on a tiny real model: every data format trains 2 steps and loads back."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from contrastkit.recipes import text
from datasets import Dataset
from sentence_transformers import SentenceTransformer

from tests.conftest import assert_no_file_holds

TEXTS = [f"sentence {i} about subject {i % 5} with detail {i * 7 % 11}" for i in range(24)]


def _run(tmp_path, model, data, **kw):
    kw = {"max_steps": 2, "batch_size": 4, "logging_steps": 1, "output_dir": str(tmp_path / "out"), **kw}
    return text.run(data=data, model=model, **kw)


def _write(tmp_path, name, df: pd.DataFrame):
    path = tmp_path / name
    if name.endswith(".csv"):
        df.to_csv(path, index=False)
    elif name.endswith(".tsv"):
        df.to_csv(path, sep="\t", index=False)
    elif name.endswith(".jsonl"):
        df.to_json(path, orient="records", lines=True)
    else:
        df.to_parquet(path)
    return str(path)


FORMATS = {
    # name: (file name or None for Python data, frame, expected loss class, expected format)
    "pair-csv": ("pairs.csv", pd.DataFrame({"anchor": TEXTS, "positive": TEXTS[::-1]}),
                 "MultipleNegativesRankingLoss", "triplet"),  # pairs get a mined hard negative by default
    "triplet-jsonl": ("triplets.jsonl", pd.DataFrame({"query": TEXTS, "positive": TEXTS[1:] + TEXTS[:1],
                                                      "negative_1": TEXTS[2:] + TEXTS[:2],
                                                      "negative_2": TEXTS[3:] + TEXTS[:3]}),
                      "MultipleNegativesRankingLoss", "triplet"),
    "score-tsv": ("sts.tsv", pd.DataFrame({"sentence1": TEXTS, "sentence2": TEXTS[::-1],
                                           "score": [i % 6 for i in range(24)]}), "CoSENTLoss", "score"),
    "binary-parquet": ("pairs.parquet", pd.DataFrame({"text1": TEXTS, "text2": TEXTS[::-1],
                                                      "label": [i % 2 for i in range(24)]}),
                       "OnlineContrastiveLoss", "binary"),
    "labeled-list": (None, [{"text": t, "label": f"class{i % 3}"} for i, t in enumerate(TEXTS)],
                     "BatchHardSoftMarginTripletLoss", "labeled"),
    "single-dataframe": (None, pd.DataFrame({"text": TEXTS}), "MultipleNegativesRankingLoss", "single"),
}


@pytest.mark.parametrize("case", list(FORMATS))
def test_each_format_trains_and_loads_back(case, tmp_path, tiny_text_model):
    filename, frame, loss, kind = FORMATS[case]
    data = _write(tmp_path, filename, frame) if filename else frame
    # class-labelled rows need same-class pairs in the held-out part, which 10% of 24 rows cannot give
    extra = {"eval_data": frame} if kind == "labeled" else {}
    result = _run(tmp_path, tiny_text_model, data, **extra)
    out = result.output_dir
    assert result.metrics["loss"] == loss and result.metrics["format"] == kind
    assert result.metrics["train"]["global_step"] == 2
    # A plain sentence-transformers folder: loads without contrastkit and embeds.
    reloaded = SentenceTransformer(str(out), device="cpu")
    emb = reloaded.encode(["hello world"])
    assert emb.shape == (1, 32)
    assert (out / "README.md").is_file() and (out / "config.yaml").is_file()
    assert (out / "metrics.json").is_file() and (out / "loss.png").is_file()
    if kind != "single":
        assert (out / "before_after.png").is_file()
    assert any((out / "checkpoints").glob("checkpoint-*"))
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["max_steps"] == 2 and saved["model"] == tiny_text_model
    metrics = json.loads((out / "metrics.json").read_text())
    if kind != "single":  # the other formats have an evaluator, run before and after
        assert metrics["before"] and metrics["after"] and metrics["before_after"]
    else:  # nothing evaluates single texts, so none are held out for it
        assert metrics["train_rows"] == 24 and metrics["eval_rows"] == 0


def test_model_card_carries_metrics_and_loss(tmp_path, tiny_text_model):
    frame = pd.DataFrame({"question": TEXTS, "answer": TEXTS[::-1]})
    result = _run(tmp_path, tiny_text_model, _write(tmp_path, "qa.csv", frame))
    card = (result.output_dir / "README.md").read_text()
    assert "MultipleNegativesRankingLoss" in card
    assert "cosine_mrr@10" in card  # the after-training evaluation made it into ST's card
    assert result.metrics["format"] == "triplet" and result.metrics["mined_hard_negatives"] is True
    # the card's training logs place "before" at step 0 and "after" on the last step's row (both once were -1)
    logs = card.split("### Training Logs")[1].split("\n\n")[0].strip().splitlines()[2:]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in logs]
    ndcg = round(result.metrics["after"]["heldout_cosine_ndcg@10"], 4)
    assert rows[0][1] == "0" and rows[0][-1] == f"{result.metrics['before']['heldout_cosine_ndcg@10']:.4f}"
    assert rows[-1][1] == "2" and rows[-1][2] != "-" and float(rows[-1][-1].strip("*")) == ndcg
    assert [r[1] for r in rows] == ["0", "1", "2"]


def test_columns_mapping_and_matryoshka(tmp_path, tiny_text_model):
    frame = pd.DataFrame({"q": TEXTS, "doc": TEXTS[::-1], "id": range(24)})
    held_out = pd.DataFrame({"q": [f"question {i} on topic {i % 3}" for i in range(8)],
                             "doc": [f"reply {i} about topic {i % 3}" for i in range(8)]})
    result = _run(tmp_path, tiny_text_model, _write(tmp_path, "odd.csv", frame),
                  columns={"anchor": "q", "positive": "doc"}, matryoshka_dims=[32, 16],
                  eval_data=_write(tmp_path, "held.csv", held_out))
    assert result.metrics["loss"] == "MatryoshkaLoss"
    assert "MatryoshkaLoss[32, 16]" in result.metrics["loss_reason"]
    # evaluated at the whole 32 dimensions and cut to 16, as SentenceTransformer(folder, truncate_dim=16) embeds
    from contrastkit.plugins.st.evaluation import make_evaluator
    from contrastkit.plugins.st.formats import DataFormat

    after = result.metrics["after"]
    assert "heldout_cosine_mrr@10" in after and not any("dim32" in k or "sequential" in k for k in after)
    cut = SentenceTransformer(str(result.output_dir), device="cpu", truncate_dim=16)
    assert cut.encode(["a sentence"]).shape == (1, 16)
    again = make_evaluator(DataFormat("pair", ["q", "doc"]), Dataset.from_pandas(held_out))(cut)
    assert after["heldout_dim16_cosine_mrr@10"] == pytest.approx(again["heldout_cosine_mrr@10"], abs=1e-6)
    assert "heldout_dim16_cosine_ndcg@10" in (result.output_dir / "README.md").read_text()  # the card's logs


@pytest.mark.parametrize("loss,expected", [("cached_mnrl", "CachedMultipleNegativesRankingLoss"),
                                           ("gist", "GISTEmbedLoss"), ("tsdae", "DenoisingAutoEncoderLoss"),
                                           ("triplet", "TripletLoss"), ("angle", "AnglELoss")])
def test_loss_overrides(loss, expected, tmp_path, tiny_text_model):
    frames = {
        "cached_mnrl": pd.DataFrame({"anchor": TEXTS, "positive": TEXTS[::-1]}),
        "gist": pd.DataFrame({"anchor": TEXTS, "positive": TEXTS[::-1]}),
        "tsdae": pd.DataFrame({"text": TEXTS}),
        "triplet": pd.DataFrame({"anchor": TEXTS, "positive": TEXTS[::-1], "negative": TEXTS[1:] + TEXTS[:1]}),
        "angle": pd.DataFrame({"sentence1": TEXTS, "sentence2": TEXTS[::-1], "score": [i / 23 for i in range(24)]}),
    }
    extra = {"guide_model": tiny_text_model} if loss == "gist" else {}
    result = _run(tmp_path, tiny_text_model, frames[loss], loss=loss, **extra)
    assert result.metrics["loss"] == expected


def test_pairs_get_mined_hard_negatives_by_default(tmp_path, tiny_text_model, capsys):
    frame = pd.DataFrame({"anchor": TEXTS, "positive": TEXTS[::-1]})
    result = _run(tmp_path, tiny_text_model, frame)
    out = capsys.readouterr().out
    assert "learning rate: 0.0001 with mined negatives" in out
    assert f"mining: {result.metrics['train_rows']} of {result.metrics['train_rows']} pairs got hard negatives" in out
    assert result.metrics["format"] == "triplet" and result.metrics["mined_hard_negatives"] is True
    assert "hard-negative" in result.metrics["loss_reason"]
    assert result.metrics["train"]["learning_rate"] == text.LEARNING_RATE_MINED  # the rate measured with mining
    plain = _run(tmp_path, tiny_text_model, frame, mine_hard_negatives=False, overwrite=True)
    assert "mining:" not in capsys.readouterr().out
    assert plain.metrics["format"] == "pair" and plain.metrics["mined_hard_negatives"] is False
    assert plain.metrics["train"]["learning_rate"] == text.LEARNING_RATE
    given = _run(tmp_path, tiny_text_model, frame, learning_rate=3e-5, overwrite=True)
    assert given.metrics["train"]["learning_rate"] == 3e-5 and given.metrics["mined_hard_negatives"] is True


def test_too_few_pairs_to_mine_train_on_pairs_unless_mining_was_asked_for(tmp_path, tiny_text_model, capsys):
    """Five pairs: each anchor has 4 other positives, and mining skips the 3 top-ranked, so 1 candidate is left;
    four pairs leave none. The default then trains on the pairs and says so; mine_hard_negatives=true stops."""
    from contrastkit.plugins.errors import UserError

    few = pd.DataFrame({"anchor": TEXTS[:4], "positive": TEXTS[4:8]})
    result = _run(tmp_path, tiny_text_model, few, eval_data=few)
    assert "mining: no hard negatives among 4 pairs" in capsys.readouterr().out
    assert result.metrics["format"] == "pair" and result.metrics["mined_hard_negatives"] is False
    with pytest.raises(UserError, match="mining found no hard negatives among 4 pairs"):
        _run(tmp_path, tiny_text_model, few, eval_data=few, mine_hard_negatives=True, overwrite=True)


def test_max_train_tokens_cuts_training_texts_but_not_evaluation_or_the_saved_model(tmp_path, tiny_text_model,
                                                                                  capsys):
    """Texts of 20+ tokens, cut at 6 while training: the "before" figures (the untouched model) match an uncut run,
    so evaluation saw whole texts; the trained weights differ, so training saw the cut; the saved model and its
    checkpoints keep 64 tokens."""
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu"]
    frame = pd.DataFrame({"anchor": [f"query {i}: " + " ".join(words[i % 12:] + words[:i % 12]) for i in range(24)],
                          "positive": [f"answer {i}: " + " ".join(words[::-1][i % 5:]) + f" {i}" for i in range(24)]})
    steps = {"max_steps": 4}  # steps 3-4 come after mid-training saves whose next batch is already tokenized
    cut = _run(tmp_path, tiny_text_model, frame, max_train_tokens=6, output_dir=str(tmp_path / "cut"), **steps)
    assert "texts cut at 6 tokens" in capsys.readouterr().out
    whole = _run(tmp_path, tiny_text_model, frame, max_train_tokens=0, output_dir=str(tmp_path / "whole"), **steps)
    assert cut.metrics["max_train_tokens"] == 6 and whole.metrics["max_train_tokens"] is None
    assert cut.metrics["before"] == whole.metrics["before"]  # evaluated at the model's 64 tokens
    probe = cut.model.encode(["alpha beta gamma"]) - whole.model.encode(["alpha beta gamma"])
    assert abs(probe).max() > 1e-4  # trained on other inputs
    assert cut.model.max_seq_length == 64
    assert SentenceTransformer(str(cut.output_dir), device="cpu").max_seq_length == 64
    checkpoint = SentenceTransformer(str(cut.output_dir / "checkpoints" / "checkpoint-4"), device="cpu")
    assert checkpoint.max_seq_length == 64  # a checkpoint folder taken as a model embeds whole texts too
    saved_each_step = _run(tmp_path, tiny_text_model, frame, max_train_tokens=6, save_steps=1,
                           output_dir=str(tmp_path / "each"), **steps)  # the cut is back after every save
    assert abs(saved_each_step.model.encode(["alpha beta gamma"]) - cut.model.encode(["alpha beta gamma"])).max() < 1e-6


def test_mined_negatives_skip_the_top_ranked_and_respect_the_relative_margin(tiny_text_model):
    from contrastkit.plugins.st.mining import add_hard_negatives
    from datasets import Dataset

    model = SentenceTransformer(tiny_text_model, device="cpu")
    # anchors that are not also positives: every candidate is another pair's positive, the same on every
    # sentence-transformers version (6.3 stopped offering an anchor's own text; see the next test)
    pairs = Dataset.from_dict({"anchor": TEXTS, "positive": [f"{t}, in other words" for t in TEXTS[::-1]]})
    plain = add_hard_negatives(model, pairs, None)
    # the tiny random model scores every pair alike, so even a 0.5% margin drops most candidates
    kept = add_hard_negatives(model, pairs, None, relative_margin=0.005)
    assert 0 < len(kept) < len(plain) == len(TEXTS)

    texts = sorted(set(TEXTS) | set(pairs["positive"]))
    vectors = dict(zip(texts, model.encode(texts)))  # each text encoded once

    def cos(a, b):
        return float(model.similarity(vectors[a][None], vectors[b][None])[0, 0])

    for row in kept:  # every kept negative scores at most 0.995x its anchor's own positive
        assert cos(row["anchor"], row["negative"]) <= 0.995 * cos(row["anchor"], row["positive"]) + 1e-6
    for row in plain:  # range_min=3 (the default): the 3 top-ranked other positives are skipped
        others = sorted((cos(row["anchor"], p) for p in pairs["positive"] if p != row["positive"]), reverse=True)
        assert cos(row["anchor"], row["negative"]) <= others[3] + 1e-6
    hardest = add_hard_negatives(model, pairs, None, range_min=0)
    for row in hardest:  # range_min=0: the top-ranked one
        others = [cos(row["anchor"], p) for p in pairs["positive"] if p != row["positive"]]
        assert cos(row["anchor"], row["negative"]) >= max(others) - 1e-6


@pytest.mark.parametrize("range_min", [0, 3])
def test_a_mined_negative_is_never_its_own_anchor(range_min, tiny_text_model):
    """Where anchors are also positives (paraphrase pairs in both directions), the anchor's own text is the most
    similar candidate. sentence-transformers 6.2 offered it as a negative and 6.3 does not; contrastkit drops it on
    either, so no training row pushes a text away from itself."""
    from contrastkit.plugins.st.mining import add_hard_negatives
    from datasets import Dataset

    model = SentenceTransformer(tiny_text_model, device="cpu")
    pairs = Dataset.from_dict({"anchor": TEXTS, "positive": TEXTS[::-1]})
    mined = add_hard_negatives(model, pairs, None, range_min=range_min, required=False)
    rows = list(mined) if mined is not None else []
    assert range_min == 0 or rows  # the default skips the top-ranked, so the anchor's text is never the pick
    for row in rows:
        assert row["negative"] not in (row["anchor"], row["positive"])


def test_mining_encodes_texts_cut_at_max_length_and_gives_the_model_its_length_back(tiny_text_model):
    """The recipe's max_train_tokens reaches mining through max_length: every forward pass of the mining sees at most
    that many tokens, and the model keeps its own max_seq_length afterwards, also when mining fails."""
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.st.mining import add_hard_negatives
    from datasets import Dataset

    model = SentenceTransformer(tiny_text_model, device="cpu")
    long = [f"{t} " + " ".join(f"word{j}" for j in range(30)) for t in TEXTS]  # 30+ tokens each
    pairs = Dataset.from_dict({"anchor": long, "positive": long[::-1]})
    lengths = []  # tokens per forward pass of the transformer
    model[0].register_forward_hook(lambda _m, args, kwargs, _out: lengths.append(
        (kwargs.get("features") or args[0])["input_ids"].shape[1]), with_kwargs=True)
    add_hard_negatives(model, pairs, None)
    assert lengths and max(lengths) > 8  # uncut: the texts are long
    lengths.clear()
    add_hard_negatives(model, pairs, None, max_length=8)
    assert lengths and max(lengths) <= 8
    assert model.max_seq_length == 64
    with pytest.raises(UserError):  # four pairs leave no candidate after the 3 skipped
        add_hard_negatives(model, pairs.select(range(4)), None, max_length=8)
    assert model.max_seq_length == 64


def test_mining_encodes_in_the_precision_asked_for_and_bf16_training_keeps_float32_weights(tmp_path,
                                                                                            tiny_text_model):
    import torch
    from contrastkit.plugins.st.mining import add_hard_negatives
    from datasets import Dataset

    model = SentenceTransformer(tiny_text_model, device="cpu")
    pairs = Dataset.from_dict({"anchor": TEXTS, "positive": TEXTS[::-1]})
    seen = []  # the autocast dtype (or None) each forward pass of the transformer ran under
    model[0].register_forward_hook(lambda *_: seen.append(torch.get_autocast_dtype("cpu")
                                                          if torch.is_autocast_enabled("cpu") else None))
    mined = add_hard_negatives(model, pairs, None, precision="bf16")
    assert seen and set(seen) == {torch.bfloat16} and len(mined) == len(TEXTS)
    seen.clear()
    add_hard_negatives(model, pairs, None)  # fp32, the default
    assert seen and set(seen) == {None}
    # through the recipe, with bf16 asked for: mines (in float32), trains in bf16 and saves float32 weights
    result = _run(tmp_path, tiny_text_model, pd.DataFrame({"anchor": TEXTS, "positive": TEXTS[::-1]}),
                  mine_hard_negatives=True, precision="bf16")
    assert result.metrics["format"] == "triplet"
    assert SentenceTransformer(str(result.output_dir), device="cpu").encode(["x"]).dtype == "float32"


def test_auto_picks_cached_mnrl_for_large_batches(tmp_path, tiny_text_model):
    frame = pd.DataFrame({"anchor": TEXTS * 4, "positive": [t + "!" for t in TEXTS * 4]})
    result = _run(tmp_path, tiny_text_model, frame, batch_size=80, max_steps=1)
    assert result.metrics["loss"] == "CachedMultipleNegativesRankingLoss"


def test_a_gpu_tries_the_full_batch_and_a_cpu_caches_above_64(tiny_text_model):
    """The rule behind the test above, for both devices: on a GPU only an out-of-memory step switches to GradCache."""
    from contrastkit.plugins.st.formats import detect_format
    from contrastkit.plugins.st.losses import MEMORY_SAFE_BATCH, _auto_loss_name

    _, fmt = detect_format(Dataset.from_dict({"anchor": TEXTS, "positive": TEXTS[::-1]}))
    big = MEMORY_SAFE_BATCH * 2
    assert _auto_loss_name(fmt, big, None, gpu=False)[0] == "cached_mnrl"
    assert _auto_loss_name(fmt, big, None, gpu=True)[0] == "mnrl"
    assert _auto_loss_name(fmt, big, 16, gpu=True)[0] == "cached_mnrl"  # mini_batch_size asks for it


def test_data_loader_workers_tokenise_beside_training(tmp_path, tiny_text_model):
    from contrastkit.plugins.st.training import GPU_DATALOADER_WORKERS, dataloader_kwargs

    frame = pd.DataFrame({"anchor": TEXTS, "positive": TEXTS[::-1]})
    result = _run(tmp_path, tiny_text_model, frame, dataloader_workers=1)
    assert result.metrics["train"]["global_step"] == 2
    assert dataloader_kwargs(None, cuda=False)["dataloader_num_workers"] == 0  # a CPU keeps its cores for training
    on_gpu = dataloader_kwargs(None, cuda=True)
    assert on_gpu["dataloader_num_workers"] == GPU_DATALOADER_WORKERS and on_gpu["dataloader_pin_memory"]
    assert dataloader_kwargs(0, cuda=True)["dataloader_num_workers"] == 0


def test_seed_makes_split_and_training_reproducible(tmp_path, tiny_text_model):
    frame = pd.DataFrame({"anchor": TEXTS, "positive": TEXTS[::-1]})
    a = _run(tmp_path / "a", tiny_text_model, frame, seed=7)
    b = _run(tmp_path / "b", tiny_text_model, frame, seed=7)
    assert a.metrics["after"] == b.metrics["after"]
    ea = SentenceTransformer(str(a.output_dir), device="cpu").encode(TEXTS[:3])
    eb = SentenceTransformer(str(b.output_dir), device="cpu").encode(TEXTS[:3])
    assert abs(ea - eb).max() < 1e-5


def test_resume_continues_from_the_last_whole_checkpoint_past_one_cut_off_mid_write(tmp_path, tiny_text_model):
    """A kill while a checkpoint is being written leaves a folder without trainer_state.json: never load it. One
    first run serves both checks (each resume would otherwise train its own identical first run)."""
    frame = pd.DataFrame({"anchor": TEXTS, "positive": TEXTS[::-1]})
    first = _run(tmp_path, tiny_text_model, frame, max_steps=2, save_steps=1, batch_size=None)
    assert first.metrics["train"]["global_step"] == 2
    # the default batch size is recorded as the number it was on this device (16 on a CPU, 32 on a GPU), so a
    # resume on the other kind is refused rather than trained with other steps
    from contrastkit.plugins.device import on_gpu
    from contrastkit.plugins.outdir import RECORD
    from contrastkit.recipes.text import BATCH_SIZE, BATCH_SIZE_GPU

    assert json.loads((first.output_dir / RECORD).read_text())["batch_size"] == (BATCH_SIZE_GPU if on_gpu() else
                                                                                BATCH_SIZE)
    partial = first.output_dir / "checkpoints" / "checkpoint-3"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"cut off")
    again = _run(tmp_path, tiny_text_model, frame, max_steps=4, save_steps=1, resume=True, batch_size=None)
    assert again.metrics["train"]["global_step"] == 4
    steps = sorted(int(p.name.split("-")[1]) for p in (again.output_dir / "checkpoints").glob("checkpoint-*"))
    assert steps[-1] == 4
    # the "before" numbers are those of the untouched model, kept from the first run
    assert again.metrics["before"] == first.metrics["before"]


def test_user_trainer_with_loss_chooser_and_callback(tmp_path, tiny_text_model):
    """docs/text.md's 'Inside your own trainer' example, run as written."""
    from contrastkit.plugins.st.callbacks import BeforeAfterCallback
    from contrastkit.plugins.st.evaluation import make_evaluator
    from contrastkit.plugins.st.losses import choose_loss
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    model = SentenceTransformer(tiny_text_model, device="cpu")
    data = Dataset.from_dict({"question": TEXTS, "answer": TEXTS[::-1]})
    choice = choose_loss(model, data)  # -> MNRL, with the reason
    evaluator = make_evaluator(choice.format, choice.dataset.select(range(8)))
    args = SentenceTransformerTrainingArguments(output_dir=str(tmp_path / "ckpt"), max_steps=2,
                                                per_device_train_batch_size=4, use_cpu=True, report_to=[])
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=choice.dataset, loss=choice.loss,
                                         callbacks=[BeforeAfterCallback(evaluator, tmp_path / "report")])
    trainer.train()
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert "MultipleNegativesRankingLoss" in choice.reason
    assert set(metrics["before"]) == set(metrics["after"]) and metrics["train"]["global_step"] == 2


@pytest.mark.parametrize("freeze", [True, False])
def test_token_embeddings_are_frozen_by_default_and_trained_on_request(freeze, tmp_path, tiny_text_model):
    frame = pd.DataFrame({"anchor": TEXTS, "positive": TEXTS[::-1]})
    result = _run(tmp_path, tiny_text_model, _write(tmp_path, "p.csv", frame), freeze_embeddings=freeze,
                  learning_rate=1e-2)

    def weights(path):
        return SentenceTransformer(str(path), device="cpu")[0].auto_model.get_input_embeddings().weight.detach()

    before, after = weights(tiny_text_model), weights(result.output_dir)
    assert bool((before == after).all()) is freeze
    if not freeze:  # the rest of the model trains either way; with freezing on only the embeddings stay put
        return
    layer = next(p for n, p in SentenceTransformer(str(result.output_dir), device="cpu").named_parameters()
                 if "encoder.layer.0" in n)
    original = next(p for n, p in SentenceTransformer(tiny_text_model, device="cpu").named_parameters()
                    if "encoder.layer.0" in n)
    assert not bool((layer == original).all())


def test_output_names_no_home_path_and_holds_no_pickled_arguments(tmp_path, tiny_text_model, pairs_csv, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # the run's data and output folder are under "home"
    data = tmp_path / "pairs.csv"
    data.write_bytes(pairs_csv.read_bytes())
    result = _run(tmp_path, tiny_text_model, str(data), save_steps=1)
    out = result.output_dir
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-1", "checkpoint-2"]
    assert not list(out.rglob("training_args.bin"))  # the Trainer's pickle of its arguments
    assert_no_file_holds(out, str(tmp_path))
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["data"] == "~/pairs.csv" and saved["output_dir"] == "~/out"
    again = text.run(**{**saved, "model": tiny_text_model, "overwrite": True})  # ~ expands when the config is reused
    assert again.output_dir == out and again.metrics["train_rows"] == result.metrics["train_rows"]
    from contrastkit.plugins.st.models import load_model

    assert load_model("~/out").encode(["a sentence"]).shape[0] == 1  # model=~/... loads a folder under home


def test_epochs_rise_on_small_data_until_min_steps(tmp_path, tiny_text_model, pairs_csv):
    from contrastkit.plugins.st.training import epochs_for_min_steps

    assert epochs_for_min_steps(1.0, 32, 128, 16) == 4.0  # 8 steps an epoch -> 4 epochs
    assert epochs_for_min_steps(1.0, 32, 512, 16) == 1.0  # already 32 steps
    assert epochs_for_min_steps(1.0, 32, 130, 16) == 4.0  # 9 steps (last one partial) -> 36 steps
    assert epochs_for_min_steps(2.0, 0, 16, 16) == 2.0  # 0: off
    assert epochs_for_min_steps(1.0, 6, 22, 4, world_size=2) == 3.0  # DDP drops the last batch: 2 steps an epoch
    # the recipe really trains that long: the 24-row sample keeps ~22 rows for training, 6 steps an epoch at batch 4
    raised = _run(tmp_path, tiny_text_model, str(pairs_csv), max_steps=-1, min_steps=15)
    per_epoch = -(-raised.metrics["train_rows"] // 4)
    assert raised.metrics["train"]["global_step"] == per_epoch * -(-15 // per_epoch)
    given = _run(tmp_path, tiny_text_model, str(pairs_csv), max_steps=-1, min_steps=0, overwrite=True)
    assert given.metrics["train"]["global_step"] == per_epoch


def test_precision_auto_is_bf16_only_on_a_cpu_with_native_bfloat16(tmp_path, tiny_text_model, pairs_csv, capsys):
    import torch
    from contrastkit.plugins.device import cpu_has_native_bf16
    from contrastkit.plugins.st.training import resolve_precision

    if torch.cuda.is_available():
        pytest.skip("the CPU's precision rule; on a GPU, auto follows the GPU's bf16 support")
    assert resolve_precision("auto") == "fp32"  # image_text does not ask for CPU bf16 (not measured there)
    assert resolve_precision("fp32", cpu_bf16=True) == "fp32"
    assert resolve_precision("auto", cpu_bf16=True) == ("bf16" if cpu_has_native_bf16() else "fp32")
    auto = _run(tmp_path, tiny_text_model, str(pairs_csv))
    assert ("precision: bf16 autocast" in capsys.readouterr().out) is cpu_has_native_bf16()
    forced = _run(tmp_path, tiny_text_model, str(pairs_csv), precision="bf16", overwrite=True, learning_rate=1e-2)
    for result in (auto, forced):  # autocast computes in bf16; the saved weights stay float32 and load back
        model = SentenceTransformer(str(result.output_dir), device="cpu")
        assert {p.dtype for p in model.parameters()} == {torch.float32}
        assert model.encode(["a sentence"]).shape == (1, model.get_embedding_dimension())
    trained = SentenceTransformer(str(forced.output_dir), device="cpu")
    layer = dict(trained.named_parameters())
    original = dict(SentenceTransformer(tiny_text_model, device="cpu").named_parameters())
    changed = [n for n in layer if "encoder.layer.0" in n and not bool((layer[n] == original[n]).all())]
    assert changed  # bf16 steps did update the float32 weights


def test_a_base_models_prompts_train_evaluate_and_are_saved(tmp_path, tiny_text_model, capsys):
    """An E5-style base (query/passage prompts) trains with them by default; prompts=none trains without."""
    base = tmp_path / "e5"
    SentenceTransformer(tiny_text_model, device="cpu", prompts={"query": "query: ", "passage": "passage: "}).save(
        str(base))
    frame = pd.DataFrame({"anchor": TEXTS, "positive": TEXTS[::-1]})

    def trained(name, **kw):
        result = _run(tmp_path, str(base), frame, mine_hard_negatives=False, output_dir=str(tmp_path / name), **kw)
        model = SentenceTransformer(str(result.output_dir), device="cpu")
        return result, model, next(p for n, p in model.named_parameters() if "encoder.layer.0" in n).detach()

    auto, auto_model, auto_weights = trained("auto")
    assert "prompts: the base model's own, query 'query: ' and document 'passage: '" in capsys.readouterr().out
    assert auto.metrics["prompts"] == {"query": "query: ", "document": "passage: "}
    assert auto_model.prompts["query"] == "query: " and auto_model.prompts["document"] == "passage: "
    _, _, given_weights = trained("given", prompts={"query": "query: ", "document": "passage: "})
    assert bool((given_weights == auto_weights).all())  # the same prompts: the same training, step for step
    none, none_model, none_weights = trained("none", prompts="none")
    assert not bool((none_weights == auto_weights).all())  # the training texts differed by their prompts
    assert none_model.prompts["query"] == "" and none.metrics["prompts"] == {"query": "", "document": ""}


@pytest.mark.parametrize("name", ["labels.csv", "labels.parquet"])
def test_class_labels_from_a_csv_or_parquet_file_train(name, tmp_path, tiny_text_model):
    """Text class names loaded from a file are large_string columns, which datasets' map keeps unless told."""
    frame = pd.DataFrame({"text": TEXTS, "label": [f"class{i % 3}" for i in range(24)]})
    result = _run(tmp_path, tiny_text_model, _write(tmp_path, name, frame))
    assert result.metrics["format"] == "labeled" and result.metrics["loss"] == "BatchHardSoftMarginTripletLoss"


def test_one_prompt_trains_single_texts_with_simcse(tmp_path, tiny_text_model):
    frame = pd.DataFrame({"text": TEXTS})

    def weights(name, **kw):
        result = _run(tmp_path, tiny_text_model, frame, output_dir=str(tmp_path / name), **kw)
        model = SentenceTransformer(str(result.output_dir), device="cpu")
        return next(p for n, p in model.named_parameters() if "encoder.layer.0" in n).detach()

    assert not bool((weights("prompted", prompts="u: ") == weights("plain")).all())


@pytest.mark.parametrize("length", [{"max_steps": 2}, {"max_steps": -1, "epochs": 1, "min_steps": 0}])
def test_resuming_a_finished_run_is_refused_and_changes_nothing(length, tmp_path, tiny_text_model):
    import hashlib

    from contrastkit.plugins.errors import UserError

    def files(folder):
        return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}

    frame = pd.DataFrame({"anchor": TEXTS, "positive": TEXTS[::-1]})
    first = _run(tmp_path, tiny_text_model, frame, save_steps=1, mine_hard_negatives=False, **length)
    before = files(first.output_dir)
    with pytest.raises(UserError, match="already trained .* this run's (max_steps=2|epochs=1): nothing is left"):
        _run(tmp_path, tiny_text_model, frame, save_steps=1, mine_hard_negatives=False, resume=True, **length)
    assert files(first.output_dir) == before


def test_options_that_would_do_nothing_are_refused_before_the_model_loads(tmp_path):
    """guide_model= was read only by loss=gist: with any other loss the run trained without a guide, silently;
    a mini-batch as large as the batch made GradCache split nothing."""
    from contrastkit.plugins.errors import UserError

    frame = pd.DataFrame({"anchor": TEXTS, "positive": TEXTS[::-1]})
    with pytest.raises(UserError, match="guide_model= applies only to loss=gist"):
        _run(tmp_path, str(tmp_path / "no-such-model"), frame, guide_model="some/guide")
    with pytest.raises(UserError, match="mini_batch_size=4 is not below batch_size=4"):  # GradCache for nothing
        _run(tmp_path, str(tmp_path / "no-such-model"), frame, mini_batch_size=4)
    assert not (tmp_path / "out").exists()
