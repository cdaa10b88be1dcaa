"""Lightning callbacks of the image recipe: kNN before/after training, WiSE-FT, and folder-relative checkpoints."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn

from .. import report
from ..errors import UserError
from .data import ImageData
from .encoder import embed_with, mean_embedding
from .knn import embedding_spread, knn_accuracy, linear_probe_accuracy


def embed_bank_and_query(backbone: nn.Module, bank: ImageData, query: ImageData, preprocess: Callable,
                         center: bool = False, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray, Any]:
    """(bank embeddings, query embeddings, the bank's mean embedding or None). With ``center``, both are centred on
    the bank's mean, as a saved centred encoder embeds (the bank's are left for ``knn_accuracy`` to normalise)."""
    b = embed_with(backbone, bank.items, preprocess, batch_size)
    mean = mean_embedding(b) if center else None
    if mean is not None:
        b = b - np.asarray(mean, dtype=b.dtype)
    return b, embed_with(backbone, query.items, preprocess, batch_size, mean), mean


class KNNCallback(pl.Callback):
    """kNN top-1 accuracy of ``pl_module.backbone`` before and after training (and every N epochs).

    ``bank`` and ``query`` are labelled ``ImageData`` (training images and held-out images). With ``center``, the
    evaluations after the first centre the embeddings on the bank's mean embedding (kept in ``.center``), as the saved
    encoder will; "before" scores the starting backbone as it is.
    """

    def __init__(self, bank: ImageData, query: ImageData, preprocess: Callable, k: int = 20, t: float = 0.1,
                 every_n_epochs: int = 0, batch_size: int = 64, resuming: bool = False, center: bool = False):
        self.bank, self.query, self.preprocess = bank, query, preprocess
        self.centring, self.center = center, None  # the bank's mean embedding of the latest centred evaluation
        self.resuming = resuming  # fit resumes from a checkpoint: "before" still evaluates the base weights
        self.k, self.t, self.every_n_epochs, self.batch_size = k, t, every_n_epochs, batch_size
        self.before: dict[str, float] = {}
        self.after: dict[str, float] = {}
        self.query_embeddings: np.ndarray | None = None
        self.spread: dict[str, dict[str, float]] = {}  # embedding_spread of the query images, before/after
        self.linear_probe: float | None = None  # a logistic-regression probe's top-1 on the starting features
        self.seconds = 0.0  # wall time spent evaluating, so that training time can be told apart
        self.cpu_seconds = 0.0  # and its CPU time

    @property
    def k_used(self) -> int:
        """The neighbours each query is scored on: ``k``, or every bank image when the bank holds fewer."""
        return min(self.k, len(self.bank.items))

    def evaluate(self, backbone: nn.Module) -> dict[str, float]:
        """``{"knn_top1": accuracy}`` of the backbone's embeddings right now."""
        started, cpu = time.perf_counter(), time.process_time()
        # centred as the saved encoder embeds (on the bank: training images), except the starting backbone
        bank, self.query_embeddings, center = embed_bank_and_query(backbone, self.bank, self.query, self.preprocess,
                                                                   self.centring and bool(self.before),
                                                                   self.batch_size)
        if center is not None:
            self.center = center
        self.spread["after" if self.before else "before"] = embedding_spread(self.query_embeddings)
        accuracy = knn_accuracy(bank, self.bank.labels, self.query_embeddings, self.query.labels, self.k, self.t)
        if not self.before and self.linear_probe is None:  # the starting features: what a plain classifier on them would score, for reference
            self.linear_probe = linear_probe_accuracy(bank, self.bank.labels, self.query_embeddings, self.query.labels)
        self.seconds += time.perf_counter() - started
        self.cpu_seconds += time.process_time() - cpu
        return {"knn_top1": accuracy}

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """On resume, keep the base weights before the checkpoint is restored: "before" means the base model."""
        self.base = None
        if stage == "fit" and self.resuming:  # trainer.ckpt_path is only set after setup
            self.base = {k: v.detach().clone() for k, v in pl_module.backbone.state_dict().items()}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Evaluate the starting backbone: the base model's weights, also when resuming from a checkpoint."""
        base = getattr(self, "base", None)
        if base is None:
            self.before = self.evaluate(pl_module.backbone)
        else:
            trained = {k: v.detach().clone() for k, v in pl_module.backbone.state_dict().items()}
            pl_module.backbone.load_state_dict(base)
            try:
                self.before = self.evaluate(pl_module.backbone)
            finally:
                pl_module.backbone.load_state_dict(trained)
                self.base = None
        pl_module.print(f"kNN top-1 before training: {self.before['knn_top1']:.4f}")
        if self.linear_probe is not None:
            pl_module.print(f"linear probe top-1 on the starting features (reference): {self.linear_probe:.4f}")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Log kNN top-1 every ``every_n_epochs`` epochs (0: never)."""
        if self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            pl_module.log("knn_top1", self.evaluate(pl_module.backbone)["knn_top1"], prog_bar=True)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Evaluate the trained backbone (after WiSE-FT and EMA, which run before this)."""
        self.after = self.evaluate(pl_module.backbone)
        pl_module.print(f"kNN top-1 after training: {self.after['knn_top1']:.4f}")


