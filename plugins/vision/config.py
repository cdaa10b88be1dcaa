"""The image recipe's config parts: how the method trains (``MethodArgs``, read by ``SSLModule``) and how
Lightning runs it (``LightningArgs``). No torch here, so ``contrastkit show image`` stays fast."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

from ..config import Part, field, require_positive, require_range
from ..errors import UserError
from .methods import METHOD_NAMES, SSL_DEFAULT, check_method, get_method

#: learning-rate schedules SSLModule knows
LR_SCHEDULES = ("constant", "cosine")


def check_lr_schedule(lr_schedule: str) -> None:
    """A schedule SSLModule knows; the config and SSLModule both check it."""
    if lr_schedule not in LR_SCHEDULES:
        raise UserError(f"config field 'lr_schedule' must be {' or '.join(LR_SCHEDULES)}, got '{lr_schedule}'")


def check_transform(method: str, image_size: int, options: dict) -> None:
    """``method``'s transform with ``options`` builds and runs on an image (a value out of range often fails only
    when applied); else a one-line error naming the options that fail alone, or all of them."""
    from PIL import Image

    from .methods import make_transform

    def fails(opts: dict) -> Exception | None:
        try:
            with warnings.catch_warnings():  # torchvision warns before it fails; the error below says it once
                warnings.simplefilter("ignore")
                make_transform(method, image_size, {"mean": [0.5] * 3, "std": [0.5] * 3}, opts)(
                    Image.new("RGB", (image_size, image_size), (120, 90, 60)))
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the user's options is reported as theirs
            return exc
        return None

    if (exc := fails(options)) is None:
        return
    bad = {k: v for k, v in options.items() if fails({k: v})} or options
    what = ", ".join(f"{k}={v}" for k, v in bad.items())
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    raise UserError(f"transform option(s) {what} fail on an image with {method}'s lightly transform ({reason}); "
                    f"give values in their ranges (see help(lightly.transforms); e.g. min_scale between 0 and 1)")


@dataclasses.dataclass
class MethodArgs(Part):
    """The method, its backbone and how they train: every field but image_size and transform is an SSLModule
    keyword of the same name."""

    method: str = field("auto", f"auto (the default: supcon when the data has labels, {SSL_DEFAULT} otherwise), or one "
                                f"of: {', '.join(METHOD_NAMES)}", group="recipe")
    backbone: str = field("efficientnet-lite0", "efficientnet-lite0 (ImageNet-pretrained; the default), resnet18, "
                                                "resnet50, tiny-cnn, timm:<name>, or a folder saved by contrastkit",
                          group="recipe")
    weights: str | None = field(None, "local .safetensors/.pth state dict for resnet*/timm backbones", group="recipe")
    small_stem: bool | None = field(None, "resnet: 3x3 stem without max-pool (default: on for image_size <= 32)",
                                    group="recipe")
    freeze_bn: bool | None = field(None, "keep the backbone's BatchNorm statistics fixed (default: on when "
                                         "pretrained)", group="recipe")
    head_batch_norm: bool = field(True, "keep the BatchNorm1d layers of lightly's projection head (default on)",
                                  group="recipe")
    transform: dict | None = field(None, "keyword arguments for the method's lightly transform, e.g. "
                                         "{min_scale: 0.2, gaussian_blur: 0.0}", group="recipe")
    image_size: int = field(64, "training and embedding resolution in pixels (default 64)", group="recipe")
    temperature: float | None = field(None, "loss temperature (default: the method's, e.g. 0.2 for simclr)",
                                      group="recipe")
    weight_decay: float = field(1e-4, "AdamW weight decay (default 1e-4)", group="recipe")
    warmup_steps: int = field(0, "linear learning-rate warm-up over the first N steps (default 0)", group="recipe")
    lr_schedule: str = field("constant", "constant (the default), or cosine: decay to 0 over the run", group="recipe")
    backbone_lr_scale: float = field(1.0, "the backbone's learning rate as a fraction of learning_rate (default 1)",
                                     group="recipe")
    freeze_fraction: float | None = field(None, "keep up to this fraction of the backbone's weights fixed, whole "
                                                "tensors, earliest first (default: 0.3 pretrained, 0 random)",
                                          group="recipe")
    head_warmup_steps: int = field(0, "train only the projection head for the first N steps (default 0)",
                                   group="recipe")
    memory_bank_size: int | None = field(None, "moco: keys of past batches kept as negatives (default 4,096, at "
                                               "most a quarter of the images per epoch)", group="recipe")
    channels_last: bool = field(True, "train the backbone in channels-last memory layout (default on: faster)",
                                group="recipe")
    ssl_weight: float = field(0.0, "supcon: add the self-supervised (SimCLR) loss on the same views at this weight "
                                   "(default 0: labels only)", group="recipe")

    def check(self) -> None:
        """Known method and schedule, sizes and shares in range, transform options the method's transform takes."""
        check_method(self.method, auto=True)
        check_lr_schedule(self.lr_schedule)
        method = SSL_DEFAULT if self.method == "auto" else self.method  # auto's choices share simclr's views
        if self.image_size < 8:
            raise UserError(f"config field 'image_size' must be at least 8 pixels, got {self.image_size}")
        require_range(self, "freeze_fraction", 0, 1)
        require_positive(self, "temperature")
        if self.memory_bank_size is not None and (self.method == "auto" or not get_method(self.method).memory_bank):
            banked = "/".join(n for n in METHOD_NAMES if get_method(n).memory_bank)
            raise UserError(f"config field 'memory_bank_size' applies to method={banked}, not method={self.method}")
        if self.ssl_weight and self.method not in ("auto", "supcon"):
            raise UserError(f"config field 'ssl_weight' applies to method=supcon (or auto on labelled images), not "
                            f"method={self.method}; leave it out")
        for name in ("warmup_steps", "head_warmup_steps", "backbone_lr_scale", "memory_bank_size", "ssl_weight"):
            if (getattr(self, name) or 0) < 0:
                raise UserError(f"config field '{name}' must be >= 0, got {getattr(self, name)}")
        if self.transform:  # a wrong option fails here, before the data and the model load
            check_transform(method, self.image_size, self.transform)

    def module_kwargs(self) -> dict[str, Any]:
        """SSLModule's keywords from this config and the recipe's ``learning_rate`` (``small_stem`` defaults from
        ``image_size``)."""
        skip = {"method", "backbone", "image_size", "transform"}
        kwargs = {f.name: getattr(self, f.name) for f in dataclasses.fields(MethodArgs) if f.name not in skip}
        kwargs["small_stem"] = self.small_stem if self.small_stem is not None else self.image_size <= 32
        # the recipe's Config declares learning_rate (the field every recipe has), not MethodArgs; SSLModule
        # reads it too, so it is passed on here (tests/recipes/test_recipe_image.py checks that it arrives)
        kwargs["learning_rate"] = getattr(self, "learning_rate", None)
        return kwargs


