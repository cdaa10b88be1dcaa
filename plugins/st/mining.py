"""Hard negatives for (anchor, positive) pairs, mined with the base model before training."""

from __future__ import annotations

from typing import Any

from ..errors import UserError
from .formats import DataFormat, detect_format


def add_hard_negatives(model: Any, dataset: Any, columns: dict[str, str] | None, num_negatives: int = 1,
                       relative_margin: float | None = None, range_min: int = 3, precision: str = "fp32",
                       max_length: int | None = None, required: bool = True) -> Any:
    """Mine hard negatives for (anchor, positive) pairs with sentence-transformers' ``mine_hard_negatives``.

    ``relative_margin`` skips candidates scoring above ``(1 - margin)`` times the pair's own positive score, which
    sentence-transformers recommends against false negatives (e.g. 0.05); ``range_min`` skips that many of the
    top-ranked candidates for the same reason: 3 kept the gain on documentation-style data and, unlike 1, did not
    hurt term -> gloss data, whose top-ranked candidates are often other senses' glosses; sentence-transformers'
    docs show 10. ``precision`` ``bf16`` or ``fp16`` mines under that autocast: on the CPU with AMX, bf16 encoded
    the pairs 1.6-1.7x faster, but its scores have 8 significant bits, so near-tied candidates change rank. The text
    recipe mines in float32, since bf16 mining trained to a lower held-out MRR@10 on most draws. ``max_length`` cuts
    the texts at that many tokens while mining (the text recipe's ``max_train_tokens``); the model keeps its own
    ``max_seq_length`` afterwards. When no pair gets a negative (too few or too alike), it raises a UserError, or
    returns None with ``required=False``."""
    import torch
    from sentence_transformers.util import mine_hard_negatives

    pairs, fmt = detect_format(dataset, columns)
    if fmt.kind != "pair":
        raise UserError(f"mine_hard_negatives=true needs anchor/positive pairs, but the data is {fmt.kind} data "
                        f"(columns: {', '.join(dataset.column_names)})")
    anchor, positive = fmt.text_columns
    pairs = pairs.rename_columns({anchor: "anchor", positive: "positive"})
    half = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    own_length = model.max_seq_length
    cut = bool(max_length and (own_length is None or max_length < own_length))
    if cut:
        model.max_seq_length = max_length
    try:
        with torch.autocast(model.device.type, dtype=half or torch.bfloat16, enabled=half is not None):
            mined = mine_hard_negatives(pairs, model, anchor_column_name="anchor", positive_column_name="positive",
                                        num_negatives=num_negatives, range_min=range_min, sampling_strategy="top",
                                        relative_margin=relative_margin,
                                        output_format="n-tuple" if num_negatives > 1 else "triplet", verbose=False)
    finally:
        if cut:  # only then: a static model's length cannot be set at all
            model.max_seq_length = own_length
    # A negative equal to its own anchor would teach the model to push a text away from itself. Since
    # sentence-transformers 6.3 mining never offers the anchor's text; 6.2 could, where the anchor is also a positive.
    negatives = [c for c in mined.column_names if c.startswith("negative")]
    mined = mined.filter(lambda row: all(row[c] != row["anchor"] for c in negatives))
    if len(mined) == 0:
        if not required:
            return None
        raise UserError(f"mining found no hard negatives among {len(pairs)} pairs (too few or too alike, for "
                        f"num_negatives={num_negatives} each); add pairs, lower num_negatives, or set "
                        f"mine_hard_negatives=false")
    return mined


def mine_step(cfg: Any, model: Any, data: Any, fmt: Any, max_length: int | None, log: Any) -> tuple[Any, Any, Any]:
    """The text recipe's mining step: hard negatives for pairs when ``mine_hard_negatives`` asks for them or, by
    default, when the loss uses in-batch negatives. Mines in float32 even for bf16 training: bf16 scores reorder
    near-ties. Returns ``(data, format, columns)``: the mined triplets with their format and None, since they carry
    the anchor/positive/negative names themselves, or the input with ``(fmt, cfg.columns)`` when nothing was mined."""
    from .losses import mines

    if not mines(cfg.mine_hard_negatives, fmt.kind, cfg.loss):
        return data, fmt, cfg.columns
    mined = add_hard_negatives(model, data, cfg.columns, cfg.num_negatives, max_length=max_length,
                               required=cfg.mine_hard_negatives is True)
    if mined is None:
        log(f"mining: no hard negatives among {len(data)} pairs (too few or too alike); training on pairs")
        return data, fmt, cfg.columns
    log(f"mining: {len(mined)} of {len(data)} pairs got hard negatives from the base model "
        "(mine_hard_negatives=false trains on the pairs alone)")
    return mined, mined_format(mined, fmt), None


def mine_or_keep(retriever: Any, data: Any, fmt: Any, columns: dict[str, str] | None, num_negatives: int,
                 required: bool, source: str, log: Any) -> tuple[Any, Any]:
    """The rerank and sparse recipes' mining step: ``(data, format)`` with hard negatives from ``retriever``, or
    the pairs as they are, said in a line, when none are found and they are not ``required``."""
    mined = add_hard_negatives(retriever, data, columns, num_negatives, required=required)
    if mined is None:
        log(f"mining: no hard negatives among {len(data)} pairs (too few or too alike); training on the pairs with "
            f"in-batch negatives")
        return data, fmt
    log(f"mining: {len(mined)} of {len(data)} pairs got {num_negatives} hard negative(s) each from {source} "
        f"(mine_hard_negatives=false trains on the pairs alone)")
    return mined, mined_format(mined, fmt)


def mined_format(mined: Any, fmt: DataFormat) -> DataFormat:
    """The format of ``mined`` triplets (anchor, positive, negative...) with the notes of the pairs they came from:
    read again, the mined rows would name their shuffled row numbers and the renamed columns, not the user's."""
    return DataFormat("triplet", mined.column_names, notes=list(fmt.notes))
