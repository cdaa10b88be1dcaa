"""Bad input across recipes and commands: exit code 2, one line naming the input, no traceback,
and the user's files untouched. Add a row to CASES for every new input a recipe accepts."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from contrastkit.recipes.cli import main

from tests.conftest import CLI
from tests.recipes import bad_runs


def _csv(tmp: Path, name: str, text: str) -> str:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _bytes(tmp: Path, name: str, data: bytes) -> str:
    path = tmp / name
    path.write_bytes(data)
    return str(path)


def _existing_output(tmp: Path) -> str:
    out = tmp / "previous-run"
    out.mkdir()
    (out / "my_notes.txt").write_text("keep me")
    return str(out)


def _earlier_run(tmp: Path) -> str:
    """A text run's folder with its run record and a checkpoint, which resume=true would continue."""
    out = tmp / "earlier-run"
    (out / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    (out / "checkpoints" / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (out / ".contrastkit-run.json").write_text('{"recipe": "text", "model": "all-MiniLM-L6-v2"}\n')
    return str(out)


def _unwritable(tmp: Path) -> str:
    parent = tmp / "readonly"
    parent.mkdir()
    (parent / "blocker").write_text("a file where a folder is needed")
    return str(parent / "blocker" / "out")


def _image_folder(tmp: Path, name: str, size: int = 16, zero_byte: bool = False, count: int = 4) -> str:
    from PIL import Image

    folder = tmp / name
    folder.mkdir()
    for i in range(count):
        if zero_byte:
            (folder / f"img{i}.png").write_bytes(b"")
        else:
            Image.new("RGB", (size, size), (40 * i, 90, 160)).save(folder / f"img{i}.png")
    return str(folder)


def _classes(tmp: Path, name: str, counts: dict[str, int]) -> str:
    """A folder with a subfolder of ``count`` small images per class name."""
    folder = tmp / name
    folder.mkdir()
    for label, count in counts.items():
        _image_folder(folder, label, count=count)
    return str(folder)


def _captions(tmp: Path, rows: str) -> str:
    _image_folder(tmp, "pics")
    return _csv(tmp, "captions.csv", "image,text\n" + rows)


def _cut_jpeg(tmp: Path, rows: str) -> str:
    """Captions whose second image is a JPEG cut off halfway (its header reads fine; its pixels do not)."""
    import io

    from PIL import Image

    data = _captions(tmp, rows)
    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 60).convert("RGB").save(buffer, format="JPEG")  # noise: mostly pixel data
    (tmp / "pics" / "cut.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return data


def _output_inside(tmp: Path) -> str:
    """A photos folder whose only images are the plots of an earlier run written inside it."""
    photos = tmp / "photos"
    (photos / "outputs").mkdir(parents=True)
    out = Path(_image_folder(photos / "outputs", "image-1"))
    (out / "config.yaml").write_text("recipe: image\n")
    return str(photos)


IMG = ["backbone=tiny-cnn", "image_size=16", "max_steps=1"]
PAIRS = "anchor,positive\n" + "".join(f"q{i},a{i}\n" for i in range(8))
TEXT_ONLY = "text\n" + "".join(f"line {i}\n" for i in range(8))
TEXT_LABEL = "text,label\n" + "".join(f"line {i},c{i % 2}\n" for i in range(8))
SCORES = "sentence1,sentence2,score\n" + "".join(f"s{i},t{i},{i / 10}\n" for i in range(8))
BINARY = "sentence1,sentence2,label\n" + "".join(f"s{i},t{i},{i % 2}\n" for i in range(8))
TRIPLETS = "anchor,positive,negative\n" + "".join(f"q{i},a{i},n{i}\n" for i in range(8))


def _retriever(model_arg: str) -> str:
    """retriever= the tiny model that model= names (the default retriever is the packaged MiniLM: slower)."""
    return "retriever=" + model_arg.partition("=")[2]

# id: (builder(tmp) -> CLI args, words the one-line message must contain)
CASES = {
    "missing-file": (lambda t, m: ["run", "text", "data=" + str(t / "nope.csv"), m], ["nope.csv", "does not exist"]),
    "empty-file": (lambda t, m: ["run", "text", "data=" + _csv(t, "empty.csv", ""), m], ["empty.csv", "empty"]),
    "header-only": (lambda t, m: ["run", "text", "data=" + _csv(t, "hdr.csv", "anchor,positive\n"), m],
                    ["hdr.csv", "no rows"]),
    "binary-as-csv": (lambda t, m: ["run", "text", "data=" + _bytes(t, "bin.csv", bytes(range(256)) * 8), m],
                      ["bin.csv", "binary"]),
    "broken-jsonl-line": (lambda t, m: ["run", "text", "data=" + _csv(
        t, "b.jsonl", '{"anchor": "a", "positive": "b"}\n{"anchor": "c", "positive":\n'), m], ["b.jsonl", "line 2"]),
    "unknown-encoding": (lambda t, m: ["run", "text", "data=" + _bytes(
        t, "latin.csv", "anchor,positive\ncaf\xe9,th\xe9\n".encode("latin-1") * 4), m], ["latin.csv", "UTF-8"]),
    "unsupported-extension": (lambda t, m: ["run", "text", "data=" + _csv(t, "data.xlsx", "x"), m],
                              ["data.xlsx", "extension"]),
    "wrong-columns": (lambda t, m: ["run", "text", "data=" + _csv(t, "w.csv", "foo,bar\n1,2\n3,4\n"), m],
                      ["foo, bar", "anchor,positive"]),
    "wrong-columns-overwrite-a-folder": (lambda t, m: ["run", "text", "data=" + _csv(t, "w.csv", "foo,bar\n1,2\n3,4\n"),
                                                       "output_dir=" + _existing_output(t), "overwrite=true", m],
                                         ["foo, bar"]),  # its record was written, then removed again
    "wrong-columns-overwrite-another-run": (lambda t, m: ["run", "rerank", "data=" + _csv(t, "w.csv", "foo,bar\n1,2\n3,4\n"),
                                                          "output_dir=" + _earlier_run(t), "overwrite=true", m],
                                            ["foo, bar"]),  # the text run's record is as it was: it still resumes
    "one-pair-repeated-with-an-index-column": (lambda t, m: ["run", "text", "data=" + _csv(
        t, "idx.csv", ",anchor,positive\n" + "".join(f"{i},how do I reset,hold the button\n" for i in range(30))), m],
                                              ["every row of data is the same"]),
    "columns-one-column-for-two-roles": (lambda t, m: ["run", "text", "data=" + _csv(
        t, "qa.csv", "question,answer\nq1,a1\nq2,a2\n"), "columns={anchor: question, positive: question}", m],
                                         ["anchor and positive", "same column 'question'"]),
    "ambiguous-columns": (lambda t, m: ["run", "text", "data=" + _csv(
        t, "amb.csv", "anchor,query,positive\na,b,c\nd,e,f\n"), m], ["anchor", "query", "columns="]),
    "columns-map-to-missing": (lambda t, m: ["run", "text", "data=" + _csv(t, "p.csv", PAIRS),
                                             "columns={anchor: question, positive: positive}", m], ["question"]),
    "nan-text": (lambda t, m: ["run", "text", "data=" + _csv(t, "nan.csv", PAIRS + "q9,\n"), m],
                 ["positive", "line 10"]),
    "empty-text": (lambda t, m: ["run", "text", "data=" + _csv(t, "sp.csv", PAIRS + 'q9,"   "\n'), m],
                   ["positive", "empty"]),
    "score-out-of-range": (lambda t, m: ["run", "text", "data=" + _csv(
        t, "s.csv", "sentence1,sentence2,score\na,b,0.5\nc,d,250\n"), m], ["score", "250"]),
    "label-not-binary": (lambda t, m: ["run", "text", "data=" + _csv(
        t, "l.csv", "sentence1,sentence2,label\na,b,0\nc,d,7\n"), m], ["label", "0/1"]),
    "unknown-loss": (lambda t, m: ["run", "text", "loss=mnrll", m], ["mnrll", "Did you mean 'mnrl'"]),
    "loss-wrong-format": (lambda t, m: ["run", "text", "data=" + _csv(t, "p.csv", PAIRS), "loss=cosent", m],
                          ["cosent", "score"]),
    "unknown-key": (lambda t, m: ["run", "text", "epoch=2", m], ["epoch", "Did you mean 'epochs'"]),
    "wrong-type": (lambda t, m: ["run", "text", "batch_size=big", m], ["batch_size", "integer"]),
    "negative-batch-size": (lambda t, m: ["run", "text", "batch_size=-4", m], ["batch_size", "> 0"]),
    "zero-epochs": (lambda t, m: ["run", "text", "epochs=0", m], ["epochs", "> 0"]),
    "negative-min-steps": (lambda t, m: ["run", "text", "min_steps=-1", m], ["min_steps", ">= 0"]),
    "negative-max-train-tokens": (lambda t, m: ["run", "text", "max_train_tokens=-1", m], ["max_train_tokens", ">= 0"]),
    "unknown-recipe": (lambda t, m: ["run", "txet"], ["txet", "Did you mean 'text'"]),
    "show-unknown-recipe": (lambda t, m: ["show", "imgae"], ["imgae", "contrastkit list"]),
    "missing-config-file": (lambda t, m: ["run", "text", "--config", str(t / "none.yaml")], ["none.yaml"]),
    "broken-yaml": (lambda t, m: ["run", "text", "--config", _csv(t, "bad.yaml", "epochs: [1,\n")],
                    ["bad.yaml", "YAML"]),
    "override-not-key-value": (lambda t, m: ["run", "text", "epochs"], ["epochs", "key=value"]),
    "existing-output-dir": (lambda t, m: ["run", "text", "output_dir=" + _existing_output(t)],
                            ["previous-run", "overwrite=true"]),
    "unwritable-output-dir": (lambda t, m: ["run", "text", "output_dir=" + _unwritable(t)], ["blocker"]),
    "hub-dataset-offline": (lambda t, m: ["run", "text", "data=someone/no-such-dataset", m],
                            ["someone/no-such-dataset"]),
    "missing-model-folder": (lambda t, m: ["run", "text", "data=" + _csv(t, "p.csv", PAIRS),
                                           "model=" + str(t / "no-model")], ["no-model", "does not exist"]),
    "resume-without-checkpoints": (lambda t, m: ["run", "text", "resume=true", "output_dir=" + str(t / "fresh")],
                                   ["resume=true"]),
    "cp-unknown-recipe": (lambda t, m: ["cp", "nope", str(t / "x.py")], ["nope"]),
    "run-missing-recipe-file": (lambda t, m: ["run", str(t / "mine.py")], ["mine.py", "does not exist"]),
    "huge-line": (lambda t, m: ["run", "text", "data=" + _csv(t, "huge.csv", PAIRS + 'q9,"' + "x" * 200_000 + '"\n'),
                                m], ["positive", "line 10", "characters"]),
    "hub-model-offline": (lambda t, m: ["run", "text", "data=" + _csv(t, "p.csv", PAIRS),
                                        "model=someone/no-such-model"], ["someone/no-such-model"]),
    # text data files
    # delimiter detected (else one merged column and a "wrong columns" error); the line counts the header as 1
    "semicolon-csv": (lambda t, m: ["run", "text", "data=" + _csv(t, "semi.csv", PAIRS.replace(",", ";") + "q9;\n"),
                                    m], ["positive", "line 10", "empty"]),
    "tab-csv": (lambda t, m: ["run", "text", "data=" + _csv(t, "tab.csv", PAIRS.replace(",", "\t") + 'q9\t"  "\n'), m],
                ["positive", "line 10", "empty"]),
    "pipe-csv-quoted-commas": (lambda t, m: ["run", "text", "data=" + _csv(
        t, "pipe.csv", 'anchor|positive\n"a, b"|"c, d"\n' + PAIRS.replace(",", "|").split("\n", 1)[1] + "q9|\n"), m],
        ["positive", "line 11"]),
    "comma-tsv": (lambda t, m: ["run", "text", "data=" + _csv(t, "comma.tsv", PAIRS + "q9,\n"), m],
                  ["positive", "line 10"]),
    "error-line-after-shuffle-and-split": (lambda t, m: ["run", "text", "data=" + _csv(
        t, "big.csv", "anchor,positive\n" + "".join(f"q{i},{'' if i == 24 else f'a{i}'}\n" for i in range(40))), m],
        ["positive", "line 26"]),
    "jsonl-error-line": (lambda t, m: ["run", "text", "data=" + _csv(
        t, "p.jsonl", '{"anchor": "a", "positive": "b"}\n\n{"anchor": "c", "positive": " "}\n'), m],
        ["positive", "line 3", "empty"]),
    # blank data= is not "the current folder"
    "blank-data": (lambda t, m: ["run", "text", "data=", m], ["data= is empty"]),
    "blank-data-quoted": (lambda t, m: ["run", "text", 'data=""', m], ["data= is empty"]),
    "blank-data-spaces": (lambda t, m: ["run", "text", "data=  ", m], ["data= is empty"]),
    "blank-eval-data": (lambda t, m: ["run", "text", "eval_data=", m], ["eval_data= is empty"]),
    # data that cannot teach anything
    "pairs-all-identical": (lambda t, m: ["run", "text", "data=" + _csv(
        t, "same.csv", "anchor,positive\n" + "".join(f"q{i},q{i}\n" for i in range(8))), m],
        ["anchor", "positive", "same text"]),
    "scored-pairs-all-identical": (lambda t, m: ["run", "text", "data=" + _csv(
        t, "same.csv", "sentence1,sentence2,score\n" + "".join(f"s{i},s{i},{i / 10}\n" for i in range(8))), m],
        ["sentence1", "sentence2", "same text"]),
    "constant-score": (lambda t, m: ["run", "text", "data=" + _csv(
        t, "c.csv", "sentence1,sentence2,score\n" + "".join(f"a{i},b{i},0.5\n" for i in range(8))), m],
        ["score", "every row"]),
    "constant-binary-label": (lambda t, m: ["run", "text", "data=" + _csv(
        t, "c.csv", "sentence1,sentence2,label\n" + "".join(f"a{i},b{i},1\n" for i in range(8))), m],
        ["label", "every row"]),
    "single-class-label": (lambda t, m: ["run", "text", "data=" + _csv(
        t, "c.csv", "text,label\n" + "".join(f"t{i},spam\n" for i in range(8))), m], ["label", "single class"]),
    "one-row": (lambda t, m: ["run", "text", "data=" + _csv(t, "one.csv", "anchor,positive\nq,a\n"), m],
                ["1 usable row", "at least 2"]),
    "one-row-repeated": (lambda t, m: ["run", "text", "data=" + _csv(t, "rep.csv", "text\n" + "same words\n" * 9), m],
                         ["every row", "the same"]),
    # images
    "image-empty-folder": (lambda t, m: ["run", "image", "data=" + str((t / "none").mkdir() or t / "none"), *IMG],
                           ["none"]),
    "image-zero-byte-strict": (lambda t, m: ["run", "image", "data=" + _image_folder(t, "zb", zero_byte=True),
                                             "strict=true", *IMG], ["img0.png"]),
    "image-all-1x1": (lambda t, m: ["run", "image", "data=" + _image_folder(t, "dots", size=1), *IMG], ["dots"]),
    "image-unknown-method": (lambda t, m: ["run", "image", "data=" + _image_folder(t, "ok"), "method=simclrr", *IMG],
                             ["simclrr"]),
    "image-unknown-backbone": (lambda t, m: ["run", "image", "data=" + _image_folder(t, "ok"), "backbone=resnet19",
                                             "image_size=16", "max_steps=1"], ["resnet19"]),
    "image-negative-batch": (lambda t, m: ["run", "image", "batch_size=-1", *IMG], ["batch_size"]),
    "image-unknown-transform-option": (lambda t, m: ["run", "image", "transform={min_sclae: 0.2}", *IMG],
                                       ["min_sclae", "lightly transform"]),
    "image-freeze-fraction-above-1": (lambda t, m: ["run", "image", "freeze_fraction=1.5", *IMG],
                                      ["freeze_fraction", "between 0 and 1"]),
    "image-wise-ft-above-1": (lambda t, m: ["run", "image", "wise_ft=1.5", *IMG], ["wise_ft", "between 0 and 1"]),
    "image-wise-ft-unknown-word": (lambda t, m: ["run", "image", "wise_ft=best", *IMG],
                                   ["'wise_ft'", "between 0 and 1", "or auto", "'best'"]),
    "image-wise-ft-auto-unlabelled": (lambda t, m: ["run", "image", "data=" + _image_folder(t, "loose", count=60),
                                                    "wise_ft=auto", *IMG],
                                      ["wise_ft=auto", "no labels", "class subfolders", "wise_ft=0.65"]),
    "image-wise-ft-auto-too-few": (lambda t, m: ["run", "image", "data=" + _classes(t, "few", {"a": 6, "b": 6}),
                                                 "wise_ft=auto", *IMG],
                                   ["wise_ft=auto", "at least 50 training images", "data has 12", "wise_ft=0.65"]),
    "image-temperature-zero": (lambda t, m: ["run", "image", "temperature=0", *IMG], ["'temperature'", "> 0"]),
    "image-knn-t-negative": (lambda t, m: ["run", "image", "knn_t=-0.1", *IMG], ["'knn_t'", "> 0"]),
    "image-output-dir-is-data": (lambda t, m: ["run", "image", "data=" + _classes(t, "pics", {"a": 4, "b": 4}),
                                               "output_dir=" + str(t / "pics"), "overwrite=true", *IMG],
                                 ["output_dir", "is the data folder", "run"]),
    "image-eval-data-unlabelled": (lambda t, m: ["run", "image", "data=" + _classes(t, "pics", {"a": 4, "b": 4}),
                                                 "eval_data=" + _image_folder(t, "flat"), *IMG],
                                   ["eval_data has no labels", "class subfolders"]),
    "image-eval-data-labelled-data-not": (lambda t, m: ["run", "image", "data=" + _image_folder(t, "flat", count=8),
                                                        "eval_data=" + _classes(t, "held", {"a": 2, "b": 2}), *IMG],
                                          ["eval_data is labelled but data is not"]),
    "image-eval-data-other-classes": (lambda t, m: ["run", "image", "data=" + _classes(t, "pics", {"a": 4, "b": 4}),
                                                    "eval_data=" + _classes(t, "held", {"c": 2, "d": 2}), *IMG],
                                      ["eval_data's classes (c, d)", "none of data's classes (a, b)"]),
    "image-transform-not-a-mapping": (lambda t, m: ["run", "image", "transform=5", *IMG],
                                      ["'transform' expects a mapping", "got 5"]),
    "image-ema-decay-of-1": (lambda t, m: ["run", "image", "ema_decay=1", *IMG], ["ema_decay", "below 1"]),
    "image-unknown-lr-schedule": (lambda t, m: ["run", "image", "lr_schedule=step", *IMG], ["lr_schedule", "cosine"]),
    # method=supcon on images it cannot learn from (method=auto trains simclr on them instead, and says so)
    "image-supcon-unlabelled-folder": (lambda t, m: ["run", "image", "data=" + _image_folder(t, "flat"),
                                                     "method=supcon", *IMG],
                                       ["method=supcon", "'flat' has no labels", "class subfolder", "method=simclr"]),
    "image-supcon-single-class": (lambda t, m: ["run", "image", "data=" + _classes(t, "cats", {"cat": 6}),
                                                "method=supcon", *IMG],
                                  ["method=supcon", "'cats' has one ('cat')", "subfolder per class", "method=simclr"]),
    "image-supcon-class-with-one-image": (lambda t, m: ["run", "image", "data=" + _classes(t, "pets", {"cat": 6,
                                                                                                     "dog": 1}),
                                                        "method=supcon", *IMG],
                                          ["class 'dog'", "'pets' has 1", "add images to it", "method=simclr"]),
    "image-ssl-weight-on-simclr": (lambda t, m: ["run", "image", "data=" + _image_folder(t, "photos"),
                                                 "method=simclr", "ssl_weight=0.5", *IMG],
                                   ["'ssl_weight' applies to method=supcon", "method=simclr", "leave it out"]),
    "image-ssl-weight-negative": (lambda t, m: ["run", "image", "data=" + _image_folder(t, "photos"),
                                                "ssl_weight=-1", *IMG], ["'ssl_weight' must be >= 0, got -1"]),
    # image data
    "image-blank-data": (lambda t, m: ["run", "image", "data=", *IMG], ["data= is empty"]),
    "image-blank-data-spaces": (lambda t, m: ["run", "image", "data= ", *IMG], ["data= is empty"]),
    "image-text-blank-data": (lambda t, m: ["run", "image-text", 'data=""', "max_steps=1"], ["data= is empty"]),
    "image-only-an-output-folder": (lambda t, m: ["run", "image", "data=" + _output_inside(t), *IMG],
                                    ["photos", "holds no images"]),
    "image-text-one-caption-for-all": (lambda t, m: ["run", "image-text", "data=" + _captions(
        t, "pics/img0.png,a shape\npics/img1.png,a shape\npics/img2.png,a shape\n"), "max_steps=1"],
        ["every caption", "a shape"]),
    "image-text-one-row": (lambda t, m: ["run", "image-text", "data=" + _captions(t, "pics/img0.png,a square\n"),
                                         "max_steps=1"], ["1 usable row"]),
    "image-text-empty-caption-line": (lambda t, m: ["run", "image-text", "data=" + _captions(
        t, 'pics/img0.png,a blue square\npics/img1.png,"  "\n'), "max_steps=1"], ["line 3", "empty caption"]),
    # image-text
    "image-text-missing-image": (lambda t, m: ["run", "image-text", "data=" + _captions(
        t, "pics/img0.png,a blue square\npics/gone.png,a red circle\n"), "max_steps=1"], ["gone.png"]),
    "image-text-cut-off-jpeg": (lambda t, m: ["run", "image-text", "data=" + _cut_jpeg(
        t, "pics/img0.png,a blue square\npics/cut.jpg,a red square\n"), "max_steps=1"],
                                ["cut.jpg", "missing or unreadable"]),
    "image-text-eval-data-missing-image": (lambda t, m: ["run", "image-text", "data=" + _captions(
        t, "pics/img0.png,a blue square\npics/img1.png,a red square\n"),
        "eval_data=" + _csv(t, "held.csv", f"image,text\n{t}/pics/img2.png,a green square\n{t}/gone.png,a dot\n"),
        "max_steps=1"], ["eval_data: image", "gone.png"]),
    "image-data-mistyped-folder": (lambda t, m: ["run", "image", "data=photoz", *IMG],
                                   ["'photoz' is not a file or folder here", "check the path"]),
    "image-text-empty-caption": (lambda t, m: ["run", "image-text", "data=" + _captions(
        t, 'pics/img0.png,a blue square\npics/img1.png,"  "\n'), "max_steps=1"], ["caption"]),
    # runs, output folders, resume and faults
    **{f"resume-{mine}-into-{theirs}-run": (
        lambda t, m, mine=mine, theirs=theirs: ["run", mine, "resume=true", m if mine == "text" else "max_steps=1",
                                                "output_dir=" + bad_runs.finished(t, theirs, m)],
        [f"recipe '{theirs}'", f"not '{mine}'", f"contrastkit run {theirs} resume=true"])
       for mine in ("text", "image", "image-text") for theirs in ("text", "image", "image-text") if mine != theirs},
    "resume-text-other-model": (lambda t, m: ["run", "text", "resume=true", "model=all-MiniLM-L6-v2",
                                              "output_dir=" + bad_runs.finished(t, "text", m)],
                                ["model=all-MiniLM-L6-v2", "tiny-st", "resume with model="]),
    "resume-image-other-backbone": (lambda t, m: ["run", "image", "resume=true", "backbone=resnet18",
                                                  "output_dir=" + bad_runs.finished(t, "image", m)],
                                    ["backbone=tiny-cnn", "not backbone=resnet18"]),
    "resume-image-other-method": (lambda t, m: ["run", "image", "resume=true", "backbone=tiny-cnn", "method=byol",
                                                "output_dir=" + bad_runs.finished(t, "image", m)],
                                  ["method=simclr", "not method=byol"]),
    "resume-image-text-other-model": (lambda t, m: ["run", "image-text", "resume=true", "model=openai/clip-vit",
                                                    "output_dir=" + bad_runs.finished(t, "image-text", m)],
                                      ["model=tiny-clip", "not model=openai/clip-vit"]),
    "resume-not-a-contrastkit-folder": (lambda t, m: ["run", "text", "resume=true", m,
                                                      "output_dir=" + bad_runs.not_contrastkit(t)],
                                        ["theirs", "not written by a contrastkit run"]),
    "resume-before-first-checkpoint": (lambda t, m: ["run", "text", "resume=true", m,
                                                     "output_dir=" + bad_runs.stopped_early(t, m)],
                                       ["stopped", "no complete checkpoint", "without resume=true"]),
    "output-dir-in-use": (lambda t, m: ["run", "text", m, "overwrite=true", "output_dir=" + bad_runs.busy(t)],
                          ["busy", "in use by another run", f"PID {__import__('os').getpid()}"]),
    "output-dir-in-use-resume": (lambda t, m: ["run", "text", m, "resume=true", "output_dir=" + bad_runs.busy(t)],
                                 ["busy", "in use by another run"]),
    "max-seq-length-beyond-model": (lambda t, m: ["run", "text", "data=" + _csv(t, "p.csv", PAIRS), m,
                                                  "max_seq_length=4096"], ["max_seq_length", "4096", "at most 128"]),
    "max-seq-length-one-over": (lambda t, m: ["run", "text", "data=" + _csv(t, "p.csv", PAIRS), m,
                                              "max_seq_length=129"], ["129", "max_seq_length=128 or less"]),
    "image-gpus-the-machine-lacks": (lambda t, m: ["run", "image", "data=" + _image_folder(t, "ok"),
                                                   "accelerator=gpu", "devices=64", *IMG],
                                     ["accelerator=gpu", "devices=64", "CPU cores", "accelerator=auto"]),
    "image-strategy-the-machine-lacks": (lambda t, m: ["run", "image", "data=" + _image_folder(t, "ok"),
                                                       "accelerator=cpu", "strategy=fsdp", *IMG],
                                         ["strategy=fsdp", "GPU"]),
    "image-zero-devices": (lambda t, m: ["run", "image", "data=" + _image_folder(t, "ok"), "accelerator=cpu",
                                         "devices=0", *IMG], ["devices=0"]),
    **{f"recipe-file-{kind}-error": (lambda t, m, kind=kind: ["run", bad_runs.broken_recipe(t, kind), m],
                                     ["mine.py", f"line {bad_runs.BROKEN_LINE}", "fix"])
       for kind in ("syntax", "import", "name")},
    # rerank and sparse
    **{f"{recipe}-{name}-columns": (
        lambda t, m, recipe=recipe, text=text, cols=cols: ["run", recipe, "data=" + _csv(t, "d.csv", text), m],
        [f"the {recipe} recipe needs", cols, "use the text recipe"])
       for recipe in ("rerank", "sparse")
       for name, text, cols in (("single-text", TEXT_ONLY, "[text] is single data"),
                                ("text-label", TEXT_LABEL, "[text, label] is labeled data"))},
    "rerank-missing-retriever": (lambda t, m: ["run", "rerank", "data=" + _csv(t, "p.csv", PAIRS), m,
                                               "retriever=/nope"], ["retriever folder '/nope' does not exist"]),
    "rerank-hub-retriever-offline": (lambda t, m: ["run", "rerank", "data=" + _csv(t, "p.csv", PAIRS), m,
                                                   "retriever=someone/no-such-retriever"],
                                     ["retriever 'someone/no-such-retriever'", "cannot be downloaded"]),
    "sparse-missing-retriever": (lambda t, m: ["run", "sparse", "data=" + _csv(t, "p.csv", PAIRS), m,
                                               "active_dims=8", "retriever=/nope"],
                                 ["retriever folder '/nope' does not exist"]),
    "rerank-unknown-loss": (lambda t, m: ["run", "rerank", "loss=bcee", m], ["bcee", "Did you mean 'bce'"]),
    "rerank-loss-needs-scores": (lambda t, m: ["run", "rerank", "data=" + _csv(t, "p.csv", PAIRS), m,
                                               "retriever=/nonexistent/retriever", "loss=mse"],
                                 ["rerank loss 'mse' needs score data", "pair data", "loss=auto"]),
    "rerank-loss-needs-negatives": (lambda t, m: ["run", "rerank", "data=" + _csv(t, "p.csv", PAIRS), m,
                                                  _retriever(m), "loss=bce", "mine_hard_negatives=false"],
                                    ["loss=bce needs negatives", "mine_hard_negatives=false", "loss=mnrl"]),
    **{f"{recipe}-max-seq-length-beyond-model": (
        lambda t, m, recipe=recipe: ["run", recipe, "data=" + _csv(t, "p.csv", PAIRS), m, _retriever(m),
                                     "active_dims=8" if recipe == "sparse" else "top_k=5", "max_seq_length=129"],
        ["max_seq_length", "129", "max_seq_length=128 or less"]) for recipe in ("rerank", "sparse")},
    **{f"{recipe}-mine-{kind}-data": (
        lambda t, m, recipe=recipe, text=text: ["run", recipe, "data=" + _csv(t, "d.csv", text), m, _retriever(m),
                                                "active_dims=8" if recipe == "sparse" else "top_k=5",
                                                "mine_hard_negatives=true"],
        ["mine_hard_negatives=true needs anchor/positive pairs", f"is {kind} data"])
       for recipe in ("rerank", "sparse") for kind, text in (("score", SCORES), ("triplet", TRIPLETS))},
    "sparse-active-dims-with-splade": (lambda t, m: ["run", "sparse", "data=" + _csv(t, "p.csv", PAIRS), m,
                                                     "head=splade", "active_dims=8"],
                                       ["active_dims= applies only to a CSR head", "head=csr"]),
    "sparse-similarity-on-scores": (lambda t, m: ["run", "sparse", "data=" + _csv(t, "s.csv", SCORES), m,
                                                  "similarity=dot"],
                                    ["similarity=dot", "anchor/positive pairs", "score data", "drop similarity="]),
    "sparse-scale-on-labels": (lambda t, m: ["run", "sparse", "data=" + _csv(t, "b.csv", BINARY), m, "scale=5"],
                               ["scale=5", "binary data", "drop scale="]),
    "text-num-negatives-triplet-loss": (lambda t, m: ["run", "text", "data=" + _csv(t, "p.csv", PAIRS), m,
                                                      "loss=triplet", "mine_hard_negatives=true", "num_negatives=3"],
                                        ["loss=triplet", "num_negatives=3", "use num_negatives=1"]),
    "text-num-negatives-mining-off": (lambda t, m: ["run", "text", "data=" + _csv(t, "p.csv", PAIRS), m,
                                                    "mine_hard_negatives=false", "num_negatives=2"],
                                      ["num_negatives=2", "mining is off", "drop num_negatives="]),
    **{f"{recipe}-num-negatives-on-triplet-data": (
        lambda t, m, recipe=recipe: ["run", recipe, "data=" + _csv(t, "t.csv", TRIPLETS), m, "num_negatives=2",
                                     *([_retriever(m)] if recipe != "text" else [])],
        ["num_negatives=2", "the data is triplet data", "drop num_negatives="]) for recipe in ("text", "rerank",
                                                                                             "sparse")},
    "sparse-unknown-head": (lambda t, m: ["run", "sparse", "head=splad", m], ["splad", "Did you mean 'splade'", "csr or splade"]),
    "sparse-unknown-similarity": (lambda t, m: ["run", "sparse", "similarity=cos", m], ["cos", "cosine or dot"]),
    "text-report-to-missing-package": (lambda t, m: ["run", "text", "data=" + _csv(t, "p.csv", PAIRS),
                                                     "report_to=neptune", m], ["report_to=neptune", "pip install"]),
    "text-report-to-unknown": (lambda t, m: ["run", "text", "report_to=wandbb", m], ["wandbb", "Did you mean 'wandb'"]),
    "text-scale-zero": (lambda t, m: ["run", "text", "data=" + _csv(t, "p.csv", PAIRS), "scale=0", m],
                        ["'scale'", "> 0"]),
    # options the loss would silently ignore
    "text-mini-batch-size-no-cached-twin": (lambda t, m: ["run", "text", "data=" + _csv(t, "s.csv", SCORES), m,
                                                          "loss=cosent", "mini_batch_size=8"],
                                            ["mini_batch_size=", "loss=cosent", "no cached (GradCache) version"]),
    "text-scale-loss-without-scale": (lambda t, m: ["run", "text", "data=" + _csv(t, "p.csv", PAIRS), m,
                                                    "loss=gist", "scale=10"],
                                      ["scale= applies only to", "loss=gist", "drop scale="]),
    "text-scale-auto-binary": (lambda t, m: ["run", "text", "data=" + _csv(t, "b.csv", BINARY), m, "scale=10"],
                               ["scale=", "online_contrastive", "loss=auto"]),
    "text-length-batching-scores": (lambda t, m: ["run", "text", "data=" + _csv(t, "s.csv", SCORES), m,
                                                  "length_batching=true"],
                                    ["length_batching=true", "in-batch-negative losses", "cosent"]),
    "sparse-negative-scale": (lambda t, m: ["run", "sparse", "scale=-1", m], ["scale", "> 0"]),
    "sparse-splade-without-masked-lm": (lambda t, m: ["run", "sparse", "data=" + _csv(t, "p.csv", PAIRS), m,
                                                      "head=splade"], ["head=splade", "masked-language-model",
                                                                       "head=csr"]),
    # the tiny model is 32 wide: a 128-dimension CSR head, of which training keeps 4 x active_dims
    "sparse-active-dims-beyond-head": (lambda t, m: ["run", "sparse", "data=" + _csv(t, "p.csv", PAIRS), m,
                                                     "active_dims=33"],
                                       ["active_dims", "33", "128 dimensions", "active_dims=32 or fewer"]),
    # static embeddings (model=static): options that cannot apply, data they cannot learn from, the dense source
    "static-max-seq-length": (lambda t, m: ["run", "text", "model=static", "max_seq_length=64"],
                              ["max_seq_length=64", "model=static", "drop max_seq_length"]),
    "static-max-train-tokens": (lambda t, m: ["run", "text", "model=static", "max_train_tokens=32"],
                                ["max_train_tokens=32", "model=static", "drop max_train_tokens"]),
    **{f"static-loss-{loss}": (lambda t, m, loss=loss: ["run", "text", "model=static", f"loss={loss}"],
                               [f"loss={loss} cannot train model=static", "loss=auto"])
       for loss in ("simcse", "tsdae", "gist", "cached_gist")},
    "static-single-texts": (lambda t, m: ["run", "text", "data=" + _csv(t, "t.csv", TEXT_ONLY), "model=static",
                                          "distill_from=" + m.partition("=")[2]],
                            ["model=static", "single texts", "anchor/positive pairs"]),
    "static-zero-dims": (lambda t, m: ["run", "text", "model=static", "static_dims=0"], ["static_dims", "> 0"]),
    "distill-from-without-static": (lambda t, m: ["run", "text", m, "distill_from=all-MiniLM-L6-v2"],
                                    ["distill_from", "add model=static"]),
    "static-missing-distill-from": (lambda t, m: ["run", "text", "data=" + _csv(t, "p.csv", PAIRS), "model=static",
                                                  "distill_from=" + str(t / "no-model")],
                                    ["distill_from folder", "no-model", "does not exist"]),
    "static-hub-distill-from-offline": (lambda t, m: ["run", "text", "data=" + _csv(t, "p.csv", PAIRS),
                                                      "model=static", "distill_from=someone/no-such-model"],
                                        ["distill_from 'someone/no-such-model'", "cannot be downloaded"]),
    # other commands
    "push-missing-folder": (lambda t, m: ["push", str(t / "no-output"), "alice/model"], ["no-output"]),
    "push-unknown-option": (lambda t, m: ["push", str(t / "no-output"), "alice/model", "privat=true"],
                            ["unknown option 'privat'", "Did you mean 'private'", "The options are: private"]),
    "push-a-file": (lambda t, m: ["push", _csv(t, "p.csv", PAIRS), "alice/model"], ["p.csv' is a file"]),
    "push-demo-without-model": (lambda t, m: ["push-demo", "alice/space", "--dry-run"], ["model"]),
    "demo-unknown-option": (lambda t, m: ["demo", "prot=7860"], ["prot", "Did you mean 'port'"]),
}


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_one_line(case, tmp_path, tiny_text_model, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    build, words = CASES[case]
    args = build(tmp_path, f"model={tiny_text_model}")
    before = _snapshot(tmp_path)
    paths = set(tmp_path.rglob("*"))
    code = main(args)
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("contrastkit: error:")]
    assert code == 2, err
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], lines[0]
    assert "Traceback" not in err
    after = _snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before  # the user's files are untouched
    assert sorted(map(str, set(tmp_path.rglob("*")) - paths)) == []  # and no output folder was created


REAL_PROCESS_CASES = ["wrong-columns", "unknown-key", "missing-file", "rerank-missing-retriever"]


@pytest.fixture(scope="module")
def real_processes(tmp_path_factory, tiny_text_model):
    """Each REAL_PROCESS_CASES case's CLI process, all started at once: their imports take turns on the cores, not
    on the clock. Output goes to files (an unread full pipe would stall a process until its test reads it)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    started = {}
    for case in REAL_PROCESS_CASES:
        tmp = tmp_path_factory.mktemp(case)
        args = CASES[case][0](tmp, f"model={tiny_text_model}")
        with (tmp / "stdout.txt").open("w") as out, (tmp / "stderr.txt").open("w") as err:
            started[case] = (subprocess.Popen([*CLI, *map(str, args)], cwd=tmp, env=env, stdout=out, stderr=err), tmp)
    yield started
    for proc, _ in started.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("case", REAL_PROCESS_CASES)
def test_bad_input_in_a_real_process_prints_no_traceback(case, real_processes):
    proc, tmp = real_processes[case]
    returncode = proc.wait(timeout=600)
    stdout, stderr = (tmp / "stdout.txt").read_text(), (tmp / "stderr.txt").read_text()
    assert returncode == 2
    assert "Traceback" not in stderr and "Traceback" not in stdout
    error_lines = [line for line in stderr.splitlines() if "error:" in line]
    assert len(error_lines) == 1 and all(w in error_lines[0] for w in CASES[case][1])


def test_python_api_raises_the_same_user_error(tmp_path, monkeypatch):
    from contrastkit.plugins.errors import UserError
    from contrastkit.recipes import text

    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="nope.csv"):
        text.run(data=str(tmp_path / "nope.csv"))
    with pytest.raises(UserError, match="Did you mean 'epochs'"):
        text.run(epoch=1)
    from contrastkit.recipes import rerank

    with pytest.raises(UserError) as another_recipes:  # both classes are called Config: the modules tell them apart
        text.run(rerank.Config())
    assert str(another_recipes.value).endswith("not a contrastkit.recipes.rerank.Config; pass it to "
                                                "contrastkit.recipes.rerank.run() instead")
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("name", ["text", "image", "rerank", "sparse", "image_text"])
def test_a_refused_python_run_leaves_no_folder_and_no_lock_at_once(name, tmp_path, monkeypatch):
    import importlib

    from contrastkit.plugins import run
    from contrastkit.plugins.errors import UserError

    monkeypatch.chdir(tmp_path)
    recipe = importlib.import_module(f"contrastkit.recipes.{name}")
    with pytest.raises(UserError, match="nope"):  # refused after the output folder was made and locked
        recipe.run(data=str(tmp_path / "nope"))
    assert run._ACTIVE is None
    assert list(tmp_path.iterdir()) == []  # the timestamped folder under outputs/ is gone again
