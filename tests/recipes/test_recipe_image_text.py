"""The image-text recipe: a real tiny CLIP trains 2 steps on a few drawn images; bad input is one line, exit 2."""

from __future__ import annotations

import csv
import json

import pytest
from contrastkit.recipes.cli import main

from tests.conftest import assert_no_file_holds, run_cli


@pytest.fixture(scope="module")
def clip_cache(tmp_path_factory) -> str:
    """One tiny-CLIP cache for the module (the recipe builds the model there on first use)."""
    return str(tmp_path_factory.mktemp("ck-cache"))


@pytest.fixture
def shapes_csv(tmp_path, monkeypatch, clip_cache):
    """24 drawn 32 px images with captions, in tmp_path/data/shapes.csv (image paths relative to the CSV)."""
    from contrastkit.plugins.st.shapes import make_shapes

    monkeypatch.setenv("CONTRASTKIT_CACHE", clip_cache)
    return make_shapes(tmp_path / "data", n=24, seed=1)


def _rewrite(path, change):
    rows = list(csv.DictReader(path.open()))
    change(rows)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_trains_two_steps_and_reloads_as_plain_sentence_transformer(shapes_csv, tmp_path, monkeypatch):
    from contrastkit.recipes import image_text
    from PIL import Image
    from sentence_transformers import SentenceTransformer

    monkeypatch.setenv("HOME", str(tmp_path))  # the data and the output folder are under "home"
    out = tmp_path / "out"
    result = image_text.run(data=str(shapes_csv), max_steps=2, batch_size=8, logging_steps=1, output_dir=str(out))
    assert result.metrics["train"]["global_step"] == 2
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("heldout_image_to_text_cosine_recall@1", "heldout_text_to_image_cosine_recall@5"):
        assert key in metrics["before"] and key in metrics["after"] and key in metrics["before_after"]
    assert "randomly initialised tiny CLIP" in metrics["base_model"]
    assert metrics["train_rows"] == 22 and metrics["eval_rows"] == 2
    card = (out / "README.md").read_text()
    assert "randomly initialised tiny CLIP" in card and "cosine_recall@1" in card
    assert (out / "config.yaml").exists() and (out / "loss.png").exists()
    assert (out / "checkpoints").is_dir() and not list(out.rglob("training_args.bin"))  # no pickle with local paths
    assert_no_file_holds(out, str(tmp_path))

    model = SentenceTransformer(str(out), device="cpu")
    image = model.encode([Image.open(shapes_csv.parent / "shapes" / "0000.png")])
    texts = model.encode(["a small red circle on the left on a blue background", "a large green square"])
    assert image.shape == (1, 32) and texts.shape == (2, 32)
    assert abs(float(model.similarity(texts[:1], texts[1:]))) < 0.999  # different texts, different embeddings

    from contrastkit.demo import compare, core  # the demo's text<->image tab takes the output as it is

    slot = core.load_slot("fine-tuned", str(out))
    assert slot.error is None and slot.embeds("text", "image")
    scores = compare.compare_text_image([slot], str(shapes_csv.parent / "shapes" / "0001.png"), "a red circle\nblue",
                                     max_bytes=10**7)
    assert len(scores.by_model["fine-tuned"]) == 2


def test_tiny_clip_is_deterministic_and_separates_texts(tmp_path):
    from contrastkit.plugins.st.clip import build_tiny_clip
    from safetensors.numpy import load_file
    from sentence_transformers import SentenceTransformer

    a, b = build_tiny_clip(tmp_path / "a", seed=3), build_tiny_clip(tmp_path / "b", seed=3)
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys() and all((wa[k] == wb[k]).all() for k in wa)
    emb = SentenceTransformer(str(a), device="cpu").encode(["red circle", "blue square", "x"])
    assert len({tuple(e.round(5)) for e in emb}) == 3  # the EOS id is right, so texts do not collapse


def test_skip_missing_skips_and_counts(shapes_csv, tmp_path):
    from contrastkit.recipes import image_text

    (shapes_csv.parent / "shapes" / "0003.png").unlink()
    _rewrite(shapes_csv, lambda rows: rows[5].update(caption="  "))
    out = tmp_path / "out"
    result = image_text.run(data=str(shapes_csv), skip_missing=True, max_steps=1, batch_size=8, output_dir=str(out))
    assert result.metrics["skipped_missing_images"] == 1 and result.metrics["skipped_empty_captions"] == 1
    assert result.metrics["train_rows"] + result.metrics["eval_rows"] == 22


