"""Data classes end to end through the CLI: what is trained on is what the user meant, and the run says
what it detected, left out or found useless."""

from __future__ import annotations

import json

from contrastkit.recipes.cli import main
from PIL import Image

PAIRS = "anchor;positive\n" + "".join(f"question {i};answer {i}, with a comma\n" for i in range(12))
IMG = ["backbone=tiny-cnn", "image_size=16", "max_steps=1", "batch_size=4"]


def test_a_semicolon_csv_trains_the_pair_loss_and_says_so(tmp_path, tiny_text_model, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pairs.csv").write_text(PAIRS + "question 1;answer 1, with a comma\n")
    code = main(["run", "text", "data=pairs.csv", f"model={tiny_text_model}", "max_steps=1", "min_steps=0",
                 "output_dir=out"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "data: 'pairs.csv' is semicolon-separated (detected; the .csv default is comma)" in out
    assert "data: warning: 1 row(s) of data repeat an earlier row (first: line 14, same as line 3)" in out
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["format"] in ("pair", "triplet") and metrics["loss"] == "MultipleNegativesRankingLoss"


def test_an_output_folder_inside_the_image_folder_never_becomes_training_data(tmp_path, capsys, monkeypatch):
    for cls, color in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
        (tmp_path / cls).mkdir()
        for i in range(4):
            Image.new("RGB", (16, 16), color).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "notes.txt").write_text("shot on a phone")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "image", "data=.", *IMG]) == 0  # writes outputs/image-<time>/ (plots, checkpoints) here
    first = capsys.readouterr().out
    assert main(["run", "image", "data=.", "output_dir=mine/second", *IMG]) == 0  # also inside data=.
    second = capsys.readouterr().out
    assert "data: 8 training images" in first and "data: 8 training images" in second
    assert "data: ignored 1 file(s) that are not" in first and ".txt (1)" in first
    # the first run's folder, and this run's own (created, with its run record, before the data is read)
    assert "data: left out 2 contrastkit output folder(s) inside the data folder: mine/second, outputs/image-" in second


def test_na_words_are_trained_on_as_text(tmp_path, tiny_text_model, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pairs.csv").write_text(PAIRS + "NA;a product named NA\nNone;the sentence None\n")
    code = main(["run", "text", "data=pairs.csv", f"model={tiny_text_model}", "max_steps=1", "min_steps=0",
                 "output_dir=out"])
    out = capsys.readouterr().out
    assert code == 0, out
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["train_rows"] + metrics["eval_rows"] == 14