def progress_bar() -> pl.callbacks.ProgressBar:
    """Lightning's own bar (rich where it is installed, else tqdm) with a truthful length: with ``max_steps`` the
    epoch's bar ends where the run does. Lightning counts the whole epoch unless ``max_epochs=-1``, and the recipe
    sets ``max_epochs`` (``training.fit``): ``max_steps=3`` on 25 batches an epoch showed ``3/25`` and a time left
    for 22 steps that never came."""
    from pytorch_lightning.callbacks.progress.rich_progress import _RICH_AVAILABLE

    base = pl.callbacks.RichProgressBar if _RICH_AVAILABLE else pl.callbacks.TQDMProgressBar

    class StepsLeftBar(base):  # type: ignore[misc, valid-type]
        @property
        def total_train_batches(self) -> int | float:
            total, max_steps = super().total_train_batches, self.trainer.max_steps
            return min(total, max_steps - self.trainer.global_step) if max_steps and max_steps > 0 else total

    return StepsLeftBar()


class LogLines(pl.Callback):
    """Training progress as plain lines on stdout, for a run without a progress bar (a log file):
    ``step 40/200  loss 5.123  lr 0.0003  epoch 0.50  elapsed 0:00:31  left 0:02:04``, about ``lines`` times a run,
    on its last step, and at least every ``seconds`` seconds. The time left is timed from the first step, which also
    warms up the loader."""

    def __init__(self, lines: int = 20, seconds: float = 60.0):
        self.lines, self.seconds = lines, seconds
        self._start = self._shown = 0.0
        self._first: tuple[float, int] | None = None
        self._total = self._every = 1

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = self._shown = time.perf_counter()
        self._first = None
        self._total = int(trainer.max_steps if trainer.max_steps > 0 else trainer.estimated_stepping_batches)
        self._every = max(1, self._total // self.lines)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step, now = trainer.global_step, time.perf_counter()
        if self._first is None:
            self._first = now, step
        if step % self._every and step < self._total and now - self._shown < self.seconds:
            return
        self._shown = now
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        rates = [group["lr"] for optimizer in trainer.optimizers for group in optimizer.param_groups]
        logs = {"loss": float(loss)} if loss is not None else {}
        logs |= {"learning_rate": max(rates)} if rates else {}
        logs["epoch"] = step / max(1, trainer.num_training_batches)
        first_time, first_step = self._first
        left = (now - first_time) / (step - first_step) * (self._total - step) if first_step < step else None
        pl_module.print(report.step_line(logs, step, self._total, now - self._start, left), flush=True)


#: WiSE-FT's share of the change kept for a pretrained backbone after the default 14 epochs with its earliest 30%
#: fixed (Fashion-MNIST, bench/image_quality.py on all 10,000 test images: chosen on two seeds, checked on six fresh
#: ones; docs/image.md)
WISE_FT_PRETRAINED = 0.65

#: the shares ``wise_ft=auto`` scores on its validation images (0: the starting backbone, 1: the trained one)
AUTO_SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)