@dataclasses.dataclass
class LightningArgs(Part):
    """How Lightning runs the training, what it keeps of it, and the kNN evaluation around it."""

    ema_decay: float = field(0.0, "save an exponential moving average of the weights with this decay, e.g. 0.9 "
                                  "(0: off, the default)", group="training")
    wise_ft: float | str | None = field(None, "WiSE-FT: the share of its change the backbone keeps when training "
                                              "ends (default: 0.65 for a pretrained backbone, 1 (off) for supcon or "
                                              "a random one); auto: chosen by kNN "
                                              "on 10% of the labelled training images, set aside", group="training")
    center: bool = field(False, "centre the saved encoder's embeddings: subtract the training images' mean "
                                "embedding, which spreads embeddings that crowd together (default off)",
                         group="training")
    knn_k: int = field(20, "neighbours for the kNN evaluation (default 20)", group="training")
    knn_t: float = field(0.1, "temperature of the weighted kNN vote (default 0.1)", group="training")
    num_workers: int = field(-1, "data-loader worker processes (-1: half the CPU cores, 0 on 2 cores or fewer)",
                             group="training")
    accelerator: str = field("auto", "Lightning accelerator: auto, cpu, gpu, mps, ...", group="training")
    devices: Any = field("auto", "Lightning devices: auto, a count, or a list of ids", group="training")
    strategy: str = field("auto", "Lightning strategy: auto, ddp, ddp_spawn, fsdp, ...", group="training")
    num_nodes: int = field(1, "machines for multi-node training", group="training")

    def check(self) -> None:
        """Positive neighbours and nodes; averaging and blending shares in range."""
        require_positive(self, "knn_k", "knn_t", "num_nodes")
        require_range(self, "ema_decay", 0, 1, high_open=True, note="0: off")
        if isinstance(self.wise_ft, str) and self.wise_ft != "auto":
            raise UserError(f"config field 'wise_ft' expects a share between 0 and 1 (1: off) or auto, "
                            f"got '{self.wise_ft}'")
        if self.wise_ft != "auto":
            require_range(self, "wise_ft", 0, 1, note="1: off")
