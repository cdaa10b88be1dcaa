"""Self-supervised image embeddings with lightly (SimCLR, MoCo, BYOL, DINO, ...) on Lightning.

    contrastkit run image data=photos/ method=simclr
    from contrastkit.recipes import image; result = image.run(data="photos/", method="byol")

Steps: config -> data -> backbone + method -> Lightning trainer -> save, evaluate, card -> Hub.
For multi-GPU/multi-node (strategy=ddp) from Python, call run() under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from contrastkit.plugins.config import RecipeArgs, field, require_positive, require_range, resolve
from contrastkit.plugins.errors import UserError, did_you_mean

DESCRIPTION = "Self-supervised image embeddings with lightly (SimCLR, MoCo, BYOL, DINO, ...) on Lightning."
METHODS = ("simclr", "moco", "byol", "simsiam", "dino", "barlowtwins", "vicreg", "swav")


@dataclass
class Config(RecipeArgs):
    """Everything the image recipe reads; each field is a CLI key (``key=value``) and a YAML key."""

    data: Any = field(None, "a folder of images (subfolder names become labels), a Hub dataset id, a "
                            "datasets.Dataset or a list of PIL images/paths (default: scikit-learn's digits)")
    eval_data: Any = field(None, "labelled held-out images, same formats (default: hold out 10%, at most 1,000)")
    strict: bool = field(False, "stop at the first unreadable or too-small image instead of skipping it")
    method: str = field("simclr", f"one of: {', '.join(METHODS)} (default simclr)")
    backbone: str = field("efficientnet-lite0", "efficientnet-lite0 (ImageNet-pretrained; the default), resnet18, "
                                                "resnet50, tiny-cnn, timm:<name>, or a folder saved by contrastkit")
    weights: str | None = field(None, "local .safetensors/.pth state dict for resnet*/timm backbones")
    small_stem: bool | None = field(None, "resnet: 3x3 stem without max-pool (default: on for image_size <= 32)")
    freeze_bn: bool | None = field(None, "keep the backbone's BatchNorm statistics fixed (default: on when pretrained)")
    head_batch_norm: bool = field(True, "keep the BatchNorm1d layers of lightly's projection head (default on)")
    transform: dict | None = field(None, "keyword arguments for the method's lightly transform, e.g. "
                                   "{min_scale: 0.2, gaussian_blur: 0.0}")
    image_size: int = field(64, "training and embedding resolution in pixels (default 64)")
    temperature: float | None = field(None, "loss temperature (default: the method's, e.g. 0.2 for simclr)")
    weight_decay: float = field(1e-4, "AdamW weight decay (default 1e-4)")
    warmup_steps: int = field(0, "linear learning-rate warm-up over the first N steps (default 0)")
    lr_schedule: str = field("constant", "constant (the default), or cosine: decay to 0 over the run")
    backbone_lr_scale: float = field(1.0, "the backbone's learning rate as a fraction of learning_rate (default 1)")
    freeze_fraction: float | None = field(None, "keep up to this fraction of the backbone's weights fixed, whole "
                                               "tensors, earliest first (default: 0.3 pretrained, 0 random)")
    head_warmup_steps: int = field(0, "train only the projection head for the first N steps (default 0)")
    ema_decay: float = field(0.0, "save an exponential moving average of the weights with this decay, e.g. 0.9 "
                                  "(0: off, the default)")
    wise_ft: float | None = field(None, "WiSE-FT: the share of its change the backbone keeps when training ends "
                                        "(default: 0.65 pretrained, 1 (off) random)")
    channels_last: bool = field(True, "train the backbone in channels-last memory layout (default on: faster)")
    memory_bank_size: int | None = field(None, "moco: keys of past batches kept as negatives (default 4,096, at "
                                               "most a quarter of the images per epoch)")
    knn_k: int = field(20, "neighbours for the kNN evaluation (default 20)")
    knn_t: float = field(0.1, "temperature of the weighted kNN vote (default 0.1)")
    num_workers: int = field(-1, "data-loader worker processes (-1: half the CPU cores, 0 on 2 cores or fewer)")
    accelerator: str = field("auto", "Lightning accelerator: auto, cpu, gpu, mps, ...")
    devices: Any = field("auto", "Lightning devices: auto, a count, or a list of ids")
    strategy: str = field("auto", "Lightning strategy: auto, ddp, ddp_spawn, fsdp, ...")
    num_nodes: int = field(1, "machines for multi-node training")
    epochs: int = field(14, "training epochs (default 14)")
    batch_size: int = field(64, "images per batch, each giving two or more augmented views (default 64)")
    learning_rate: float | None = field(None, "AdamW learning rate (default: the method's, e.g. 3e-4 for simclr)")
    precision: str = field("auto", "Lightning precision, e.g. 32-true, bf16-mixed, 16-mixed (auto: bf16-mixed on "
                                   "a GPU that supports it, else 32-true)")
    save_total_limit: int = field(3, "keep the newest N step checkpoints besides last.ckpt (-1: keep all)")

    PRECISIONS = None  # Lightning checks its own precision names

    def check(self) -> None:
        """The image recipe's own fields."""
        if self.method not in METHODS:
            raise UserError(f"unknown method '{self.method}'.{did_you_mean(self.method, METHODS)} Use one of: "
                            f"{', '.join(METHODS)}")
        if self.lr_schedule != "constant":  # vision imports torch: only a non-default value pays for that here
            from contrastkit.plugins.vision.module import LR_SCHEDULES

            if self.lr_schedule not in LR_SCHEDULES:
                raise UserError(f"config field 'lr_schedule' must be {' or '.join(LR_SCHEDULES)}, "
                                f"got '{self.lr_schedule}'")
        require_positive(self, "knn_k", "num_nodes")
        if self.batch_size < 2:
            raise UserError("config field 'batch_size' must be at least 2 (views are compared across the batch)")
        if self.image_size < 8:
            raise UserError(f"config field 'image_size' must be at least 8 pixels, got {self.image_size}")
        require_range(self, "ema_decay", 0, 1, high_open=True, note="0: off")
        require_range(self, "wise_ft", 0, 1, note="1: off")
        require_range(self, "freeze_fraction", 0, 1)
        if self.memory_bank_size is not None:  # the method table says which methods keep a memory bank
            from contrastkit.plugins.vision.methods import METHOD_NAMES, get_method

            if not get_method(self.method).memory_bank:
                banked = "/".join(n for n in METHOD_NAMES if get_method(n).memory_bank)
                raise UserError(f"config field 'memory_bank_size' applies to method={banked}, not method={self.method}")
        for name in ("warmup_steps", "head_warmup_steps", "backbone_lr_scale", "memory_bank_size"):
            if (getattr(self, name) or 0) < 0:
                raise UserError(f"config field '{name}' must be >= 0, got {getattr(self, name)}")
        if self.transform:  # a wrong option fails here, before the data and the model load
            from contrastkit.plugins.vision.methods import make_transform

            make_transform(self.method, self.image_size, {"mean": [0.5] * 3, "std": [0.5] * 3}, self.transform)


