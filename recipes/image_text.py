"""Fine-tune a CLIP-style image-text dual encoder on image-caption pairs (contrastive, both directions).

    contrastkit run image-text data=captions.csv epochs=5
    from contrastkit.recipes import image_text; result = image_text.run(data="captions.csv")

Steps: config -> (image, caption) pairs -> CLIP model -> symmetric MNRL + ST trainer -> save, evaluate, card -> Hub.
The output is a plain SentenceTransformer folder that embeds both PIL images and texts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contrastkit.plugins.config import field, require_positive, resolve
from contrastkit.plugins.errors import UserError
from contrastkit.plugins.run import cleans_up_refusals
from contrastkit.plugins.st.config import SentenceTransformerArgs

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


@cleans_up_refusals
def run(cfg: Config | None = None, **overrides: Any):
    """Train, evaluate image<->text recall before/after, save a plain SentenceTransformer folder; return a Result."""
    cfg = resolve(Config, cfg, **overrides)
    from contrastkit.plugins import run
    from contrastkit.plugins.device import world_size
    from contrastkit.plugins.st import clip, clip_data, training
    from contrastkit.plugins.st.callbacks import BeforeAfterCallback, NoPickledArgs

    # 1. Output folder (checked first, so a bad path fails before any work)
    out, log = run.start(cfg, "image-text")

    # 2. Data: any input -> checked (image, text) pairs, then a held-out split
    pairs, eval_pairs, stats = clip_data.load_pairs(cfg, SAMPLE_DATA)
    for note in stats.notes():
        log(f"data: {note}")
    held_out = len(eval_pairs) if eval_pairs is not None else 0
    log(f"data: {len(pairs)} training pairs, {held_out} held out "
        f"(image column '{stats.image_column}', caption column '{stats.text_column}')")

    # 3. Model (tiny-clip, a folder or a Hub id: the same path) and CLIP's symmetric contrastive loss
    model = clip.load_model(cfg.model, seed=cfg.seed, trust_remote_code=cfg.trust_remote_code)
    tiny = cfg.model == clip.TINY_CLIP
    if tiny:
        log(f"model: {clip.TINY_CLIP_NOTE}; its numbers show the recipe works, not a useful model")
    loss, gather_note = clip.make_loss(model, cfg.scale)
    if gather_note:
        log(f"loss: {gather_note} (gather_across_devices)")

    # 4. Trainer: sentence-transformers' own, with the before/after callback
    evaluator = clip.make_evaluator(eval_pairs, batch_size=cfg.batch_size)
    callback = BeforeAfterCallback(evaluator, out, headline=clip.headline,
                                   extra={"recipe": "image-text", "loss": "MultipleNegativesRankingLoss "
                                          "(image_to_text + text_to_image)",
                                          "base_model": clip.TINY_CLIP_NOTE if tiny else cfg.model,
                                          "train_rows": len(pairs), "world_size": world_size(), "eval_rows": held_out,
                                          **stats.skipped()})
    trainer = training.make_trainer(model, clip.training_args(cfg, out), pairs, loss,
                                    callbacks=[callback, NoPickledArgs()])
    training.name_hub_datasets(trainer, cfg)
    training.train(trainer, resume=cfg.resume)

    # 5. Save (metrics.json came from the callback), config.yaml, Hub
    training.save(trainer, out)
    return run.finish(cfg, out, callback.metrics, model)
