"""Image-text (CLIP-style) models: the tiny CLIP, its loss and the recall evaluator; the pairs are ``clip_data``'s.

sentence-transformers v6 loads a folder holding a transformers ``CLIPModel`` + ``CLIPProcessor`` as a plain
``SentenceTransformer`` that embeds both texts and PIL images; MNRL over an (image, text) ``Dataset`` trains it,
through the same trainer as text (``training.make_trainer``).
Usable without a recipe: ``load_model("tiny-clip")``, ``clip_data.image_text_pairs(dataset)``,
``make_evaluator(pairs)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import UserError
from .clip_data import image_keys

TINY_CLIP = "tiny-clip"
TINY_CLIP_NOTE = "a randomly initialised tiny CLIP (2 layers, 32 hidden, 32 px images, character tokenizer)"


# --------------------------------------------------------------------------- model
def cache_dir() -> Path:
    """Where built assets (the tiny CLIP) are kept: $CONTRASTKIT_CACHE, else ~/.cache/contrastkit."""
    root = os.environ.get("CONTRASTKIT_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "contrastkit"
    return Path(root).expanduser()


def char_tokenizer() -> Any:
    """A character-level ``CLIPTokenizer``: start/end tokens plus ByteLevel's alphabet with and without ``</w>``."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for ch in alphabet:
            vocab[ch + suffix] = len(vocab)
    # model_max_length: CLIP has 77 positions; without it ST reports a huge limit and long texts crash
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def build_tiny_clip(folder: str | Path, seed: int = 0, image_size: int = 32) -> Path:
    """Save a randomly initialised tiny ``CLIPModel`` + ``CLIPProcessor`` to ``folder`` (deterministic in ``seed``)."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tok = char_tokenizer()
    small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    eos = tok.convert_tokens_to_ids("<|endoftext|>")
    # eos_token_id must be the tokenizer's: CLIP pools the text at the first EOS, else every text looks the same.
    config = CLIPConfig(text_config={**small, "vocab_size": len(tok), "max_position_embeddings": 77,
                                     "bos_token_id": 0, "eos_token_id": eos, "pad_token_id": eos},
                        vision_config={**small, "image_size": image_size, "patch_size": image_size // 8},
                        projection_dim=32)
    torch.manual_seed(seed)
    folder = Path(folder)
    CLIPModel(config).save_pretrained(folder)
    images = CLIPImageProcessor(size={"shortest_edge": image_size},
                                crop_size={"height": image_size, "width": image_size})
    CLIPProcessor(image_processor=images, tokenizer=tok).save_pretrained(folder)
    return folder


def tiny_clip_path(seed: int = 0) -> Path:
    """The cached tiny CLIP folder, built on first use (written to a temp folder and renamed, so never half-made)."""
    import shutil
    import tempfile

    target = cache_dir() / f"tiny-clip-v2-seed{seed}"
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tiny-clip-", dir=target.parent))
    build_tiny_clip(tmp, seed=seed)
    try:
        tmp.rename(target)
    except OSError:  # another process built it first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_model(name: str, seed: int = 0, trust_remote_code: bool = False) -> Any:
    """A SentenceTransformer that embeds images and texts: ``tiny-clip``, a local folder or a Hub id."""
    from . import models

    if name == TINY_CLIP:
        model = models.load_model(str(tiny_clip_path(seed)), device="cpu" if not _cuda() else None)
        model.model_card_data.model_name = f"contrastkit image-text model from {TINY_CLIP_NOTE}"
    else:
        model = models.load_model(name, trust_remote_code=trust_remote_code)
    modalities = getattr(model, "modalities", ["text"])
    if "image" not in modalities or "text" not in modalities:
        raise UserError(f"model '{name}' embeds {', '.join(map(str, modalities))} only; the image-text recipe needs "
                        f"an image-text model such as openai/clip-vit-base-patch32 (or model={TINY_CLIP})")
    return model


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


# --------------------------------------------------------------------------- loss
def training_args(cfg: Any, out: Path) -> Any:
    """The ST trainer's arguments for a dual encoder. Images and texts go through the model in two forward passes
    per step, each touching only its own tower: DDP's unused-parameter search would mark the other ready twice."""
    from .training import training_args as st_training_args

    args = st_training_args(cfg, out, in_batch_negatives=True)
    args.ddp_find_unused_parameters = False
    return args


def make_loss(model: Any, scale: float = 20.0) -> tuple[Any, str]:
    """CLIP's loss in ST terms: MNRL over (image, text) with both directions, one softmax per direction. CLIP's own
    temperature (``logit_scale``) is left untrained: the loss has its own ``scale``. Returns the loss and its
    note under DDP ("" otherwise)."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from .losses import across_devices

    for name, param in model.named_parameters():
        if name.endswith("logit_scale"):
            param.requires_grad_(False)
    gather, note = across_devices(MultipleNegativesRankingLoss)  # under DDP, every process's pairs are negatives
    loss = MultipleNegativesRankingLoss(model, scale=scale, directions=("query_to_doc", "doc_to_query"),
                                        partition_mode="per_direction", **gather)
    return loss, note


# --------------------------------------------------------------------------- evaluation
def make_evaluator(pairs: Any, name: str = "heldout", batch_size: int = 32) -> Any | None:
    """image->text and text->image retrieval (recall@1/5, MRR@10) with ST's InformationRetrievalEvaluator."""
    if pairs is None or len(pairs) < 2:
        return None
    from sentence_transformers.sentence_transformer import evaluation as E

    texts = pairs["text"]
    # identical captions are one document, and one image with several captions (COCO-style) is one image that
    # all of them are relevant to: as separate rows, each caption would count its image's other captions as misses
    caption_ids: dict[str, str] = {}
    for t in texts:
        caption_ids.setdefault(t, f"t{len(caption_ids)}")
    image_ids: dict[str, str] = {}
    first_rows: list[int] = []  # each image's first row, which holds the image the id stands for
    row_image = []
    for row, key in enumerate(image_keys(pairs)):
        if key not in image_ids:
            image_ids[key] = f"i{len(image_ids)}"
            first_rows.append(row)
        row_image.append(image_ids[key])
    images = dict(zip(image_ids.values(), pairs.select(first_rows)["image"]))
    captions = {cid: t for t, cid in caption_ids.items()}
    image_to_text: dict[str, set[str]] = {}
    text_to_image: dict[str, set[str]] = {}
    for iid, t in zip(row_image, texts):
        image_to_text.setdefault(iid, set()).add(caption_ids[t])
        text_to_image.setdefault(caption_ids[t], set()).add(iid)
    common = {"batch_size": batch_size, "accuracy_at_k": [1, 5], "precision_recall_at_k": [1, 5],
              "mrr_at_k": [10], "ndcg_at_k": [10], "map_at_k": [10], "write_csv": False}
    return E.SequentialEvaluator([
        E.InformationRetrievalEvaluator(images, captions, image_to_text, name=f"{name}_image_to_text", **common),
        E.InformationRetrievalEvaluator(captions, images, text_to_image, name=f"{name}_text_to_image", **common),
    ])


HEADLINE = ("recall@1", "recall@5", "mrr@10")


def headline(metrics: dict[str, float]) -> dict[str, float]:
    """The retrieval metrics worth printing: recall@1, recall@5 and MRR@10 in each direction."""
    return {k: v for k, v in metrics.items() if k.endswith(HEADLINE) and ("_to_" in k)}