def knn_scorer(bank: ImageData, query: ImageData, preprocess: Callable, k: int, t: float,
               center: bool = False) -> Callable[[nn.Module], float]:
    """A function that rates a backbone by kNN top-1 of ``query`` against ``bank`` (both labelled), centred on the
    bank's mean embedding with ``center``, as the saved encoder would embed."""
    def score(backbone: nn.Module) -> float:
        b, q, _ = embed_bank_and_query(backbone, bank, query, preprocess, center)
        return knn_accuracy(b, bank.labels, q, query.labels, k, t)

    return score


def blend_weights(net: nn.Module, start: dict[str, torch.Tensor], alpha: float) -> None:
    """WiSE-FT in place: ``net``'s floating-point weights become ``start + alpha * (weights - start)``."""
    with torch.no_grad():
        for k, v in net.state_dict().items():  # tensors that share the parameters' storage
            if v.is_floating_point():
                v.lerp_(start[k].to(v.device, v.dtype), 1 - alpha)


class WiSEFT(pl.Callback):
    """WiSE-FT (Wortsman et al., 2022): when training ends, the backbone keeps ``alpha`` of its change,
    ``start + alpha * (trained - start)``: a weight-space blend of the trained and the starting model.

    ``alpha=None`` picks the method's own share (``pl_module.wise_ft_default``, from the method table), else
    ``WISE_FT_PRETRAINED``, for a pretrained backbone (``pl_module.spec["pretrained"]``), and 1
    (off) for a randomly initialised one, whose start is noise. ``alpha="auto"`` scores each of ``AUTO_SHARES``
    with ``score`` (``knn_scorer`` on images set aside from training) and keeps the best. The start is read when
    fit begins, before a checkpoint is restored, so a resumed run blends with the same start; checkpoints keep the
    trained weights, so resuming trains on from them. Put it before ``KNNCallback``, so that "after" sees the
    blend.
    """

    def __init__(self, alpha: float | str | None = None, score: Callable[[nn.Module], float] | None = None):
        if alpha == "auto" and score is None:
            raise ValueError("wise_ft='auto' needs a score: the function that rates each blend")
        if alpha is not None and alpha != "auto" and not 0 <= alpha <= 1:
            raise UserError(f"wise_ft must be between 0 and 1 (1: off), got {alpha}")
        self.alpha, self.auto, self.score = alpha, alpha == "auto", score
        self.scores: dict[float, float] = {}  # auto: each candidate share's score
        self.start: dict[str, torch.Tensor] | None = None
        self.trained: dict[str, torch.Tensor] | None = None  # the unblended weights, for checkpoints saved later

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Pick the default alpha and keep the starting weights, before any checkpoint is restored."""
        if self.alpha is None:
            own = getattr(pl_module, "wise_ft_default", None)  # the method's own share (supcon keeps all)
            pretrained = getattr(pl_module, "spec", {}).get("pretrained")
            self.alpha = (own if own is not None else WISE_FT_PRETRAINED) if pretrained else 1.0
        self.trained = None  # a second fit with this callback starts clean
        if self.auto:
            self.alpha = "auto"
        if stage == "fit" and (self.auto or self.alpha < 1):
            self.start = {k: v.detach().clone() for k, v in pl_module.backbone.state_dict().items()}

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Blend the backbone towards its start and keep the trained weights for checkpoints."""
        if self.start is None:
            return
        self.trained = {k: v.detach().clone() for k, v in pl_module.backbone.state_dict().items()}
        if self.auto:
            self.alpha = self.choose(pl_module)
        blend_weights(pl_module.backbone, self.start, self.alpha)
        self.start = None  # not needed after the blend; a new fit reads it again
        pl_module.print(f"WiSE-FT: the backbone keeps {self.alpha:.0%} of its change from training "
                        f"(wise_ft={self.alpha:g}{'' if self.alpha == 1 else '; wise_ft=1 keeps all of it'})")
        if self.auto and self.alpha == 0:
            pl_module.print("WiSE-FT: the starting backbone scored best on the validation images, so the saved "
                            "encoder is the starting backbone: training did not help these images")

    def choose(self, pl_module: pl.LightningModule) -> float:
        """``wise_ft=auto``: score each share in ``AUTO_SHARES`` and return the best (ties: the larger share)."""
        backbone = pl_module.backbone
        for alpha in AUTO_SHARES:
            backbone.load_state_dict(self.trained)
            blend_weights(backbone, self.start, alpha)
            self.scores[alpha] = self.score(backbone)
        backbone.load_state_dict(self.trained)
        pl_module.print("WiSE-FT (wise_ft=auto), kNN top-1 on the validation images: " +
                        ", ".join(f"{alpha:g} -> {score:.4f}" for alpha, score in self.scores.items()))
        return max(AUTO_SHARES, key=lambda alpha: (self.scores[alpha], alpha))

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        """Checkpoints hold the trained weights, not the blend, so a resumed run trains on."""
        if self.trained is not None:  # Lightning's last checkpoint at the end: keep what training reached
            checkpoint["state_dict"].update({f"backbone.{k}": v for k, v in self.trained.items()})