def test_text_only_model_is_refused(shapes_csv, tmp_path, tiny_text_model):
    from contrastkit.plugins.errors import UserError
    from contrastkit.recipes import image_text

    with pytest.raises(UserError, match="image-text model"):
        image_text.run(data=str(shapes_csv), model=tiny_text_model, max_steps=1, output_dir=str(tmp_path / "o"))


def test_bundled_sample_is_complete():
    from contrastkit.plugins import data
    from contrastkit.plugins.st import clip_data
    from contrastkit.recipes.image_text import SAMPLE_DATA

    path = data.sample_path(SAMPLE_DATA)
    pairs, stats = clip_data.image_text_pairs(data.load_file(path), base_dir=__import__("pathlib").Path(path).parent)
    assert stats.rows == 400 and not stats.notes()
    assert pairs[0]["image"].size == (32, 32) and pairs[0]["text"].startswith("a ")


def _bad(shapes_csv, tmp_path, *extra, in_this_process=None):
    """Run the CLI from another folder (relative image paths must follow the CSV, not the cwd): in a real process, or,
    given ``(monkeypatch, capfd)``, through the same entry point in this one. Returns its one stderr line."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    args = ["run", "image-text", f"data={shapes_csv}", "max_steps=1", f"output_dir={tmp_path / 'o'}", *extra]
    if in_this_process is None:
        done = run_cli(*args, cwd=elsewhere)
        returncode, stderr = done.returncode, done.stderr
    else:
        monkeypatch, capfd = in_this_process
        monkeypatch.chdir(elsewhere)
        capfd.readouterr()
        returncode, stderr = main(args), capfd.readouterr().err
    lines = stderr.strip().splitlines()
    assert returncode == 2, stderr[-2000:]
    assert "Traceback" not in stderr and len(lines) == 1, stderr
    return lines[0]


def test_bad_inputs_are_one_line_errors(shapes_csv, tmp_path, monkeypatch, capfd):
    """The first in a real process (exit 2, no traceback); the rest, refused while reading the captions as the first
    is, through the CLI's entry point in this process, which skips a fresh process's imports."""
    (shapes_csv.parent / "shapes" / "0004.png").unlink()
    (shapes_csv.parent / "shapes" / "0009.png").write_bytes(b"not a png")
    line = _bad(shapes_csv, tmp_path)
    assert "shapes/0004.png" in line and "2 of 24" in line and "skip_missing=true" in line

    here = (monkeypatch, capfd)
    original = shapes_csv.read_text()
    _rewrite(shapes_csv, lambda rows: [r.update(image="shapes/0000.png") for r in rows])
    _rewrite(shapes_csv, lambda rows: rows[7].update(caption=""))
    line = _bad(shapes_csv, tmp_path, in_this_process=here)
    assert "line 9" in line and "empty caption" in line
    _rewrite(shapes_csv, lambda rows: [r.update(caption=str(i)) for i, r in enumerate(rows)])
    line = _bad(shapes_csv, tmp_path, in_this_process=here)
    assert "'caption'" in line and "not text" in line
    shapes_csv.write_text(original)
    line = _bad(shapes_csv, tmp_path, "columns={image: picture}", in_this_process=here)
    assert "picture" in line and "not a column" in line
    line = _bad(shapes_csv, tmp_path, "columns={image: image, text: image}", in_this_process=here)
    assert line == ("contrastkit: error: columns maps text to 'image', which is also the image column; map image and "
                    "text to two different columns of data (found: image, caption)")


def test_in_memory_images_and_column_mapping():
    import datasets
    from contrastkit.plugins.st.clip_data import image_text_pairs
    from contrastkit.plugins.st.shapes import draw_shape

    rows = {"picture": [draw_shape("circle", "red", "blue", "small", "on the left"),
                        draw_shape("cross", "white", "black", "large", "at the top")],
            "alt": ["a small red circle", "a large white cross"]}
    ds = datasets.Dataset.from_dict(rows)
    assert isinstance(ds.features["picture"], datasets.Image)  # what a Hub image dataset looks like
    pairs, stats = image_text_pairs(ds, columns={"image": "picture", "text": "alt"})
    assert pairs.column_names == ["image", "text"] and stats.rows == 2
    image = pairs[1]["image"]
    assert image.mode == "RGB" and image.size == (32, 32) and image.getpixel((0, 31)) == (15, 15, 15)


def _png_bytes(color):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_broken_or_empty_image_in_an_image_column_is_one_line_or_skipped_and_counted(tmp_path):
    """Parquet exported from datasets (and Hub datasets) hold the images' bytes: a broken one or a None is named by
    its row, as a missing file is, or skipped with skip_missing=true."""
    import datasets
    from contrastkit.plugins.st.clip_data import image_text_pairs

    colours = [(250, 0, 0), (0, 250, 0), (0, 0, 250), (250, 250, 0), (0, 250, 250)]
    images = [{"bytes": _png_bytes(c), "path": f"{i}.png"} for i, c in enumerate(colours)]
    images[1], images[3] = {"bytes": b"not a png", "path": "broken.png"}, None
    features = datasets.Features({"image": datasets.Image(), "text": datasets.Value("string")})
    ds = datasets.Dataset.from_dict({"image": images, "text": [f"colour {i}" for i in range(5)]}, features=features)
    pq = tmp_path / "pairs.parquet"
    ds.to_parquet(pq)
    done = run_cli("run", "image-text", f"data={pq}", "max_steps=1", f"output_dir={tmp_path / 'o'}")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        ("contrastkit: error: image in row 2 is not an image file that Pillow can read; 2 of 5 image(s) in all are "
         "missing or unreadable: replace or remove it in column 'image', or pass skip_missing=true")]
    assert not (tmp_path / "o").exists()

    pairs, stats = image_text_pairs(ds, skip_missing=True)
    assert pairs["text"] == ["colour 0", "colour 2", "colour 4"]
    assert [im.getpixel((0, 0)) for im in pairs["image"]] == [colours[0], colours[2], colours[4]]
    assert stats.notes() == ["skipped 2 row(s) whose image file is missing or unreadable: row 2, row 4"]


def test_image_urls_in_a_captions_csv_are_named_as_urls_to_download(shapes_csv):
    from contrastkit.plugins import data
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.st.clip_data import image_text_pairs

    _rewrite(shapes_csv, lambda rows: rows[3].update(image="https://example.com/cat.jpg"))
    rows = data.with_row_numbers(data.load_file(shapes_csv))
    for skip in (False, True):  # no row of this kind can be read: skipping would hide a whole column's mistake
        with pytest.raises(UserError) as err:
            image_text_pairs(rows, base_dir=shapes_csv.parent, skip_missing=skip)
        assert str(err.value) == (
            "column 'image' holds URLs, not file paths (1 of 24, first line 5: https://example.com/cat.jpg); the "
            "recipe reads local files only and downloads nothing: download the images and give their file paths in "
            "column 'image'")


def test_a_whole_datasetdict_as_data_holds_out_its_test_split(tmp_path, capsys):
    import datasets
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.st.shapes import draw_shape
    from contrastkit.recipes import image_text

    def split(shapes):
        return datasets.Dataset.from_dict({"image": [draw_shape(s, c, "black", "small", "on the left")
                                                     for s, c in shapes],
                                           "text": [f"a small {c} {s}" for s, c in shapes]})

    colors = ["red", "blue", "green", "white"]
    train = split([(s, c) for s in ("circle", "cross", "square") for c in colors])
    one_image = datasets.Dataset.from_dict({"image": [draw_shape("triangle", "red", "black", "small", "on the left")] * 2,
                                            "text": ["a small red triangle", "a red triangle on the left"]})
    dd = datasets.DatasetDict({"train": train, "validation": one_image, "test": split([("triangle", "blue")] * 1)})
    with pytest.raises(UserError) as err:  # the user gave no eval_data: the message names the split they gave
        image_text.run(data=dd, max_steps=1, output_dir=str(tmp_path / "refused"))
    assert str(err.value) == ("the 'validation' split of the DatasetDict given as data holds 1 image (2 row(s)); "
                              "image-text retrieval needs 2 or more different images: add images to that split, pick "
                              "another with eval_split= (test), or give eval_data=")
    assert not (tmp_path / "refused").exists()

    dd = datasets.DatasetDict({"train": train, "validation": split([("triangle", c) for c in colors])})
    result = image_text.run(data=dd, max_steps=1, batch_size=4, output_dir=str(tmp_path / "out"))
    assert (result.metrics["train_rows"], result.metrics["eval_rows"]) == (12, 4)
    assert "held out: the 'validation' split of the DatasetDict" in capsys.readouterr().out