def run(cfg: Config | None = None, **overrides: Any):
    """Train, evaluate kNN before/after, save a safetensors encoder folder and return a Result."""
    cfg = resolve(Config, cfg, **overrides)
    import os

    import pytorch_lightning as pl
    import torch
    from contrastkit.plugins import report
    from contrastkit.plugins.config import dump_yaml
    from contrastkit.plugins.device import auto_bf16
    from contrastkit.plugins.vision.callbacks import FolderCheckpoint, KNNCallback, WiSEFT
    from contrastkit.plugins.vision.card import plot_pca, write_card
    from contrastkit.plugins.vision.data import ImageDataset, holdout, load_images
    from contrastkit.plugins.vision.encoder import ImageEncoder, embed_with, make_preprocess
    from contrastkit.plugins.vision.methods import make_transform
    from contrastkit.plugins.vision.module import SSLModule

    # 1. Output folder (checked first, so a bad path fails before any work)
    out = report.prepare_output_dir(cfg.output_dir, "image", cfg.overwrite, cfg.resume)
    log = report.Printer()
    pl.seed_everything(cfg.seed, verbose=False)

    # 2. Data: folder / Hub / Python images -> ImageData, then labelled held-out images for kNN
    data = load_images(cfg.data, cfg.subset, cfg.split, cfg.strict)
    train, held_out = holdout(data, cfg.seed) if cfg.eval_data is None else \
        (data, load_images(cfg.eval_data, strict=cfg.strict, what="eval_data"))
    if held_out is not None and held_out.labels is None:
        held_out = None
    if len(train.items) < 2:
        raise UserError(f"data has {len(train.items)} usable image(s); give at least 2")
    log(f"data: {len(train.items)} training images from {data.source}, "
        f"{len(held_out.items) if held_out else 0} held out" + (f", {len(data.skipped)} skipped "
                                                              f"(unreadable or too small)" if data.skipped else ""))

    # 3. Backbone + method: lightly's head, loss, multi-view transform and step from the table in vision.methods
    small_stem = cfg.small_stem if cfg.small_stem is not None else cfg.image_size <= 32
    module = SSLModule(cfg.method, cfg.backbone, weights=cfg.weights, small_stem=small_stem,
                       learning_rate=cfg.learning_rate, temperature=cfg.temperature, weight_decay=cfg.weight_decay,
                       freeze_bn=cfg.freeze_bn, warmup_steps=cfg.warmup_steps, head_batch_norm=cfg.head_batch_norm,
                       backbone_lr_scale=cfg.backbone_lr_scale, head_warmup_steps=cfg.head_warmup_steps,
                       lr_schedule=cfg.lr_schedule, freeze_fraction=cfg.freeze_fraction,
                       memory_bank_size=cfg.memory_bank_size, channels_last=cfg.channels_last)
    spec = {**module.spec, "image_size": cfg.image_size, "resize": "squash to image_size x image_size, bilinear",
            "method": cfg.method}
    preprocess = make_preprocess(cfg.image_size, spec["normalize"])
    transform = make_transform(cfg.method, cfg.image_size, spec["normalize"], cfg.transform)
    workers = cfg.num_workers if cfg.num_workers >= 0 else (0 if (os.cpu_count() or 1) <= 2 else
                                                            min(8, (os.cpu_count() or 2) // 2))
    batch_size = min(cfg.batch_size, len(train.items))
    loader = torch.utils.data.DataLoader(ImageDataset(train, transform), batch_size=batch_size,
                                         shuffle=True, drop_last=True, num_workers=workers,
                                         persistent_workers=workers > 0)

    # 4. Lightning trainer with the kNN callback and checkpoints
    # monitor="step", mode="max": Lightning's way to keep the newest N periodic checkpoints; FolderCheckpoint is
    # Lightning's ModelCheckpoint with no absolute paths inside the .ckpt files
    callbacks = [FolderCheckpoint(dirpath=out / report.CHECKPOINTS, save_last=True, monitor="step", mode="max",
                                  save_top_k=cfg.save_total_limit, every_n_train_steps=cfg.save_steps)]
    if cfg.ema_decay:  # before the kNN callback, so its "after" sees the averaged weights
        callbacks.append(pl.callbacks.EMAWeightAveraging(decay=cfg.ema_decay))
    wise = WiSEFT(cfg.wise_ft)  # also before the kNN callback: "after" is the blend that gets saved
    callbacks.append(wise)
    knn = None
    if held_out is not None and train.labels is not None:
        bank = train.subset(list(range(0, len(train.items), max(1, len(train.items) // 10000))))
        knn = KNNCallback(bank, held_out, preprocess, cfg.knn_k, cfg.knn_t)
        callbacks.append(knn)
    precision = cfg.precision
    if precision == "auto":
        precision = "bf16-mixed" if auto_bf16() else "32-true"
    trainer = pl.Trainer(max_epochs=cfg.epochs if cfg.max_steps <= 0 else None, max_steps=cfg.max_steps,
                         accelerator=cfg.accelerator, devices=cfg.devices, strategy=cfg.strategy,
                         num_nodes=cfg.num_nodes, precision=precision, callbacks=callbacks, logger=False,
                         default_root_dir=out, log_every_n_steps=1, enable_model_summary=False)
    per_process = len(train.items) // trainer.world_size  # images each process sees per epoch
    if cfg.max_steps > 0:  # steps per epoch counted low, so max_epochs never ends the run early (else "Epoch 0/-2")
        trainer.fit_loop.max_epochs = -(-cfg.max_steps // max(1, per_process // batch_size))
    note = module.fit_memory_bank(per_process)  # moco on small data
    if note:
        log(note)
    started = time.perf_counter()
    trainer.fit(module, loader, ckpt_path=_resume_from(out / report.CHECKPOINTS) if cfg.resume else None)
    knn_seconds = knn.seconds if knn else 0.0  # the kNN passes run inside fit; training time leaves them out
    seconds = time.perf_counter() - started - knn_seconds

    # 5. Save the encoder, evaluate, plot and write the card (rank 0 only)
    metrics: dict[str, Any] = {}
    encoder = ImageEncoder(module.backbone, preprocess, spec)
    if trainer.is_global_zero:
        module.backbone.cpu().eval()
        encoder.save_pretrained(out)  # model.safetensors + config.json; the card below replaces its README.md
        dump_yaml(cfg, out / "config.yaml")
        before, after = (knn.before, knn.after) if knn else ({}, {})
        history = module.loss_history()
        metrics = {"before": before, "after": after, "before_after": report.before_after(before, after),
                   "recipe": "image", "method": cfg.method, "world_size": trainer.world_size, "backbone": spec["architecture"],
                   "train_images": len(train.items), "eval_images": len(held_out.items) if held_out else 0,
                   "skipped_images": len(data.skipped), "steps": trainer.global_step,
                   "learning_rate": module.learning_rate, "wise_ft": wise.alpha,
                   "freeze_fraction": module.freeze_fraction, "frozen_share": round(module.frozen_share, 4),
                   "train_seconds": round(seconds, 2),
                   **({"knn_seconds": round(knn_seconds, 2)} if knn else {}),
                   **({"memory_bank_size": module.memory_bank_size} if module.memory_bank_size else {}),
                   "images_per_second": module.images_per_second(batch_size),
                   "embedding_spread": knn.spread if knn else {},  # collapse check: mean cosine, std
                   "history": history}
        report.write_metrics(out, metrics)
        report.plot_curve(history, out / "loss.png")
        report.plot_before_after(metrics["before_after"], out / "before_after.png")
        shown = held_out or train.subset(list(range(min(1000, len(train.items)))))
        emb = knn.query_embeddings if knn and knn.query_embeddings is not None else \
            embed_with(module.backbone, shown.items, preprocess)
        plot_pca(emb, shown.labels, shown.label_names, out / "embeddings_pca.png")
        write_card(out, cfg, spec, metrics, data, cfg.push_to_hub)
        log(report.format_table(metrics["before_after"], "kNN evaluation on the held-out images"))

    # 6. Hub
    if cfg.push_to_hub and trainer.is_global_zero:
        from contrastkit.plugins import hub

        hub.push(out, cfg.push_to_hub, hub.PushConfig())
    return report.Result(output_dir=out, metrics=metrics, config=cfg, model=encoder)


def _resume_from(folder):
    """The newest checkpoint that is whole: a run killed while writing leaves a cut-off file, which is skipped."""
    import zipfile

    # torch.save writes a zip archive whose directory comes last: a cut-off file has none or fails a CRC. Reading
    # the archive checks that without unpickling a file that may come from anywhere; Lightning loads the one chosen.
    for path in sorted(folder.glob("*.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            with zipfile.ZipFile(path) as archive:
                whole = archive.testzip() is None
        except Exception:  # noqa: BLE001 - any unreadable checkpoint is skipped the same way
            whole = False
        if whole:
            return str(path)
        print(f"skipping the unreadable checkpoint {path.name}")
    return None
