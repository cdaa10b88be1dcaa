"""The method table: for each method, lightly's head, loss and multi-view transform, whether a momentum (EMA) encoder
makes the targets, its memory bank, and its training step. ``SSLModule`` reads only this table, so every difference
between methods lives here. Every row is self-supervised but ``supcon``, which also reads the batch's labels;
``choose_method`` settles ``method=auto`` from the data's labels.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import UserError, did_you_mean

if TYPE_CHECKING:  # torch and lightly load with the table, so the name check stays cheap for config validation
    import torch
    from torch import nn

    from .module import SSLModule

METHOD_NAMES = ("simclr", "moco", "byol", "simsiam", "dino", "barlowtwins", "vicreg", "swav", "supcon")
#: what ``method=auto`` trains on unlabelled data
SSL_DEFAULT = "simclr"
#: method=auto trains supcon only when its smallest class has this many training images: with fewer, a batch rarely
#: holds two images of that class, and the class learns little more than simclr would teach it
AUTO_MIN_PER_CLASS = 5
#: supcon's defaults for a pretrained backbone (bench/image_quality.py --methods supcon; docs/image.md)
SUPCON_LR = 1e-3
SUPCON_WISE_FT = 1.0
#: training epochs: 14 for the self-supervised methods; supcon reads the same kNN top-1 at 12 (0.852 against 0.853
#: on Fashion-MNIST validation images) in 15% less time (bench/supcon_plan.md, section 5)
EPOCHS = 14
SUPCON_EPOCHS = 12
#: milder views than lightly's SimCLR defaults (min_scale 0.08, blur 0.5): a label names the whole object, and a
#: crop of 8% of it, blurred, often no longer shows what the label says
SUPCON_VIEWS = {"min_scale": 0.5, "gaussian_blur": 0.0}


# ----------------------------------------------------------------------------------------------- training steps
def compare_views(module: SSLModule, views: list[torch.Tensor]) -> torch.Tensor:
    """simclr, moco, barlowtwins, vicreg: the loss between the projections of two views."""
    momentum = module.backbone_momentum is not None
    return module.criterion(module.project(views[0]), module.project(views[1], momentum=momentum))


def predict_other_view(module: SSLModule, views: list[torch.Tensor]) -> torch.Tensor:
    """byol, simsiam: each view predicts the other's (stop-gradient or momentum) target, symmetrised."""
    z = [module.project(v) for v in views[:2]]
    p = [module.predictor(zi) for zi in z]
    t = [module.project(v, momentum=True) for v in views[:2]] if module.backbone_momentum is not None else \
        [zi.detach() for zi in z]
    return 0.5 * (module.criterion(p[0], t[1]) + module.criterion(p[1], t[0]))


def dino_step(module: SSLModule, views: list[torch.Tensor]) -> torch.Tensor:
    """dino: the teacher (momentum) sees the global crops, the student sees every crop."""
    teacher = [module.project(v, momentum=True) for v in views[:2]]
    return module.criterion(teacher, [module.project(v) for v in views], epoch=module.current_epoch)


def dino_after_backward(module: SSLModule) -> None:
    """dino: the head's last layer stays fixed in its first epoch (lightly's freeze_last_layer)."""
    module.head.cancel_last_layer_gradients(module.current_epoch)


def swav_step(module: SSLModule, views: list[torch.Tensor]) -> torch.Tensor:
    """swav: prototype assignments of the high-resolution crops against the low-resolution ones."""
    import torch.nn.functional as F

    module.predictor.normalize()
    p = [module.predictor(F.normalize(module.project(v), dim=1), step=module.global_step) for v in views]
    return module.criterion(p[:2], p[2:])


