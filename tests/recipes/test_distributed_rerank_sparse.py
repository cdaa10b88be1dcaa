"""Rerank and sparse recipes under torchrun: 2 CPU processes over gloo, as test_distributed_text does for text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ENV = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
       "HF_DATASETS_OFFLINE": "1"}
#: torchrun of this interpreter, so both ranks import the contrastkit under test
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]


def _run(recipe: str, out: Path, batch: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*TORCHRUN, "-m", "contrastkit.recipes", "run", recipe, f"output_dir={out}",
                           f"batch_size={batch}", "epochs=1", "min_steps=0", "logging_steps=1", *args],
                          capture_output=True, text=True, env=ENV, timeout=600)


def _check_ddp_output(out: Path, done: subprocess.CompletedProcess, batch: int) -> dict:
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    # batch rows per process, 2 processes, the last partial batch dropped; alone it would be ceil(rows / batch)
    rows = metrics["train_rows"]
    assert 0 < metrics["train"]["global_step"] == rows // (2 * batch) < -(-rows // batch)
    assert done.stdout.count("done: ") == 1 and done.stdout.count("loss: ") == 1  # only rank 0 reports
    assert [p.name for p in out.iterdir() if p.name.startswith(".contrastkit")] == [".contrastkit-run.json"]
    assert (out / "README.md").is_file() and (out / "config.yaml").is_file()
    return metrics


@pytest.mark.slow
def test_rerank_torchrun_two_processes(tmp_path, pairs_csv, tiny_text_model):
    from sentence_transformers import CrossEncoder

    out = tmp_path / "ddp"
    done = _run("rerank", out, 8, f"data={pairs_csv}", f"model={tiny_text_model}", f"retriever={tiny_text_model}",
                "num_negatives=2", "loss=bce")
    metrics = _check_ddp_output(out, done, 8)
    # each pair and its 2 mined negatives -> 3 labelled rows for BinaryCrossEntropyLoss
    assert metrics["loss"] == "BinaryCrossEntropyLoss" and metrics["train_rows"] == 3 * (24 - metrics["eval_rows"])
    assert "heldout_mrr@10" in metrics["after"]
    assert CrossEncoder(str(out), device="cpu").predict([("a question", "an answer")]).shape == (1,)


@pytest.mark.slow
def test_sparse_torchrun_two_processes(tmp_path, pairs_csv, tiny_text_model):
    from sentence_transformers import SparseEncoder

    out = tmp_path / "ddp"
    # 4 per process: batches of in-batch negatives hold no text twice, and mined negatives repeat other positives
    done = _run("sparse", out, 4, f"data={pairs_csv}", f"model={tiny_text_model}", "active_dims=8", "num_negatives=1")
    metrics = _check_ddp_output(out, done, 4)
    assert metrics["loss"] == "CSRLoss" and metrics["train_rows"] == 24 - metrics["eval_rows"]
    assert "heldout_cosine_mrr@10" in metrics["after"]
    model = SparseEncoder(str(out), device="cpu")
    assert model.encode(["a question"], convert_to_tensor=True).to_dense().shape == (1, 128)


@pytest.mark.slow
def test_a_run_that_can_form_no_batch_says_so_and_saves_nothing(tmp_path, pairs_csv, tiny_text_model):
    """In-batch negatives need batches without repeated texts; mined negatives repeat other rows' positives, so at
    8 per process (the last partial batch dropped under DDP) mnrl gets no batch at all. That is an error, never an
    untrained model saved as the result."""
    out = tmp_path / "ddp"
    done = _run("rerank", out, 8, f"data={pairs_csv}", f"model={tiny_text_model}", f"retriever={tiny_text_model}",
                "num_negatives=2", "loss=mnrl")
    assert done.returncode != 0 and "training took 0 steps" in done.stderr and "lower batch_size" in done.stderr
    assert done.stderr.count("contrastkit: error:") == 1, done.stderr  # both processes stop; the first one says why
    assert not (out / "model.safetensors").exists() and not (out / "metrics.json").exists()
