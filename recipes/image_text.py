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

from contrastkit.plugins.config import SentenceTransformerArgs, field, require_positive, resolve
from contrastkit.plugins.errors import UserError

DESCRIPTION = "Fine-tune a CLIP-style image-text dual encoder on image-caption pairs."
SAMPLE_DATA = "shapes.csv"


@dataclass
class Config(SentenceTransformerArgs):
    """Everything the image-text recipe reads; each field is a CLI key (``key=value``) and a YAML key."""

    data: Any = field(None, "image-caption pairs: a CSV/JSONL/Parquet file with image paths (relative to the file) "
                            "and captions, or a Hub dataset id (default: 400 bundled drawn shapes)")
    columns: dict[str, str] = field({}, "map roles to your column names, e.g. {image: file, text: alt}")
    skip_missing: bool = field(False, "skip and count rows with a missing or unreadable image or an empty "
                                      "caption, instead of stopping (default off)")
    model: str = field("tiny-clip", "base model: a CLIP folder, a Hub id, or tiny-clip (a random tiny CLIP built "
                                    "locally, for trying things out; the default)")
    scale: float = field(20.0, "similarity scale (inverse temperature) of the contrastive loss (default 20)")
    epochs: float = field(10.0)
    learning_rate: float = field(1e-3, "peak learning rate (default 1e-3 for tiny-clip; use ~1e-5 for a "
                                       "pretrained CLIP)")
    logging_steps: int = field(10)

    def check(self) -> None:
        """The image-text recipe's own fields."""
        require_positive(self, "scale")
        if self.batch_size < 2:
            raise UserError("config field 'batch_size' must be at least 2: other pairs in the batch are the negatives")


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
