"""The image recipe's Lightning run: the loader, the trainer with its callbacks, resuming, and what a run writes.

The recipe reads as data -> module -> ``make_trainer`` -> ``fit`` -> ``save``; each step's Lightning details
live here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.loops.fit_loop import _FitLoop
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from .. import outdir, report
from ..device import auto_bf16, is_main_process
from ..errors import UserError
from .callbacks import (
    FolderCheckpoint,
    KNNCallback,
    LogLines,
    WiSEFT,
    knn_scorer,
    progress_bar,
)
from .data import ImageData, ImageDataset, decode_side
from .splits import split_off


def settle_method(cfg: Any, out: Path, train: ImageData, log: Any) -> str:
    """Resolve ``method=auto`` from the training images' labels (``methods.choose_method``), log the choice and its
    reason, and record the method trained in ``cfg`` and the folder's run record, so ``resume`` checks it; no
    ``epochs`` means the method's own."""
    from .methods import choose_method, get_method

    asked = cfg.method
    cfg.method, reason = choose_method(asked, train.labels, train.label_names, train.source or "the data")
    if cfg.epochs is None:
        cfg.epochs = get_method(cfg.method).epochs
    log(f"method: {cfg.method} ({reason})")
    if get_method(cfg.method).labels and (note := few_positives(train.labels, cfg.batch_size)):
        log(note)
    if asked != cfg.method and is_main_process():
        if cfg.resume:  # the record of the run resumed names the method it trained; auto must choose the same
            outdir.check_resume(out, "image", cfg)
        outdir.write_record(out, "image", cfg)
    return reason


def few_positives(labels: list[int], batch_size: int) -> str | None:
    """A note when a batch holds on average less than one other image of an image's class (no sampler puts them
    together): with the batch size that would give one."""
    import math

    from .methods import same_class_per_batch

    mean = same_class_per_batch(labels, batch_size)
    if mean >= 1:
        return None
    per_image = same_class_per_batch(labels, 2)  # one other image drawn: the chance it is of the same class
    needed = math.ceil(1 / per_image) + 1 if per_image else None
    return (f"note: a batch of {min(batch_size, len(labels))} holds on average {mean:.2f} other images of an image's "
            f"class ({len(set(labels))} classes), so most images have only their own other view as a positive, as "
            f"in simclr" + (f"; batch_size={needed} gives about 1" if needed and needed <= len(labels) else ""))


#: wise_ft=auto: the share of the training images set aside to choose the blend, at most this many, and the fewest
#: training images it needs
AUTO_SLICE, AUTO_SLICE_MAX, AUTO_MIN_IMAGES = 0.1, 500, 50


def set_aside(cfg: Any, train: ImageData) -> tuple[ImageData, ImageData | None]:
    """``wise_ft=auto``: (training images, validation images) with 10% of the labelled training images (at most
    500) set aside, drawn with the run's seed, to choose WiSE-FT's share on; else ``(train, None)``."""
    if cfg.wise_ft != "auto":
        return train, None
    n = len(train.items)
    if train.labels is None or len(set(train.labels)) < 2:
        raise UserError("wise_ft=auto chooses the blend by kNN on labelled images, and the training images have "
                        "no labels of 2 or more classes; give images in class subfolders (or a label column), or "
                        "a share, e.g. wise_ft=0.65")
    if n < AUTO_MIN_IMAGES:
        raise UserError(f"wise_ft=auto sets 10% of the training images aside to choose the blend and needs at least "
                        f"{AUTO_MIN_IMAGES} training images, data has {n}; give a share instead, e.g. wise_ft=0.65")
    return split_off(train, min(AUTO_SLICE_MAX, int(n * AUTO_SLICE)), f"wise_ft {cfg.seed}")


