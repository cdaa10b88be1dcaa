"""Contrastive image embeddings with lightly (SimCLR, MoCo, BYOL, DINO, ..., and SupCon on labels) on Lightning.

    contrastkit run image data=photos/               # method=auto: supcon on labelled subfolders, else simclr
    contrastkit run image data=photos/ method=simclr
    from contrastkit.recipes import image; result = image.run(data="photos/", method="byol")

Steps: config -> data -> backbone + method -> Lightning trainer -> save, evaluate, card -> Hub.
For multi-GPU/multi-node (strategy=ddp) from Python, call run() under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contrastkit.plugins.config import RecipeArgs, field, resolve
from contrastkit.plugins.errors import UserError
from contrastkit.plugins.run import cleans_up_refusals
from contrastkit.plugins.vision.config import LightningArgs, MethodArgs

DESCRIPTION = "Contrastive image embeddings with lightly on Lightning: supcon on labelled images, else SimCLR, MoCo, BYOL, ..."


@dataclass
class Config(MethodArgs, LightningArgs, RecipeArgs):
    """Everything the image recipe reads; each field is a CLI key (``key=value``) and a YAML key. The method's
    fields come from ``MethodArgs`` and Lightning's from ``LightningArgs`` (contrastkit.plugins.vision.config)."""

    data: Any = field(None, "a folder of images (subfolder names become labels), a CSV/TSV/JSONL/Parquet table "
                            "of image paths (and labels), a Hub dataset id, a datasets.Dataset or a list of PIL "
                            "images/paths (default: scikit-learn's digits)")
    eval_data: Any = field(None, "labelled held-out images, same formats (default: hold out 10%, at most 1,000)")
    strict: bool = field(False, "stop at the first unreadable or too-small image instead of skipping it")
    epochs: int | None = field(None, "training epochs (default: the method's, 14; 12 for supcon)")
    batch_size: int = field(64, "images per batch, each giving two or more augmented views (default 64)")
    learning_rate: float | None = field(None, "AdamW learning rate (default: the method's, e.g. 3e-4 for simclr)")
    precision: str = field("auto", "Lightning precision: 32-true, bf16-mixed or 16-mixed (auto: bf16-mixed on a GPU "
                                   "that supports it, else 32-true)")
    save_total_limit: int = field(3, "keep the newest N step checkpoints besides last.ckpt (-1: keep all)")

    # Lightning's names that keep float32 weights: a "-true" half or double precision casts the model itself, which
    # the encoder's float32 inputs and its saved float32 weights do not take
    PRECISIONS = ("auto", "32-true", "32", "bf16-mixed", "bf16", "16-mixed", "16")

    def check(self) -> None:
        """The image recipe's own rules: views are compared across the batch; the run never writes its plots and
        examples straight into an image folder it reads."""
        if self.batch_size < 2:
            raise UserError("config field 'batch_size' must be at least 2 (views are compared across the batch)")
        from pathlib import Path

        from contrastkit.plugins.splits import same_source

        for name in ("data", "eval_data"):
            folder = getattr(self, name)
            if self.output_dir and same_source(folder, self.output_dir) and Path(folder).expanduser().is_dir():
                raise UserError(f"output_dir '{self.output_dir}' is the {name} folder: the run's plots and examples "
                                f"would become images there; choose another folder, e.g. "
                                f"output_dir={Path(self.output_dir) / 'run'} (run folders inside it are left out)")


@cleans_up_refusals
def run(cfg: Config | None = None, **overrides: Any):
    """Train, evaluate kNN before/after, save a safetensors encoder folder and return a Result."""
    cfg = resolve(Config, cfg, **overrides)
    import pytorch_lightning as pl
    from contrastkit.plugins import run
    from contrastkit.plugins.vision import training
    from contrastkit.plugins.vision.data import load_images
    from contrastkit.plugins.vision.encoder import ImageEncoder, make_preprocess
    from contrastkit.plugins.vision.methods import make_transform
    from contrastkit.plugins.vision.module import SSLModule
    from contrastkit.plugins.vision.splits import check_eval_images, holdout, match_eval_labels

    # 1. Output folder (checked first, so a bad path fails before any work)
    out, log = run.start(cfg, "image")
    pl.seed_everything(cfg.seed, verbose=False)

    # 2. Data: folder / Hub / Python images -> ImageData, then labelled held-out images for kNN
    data = load_images(cfg.data, cfg.subset, cfg.split, cfg.strict)
    eval_source = cfg.eval_source()  # eval_data, or a whole DatasetDict's evaluation split
    train, held_out = holdout(data, cfg.seed) if eval_source is None else \
        (data, load_images(eval_source, *cfg.eval_options(), strict=cfg.strict, what="eval_data"))
    if eval_source is not None:
        check_eval_images(data, held_out)
        held_out = match_eval_labels(data, held_out)
    if held_out is not None and held_out.labels is None:
        held_out = None
    if len(train.items) < 2:
        raise UserError(f"data has {len(train.items)} usable image(s); give at least 2")
    train, validation = training.set_aside(cfg, train)  # wise_ft=auto: images to choose the blend on
    for note in data.messages():
        log(f"data: {note}")
    log(f"data: {len(train.items)} training images from {data.source}, "
        f"{len(held_out.items) if held_out else 0} held out"
        + (f", {len(validation.items)} set aside to choose wise_ft" if validation else "")
        + (f", {len(data.skipped)} skipped" if data.skipped else ""))
    # method=auto: supcon when the training images carry labels of 2+ classes, simclr otherwise (says which, and why)
    reason = training.settle_method(cfg, out, train, log)

    # 3. Backbone + method: lightly's head, loss, multi-view transform and step from the table in vision.methods
    module = SSLModule(cfg.method, cfg.backbone, **cfg.module_kwargs())
    spec = {**module.spec, "image_size": cfg.image_size, "resize": "squash to image_size x image_size, bilinear",
            "method": cfg.method}
    preprocess = make_preprocess(cfg.image_size, spec["normalize"])
    batch_size = min(cfg.batch_size, len(train.items))
    loader = training.make_loader(train, make_transform(cfg.method, cfg.image_size, spec["normalize"], cfg.transform),
                                  batch_size, cfg.num_workers, cfg.image_size)

    # 4. Lightning trainer with checkpoints, WiSE-FT and the kNN callback
    trainer, knn, wise = training.make_trainer(cfg, out, train, held_out, preprocess, validation)
    seconds, cpu_seconds = training.fit(trainer, module, loader, cfg, out, knn, log)
    encoder = ImageEncoder(module.backbone, preprocess, spec)

    # 5. Save the encoder, metrics, plots and card (rank 0), config.yaml, Hub
    metrics = training.save(out, cfg, module, encoder, trainer, {"data": data, "train": train, "held_out": held_out,
                                                                 "batch_size": batch_size, "seconds": seconds,
                                                                 "cpu_seconds": cpu_seconds,
                                                                 "method_reason": reason, "validation": validation},
                            knn, wise, log)
    return run.finish(cfg, out, metrics, encoder, main=trainer.is_global_zero)