#: the key under which a checkpoint keeps the module's loss history
HISTORY_KEY = "contrastkit_loss_history"


class FolderCheckpoint(pl.callbacks.ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` whose saved state names its files relative to its own folder.

    Lightning records its folder and every kept checkpoint as absolute paths inside each ``.ckpt``. That puts the
    user's home path into files they may share, and after the output folder moves, a resumed run forgets which
    old checkpoints it still has to delete (Lightning warns "The dirpath has changed"). Here the state says ``.``
    and bare file names, and loading joins them with the folder the callback has now. The state keeps
    ``ModelCheckpoint``'s key, so checkpoints written by either class resume with either.

    Each checkpoint also carries the module's loss history (``pl_module.history``), which Lightning does not save,
    so a resumed run's ``metrics.json`` and ``loss.png`` show the whole run, not only the steps after the resume.
    """

    _losses: list[list[float]] | None = None  # the history as numbers so far: each save reads only new steps

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        """Store the losses logged so far, as ``[step, loss]`` pairs."""
        history = getattr(pl_module, "history", None)
        if history is None:
            return
        kept = self._losses if self._losses is not None and len(self._losses) <= len(history) else []
        if new := history[len(kept):]:  # one read off the device for all of them, not one per step
            values = torch.stack([torch.as_tensor(loss).float() for _, loss in new]).tolist()
            kept = kept + [[int(step), value] for (step, _), value in zip(new, values)]
        self._losses = checkpoint[HISTORY_KEY] = kept

    _restored_step: int | None = None  # the global step of the checkpoint this fit resumed from

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Lightning's last checkpoint at the end, unless no step was trained since the checkpoint resumed from (a
        finished run's end, ``training._EndsEvenWhenDone``): that one already holds this state, and stays as it is."""
        if trainer.global_step != self._restored_step:
            super().on_train_end(trainer, pl_module)

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        """Put the checkpoint's losses before the ones this fit logs (none yet: restoring comes before training)."""
        self._restored_step = checkpoint.get("global_step")
        saved = checkpoint.get(HISTORY_KEY)  # absent in checkpoints written before the key existed
        if saved is not None and hasattr(pl_module, "history"):
            pl_module.history[:0] = [(step, torch.tensor(loss)) for step, loss in saved]
            self._losses = [list(pair) for pair in saved]

    @property
    def state_key(self) -> str:
        """``ModelCheckpoint``'s key, so either class resumes the other's checkpoints."""
        return super().state_key.replace(type(self).__qualname__, "ModelCheckpoint", 1)

    def state_dict(self) -> dict[str, Any]:
        """Lightning's state with ``.`` for the folder and bare names for the files in it."""
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
        """Lightning's state with folder-relative names joined to the folder this callback has now."""
        if state_dict.get("dirpath") == "." and self.dirpath:
            here = str(self.dirpath)

            def full(path: Any) -> Any:
                return str(Path(here) / path) if path and not Path(path).is_absolute() else path

            state_dict = {**state_dict, "dirpath": here,
                          **{k: full(state_dict.get(k)) for k in ("best_model_path", "kth_best_model_path",
                                                                  "last_model_path")},
                          "best_k_models": {full(p): s for p, s in state_dict.get("best_k_models", {}).items()}}
        super().load_state_dict(state_dict)

