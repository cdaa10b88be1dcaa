"""An image run in the demo: compared with the encoder it started from, on held-out images of its own classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from contrastkit.demo import app, core

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
    pair = app.example_pairs(app.run_examples(tuned))
    assert [Path(p).name for p in pair[0]] == ["class0-0.png", "class0-1.png"]  # the same class
    assert [Path(p).name for p in pair[1]] == ["class0-0.png", "class1-0.png"]  # two classes
    scores = core.compare_images(slots, *pair[1], 10 * MB)
    # the base's number is what the untouched pretrained backbone gives on its own
    net, spec = create_backbone("efficientnet-lite0")
    emb = embed_with(net.eval(), pair[1], make_preprocess(32, spec["normalize"]))
    assert scores.by_model["base"][0] == pytest.approx(float(emb[0] @ emb[1]), abs=1e-5)
    assert scores.by_model["fine-tuned"][0] != pytest.approx(scores.by_model["base"][0], abs=1e-6)


def test_compare_to_still_picks_the_base_and_a_text_base_cannot_embed_images(image_run, tiny_text_model):
    slots, status = app.load_slots(app.DemoConfig(model=str(image_run), compare_to=tiny_text_model))
    assert slots[0].name == tiny_text_model and slots[0].kind == "dense"
    assert "started from" not in status
    scores = core.compare_images(slots, *app.example_pairs(app.run_examples(slots[1]))[0], 10 * MB)
    assert scores.by_model["base"] is None and np.isfinite(scores.by_model["fine-tuned"][0])


def test_a_random_backbone_run_says_its_base_is_random(tmp_path):
    from contrastkit.recipes import image

    out = tmp_path / "out"
    image.run(data=str(_folder(tmp_path / "images")), output_dir=str(out), backbone="tiny-cnn", image_size=16,
              batch_size=8, max_steps=2)
    slots, _ = app.load_slots(app.DemoConfig(model=str(out)))
    assert slots[0].kind == "image" and "random weights" in slots[0].name
