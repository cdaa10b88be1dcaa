"""Fine-tune a CLIP-style image-text dual encoder on image-caption pairs (contrastive, both directions).

    contrastkit run image-text data=captions.csv epochs=5
    from contrastkit.recipes import image_text; result = image_text.run(data="captions.csv")

Steps: config -> (image, caption) pairs -> CLIP model -> symmetric MNRL + ST trainer -> save, evaluate, card -> Hub.
The output is a plain SentenceTransformer folder that embeds both PIL images and texts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contrastkit.plugins.config import field, require_positive, require_training_length, resolve
from contrastkit.plugins.errors import UserError

DESCRIPTION = "Fine-tune a CLIP-style image-text dual encoder on image-caption pairs."
SAMPLE_DATA = "shapes.csv"


@dataclass
class Config:
    """Everything the image-text recipe reads; each field is a CLI key (``key=value``) and a YAML key."""

    data: Any = field(None, "image-caption pairs: a CSV/JSONL/Parquet file with an image path column (relative "
                            "paths are read from the file's folder) and a caption column, or a Hub dataset id "
                            "with an image column (default: the bundled sample of 400 drawn shapes)")
    subset: str | None = field(None, "Hub dataset subset (configuration) name")
    split: str | None = field(None, "Hub dataset split (default: train)")
    eval_data: Any = field(None, "held-out pairs in the same format (default: hold out 10%, at most 1,000 rows)")
    columns: dict[str, str] = field({}, "map roles to your column names, e.g. {image: file, text: alt}")
    skip_missing: bool = field(False, "skip (and count) rows whose image file is missing/unreadable or whose "
                                      "caption is empty, instead of stopping with an error")
    model: str = field("tiny-clip", "base model: a CLIP folder, a Hub id such as openai/clip-vit-base-patch32, or "
                                    "tiny-clip (a randomly initialised tiny CLIP built locally, for trying things out)")
    epochs: float = field(10.0, "training epochs")
    max_steps: int = field(-1, "stop after this many steps (overrides epochs when > 0)")
    batch_size: int = field(32, "pairs per batch (in-batch negatives grow with it)")
    learning_rate: float = field(1e-3, "peak learning rate (1e-3 suits tiny-clip; use ~1e-5 for a pretrained CLIP)")
    warmup_ratio: float = field(0.1, "fraction of steps used for linear warm-up")
    scale: float = field(20.0, "similarity scale (inverse temperature) of the contrastive loss")
    seed: int = field(42, "seed for the held-out split, shuffling and initialisation")
    output_dir: str | None = field(None, "where to write the model (default: outputs/image-text-<timestamp>)")
    overwrite: bool = field(False, "allow writing into an existing, non-empty output_dir")
    resume: bool = field(False, "continue from the last checkpoint in output_dir (default: the newest image-text run)")
    save_steps: int = field(500, "save a checkpoint every N steps (and at the end)")
    save_total_limit: int = field(2, "keep at most this many checkpoints")
    logging_steps: int = field(10, "log the loss every N steps")
    report_to: str = field("none", "where the trainer reports: none, tensorboard, wandb, ...")
    precision: str = field("auto", "auto, fp32, bf16 or fp16 (auto: bf16 on a GPU that supports it, else fp32)")
    push_to_hub: str | None = field(None, "after a successful run, push the output to this Hub repo id")
    trust_remote_code: bool = field(False, "allow the model's own code from the Hub to run")

    def validate(self) -> None:
        """Reject values that cannot work before any model is loaded."""
        require_positive(self, "batch_size", "save_steps", "logging_steps", "save_total_limit", "learning_rate",
                         "scale")
        if self.batch_size < 2:
            raise UserError("config field 'batch_size' must be at least 2: other pairs in the batch are the negatives")
        require_training_length(self)
        if not 0 <= self.warmup_ratio < 1:
            raise UserError(f"config field 'warmup_ratio' must be in [0, 1), got {self.warmup_ratio}")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise UserError(f"config field 'precision' must be auto, fp32, bf16 or fp16, got '{self.precision}'")


def _base_dir(data: Any) -> Path | None:
    """Relative image paths are read from the data file's folder."""
    from contrastkit.plugins.data import looks_like_path

    if isinstance(data, (str, Path)) and (isinstance(data, Path) or looks_like_path(str(data))):
        p = Path(data).expanduser()
        return p if p.is_dir() else p.parent
    return None


