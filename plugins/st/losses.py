"""Losses: the table of sentence-transformers losses per data format, the auto rule and ``choose_loss``.

Usable without a recipe: ``choose_loss(model, dataset)`` returns the loss, the reason and the dataset with its
columns put in the order the loss reads them; pass both to your own ``SentenceTransformerTrainer``.
"""

from __future__ import annotations

import inspect
import random
from dataclasses import dataclass
from typing import Any

from ..device import world_size
from ..errors import UserError, did_you_mean
from .formats import DataFormat, detect_format
from .models import DEFAULT_TEXT_MODEL, load_model
from .static import is_static_model

#: On a CPU, batches above this size switch MNRL to its cached (GradCache) variant to bound activation memory.
MEMORY_SAFE_BATCH = 64

#: loss name -> (formats it accepts, sentence-transformers class, one-line description)
LOSSES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "mnrl": (("pair", "triplet"), "MultipleNegativesRankingLoss", "in-batch negatives (plus hard negatives)"),
    "cached_mnrl": (("pair", "triplet"), "CachedMultipleNegativesRankingLoss",
                    "MNRL with GradCache: large batches in small memory"),
    "gist": (("pair", "triplet"), "GISTEmbedLoss", "MNRL whose negatives are filtered by a guide model"),
    "cached_gist": (("pair", "triplet"), "CachedGISTEmbedLoss", "GIST with GradCache"),
    "cosent": (("score",), "CoSENTLoss", "ranks pairs by a similarity score in [0, 1]"),
    "angle": (("score",), "AnglELoss", "CoSENT in angle space"),
    "cosine": (("score",), "CosineSimilarityLoss", "regresses cosine similarity on the score"),
    "contrastive": (("binary",), "ContrastiveLoss", "pulls label-1 pairs together, pushes label-0 apart"),
    "online_contrastive": (("binary",), "OnlineContrastiveLoss", "contrastive loss on the hard pairs of a batch"),
    "triplet": (("triplet",), "TripletLoss", "anchor closer to positive than to negative by a margin"),
    "batch_hard": (("labeled",), "BatchHardSoftMarginTripletLoss", "hardest triplets in the batch, soft margin"),
    "batch_hard_margin": (("labeled",), "BatchHardTripletLoss", "hardest triplets in the batch, fixed margin"),
    "batch_all": (("labeled",), "BatchAllTripletLoss", "all valid triplets in the batch"),
    "batch_semi_hard": (("labeled",), "BatchSemiHardTripletLoss", "semi-hard triplets in the batch"),
    "simcse": (("single",), "MultipleNegativesRankingLoss", "unsupervised SimCSE: the same text twice, dropout as noise"),
    "tsdae": (("single",), "DenoisingAutoEncoderLoss", "denoising auto-encoder: rebuild the text from a damaged copy"),
}
#: losses that take mined hard negatives beside their in-batch ones: the text recipe mines for them by default
MINING_LOSSES = ("auto", "mnrl", "cached_mnrl", "gist", "cached_gist")
#: losses that use the other rows of a batch as negatives: the ones ``mini_batch_size`` and ``length_batching`` serve
IN_BATCH_NEGATIVES = ("mnrl", "cached_mnrl", "gist", "cached_gist", "simcse")
#: losses with a similarity scale (inverse temperature), which ``scale=`` sets; GIST has a temperature instead
SCALED = ("mnrl", "cached_mnrl", "simcse", "cosent", "angle")
#: losses whose in-batch negatives a guide model filters: the ones ``guide_model`` serves
GUIDED = ("gist", "cached_gist")


def loss_key(loss: str | None) -> str:
    """A ``loss=`` value as a key of ``LOSSES`` (or "auto"): any case, dashes or underscores."""
    return (loss or "auto").lower().replace("-", "_")


def check_loss(loss: str | None) -> str:
    """``loss_key(loss)`` when it names a loss of ``LOSSES`` or "auto"; otherwise a one-line UserError with a hint."""
    name = loss_key(loss)
    if name != "auto" and name not in LOSSES:
        raise UserError(f"unknown loss '{loss}'.{did_you_mean(name, LOSSES)} Choose auto or one of: {', '.join(LOSSES)}")
    return name


def across_devices(cls: Any) -> tuple[dict[str, Any], str]:
    """Under DDP, in-batch negatives would stay per process: a loss class that takes ``gather_across_devices`` gets
    it, so each query sees every process's documents. Returns the keyword arguments and a note for the reason."""
    processes = world_size()
    if processes > 1 and "gather_across_devices" in inspect.signature(cls.__init__).parameters:
        return {"gather_across_devices": True}, f"negatives gathered across {processes} processes"
    return {}, ""