def supervised_views(module: SSLModule, views: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """supcon: every view of every image of the same label is a positive (pytorch-metric-learning's SupConLoss).

    With ``module.ssl_weight`` > 0 the self-supervised loss is added on the same views: SupConLoss again, with each
    image its own label, which is SimCLR's NT-Xent (one positive per view, the other views as negatives)."""
    import torch

    z = torch.cat([module.project(v) for v in views[:2]])
    loss, rank = module.criterion, 0
    if torch.distributed.is_available() and torch.distributed.is_initialized() and \
            torch.distributed.get_world_size() > 1:
        from pytorch_metric_learning.utils.distributed import DistributedLossWrapper

        # other ranks' embeddings and labels join the batch, so their images are positives and negatives here too
        loss, rank = DistributedLossWrapper(loss), torch.distributed.get_rank()
    value = loss(z, torch.cat([labels, labels]))
    if module.ssl_weight:
        own = torch.arange(len(labels), device=labels.device) + rank * 2**24  # one label per image, on every rank
        value = value + module.ssl_weight * loss(z, torch.cat([own, own]))
    return value


# ----------------------------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Method:
    """One row of the method table: lightly's building blocks for one self-supervised method."""

    head: Callable[[int], nn.Module]  # backbone width -> projection head
    loss: Callable[[float | None, int], nn.Module]  # (temperature, memory-bank size) -> loss
    transform: Callable[..., Callable]  # (image size, normalisation, **lightly transform kwargs) -> multi-view transform
    step: Callable[[SSLModule, list[torch.Tensor]], torch.Tensor]  # (module, views) -> loss
    predictor: Callable[[], nn.Module] | None = None  # byol/simsiam predictor, swav prototypes
    momentum: bool = False  # a momentum (EMA) copy of backbone + head makes the targets
    temperature: float | None = None
    lr: float = 1e-3  # AdamW
    memory_bank: int = 0  # keys of past batches kept as extra negatives (moco)
    after_backward: Callable[[SSLModule], None] | None = None  # a gradient fix-up before the optimizer step
    labels: bool = False  # the step also takes the batch's labels (supcon): the data must be labelled
    wise_ft: float | None = None  # WiSE-FT's share for a pretrained backbone, where the method has its own
    epochs: int = EPOCHS  # training epochs when the config gives none

    def make_head(self, dim: int, batch_norm: bool = True) -> nn.Module:
        """The projection head for a backbone of width ``dim``; ``batch_norm=False`` drops its BatchNorm1d."""
        from torch import nn

        head = self.head(dim)
        if not batch_norm:
            for module in head.modules():
                for name, child in module.named_children():
                    if isinstance(child, nn.BatchNorm1d):
                        setattr(module, name, nn.Identity())
        return head


def _small(size: int) -> int:  # the local-crop size for multi-crop methods, as 96/224 of the global one
    return max(8, size * 96 // 224)


@functools.cache
def _methods() -> dict[str, Method]:
    # simclr/byol learning rates and simclr's temperature: bench/image_quality.py (a pretrained backbone lost kNN
    # accuracy at 1e-3 in two epochs; 3e-4 gained; temperature 0.2 beat 0.05, 0.1 and 0.5), see docs/image.md
    from lightly import loss as L
    from lightly import transforms as T
    from lightly.models import modules as H
    from lightly.models.modules.heads import VICRegProjectionHead  # not re-exported by lightly.models.modules

    def byol_views(s, n, **kw):  # two asymmetric views (blur and solarisation differ), also for barlowtwins
        return T.BYOLTransform(T.BYOLView1Transform(input_size=s, normalize=n, **kw),
                               T.BYOLView2Transform(input_size=s, normalize=n, **kw))

    return {
        "simclr": Method(lambda d: H.SimCLRProjectionHead(d, 512, 128), lambda t, _: L.NTXentLoss(temperature=t),
                         lambda s, n, **kw: T.SimCLRTransform(input_size=s, normalize=n, **kw), compare_views,
                         temperature=0.2, lr=3e-4),
        "moco": Method(lambda d: H.MoCoProjectionHead(d, 512, 128),
                       lambda t, size: L.NTXentLoss(temperature=t, memory_bank_size=(size, 128)),
                       lambda s, n, **kw: T.MoCoV2Transform(input_size=s, normalize=n, **kw), compare_views,
                       momentum=True, temperature=0.2, memory_bank=4096),
        "byol": Method(lambda d: H.BYOLProjectionHead(d, 1024, 256), lambda t, _: L.NegativeCosineSimilarity(),
                       byol_views, predict_other_view, predictor=lambda: H.BYOLPredictionHead(256, 1024, 256),
                       momentum=True, lr=3e-4),
        "simsiam": Method(lambda d: H.SimSiamProjectionHead(d, 512, 128), lambda t, _: L.NegativeCosineSimilarity(),
                          lambda s, n, **kw: T.SimSiamTransform(input_size=s, normalize=n, **kw), predict_other_view,
                          predictor=lambda: H.SimSiamPredictionHead(128, 64, 128)),
        "dino": Method(lambda d: H.DINOProjectionHead(d, 512, 64, 2048, freeze_last_layer=1),
                       lambda t, _: L.DINOLoss(output_dim=2048, student_temp=t, warmup_teacher_temp_epochs=0),
                       lambda s, n, **kw: T.DINOTransform(global_crop_size=s, local_crop_size=_small(s), normalize=n,
                                                          **kw),
                       dino_step, momentum=True, temperature=0.1, lr=5e-4, after_backward=dino_after_backward),
        "barlowtwins": Method(lambda d: H.BarlowTwinsProjectionHead(d, 2048, 2048), lambda t, _: L.BarlowTwinsLoss(),
                              byol_views, compare_views),
        "vicreg": Method(lambda d: VICRegProjectionHead(d, 2048, 2048, num_layers=2), lambda t, _: L.VICRegLoss(),
                         lambda s, n, **kw: T.VICRegTransform(input_size=s, normalize=n, **kw), compare_views),
        "swav": Method(lambda d: H.SwaVProjectionHead(d, 512, 128), lambda t, _: L.SwaVLoss(temperature=t),
                       lambda s, n, **kw: T.SwaVTransform(crop_sizes=(s, _small(s)), normalize=n, **kw), swav_step,
                       predictor=lambda: H.SwaVPrototypes(128, n_prototypes=512), temperature=0.1),
        # SupConLoss: pytorch-metric-learning's, as lightly has none; SimCLR's head and views as in Khosla et al.
        "supcon": Method(lambda d: H.SimCLRProjectionHead(d, 512, 128), lambda t, _: _supcon_loss(t),
                         lambda s, n, **kw: T.SimCLRTransform(input_size=s, normalize=n, **{**SUPCON_VIEWS, **kw}),
                         supervised_views,
                         temperature=0.1, lr=SUPCON_LR, labels=True, wise_ft=SUPCON_WISE_FT,
                         epochs=SUPCON_EPOCHS),
    }



def _supcon_loss(temperature: float):
    from pytorch_metric_learning.losses import SupConLoss

    return SupConLoss(temperature=temperature)


def check_method(name: str, auto: bool = False) -> None:
    """A one-line error listing the methods when ``name`` is not one of them (``auto`` allows "auto"); imports
    neither torch nor lightly."""
    names = (*METHOD_NAMES, "auto") if auto else METHOD_NAMES
    if name not in names:
        raise UserError(f"unknown method '{name}'.{did_you_mean(name, names)} Use one of: {', '.join(names)}")


def choose_method(asked: str, labels: list[int] | None, names: list[str] | None, source: str) -> tuple[str, str]:
    """(method, reason): ``auto`` becomes supcon on labelled data and SSL_DEFAULT otherwise; ``supcon`` on data it
    cannot learn from is a one-line error naming the data and the fix; any other method stays as asked."""
    counts = Counter(labels or [])
    named = {c: names[c] if names and c < len(names) else str(c) for c in counts}
    smallest = min(counts, key=lambda c: (counts[c], named[c])) if counts else None
    if asked == "supcon":
        others = f"or use method={SSL_DEFAULT} (self-supervised, no labels needed)"
        if labels is None and names and len(names) == 1:
            raise UserError(f"method=supcon needs at least 2 classes, but {source} has one ('{names[0]}'); add a "
                            f"subfolder per class, {others}")
        if labels is None:
            raise UserError(f"method=supcon needs labelled images, but {source} has no labels; put every image in a "
                            f"class subfolder (at least 2), give a dataset with a label column, {others}")
        if len(counts) < 2:
            raise UserError(f"method=supcon needs at least 2 classes, but {source} has one "
                            f"('{named[smallest]}'); add images of another class, {others}")
        if counts[smallest] < 2:
            raise UserError(f"method=supcon needs at least 2 training images per class, but class "
                            f"'{named[smallest]}' of {source} has {counts[smallest]}; add images to it or remove "
                            f"it, {others}")
        return asked, f"asked for; {len(counts)} classes"
    if asked != "auto":
        return asked, "asked for" + ("; the labels are used only for the kNN evaluation" if counts else "")
    if labels is None:
        needs = " (a folder needs 2 or more class subfolders)" if source.startswith("local folder") else \
            "" if "list" in source else " (a dataset or table needs a label column for every row)"
        why = f"the images in {source} have no labels{needs}"
    elif len(counts) < 2:
        why = f"{source} has a single class ('{named[smallest]}')"
    elif counts[smallest] < AUTO_MIN_PER_CLASS:
        why = (f"class '{named[smallest]}' has {counts[smallest]} training image(s), under the "
               f"{AUTO_MIN_PER_CLASS} supcon needs")
    else:
        return "supcon", (f"method=auto: {len(counts)} labelled classes, {counts[smallest]} or more training images "
                          f"each; method={SSL_DEFAULT} trains without the labels")
    return SSL_DEFAULT, f"method=auto: {why}; self-supervised, labels unused for training"


def same_class_per_batch(labels: list[int], batch_size: int) -> float:
    """The mean number of other images of an image's own class in a shuffled batch of ``batch_size``: supcon's
    positives beyond the image's own other view. Below 1, most images meet no other image of their class in a batch
    (many classes, a small batch), and supcon learns from them about what simclr would."""
    n = len(labels)
    if n < 2:
        return 0.0
    pairs = sum(c * (c - 1) for c in Counter(labels).values())
    return (min(batch_size, n) - 1) * pairs / (n * (n - 1))


def get_method(name: str) -> Method:
    """The table row for ``name``, or ``check_method``'s error."""
    check_method(name)
    return _methods()[name]


def make_transform(method: str, image_size: int, normalize: dict, options: dict | None = None) -> Callable:
    """``method``'s lightly multi-view transform; ``options`` are its keyword arguments, e.g. ``{"min_scale": 0.2}``."""
    try:
        return get_method(method).transform(image_size, normalize, **(options or {}))
    except TypeError as exc:
        raise _argument_error(method, options, str(exc)) from None
    except (ValueError, AssertionError) as exc:
        raise UserError(f"transform options {options} were refused by {method}'s lightly transform: {exc}") from None


#: lightly transform arguments the recipe sets itself, from image_size and the backbone's normalisation
RECIPE_SET = ("input_size", "global_crop_size", "local_crop_size", "crop_sizes", "normalize")


def _argument_error(method: str, options: dict | None, text: str) -> UserError:
    """A transform option lightly's class does not take, or one the recipe sets: the error names the option, and
    lists that class's own options (each method's differ: dino has global_crop_scale where simclr has min_scale)."""
    import inspect
    import re

    from lightly import transforms as T

    found = re.search(r"(\w+)(?:\.__init__)?\(\) got", text)
    cls = getattr(T, found[1], None) if found else None
    own = [p for p in inspect.signature(cls).parameters if p not in RECIPE_SET] if cls else []
    if bad := re.search(r"multiple values for keyword argument '(\w+)'", text):
        return UserError(f"transform option '{bad[1]}' is set by the recipe (from image_size= and the backbone's "
                         f"normalisation); leave it out of transform")
    if bad := re.search(r"unexpected keyword argument '(\w+)'", text):
        listed = f"Its options: {', '.join(own)}" if own else "See help(lightly.transforms) for its options."
        return UserError(f"transform option '{bad[1]}' is not an argument of {method}'s lightly transform "
                         f"({found[1] if found else 'lightly'}).{did_you_mean(bad[1], own)} {listed}")
    return UserError(f"transform options {options} were refused by {method}'s lightly transform: {text}")


# ----------------------------------------------------------------------------------------------- memory bank
def memory_bank_cap(images: int) -> int:
    """The largest memory bank ``fit_memory_bank`` keeps for ``images`` per process and epoch: a quarter of them."""
    return max(1, images // 4)


def own_key_share(bank_size: int, images: int) -> float:
    """After the first epoch, the share of images whose own key from the epoch before is still in a first-in,
    first-out bank of ``bank_size`` keys. With shuffled epochs, the keys queued since an image's last visit are one
    epoch plus the difference of two uniform positions, so the share is r² / 2 for r = bank_size / images <= 1."""
    r = min(bank_size / max(images, 1), 2.0)
    return r * r / 2 if r <= 1 else 1 - (2 - r) ** 2 / 2