def run(cfg: Config | None = None, **overrides: Any):
    """Train, evaluate image<->text recall before/after, save a plain SentenceTransformer folder; return a Result."""
    cfg = resolve(Config, cfg, **overrides)
    from contrastkit.plugins import data as data_io
    from contrastkit.plugins import report
    from contrastkit.plugins.config import dump_yaml
    from contrastkit.plugins.device import is_main_process, world_size
    from contrastkit.plugins.st import clip, training
    from contrastkit.plugins.st.callbacks import BeforeAfterCallback, NoPickledArgs, remove_args_pickle

    # 1. Output folder (checked first, so a bad path fails before any work)
    out = report.prepare_output_dir(cfg.output_dir, "image-text", cfg.overwrite, cfg.resume)
    log = report.Printer()

    # 2. Data: any input -> checked (image, text) pairs, then a held-out split
    source = cfg.data if cfg.data is not None else data_io.sample_path(SAMPLE_DATA)
    pairs, stats = clip.image_text_pairs(data_io.to_dataset(source, cfg.subset, cfg.split), cfg.columns,
                                         _base_dir(source), cfg.skip_missing)
    eval_pairs = None
    if cfg.eval_data is not None:
        eval_pairs, eval_stats = clip.image_text_pairs(data_io.to_dataset(cfg.eval_data, what="eval_data"),
                                                       cfg.columns, _base_dir(cfg.eval_data), cfg.skip_missing,
                                                       what="eval_data")
        stats.missing_images += eval_stats.missing_images
        stats.empty_captions += eval_stats.empty_captions
    pairs, eval_pairs = data_io.split_train_eval(pairs, eval_pairs, seed=cfg.seed)
    for note in stats.notes():
        log(f"data: {note}")
    log(f"data: {len(pairs)} training pairs, {len(eval_pairs) if eval_pairs is not None else 0} held out "
        f"(image column '{stats.image_column}', caption column '{stats.text_column}')")

    # 3. Model (tiny-clip, a folder or a Hub id: the same path) and CLIP's symmetric contrastive loss
    model = clip.load_model(cfg.model, seed=cfg.seed, trust_remote_code=cfg.trust_remote_code)
    if cfg.model == clip.TINY_CLIP:
        log(f"model: {clip.TINY_CLIP_NOTE}; its numbers show the recipe works, not a useful model")
    loss = clip.make_loss(model, cfg.scale)

    # 4. Trainer: sentence-transformers' own, with the before/after callback
    evaluator = clip.make_evaluator(eval_pairs, batch_size=cfg.batch_size)
    callback = BeforeAfterCallback(evaluator, out, headline=clip.headline,
                                   extra={"recipe": "image-text", "loss": "MultipleNegativesRankingLoss "
                                          "(image_to_text + text_to_image)",
                                          "base_model": clip.TINY_CLIP_NOTE if cfg.model == clip.TINY_CLIP
                                          else cfg.model,
                                          "train_rows": len(pairs), "world_size": world_size(),
                                          "eval_rows": len(eval_pairs) if eval_pairs is not None else 0,
                                          "skipped_missing_images": len(stats.missing_images),
                                          "skipped_empty_captions": len(stats.empty_captions)})
    args = training.training_args(cfg, out, in_batch_negatives=True)
    # Images and texts go through the model in two forward passes per step, each touching only its own tower:
    # DDP's unused-parameter search would mark the other tower ready twice.
    args.ddp_find_unused_parameters = False
    for name, param in model.named_parameters():
        if name.endswith("logit_scale"):  # CLIP's own temperature: unused, the loss has its own scale
            param.requires_grad_(False)
    trainer = training.make_trainer(model, args, pairs, loss, callbacks=[callback, NoPickledArgs()])
    training.train(trainer, resume=cfg.resume)

    # 5. Save: a plain SentenceTransformer folder with ST's card, plus config.yaml (metrics.json came from the callback)
    trainer.save_model(str(out))  # every rank calls it; only rank 0 writes
    if is_main_process():
        remove_args_pickle(out)  # the Trainer's pickle of its arguments, with absolute paths
        dump_yaml(cfg, out / "config.yaml")

    # 6. Hub
    if cfg.push_to_hub and is_main_process():
        from contrastkit.plugins import hub

        hub.push(out, cfg.push_to_hub, hub.PushConfig())
    return report.Result(output_dir=out, metrics=callback.metrics, config=cfg, model=model)