def mines(option: bool | None, kind: str, loss: str | None) -> bool:
    """Whether the text recipe mines hard negatives: ``option`` when given, else (the default) for anchor/positive
    pairs trained with a loss of ``MINING_LOSSES``, where mined negatives raised held-out retrieval."""
    return option if option is not None else kind == "pair" and loss_key(loss) in MINING_LOSSES


@dataclass
class LossChoice:
    """The chosen loss, why it was chosen, and the dataset in the column order the loss reads."""

    loss: Any
    name: str
    reason: str
    dataset: Any
    format: DataFormat
    in_batch_negatives: bool


def _auto_loss_name(fmt: DataFormat, batch_size: int, mini_batch_size: int | None,
                    gpu: bool = False, static: bool = False) -> tuple[str, str]:
    """On a GPU the full batch is tried as asked: only an out-of-memory first step switches to the cached loss
    (``training.oom_fallback``), since GradCache's second forward pass costs time a large GPU need not pay. A
    static model keeps no activations worth caching, so its large batches stay plain MNRL too."""
    if fmt.kind in ("pair", "triplet"):
        cached = mini_batch_size is not None or (batch_size > MEMORY_SAFE_BATCH and not gpu and not static)
        what = "anchor/positive pairs" if fmt.kind == "pair" else \
            f"anchor/positive with {len(fmt.text_columns) - 2} hard-negative column(s)"
        if cached:
            why = "mini_batch_size is set" if mini_batch_size else f"batch_size {batch_size} > {MEMORY_SAFE_BATCH}"
            return "cached_mnrl", f"{what} -> CachedMultipleNegativesRankingLoss ({why})"
        return "mnrl", f"{what} -> MultipleNegativesRankingLoss"
    return {
        "score": ("cosent", "two texts and a float score -> CoSENTLoss"),
        "binary": ("online_contrastive", "two texts and a 0/1 label -> OnlineContrastiveLoss"),
        "labeled": ("batch_hard", "text and a class label -> BatchHardSoftMarginTripletLoss"),
        "single": ("simcse", "a single text column -> unsupervised SimCSE (MNRL on the text twice)"),
    }[fmt.kind]


def _tsdae_noise(text: str, rng: random.Random, del_ratio: float = 0.6) -> str:
    """TSDAE's default noise: delete ~60% of the words, keep at least one."""
    words = text.split()
    kept = [w for w in words if rng.random() > del_ratio]
    return " ".join(kept or [rng.choice(words)]) if words else text


