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



def test_two_pairs_of_texts_are_refused_in_one_line_before_the_model_loads(tmp_path, capfd, monkeypatch):
    """anchor/positive beside sentence1/sentence2: the run names the columns= that picks each, and trains nothing."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "two.csv").write_text("anchor,positive,sentence1,sentence2,score\n" +
                                      "".join(f"q{i},a{i},s{i},t{i},0.{i}\n" for i in range(8)))
    code = main(["run", "text", "data=two.csv", "model=no/such-model", "output_dir=out"])
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "say which to train on: columns={anchor: anchor, positive: positive} or columns={sentence1: sentence1, " \
           "sentence2: sentence2}" in err[0]
    assert not (tmp_path / "out").exists()


IMG32 = ["backbone=tiny-cnn", "image_size=32", "max_steps=2"]


def _pngs(folder, n, color=(200, 40, 40)):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (16, 16), (color[0], (color[1] + 7 * i) % 256, color[2])).save(folder / f"{i}.png")


def test_a_class_of_one_image_is_never_held_out_so_auto_chooses_the_same_method_every_seed(tmp_path, capsys):
    _pngs(tmp_path / "shapes" / "circle", 100)
    _pngs(tmp_path / "shapes" / "square", 100, (40, 40, 200))
    _pngs(tmp_path / "shapes" / "triangle", 1, (40, 200, 40))
    for seed in (3, 8):  # a plain shuffle held the only triangle out with these seeds, and auto trained supcon
        code = main(["run", "image", f"data={tmp_path / 'shapes'}", f"seed={seed}", f"output_dir={tmp_path / str(seed)}",
                     *IMG32])
        out = capsys.readouterr().out
        assert code == 0, out
        assert "data: 182 training images from local folder 'shapes', 19 held out" in out
        assert "method: simclr (method=auto: class 'triangle' has 1 training image(s)" in out
        assert "kNN does not score them (they are trained on): triangle" in out


def test_split_folders_with_class_subfolders_are_refused_with_the_fix(tmp_path, capfd):
    for split in ("train", "val"):
        for cls, color in (("circle", (200, 40, 40)), ("square", (40, 40, 200))):
            _pngs(tmp_path / "split" / split / cls, 3, color)
    code = main(["run", "image", f"data={tmp_path / 'split'}", f"output_dir={tmp_path / 'out'}", *IMG32])
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("contrastkit: error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].endswith(f"data={tmp_path / 'split' / 'train'} eval_data={tmp_path / 'split' / 'val'}")
    assert not (tmp_path / "out").exists()


def test_a_transform_value_out_of_range_fails_before_training_in_one_line(tmp_path, capfd):
    _pngs(tmp_path / "pics", 4)
    code = main(["run", "image", f"data={tmp_path / 'pics'}", "transform={min_scale: 2}",
                 f"output_dir={tmp_path / 'out'}", *IMG32])
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("contrastkit: error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "transform option(s) min_scale=2 fail on an image" in lines[0]
    assert not (tmp_path / "out").exists()


def test_a_dataset_whose_classlabel_is_minus_one_on_some_rows_trains_unlabelled_and_says_so(tmp_path, capsys):
    import datasets
    from contrastkit.recipes import image

    rows = 24
    ds = datasets.Dataset.from_dict(
        {"image": [Image.new("RGB", (16, 16), (10 * i, 90, 160)) for i in range(rows)],
         "label": [i % 2 if i % 6 else -1 for i in range(rows)]},
        features=datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["cat", "dog"])}))
    result = image.run(data=ds, output_dir=str(tmp_path / "out"), backbone="tiny-cnn", image_size=32, max_steps=2)
    out = capsys.readouterr().out
    assert "data: warning: 4 of 24 rows have no label in column 'label' (-1 or empty)" in out
    assert result.metrics["method"] == "simclr" and "method: simclr (method=auto: the images in" in out
