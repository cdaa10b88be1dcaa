"""``SSLModule``: one LightningModule for every method of the table in ``methods.py``."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from ..errors import UserError
from .backbones import create_backbone, feature_dim, freeze_batch_norm, freeze_earliest
from .config import check_lr_schedule
from .methods import get_method, memory_bank_cap, own_key_share

#: the share of a pretrained backbone's weights, earliest first, that stays fixed during training (chosen on
#: Fashion-MNIST with bench/image_quality.py; docs/image.md shows the table)
FREEZE_FRACTION_PRETRAINED = 0.3


class SSLModule(pl.LightningModule):
    """A self-supervised LightningModule for any ``Trainer``: ``SSLModule(method="byol", backbone="resnet18")``.

    ``backbone`` is a name (see ``backbones.BACKBONES``) or any ``nn.Module`` mapping images to (n, d) features;
    every other setting is a keyword argument.
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

    def __init__(self, method: str = "simclr", backbone: str | nn.Module = "efficientnet-lite0", *,
                 weights: str | None = None, small_stem: bool = False, learning_rate: float | None = None,
                 temperature: float | None = None, weight_decay: float = 1e-4, freeze_bn: bool | None = None,
                 warmup_steps: int = 0, head_batch_norm: bool = True, backbone_lr_scale: float = 1.0,
                 head_warmup_steps: int = 0, lr_schedule: str = "constant", freeze_fraction: float | None = None,
                 memory_bank_size: int | None = None, channels_last: bool = True, ssl_weight: float = 0.0):
        super().__init__()
        self.method, self.spec = method, {}
        self.wise_ft_default = get_method(method).wise_ft  # read by the WiSEFT callback when wise_ft is not set
        self.channels_last = channels_last
        m = get_method(method)
        if isinstance(backbone, str):
            backbone, self.spec = create_backbone(backbone, small_stem, weights)
        self.backbone = backbone
        dim = feature_dim(backbone)
        self.head_batch_norm = head_batch_norm
        self.head = m.make_head(dim, head_batch_norm)
        pretrained = bool(self.spec.get("pretrained"))
        self.predictor = m.predictor() if m.predictor else None
        self.temperature = temperature if temperature is not None else m.temperature
        if ssl_weight and not m.labels:
            raise UserError(f"ssl_weight applies to method=supcon (it adds the self-supervised loss to the "
                            f"supervised one), not to method={method}; leave it out")
        self.ssl_weight = ssl_weight
        if memory_bank_size is not None and not m.memory_bank:
            raise UserError(f"memory_bank_size applies to moco, not to method '{method}'")
        check_lr_schedule(lr_schedule)
        self.memory_bank_size = m.memory_bank if memory_bank_size is None else memory_bank_size
        self.memory_bank_given = memory_bank_size is not None
        self.memory_bank_fitted = False  # fit_memory_bank ran (the recipe calls it; users' own Trainers may not)
        self.criterion = self._make_criterion()
        self.learning_rate = learning_rate or m.lr
        self.weight_decay, self.warmup_steps = weight_decay, warmup_steps
        self.backbone_lr_scale, self.head_warmup_steps = backbone_lr_scale, head_warmup_steps
        self.lr_schedule = lr_schedule
        if freeze_fraction is None:
            freeze_fraction = FREEZE_FRACTION_PRETRAINED if pretrained else 0.0
        self.freeze_fraction, self.frozen_share = freeze_fraction, 0.0  # asked for / whole tensors fixed
        if freeze_fraction:  # the stem and early blocks keep their pretrained weights
            self.frozen_share = freeze_earliest(self.backbone, freeze_fraction)
        self.freeze_bn = pretrained if freeze_bn is None else freeze_bn
        self.backbone_momentum = self.head_momentum = None
        if m.momentum:
            from lightly.models.utils import deactivate_requires_grad

            # a fresh head with copied weights: deepcopy fails on DINO's weight-normalised last layer
            self.backbone_momentum = copy.deepcopy(backbone)
            self.head_momentum = m.make_head(dim, self.head_batch_norm)
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
        return get_method(self.method).loss(self.temperature, self.memory_bank_size)

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
        """``nn.Module.train``, with the backbone's BatchNorm kept in eval mode when ``freeze_bn``."""
        super().train(mode)
        if self.freeze_bn:
            freeze_batch_norm(self.backbone, self.backbone_momentum)
        return self

    def on_train_start(self) -> None:
        """In a user's own Trainer on small data: warn when the default memory bank holds the images' own older keys."""
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
        """Switch the backbones to channels-last when ``channels_last``."""
        if self.channels_last:
            self._layout(torch.channels_last)

    def on_fit_end(self) -> None:
        """Put the backbones back in the usual memory layout (after the callbacks' on_train_end: WiSE-FT, kNN)."""
        if self.channels_last:
            self._layout(torch.contiguous_format)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """Re-freeze the backbones' BatchNorm when ``freeze_bn``."""
        # Lightning never calls train() at fit start, and callbacks or user code may have; re-freeze every step
        if self.freeze_bn:
            freeze_batch_norm(self.backbone, self.backbone_momentum)

    def project(self, x: torch.Tensor, momentum: bool = False) -> torch.Tensor:
        """Backbone then projection head; ``momentum=True`` uses the momentum copies, without gradients."""
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
        """One step of the method's own loss (``Method.step``), after moving the momentum copies."""
        self.step_starts.append(time.perf_counter())
        views = batch[0]
        if self.backbone_momentum is not None:
            from lightly.models.utils import update_momentum
            from lightly.utils.scheduler import cosine_schedule

            m = cosine_schedule(self.global_step, self._total_steps(), 0.996, 1.0)
            update_momentum(self.backbone, self.backbone_momentum, m)
            update_momentum(self.head, self.head_momentum, m)
        m = get_method(self.method)
        loss = m.step(self, views, batch[1]) if m.labels else m.step(self, views)
        self.log("train_loss", loss, prog_bar=True, batch_size=len(views[0]))
        self.history.append((self.global_step, loss.detach()))
        return loss

    def on_after_backward(self) -> None:
        """The method's gradient fix-up, where its table row has one (dino)."""
        fix_gradients = get_method(self.method).after_backward
        if fix_gradients is not None:
            fix_gradients(self)

    def configure_optimizers(self):
        """AdamW (the backbone at ``backbone_lr_scale`` of the rate) with the warm-up or cosine schedule."""
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