def make_loader(train: ImageData, transform: Any, batch_size: int, num_workers: int,
                image_size: int | None = None) -> torch.utils.data.DataLoader:
    """Shuffled multi-view batches; ``num_workers=-1`` means half the CPU cores, none on 2 cores or fewer. With
    ``image_size``, large images are decoded shrunk (``data.decode_side``)."""
    cores = os.cpu_count() or 1
    workers = num_workers if num_workers >= 0 else (0 if cores <= 2 else min(8, cores // 2))
    min_side = decode_side(image_size) if image_size else None
    return torch.utils.data.DataLoader(ImageDataset(train, transform, min_side), batch_size=batch_size,
                                       shuffle=True, drop_last=True, num_workers=workers, persistent_workers=workers > 0)


def make_trainer(cfg: Any, out: Path, train: ImageData, held_out: ImageData | None, preprocess: Any,
                 validation: ImageData | None = None) -> tuple[pl.Trainer, KNNCallback | None, WiSEFT]:
    """A Lightning ``Trainer`` with checkpoints, optional EMA, WiSE-FT and the kNN evaluation, in that order: the
    kNN callback's "after" sees the averaged and blended weights that get saved. ``validation``: the images
    ``set_aside`` kept for ``wise_ft=auto``, scored against at most 1,000 training images."""
    # monitor="step", mode="max": Lightning's way to keep the newest N periodic checkpoints; FolderCheckpoint is
    # Lightning's ModelCheckpoint with no absolute paths inside the .ckpt files
    callbacks: list[pl.Callback] = [FolderCheckpoint(dirpath=out / report.CHECKPOINTS, save_last=True, monitor="step",
                                                     mode="max", save_top_k=cfg.save_total_limit,
                                                     every_n_train_steps=cfg.save_steps)]
    if cfg.ema_decay:
        callbacks.append(pl.callbacks.EMAWeightAveraging(decay=cfg.ema_decay))
    score = knn_scorer(train.spaced(1000), validation, preprocess, cfg.knn_k, cfg.knn_t, cfg.center) \
        if validation is not None else None
    wise = WiSEFT(cfg.wise_ft, score)
    callbacks.append(wise)
    knn = None
    if held_out is not None and train.labels is not None:
        knn = KNNCallback(train.spaced(10000), held_out, preprocess, cfg.knn_k, cfg.knn_t, resuming=cfg.resume,
                          center=cfg.center)
        callbacks.append(knn)
    bars = report.progress_bars()
    callbacks.append(progress_bar() if bars else LogLines())
    precision = cfg.precision if cfg.precision != "auto" else "bf16-mixed" if auto_bf16() else "32-true"
    try:
        with quiet_lightning():
            trainer = pl.Trainer(max_epochs=cfg.epochs if cfg.max_steps <= 0 else None, max_steps=cfg.max_steps,
                                 accelerator=cfg.accelerator, devices=cfg.devices, strategy=cfg.strategy,
                                 num_nodes=cfg.num_nodes, precision=precision, callbacks=callbacks, logger=False,
                                 default_root_dir=out, log_every_n_steps=1, enable_model_summary=False,
                                 enable_progress_bar=bars)
    except (MisconfigurationException, ValueError, TypeError, ImportError, RuntimeError) as exc:
        raise device_error(cfg, precision, exc) from None
    return trainer, knn, wise


#: Lightning's lines that tell a run of this recipe nothing it can act on: an advertisement for a logger (the
#: recipe turns Lightning's loggers off), the TPU count on a machine with no TPU, and that the run stopped at the
#: max_steps= or epochs the user gave (in a terminal it landed on the bar's line)
LIGHTNING_CHATTER = ("💡 Tip: ", "TPU available: False", "`Trainer.fit` stopped: `max_steps=",
                     "`Trainer.fit` stopped: `max_epochs=")

#: library warnings a run cannot act on: Lightning's own use of a torch name torch deprecated
LIBRARY_WARNINGS = (r"`isinstance\(treespec, LeafSpec\)` is deprecated",)


class _DropChatter(logging.Filter):
    """Drop the records whose message starts with one of ``LIGHTNING_CHATTER``."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(LIGHTNING_CHATTER)


@contextlib.contextmanager
def quiet_lightning() -> Any:
    """``LIGHTNING_CHATTER`` and ``LIBRARY_WARNINGS`` hidden inside the block, by message: the user's own logging
    and warning filters are as they were after it, and every other line of Lightning's still shows."""
    logger = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    chatter = _DropChatter()
    logger.addFilter(chatter)
    try:
        with warnings.catch_warnings():
            for message in LIBRARY_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=FutureWarning)
            yield
    finally:
        logger.removeFilter(chatter)


def device_error(cfg: Any, precision: str, exc: BaseException) -> UserError:
    """A device setting this machine cannot run, as one line: the settings, what the machine has, the fix."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    has = f"{gpus} CUDA GPU(s)" if gpus else "no GPU"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        has += ", Apple MPS"
    settings = " ".join(f"{name}={value}" for name, value in (("accelerator", cfg.accelerator),
                                                              ("devices", cfg.devices), ("strategy", cfg.strategy),
                                                              ("num_nodes", cfg.num_nodes),
                                                              ("precision", precision))
                        if str(value) not in ("auto", "1", "32-true"))
    reason = " ".join(str(exc).split())[:200]
    return UserError(f"this machine ({has}, {os.cpu_count()} CPU cores) cannot run {settings or 'these settings'}"
                            f": {reason}; use accelerator=auto devices=auto strategy=auto (what the machine has), "
                            f"or set them to what it offers")


def fit(trainer: pl.Trainer, module: Any, loader: Any, cfg: Any, out: Path, knn: KNNCallback | None,
        log: Any) -> tuple[float, float]:
    """Train (from the newest whole checkpoint with ``resume``, refused where it has nothing left to train); returns
    the training's wall and CPU seconds (this process, all its threads), kNN passes left out. A checkpoint of the
    run's whole length with no model saved from it (a run stopped after its last checkpoint) is finished: no step
    more, but the end of training (EMA, WiSE-FT, kNN before/after) as an uninterrupted run has it."""
    # images each process sees per epoch, as Lightning's DistributedSampler shares them out (padded to equal shares),
    # and its steps (whole batches: drop_last)
    per_process = -(-len(loader.dataset) // trainer.world_size)
    per_epoch = max(1, per_process // loader.batch_size)
    checkpoint = resume_from(out / report.CHECKPOINTS) if cfg.resume else None
    steps, epochs = trained_so_far(checkpoint)
    if checkpoint is not None and holds_all_steps(cfg, steps, epochs, per_epoch, out):
        log(f"resume: the checkpoint already holds all {steps} steps; evaluating and saving it")
        trainer.fit_loop.__class__ = _EndsEvenWhenDone  # the same loop and state, not skipped
    # enough epochs for the steps, so max_epochs never ends the run early (else "Epoch 0/-2"): from the start, or past
    # the checkpoint's epochs. A checkpoint from mid-epoch (Ctrl-C, or max_steps, which counts that epoch as done)
    # has Lightning resume its batches so far as the epoch it starts in, which runs that much short: one epoch more
    # on resume (max_steps ends the run; a batch size changed on resume leaves the count unknown, so always)
    if cfg.max_steps > 0:
        short = 1 if checkpoint is not None else 0
        trainer.fit_loop.max_epochs = max(-(-cfg.max_steps // per_epoch),
                                          epochs + short + -(-(cfg.max_steps - steps) // per_epoch))
    note = module.fit_memory_bank(per_process)  # moco on small data
    if note:
        log(note)
    started, cpu = time.perf_counter(), time.process_time()
    try:
        with quiet_lightning():
            trainer.fit(module, loader, ckpt_path=checkpoint)
    except MisconfigurationException as exc:  # e.g. resuming a checkpoint past this run's epochs
        if not cfg.resume or "restored a checkpoint" not in str(exc):
            raise
        raise UserError(f"resume=true: the checkpoint in '{out / report.CHECKPOINTS}' has trained further than this "
                        f"run's length ({' '.join(str(exc).split())}); raise max_steps= or epochs= above it to "
                        f"train on") from None
    except SystemExit:
        # Lightning answers Ctrl-C by shutting down and calling sys.exit(1), with SIGINT ignored from then on: turn
        # it back into a KeyboardInterrupt, so the CLI says what the text recipe says (plugins/run.py)
        if trainer.interrupted:
            import signal

            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt from None
        raise
    # CPU seconds as well: on a shared machine the wall clock also counts other programs' turns
    return (time.perf_counter() - started - (knn.seconds if knn else 0.0),
            time.process_time() - cpu - (knn.cpu_seconds if knn else 0.0))


def trained_so_far(checkpoint: str | None) -> tuple[int, int]:
    """(steps, epochs) a Lightning checkpoint records as trained (``global_step``, ``epoch``); (0, 0) without one."""
    if checkpoint is None:
        return 0, 0
    try:  # two numbers: the tensors are memory-mapped, not read
        state = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
        return int(state["global_step"]), int(state["epoch"])
    except Exception:  # noqa: BLE001 - a file this cannot read is left to Lightning, which loads it next and says why
        return 0, 0


def holds_all_steps(cfg: Any, steps: int, epochs: int, per_epoch: int, out: Path) -> bool:
    """Whether the checkpoint already trained this run's whole length (``outdir.reached_length``: refused when it
    trained more, or when the folder already holds the model and metrics saved from it)."""
    if cfg.max_steps > 0:
        return outdir.reached_length(out, steps, steps, cfg.max_steps, f"{steps} steps", f"max_steps={cfg.max_steps}",
                                     f"max_steps= above {steps}")
    # a checkpoint saved at an epoch's last step has not counted that epoch yet; Lightning ends it on resume
    done = max(epochs, steps // per_epoch)
    return outdir.reached_length(out, steps, done, cfg.epochs,
                                 f"{steps} steps ({done} epoch{'s' * (done != 1)} of {per_epoch} steps)",
                                 f"epochs={cfg.epochs}", f"epochs= above {done}")


class _EndsEvenWhenDone(_FitLoop):
    """Lightning's fit loop, which skips itself, hooks included, when the restored checkpoint has trained all the
    steps: this one still calls ``on_train_start`` and ``on_train_end`` around no step, so the kNN "before" and
    "after", EMA and WiSE-FT run as they do when an uninterrupted run ends (on the device it trained on)."""

    @property
    def skip(self) -> bool:
        return self.trainer.limit_train_batches == 0


def resume_from(folder: Path) -> str | None:
    """The newest checkpoint that is whole: a run killed while writing leaves a cut-off file, which is skipped."""
    for path in sorted(folder.glob("*.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True):
        if is_whole(path):
            return str(path)
        print(f"skipping the unreadable checkpoint {path.name}")
    return None


def is_whole(checkpoint: Path) -> bool:
    """Whether a checkpoint file is written to its end. torch.save writes a zip archive whose directory comes last:
    a cut-off file has none or fails a CRC. Reading the archive checks that without unpickling a file that may come
    from anywhere; Lightning loads the one chosen."""
    import zipfile

    try:
        with zipfile.ZipFile(checkpoint) as archive:
            return archive.testzip() is None
    except Exception:  # noqa: BLE001 - any unreadable checkpoint counts as cut off
        return False


def save(out: Path, cfg: Any, module: Any, encoder: Any, trainer: pl.Trainer, run: dict[str, Any],
         knn: KNNCallback | None, wise: WiSEFT, log: Any) -> dict[str, Any]:
    """The encoder folder, metrics.json, the loss, before/after and PCA plots and the model card (rank 0 only).

    ``run`` holds the data side (``data``, ``train``, ``held_out``, ``batch_size``), ``seconds`` and ``cpu_seconds``
    from ``fit`` and ``method_reason`` from ``settle_method``."""
    from .card import plot_pca, write_card
    from .data import EXAMPLES, save_examples
    from .encoder import embed_with, mean_embedding

    if not trainer.is_global_zero:
        return {}
    data, train, held_out = run["data"], run["train"], run["held_out"]
    module.backbone.cpu().eval()
    if cfg.center:  # the training images' mean embedding, as the kNN evaluation measured it where there was one
        center = knn.center if knn and knn.center is not None else \
            mean_embedding(embed_with(module.backbone, train.spaced(2000).items, encoder.preprocess))
        encoder.set_center(center)
    encoder.save_pretrained(out)  # model.safetensors + config.json; the card below replaces its README.md
    before, after = (knn.before, knn.after) if knn else ({}, {})
    history = module.loss_history()
    spec = encoder.config
    metrics = {"before": before, "after": after, "before_after": report.before_after(before, after),
               "recipe": "image", "method": cfg.method, "world_size": trainer.world_size,
               "backbone": spec["architecture"], "train_images": len(train.items),
               "eval_images": len(held_out.items) if held_out else 0, "skipped_images": len(data.skipped),
               "steps": trainer.global_step, "learning_rate": module.learning_rate, "wise_ft": wise.alpha,
               "precision": str(trainer.precision),  # Lightning's name for what ran: "bf16-mixed", "32-true"
               # what the run used: a batch no larger than the training set, k no more than the kNN bank holds
               "batch_size": run["batch_size"], **({"knn_k": knn.k_used} if knn else {}),
               **({"wise_ft_auto": {"validation_images": len(run["validation"].items),
                                    "knn_top1": {f"{a:g}": round(v, 4) for a, v in wise.scores.items()}}}
                  if wise.scores else {}),
               "centered": "center" in encoder.config, "freeze_fraction": module.freeze_fraction,
               "frozen_share": round(module.frozen_share, 4),
               "train_seconds": round(run["seconds"], 2), "train_cpu_seconds": round(run["cpu_seconds"], 2),
               **({"knn_seconds": round(knn.seconds, 2)} if knn else {}),
               **({"memory_bank_size": module.memory_bank_size} if module.memory_bank_size else {}),
               "images_per_second": module.images_per_second(run["batch_size"]),
               "method_reason": run["method_reason"],
               # what a plain classifier on the starting features scores: the bar training should clear
               "reference": {"linear_probe_top1": knn.linear_probe} if knn and knn.linear_probe is not None else {},
               "embedding_spread": knn.spread if knn else {},  # collapse check: mean cosine, std
               "history": history}
    report.write_metrics(out, metrics)
    report.plot_curve(history, out / "loss.png")
    report.plot_before_after(metrics["before_after"], out / "before_after.png")
    shown = held_out or train.subset(list(range(min(1000, len(train.items)))))
    emb = knn.query_embeddings if knn and knn.query_embeddings is not None else encoder.embed(shown.items)
    plot_pca(emb, shown.labels, shown.label_names, out / "embeddings_pca.png")
    write_card(out, cfg, spec, metrics, data, cfg.push_to_hub)
    save_examples(held_out, out / EXAMPLES, decode_side(cfg.image_size))  # the demo compares the models on these
    log(report.format_table(metrics["before_after"], "kNN evaluation on the held-out images"))
    if metrics["reference"]:
        log(f"  reference: a linear probe (logistic regression) on the starting features scores "
            f"{metrics['reference']['linear_probe_top1']:.4f}")
    if warning := knn_fell(metrics["before_after"], cfg.method, wise.alpha, wise.auto):
        log(warning)
    return metrics


def knn_fell(before_after: dict[str, dict[str, float]], method: str, wise_ft: float,
             auto: bool = False) -> str | None:
    """One line when training lowered kNN top-1 on the held-out images: the starting backbone embeds them better,
    and the user should know before they use or share the result (the clip-art benchmark is such a set). A share
    ``wise_ft=auto`` chose is not second-guessed."""
    from .methods import get_method

    knn = before_after.get("knn_top1")
    if not knn or knn["after"] >= knn["before"]:
        return None
    fixes = [f"keep less of the change (wise_ft={min(0.25, wise_ft / 2):g} or auto)"] if wise_ft > 0 and not auto \
        else []
    if get_method(method).labels:  # only a run on labels (supcon) has self-supervised training left to try
        fixes.append("train self-supervised (method=simclr)")
    fixes.append("use the starting backbone as it is")
    listed = f"{', '.join(fixes[:-1])} or {fixes[-1]}" if len(fixes) > 1 else fixes[0]
    return (f"warning: training lowered kNN top-1 on the held-out images ({knn['before']:.4f} -> {knn['after']:.4f}): "
            f"the starting backbone embeds them better; {listed}")
