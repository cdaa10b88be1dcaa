"""The README.md model cards as a Hub visitor reads them: the numbers are metrics.json's, the run's settings are
named as they were, the before/after tables say what they measure, and no local path leaks. Reuses the package's
recipe outputs (conftest.py): no training run of its own."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import yaml
from huggingface_hub import ModelCard


def _section(card: str) -> str:
    return card.split("## Before and after training", 1)[1].split("\n## ", 1)[0]


def _rows(text: str) -> dict[str, list[str]]:
    """The Markdown table rows under a "| metric | before training | ..." header: metric -> the other cells."""
    table = text.split("| metric | before training | after training | change |\n|---|---|---|---|\n", 1)[1]
    cells = [line.strip("|").split("|") for line in table.split("\n\n", 1)[0].strip().splitlines()]
    return {row[0].strip(): [c.strip() for c in row[1:]] for row in cells}


@pytest.mark.parametrize("recipe", ["text", "rerank", "sparse"])
def test_a_sentence_transformers_card_shows_the_runs_settings_and_metrics_json_before_after(recipe, request):
    """sentence-transformers' own card shows only "after" numbers, under a dataset called "heldout"; the card now
    has the run's before/after table (metrics.json's numbers), what it was measured on, and how the run trained."""
    out = request.getfixturevalue(f"{recipe}_output")
    card = (out / "README.md").read_text(encoding="utf-8")
    metrics = json.loads((out / "metrics.json").read_text())
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert card.index("## Before and after training") < card.index("## Training Details")
    section = _section(card)
    train = metrics["train"]
    assert (f"on {metrics['train_rows']} training rows: {train['global_step']} steps ({train['epochs']:.2f} epochs) "
            f"of batch size {config['batch_size']}, peak learning rate {train['learning_rate']:g}") in section
    assert f"seed {config['seed']}; loss {metrics['loss']}." in section
    # the precision said is the one the trainer used (sentence-transformers' hyperparameter list names bf16 then)
    assert ("bf16 autocast" in section) is ("- `bf16`: True" in card)
    assert f"Held-out evaluation on {metrics['eval_rows']} rows: \"before\" is the base model" in section
    rows = _rows(section)
    assert rows and set(rows) <= set(metrics["before_after"])
    for key, (before, after, change) in rows.items():
        value = metrics["before_after"][key]
        assert [before, after, change] == [f"{value['before']:.4f}", f"{value['after']:.4f}", f"{value['delta']:+.4f}"]
    if recipe == "rerank":  # the retriever's own order is explained, and a local retriever is not named by its path
        assert "`base_` rows score the retriever's own order" in section and "a local model folder" in section
        assert any(key.endswith("base_mrr@10") for key in rows)
    assert str(out.parent) not in card and str(out.parent.parent) not in card
    assert "contrastkit" in ModelCard.load(out / "README.md").data.tags  # the Hub finds every recipe's by its tag
    assert "pypi.org/project/contrastkit" not in card  # no such page: contrastkit is not on PyPI


@pytest.mark.parametrize("recipe", ["text", "rerank", "sparse"])
def test_a_sentence_transformers_cards_snippet_runs_on_the_folder_offline(recipe, request, tmp_path):
    """The usage snippet as written, with the folder in place of the Hub id that a push puts there, runs offline."""
    out = request.getfixturevalue(f"{recipe}_output")
    code = re.findall(r"```python\n(.*?)```", (out / "README.md").read_text(encoding="utf-8"), re.DOTALL)[0]
    code, found = re.subn(r'^(model = \w+)\("[^"\n]*"\)', lambda m: f"{m[1]}({str(out)!r})", code, flags=re.MULTILINE)
    assert found == 1
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr[-2000:]


def test_an_image_card_without_held_out_images_says_so_and_not_that_the_data_has_no_labels(image_output):
    """16 images in 2 class folders are too few to hold any out: the card said "(no labels: not evaluated)" of
    labelled data. (A run with held-out images: tests/plugins/vision/test_card_labels.py.)"""
    card = (image_output / "README.md").read_text(encoding="utf-8")
    metrics = json.loads((image_output / "metrics.json").read_text())
    assert metrics["eval_images"] == 0 and (image_output.parent / "images" / "class0").is_dir()
    evaluation = card.split("## Evaluation", 1)[1].split("\n## ", 1)[0]
    assert "on held-out labelled images: this run had none, so nothing was measured." in evaluation
    assert "| (not evaluated: no held-out labelled images) | | | |" in evaluation and "no labels" not in card


def test_a_local_data_file_is_named_by_its_file_not_by_the_loader_nor_its_folders(tmp_path, tiny_text_model):
    """datasets names a dataset read from a CSV "csv", and the image-text card said "trained on the csv dataset".
    A trainer is made and the card written, without training."""
    from contrastkit.plugins.data import load_file
    from contrastkit.plugins.st import training
    from contrastkit.recipes.text import Config
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, losses

    data = tmp_path / "alice-home" / "faq.csv"
    data.parent.mkdir()
    data.write_text("anchor,positive\n" + "".join(f"q{i},a{i}\n" for i in range(8)))
    for given in (str(data), data):  # a path as text (the CLI) or a pathlib.Path (Python)
        model = SentenceTransformer(tiny_text_model, device="cpu")
        trainer = SentenceTransformerTrainer(model=model, train_dataset=load_file(data),
                                             loss=losses.MultipleNegativesRankingLoss(model))
        assert trainer.model.model_card_data.train_datasets[0]["name"] == "csv"  # what datasets calls it
        training.name_hub_datasets(trainer, Config(data=given))
        model.save(str(tmp_path / "saved"))
        card = (tmp_path / "saved" / "README.md").read_text(encoding="utf-8")
        assert "trained on the faq.csv dataset" in card and "#### faq.csv" in card, type(given)
        assert "the csv dataset" not in card and "alice-home" not in card
    # data given as Python rows has no file name: sentence-transformers' "Unnamed Dataset"
    fresh = SentenceTransformer(tiny_text_model, device="cpu")  # a model keeps its card data across trainers
    rows = SentenceTransformerTrainer(model=fresh, train_dataset=load_file(data),
                                      loss=losses.MultipleNegativesRankingLoss(fresh))
    training.name_hub_datasets(rows, Config(data=[{"anchor": "q", "positive": "a"}]))
    assert rows.model.model_card_data.train_datasets[0]["name"] is None
