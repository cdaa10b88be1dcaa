"""An image run in the demo: compared with the encoder it started from, on held-out images of its own classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from contrastkit.demo import app, compare, core, render

from tests.recipes.test_recipe_image import _folder

MB = 2**20


@pytest.fixture(scope="module")
def image_run(tmp_path_factory) -> Path:
    """Two steps (3 held-out images per class) of the image recipe from the packaged pretrained EfficientNet-Lite0 on two labelled classes."""
    from contrastkit.recipes import image

    root = tmp_path_factory.mktemp("image-run")
    out = root / "out"
    image.run(data=str(_folder(root / "images")), eval_data=str(_folder(root / "held-out", per_class=3)),
              output_dir=str(out), image_size=32, batch_size=8, max_steps=2)
    return out


def test_the_run_keeps_held_out_examples_per_class_and_push_leaves_them_out(image_run):
    from contrastkit.plugins.hub import files_to_push

    names = sorted(p.name for p in (image_run / "examples").glob("*.png"))
    assert names == ["class0-0.png", "class0-1.png", "class1-0.png", "class1-1.png"]
    assert not [f for f in files_to_push(image_run) if f.startswith("examples/")]
    assert "model.safetensors" in files_to_push(image_run)


def test_the_base_is_the_pretrained_encoder_the_run_started_from(image_run):
    from contrastkit.plugins.vision.backbones import create_backbone
    from contrastkit.plugins.vision.encoder import embed_with, make_preprocess

    slots, status = app.load_slots(app.DemoConfig(model=str(image_run)))
    base, tuned = slots
    assert base.kind == tuned.kind == "image" and "pretrained weights" in base.name
    assert "the encoder the run started from" in status and "compare_to=" in status
    a, b = app.example_sets(app.run_examples(tuned))[0]  # A, then its class-mate and the other class's first
    assert [Path(p).name for p in [a, *b]] == ["class0-0.png", "class0-1.png", "class1-0.png"]
    assert [Path(p).name for p in app.example_sets(app.run_examples(tuned))[1][1]] == ["class1-1.png",
                                                                                      "class0-0.png"]
    scores = compare.compare_images(slots, a, b, 10 * MB)
    assert scores.rows == ["image A ↔ class0-1.png", "image A ↔ class1-0.png"]
    # the base's numbers are what the untouched pretrained backbone gives on its own
    net, spec = create_backbone("efficientnet-lite0")
    emb = embed_with(net.eval(), [a, *b], make_preprocess(32, spec["normalize"]))
    assert scores.by_model["base"] == pytest.approx([float(emb[0] @ emb[1]), float(emb[0] @ emb[2])], abs=1e-5)
    assert scores.by_model["fine-tuned"][1] != pytest.approx(scores.by_model["base"][1], abs=1e-6)
    html = render.scores_table(scores, slots, "pair", ranks=True)  # each model's order beside its scores
    assert html.count('class="ck-order"') == 4 and html.count("<img") == 3


def test_compare_to_still_picks_the_base_and_a_text_base_cannot_embed_images(image_run, tiny_text_model):
    slots, status = app.load_slots(app.DemoConfig(model=str(image_run), compare_to=tiny_text_model))
    assert slots[0].name == tiny_text_model and slots[0].kind == "dense"
    assert "started from" not in status
    scores = compare.compare_images(slots, *app.example_sets(app.run_examples(slots[1]))[0], 10 * MB)
    assert scores.by_model["base"] is None and np.isfinite(scores.by_model["fine-tuned"][0])
    # text to image needs one model that embeds both: the page says which side embeds what, and what would do
    assert core.needs_sentence(slots, "text", "image") == (
        "This needs a model that embeds both texts and images; the base model embeds text only and the fine-tuned "
        "model embeds image only. Start the demo with an image–text model (model=PATH) to use this tab.")
    image_only = [slots[1]]
    assert core.needs_sentence(image_only, "text").endswith("embeds image only. Start the demo with a text or "
                                                            "image–text model (model=PATH) to use this tab.")


def test_a_random_backbone_run_says_its_base_is_random(tmp_path):
    from contrastkit.recipes import image

    out = tmp_path / "out"
    image.run(data=str(_folder(tmp_path / "images")), output_dir=str(out), backbone="tiny-cnn", image_size=16,
              batch_size=8, max_steps=2)
    slots, _ = app.load_slots(app.DemoConfig(model=str(out)))
    assert slots[0].kind == "image" and "random weights" in slots[0].name
    (out / "config.yaml").write_text("backbone: [unclosed\n")  # a broken config.yaml: the model's own config.json
    slots, _ = app.load_slots(app.DemoConfig(model=str(out)))
    assert slots[0].kind == "image" and slots[0].name.startswith("tiny-cnn (the run's starting point")


def test_a_run_that_continued_a_centred_folder_compares_with_that_folder_as_it_embeds(tmp_path):
    """The base of a run that started from an earlier center=true folder embeds as that folder does: centred."""
    from contrastkit.plugins.vision.encoder import load_encoder
    from contrastkit.recipes import image

    images = _folder(tmp_path / "images")
    fast = {"backbone": "tiny-cnn", "image_size": 16, "batch_size": 8, "max_steps": 2}
    first = image.run(data=str(images), output_dir=str(tmp_path / "first"), center=True, **fast)
    second = image.run(data=str(images), output_dir=str(tmp_path / "second"),
                       **{**fast, "backbone": str(first.output_dir)})
    slots, _ = app.load_slots(app.DemoConfig(model=str(second.output_dir)))
    assert "an earlier contrastkit model" in slots[0].name
    files = [str(p) for p in sorted(images.rglob("*.png"))[:4]]
    earlier = load_encoder(first.output_dir).embed(files)
    assert np.allclose(slots[0].model.embed(files), earlier, atol=1e-5)
    assert not np.allclose(earlier, load_encoder(second.output_dir).embed(files), atol=1e-3)


def test_the_page_opens_on_an_example_where_the_models_disagree_and_says_when_scores_crowd(image_run):
    slots, _ = app.load_slots(app.DemoConfig(model=str(image_run)))
    sets = app.example_sets(app.run_examples(slots[1]))

    def mate_first(slot, a, b):
        scores = compare.compare_images([slot], a, b, 10 * MB).by_model[slot.role]
        return scores.index(max(scores)) == 0

    wins = [(mate_first(slots[0], a, b), mate_first(slots[1], a, b)) for a, b in sets]
    ordered = [(mate_first(slots[0], a, b), mate_first(slots[1], a, b))
               for a, b in app.order_by_disagreement(sets, slots)]
    rank = {(False, True): 0, (True, False): 1}
    assert sorted(wins, key=lambda w: rank.get(w, 2)) == ordered
    note = app.crowding_note({"embedding_spread": {"before": {"mean_cosine": 0.62}, "after": {"mean_cosine": 0.98}}})
    assert "mean cosine 0.98" in note and "0.62 before training" in note and "read the order" in note
    assert "center=true" in note
    assert app.crowding_note({"embedding_spread": {"after": {"mean_cosine": 0.5}}}) == ""
    assert app.crowding_note(None) == ""


def test_tiny_images_are_shown_enlarged_in_whole_pixels():
    import base64
    import io
    import re

    from PIL import Image

    checker = Image.new("RGB", (8, 8), "white")
    checker.putpixel((0, 0), (0, 0, 0))
    tiny, big = (re.findall(r"base64,([^\"]+)", render.thumbnails([img]))[0]
                 for img in (checker, Image.new("RGB", (300, 200))))
    shown = Image.open(io.BytesIO(base64.b64decode(tiny)))
    assert shown.size == (48, 48) and shown.getpixel((5, 5)) == (0, 0, 0) and shown.getpixel((6, 6)) != (0, 0, 0)
    assert Image.open(io.BytesIO(base64.b64decode(big))).size == (96, 64)  # large ones still shrink to 96 px