def choose_loss(model: Any, dataset: Any, loss: str = "auto", columns: dict[str, str] | None = None,
                batch_size: int = 32, mini_batch_size: int | None = None, matryoshka_dims: list[int] | None = None,
                guide_model: str | None = None, scale: float | None = None, seed: int = 42,
                data_format: DataFormat | None = None) -> LossChoice:
    """Pick (or check) a loss for ``dataset`` and return it with its reason and the reordered dataset.

    Pass ``data_format`` when ``dataset`` already came out of ``detect_format``, so it is not checked twice.
    """
    from sentence_transformers.sentence_transformer import losses as L

    if data_format is None:
        dataset, fmt = detect_format(dataset, columns)
    else:
        fmt = data_format
    name = check_loss(loss)
    if name == "auto":
        name, reason = _auto_loss_name(fmt, batch_size, mini_batch_size, gpu=model.device.type == "cuda",
                                       static=is_static_model(model))
    else:
        reason = f"loss={name} was set"
    formats, cls_name, _ = LOSSES[name]
    if fmt.kind not in formats:
        raise UserError(f"loss '{name}' needs {' or '.join(formats)} data, but the columns "
                        f"[{', '.join(dataset.column_names)}] are {fmt.kind} data; use loss=auto or change the data")
    check_options(name, fmt.kind, mini_batch_size, scale, guide_model=guide_model, batch_size=batch_size)
    if mini_batch_size and not name.startswith("cached"):  # only in-batch-negative losses get here
        from .training import CACHED_TWIN

        cls_name = CACHED_TWIN[cls_name]
        reason += f"; mini_batch_size={mini_batch_size}: its cached (GradCache) twin"
        name = name if name == "simcse" else f"cached_{name}"
    cls = getattr(L, cls_name)
    kwargs: dict[str, Any] = {}
    if scale is not None:
        kwargs["scale"] = scale
    if "mini_batch_size" in inspect.signature(cls.__init__).parameters:
        kwargs["mini_batch_size"] = mini_batch_size or min(batch_size, 32)
    if name in GUIDED:
        guide = load_model(guide_model or DEFAULT_TEXT_MODEL, what="guide_model")  # errors name the right key
        kwargs["guide"] = guide
        reason += f" (guide model: {guide_model or DEFAULT_TEXT_MODEL})"
    if name == "simcse":
        col = fmt.text_columns[0]
        dataset = dataset.map(lambda r: {"anchor": r[col], "positive": r[col]}, remove_columns=[col])
    if name == "tsdae":
        col, rng = fmt.text_columns[0], random.Random(seed)
        dataset = dataset.map(lambda r: {"damaged": _tsdae_noise(r[col], rng), "original": r[col]},
                              remove_columns=[col])
        kwargs["decoder_name_or_path"] = model.transformers_model.config._name_or_path
        kwargs["tie_encoder_decoder"] = True
    if name == "triplet" and len(fmt.text_columns) > 3:  # said, since the user gave those negatives to train on
        dataset = dataset.select_columns(fmt.text_columns[:3])
        reason += (f"; TripletLoss reads one negative per row, so {', '.join(fmt.text_columns[3:])} not used "
                   f"(loss=mnrl trains on them all)")
    if in_batch_negatives(name):
        gather, note = across_devices(cls)
        kwargs.update(gather)
        reason += f"; {note}" if note else ""
    built = cls(model, **kwargs)
    if matryoshka_dims:
        dim = model.get_embedding_dimension()
        bad = [d for d in matryoshka_dims if d <= 0 or d > dim]
        if bad:
            raise UserError(f"matryoshka_dims {bad} must be between 1 and the model's dimension {dim}")
        if name == "tsdae":
            raise UserError("matryoshka_dims does not apply to loss=tsdae; drop matryoshka_dims or pick another loss")
        dims = sorted(set(matryoshka_dims), reverse=True)  # a dim given twice would weigh double, unsaid
        built = L.MatryoshkaLoss(model, built, matryoshka_dims=dims)
        reason += f", wrapped in MatryoshkaLoss{dims}"
    return LossChoice(built, name, reason, dataset, fmt, in_batch_negatives(name))


def check_options(name: str, kind: str, mini_batch_size: int | None = None, scale: float | None = None,
                  length_batching: bool = False, guide_model: str | None = None, batch_size: int | None = None) -> None:
    """Options that the loss ``name`` (``auto``: the one chosen for ``kind`` data) would silently ignore fail in one
    line: ``mini_batch_size`` without a cached twin, ``scale`` without a scale, ``length_batching`` without
    in-batch negatives (it is their sampler), ``guide_model`` without a guide (only GIST has one; auto never picks
    it), and a ``mini_batch_size`` not below ``batch_size``: GradCache would split nothing and only add its second
    forward pass."""
    name = loss_key(name)
    chosen = _auto_loss_name(DataFormat(kind, []), 0, mini_batch_size)[0] if name == "auto" else name
    which = f"loss={name}" if name != "auto" else f"{kind} data's loss ({chosen}, as loss=auto chose it)"
    listed = f"the in-batch-negative losses ({', '.join(IN_BATCH_NEGATIVES[:-1])} and {IN_BATCH_NEGATIVES[-1]})"
    if mini_batch_size is not None and not in_batch_negatives(chosen):
        raise UserError(f"mini_batch_size= applies only to {listed}, and {which} has no cached (GradCache) version; "
                        f"drop mini_batch_size")
    if mini_batch_size is not None and batch_size is not None and mini_batch_size >= batch_size:
        raise UserError(f"mini_batch_size={mini_batch_size} is not below batch_size={batch_size}, so GradCache would "
                        f"split nothing and only add a second forward pass; use a mini_batch_size below batch_size "
                        f"(or drop it)")
    if scale is not None and chosen not in SCALED:
        raise UserError(f"scale= applies only to loss={', '.join(SCALED[:-1])} or {SCALED[-1]}, and {which} has no "
                        f"similarity scale; drop scale=")
    if length_batching and not in_batch_negatives(chosen):
        raise UserError(f"length_batching=true applies only to {listed}, and {which} is not one; drop length_batching")
    if guide_model and chosen not in GUIDED:
        raise UserError(f"guide_model= applies only to loss=gist or cached_gist, and {which} has no guide model; "
                        f"add loss=gist, or drop guide_model=")


def in_batch_negatives(name: str) -> bool:
    """Whether the loss ``name`` uses the other rows of a batch as negatives."""
    return name in IN_BATCH_NEGATIVES
