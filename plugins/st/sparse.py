"""Sparse encoders: a sentence-transformers SparseEncoder with a CSR head on a dense model or SPLADE on a masked-LM,
its losses and its retrieval evaluator.

Usable without a recipe: ``load_sparse(name, head)`` builds the model, ``choose_sparse_loss(model, head, fmt)``
wraps the contrastive loss in CSRLoss or SpladeLoss, ``make_sparse_evaluator(held_out, fmt)`` measures retrieval
and active dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError, did_you_mean
from .formats import DataFormat
from .losses import across_devices

HEADS = ("auto", "csr", "splade")
SIMILARITIES = ("auto", "cosine", "dot")
#: the in-batch loss's inverse temperature per similarity: cosine lies in [-1, 1] and needs sharpening, as in dense
#: MNRL; SPLADE's dot products are large already (sentence-transformers' default, 1)
SCALES = {"cosine": 20.0, "dot": 1.0}
#: the formats the sparse recipe trains on, and the sentence_transformers.sparse_encoder.losses class for each
LOSSES = {"pair": "SparseMultipleNegativesRankingLoss", "triplet": "SparseMultipleNegativesRankingLoss",
          "score": "SparseCoSENTLoss", "binary": "SparseCosineSimilarityLoss"}
#: SPLADE's FLOPS regulariser weights for documents and queries, as sentence-transformers' training docs use them
SPLADE_WEIGHTS = (3e-5, 5e-5)
#: non-zero dimensions per CSR vector when ``active_dims`` is not given
ACTIVE_DIMS = 128
_SPLADE_DIMS = ("active_dims= applies only to a CSR head, and SPLADE (head=splade, or head=auto on a masked-LM base) "
                "gets its sparsity from its FLOPS regulariser; drop active_dims=, or use head=csr")


def check_head(head: str) -> str:
    """``head=`` lower-cased, when it is one of ``HEADS``."""
    name = (head or "auto").lower()
    if name not in HEADS:
        raise UserError(f"unknown sparse head '{head}'.{did_you_mean(name, HEADS)} Choose auto (SPLADE on a "
                        f"masked-LM base, else CSR), csr or splade")
    return name


def check_similarity(similarity: str) -> str:
    """``similarity=`` lower-cased, when it is one of ``SIMILARITIES``."""
    name = (similarity or "auto").lower()
    if name not in SIMILARITIES:
        raise UserError(f"unknown similarity '{similarity}'; choose auto (cosine for CSR, dot for SPLADE), cosine or "
                        f"dot")
    return name


def check_format(fmt: DataFormat, columns: list[str], similarity: str = "auto", scale: float | None = None) -> None:
    """Sparse retrieval trains on pairs (with or without negatives), scored pairs or 0/1-labelled pairs; only the
    pairs' in-batch loss reads ``similarity`` and ``scale`` (the score and label losses train cosine, unscaled)."""
    if fmt.kind not in LOSSES:
        raise UserError(f"the sparse recipe needs anchor,positive[,negative...] | sentence1,sentence2,score | "
                        f"sentence1,sentence2,label columns, but [{', '.join(columns)}] is {fmt.kind} data; use the "
                        f"text recipe for it")
    if LOSSES[fmt.kind] != "SparseMultipleNegativesRankingLoss":
        for name, value in (("similarity", None if check_similarity(similarity) == "auto" else similarity),
                            ("scale", scale)):
            if value is not None:
                raise UserError(f"{name}={value} applies only to anchor/positive pairs, and {fmt.kind} data trains "
                                f"{LOSSES[fmt.kind]} on cosine similarity; drop {name}=")


def head_of(model: Any) -> str:
    """"splade" when the model ends in SpladePooling, "csr" when it ends in a SparseAutoEncoder."""
    from sentence_transformers.sparse_encoder.modules import SparseAutoEncoder, SpladePooling

    for module in model:
        if isinstance(module, SpladePooling):
            return "splade"
        if isinstance(module, SparseAutoEncoder):
            return "csr"
    return "other"


def load_sparse(name: str, head: str = "auto", active_dims: int | None = None, trust_remote_code: bool = False) -> Any:
    """A SparseEncoder from ``name``: sentence-transformers builds SPLADE (MLMTransformer + SpladePooling) on a base
    with a masked-LM head and a CSR head (SparseAutoEncoder, 4x the dimension, ``active_dims`` kept, default
    ``ACTIVE_DIMS``) on a dense one; a CSR SparseEncoder keeps its own active dims unless ``active_dims`` is given.
    ``head=csr`` on a masked-LM base builds the CSR stack (mean pooling) itself; ``head=splade`` on a base without
    a masked-LM head, or ``active_dims`` with SPLADE, is an error."""
    return load_sparse_base(name, head, active_dims, trust_remote_code).model


@dataclass
class SparseBase:
    """A loaded sparse model and where its head came from, read once (a Hub id's saved type only once loading has
    fetched it)."""

    model: Any
    own_head: bool  # the CSR head it was saved with, kept (a sparse run's folder, say), not a new one
    saved_sparse: bool  # saved as a SparseEncoder (SPLADE or CSR): no bi-encoder to mine negatives with


def load_sparse_base(name: str, head: str = "auto", active_dims: int | None = None,
                     trust_remote_code: bool = False) -> SparseBase:
    """``load_sparse``, with where the model's head came from."""
    from .models import load_model

    head = check_head(head)
    if head == "splade" and active_dims is not None:
        raise UserError(_SPLADE_DIMS)  # before the model loads, where the head is known already
    model = load_model(name, trust_remote_code, kind="sparse")
    built = head_of(model)
    saved = is_sparse_model(name)
    trained = built == "csr" and saved  # its head was trained with its own active dims
    if built == "splade" and head == "auto" and active_dims is not None:
        raise UserError(_SPLADE_DIMS)
    if head == "splade" and built != "splade":
        raise UserError(f"head=splade needs a base with a masked-language-model head (a *ForMaskedLM checkpoint, "
                        f"e.g. a BERT or DistilBERT MLM), and model '{name}' has none; use head=csr (or head=auto)")
    if head == "csr" and built == "splade":
        model = _csr_on(model, trust_remote_code)
        built = "csr"
    if built == "csr" and not (trained and active_dims is None):
        _set_active_dims(model, active_dims or ACTIVE_DIMS)
    # dot product, as SparseMultipleNegativesRankingLoss trains and an inverted index scores (a dense base saved with
    # cosine would pass that on; the cosine losses set cosine themselves)
    model.similarity_fn_name = "dot"
    return SparseBase(model, trained, saved)


def check_retriever(retriever: str | None, mines: bool, kind: str) -> None:
    """``retriever=`` only mines hard negatives for pairs; where nothing is mined it would do nothing, so it fails
    in one line, before any model loads, as ``num_negatives=`` does."""
    if retriever is not None and not mines:
        why = f"the data is {kind} data" if kind != "pair" else "mining is off for these pairs"
        raise UserError(f"retriever={retriever} mines hard negatives for anchor/positive pairs, and {why}; drop "
                        f"retriever=")


def is_sparse_model(name: str) -> bool:
    """Whether ``name`` was saved as a SparseEncoder (a sparse run's folder, or a Hub SparseEncoder that loading
    fetched): a CSR head that keeps the active dims it was trained with, and a base that cannot mine negatives as a
    bi-encoder. Read from its ``config_sentence_transformers.json``, as sentence-transformers decides it."""
    from .models import _is_local, resolve_model_name, saved_type

    path, _ = resolve_model_name(name)
    if _is_local(path):
        return saved_type(str(Path(path).expanduser())) == "SparseEncoder"
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(path, "config_sentence_transformers.json")
    except Exception:  # noqa: BLE001 - not a repo id: nothing cached says so
        return False
    return isinstance(found, str) and saved_type(str(Path(found).parent)) == "SparseEncoder"


def _csr_on(splade: Any, trust_remote_code: bool) -> Any:
    """A CSR stack (Transformer -> mean Pooling -> SparseAutoEncoder) on the encoder of a SPLADE model's base."""
    from sentence_transformers import SparseEncoder
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from sentence_transformers.sparse_encoder.modules import SparseAutoEncoder

    path = splade[0].auto_model.config._name_or_path
    transformer = Transformer(path, model_kwargs={"trust_remote_code": trust_remote_code})
    dim = transformer.get_embedding_dimension()
    # k_aux at most the head's size: torch.topk over 4 * dim latents fails for more (a small base)
    return SparseEncoder(modules=[transformer, Pooling(dim, "mean"), SparseAutoEncoder(dim, 4 * dim, k=96,
                                                                                         k_aux=min(2 * 96, 4 * dim))])


def _set_active_dims(model: Any, active_dims: int) -> None:
    from sentence_transformers.sparse_encoder.modules import SparseAutoEncoder

    for module in model:
        if isinstance(module, SparseAutoEncoder):
            most = module.hidden_dim // 4  # training also keeps the top 4 x active_dims for a reconstruction term
            if active_dims > most:
                raise UserError(f"config field 'active_dims' is {active_dims}, but the CSR head has "
                                f"{module.hidden_dim} dimensions and training keeps 4 x active_dims of them; use "
                                f"active_dims={most} or fewer")
            module.k = active_dims
            # a dense base without a sentence-transformers config gets k_aux 512, beyond a small head's width, and
            # torch.topk then fails on the first training step
            module.k_aux = min(module.k_aux, module.hidden_dim)
    model.max_active_dims = active_dims


def active_dims_of(model: Any) -> int | None:
    """The CSR head's active dimensions (None for SPLADE, whose sparsity comes from its regulariser)."""
    return getattr(model, "max_active_dims", None)


def loss_callbacks(loss: Any) -> list:
    """SpladeLoss's weight schedule, given to the trainer rather than added by it with a warning that it did: the
    FLOPS weights rise from 0 over the first third of training (sentence-transformers' default)."""
    from sentence_transformers.sparse_encoder import losses as L
    from sentence_transformers.sparse_encoder.callbacks.splade_callbacks import (
        SpladeRegularizerWeightSchedulerCallback,
    )

    return [SpladeRegularizerWeightSchedulerCallback(loss=loss)] if isinstance(loss, L.SpladeLoss) else []


@dataclass
class SparseLoss:
    """The wrapped loss, why, and whether batches must not repeat texts (in-batch negatives)."""

    loss: Any
    reason: str
    in_batch_negatives: bool


def choose_sparse_loss(model: Any, fmt: DataFormat, similarity: str = "auto", scale: float | None = None) -> SparseLoss:
    """The contrastive loss for the format, wrapped in CSRLoss (reconstruction terms) or SpladeLoss (FLOPS
    regularisers on documents and queries) for the model's head.

    For pairs, ``similarity`` (``auto``: cosine for CSR, dot for SPLADE) is what the in-batch loss compares and what
    the saved model searches with, at ``scale`` (default ``SCALES``). CSR codes of a normalised dense embedding are
    small: with sentence-transformers' default (dot product, scale 1) the softmax over them is nearly flat, and on
    the tuning set training then lowered held-out MRR@10; cosine at scale 20 raised it (docs/sparse.md)."""
    from sentence_transformers import util
    from sentence_transformers.sparse_encoder import losses as L

    inner_name = LOSSES[fmt.kind]
    head = head_of(model)
    kwargs: dict[str, Any] = {}
    if inner_name == "SparseMultipleNegativesRankingLoss":
        similarity = check_similarity(similarity)
        if similarity == "auto":
            similarity = "dot" if head == "splade" else "cosine"
        kwargs = {"scale": scale or SCALES[similarity],
                  "similarity_fct": util.cos_sim if similarity == "cosine" else util.dot_score}
        model.similarity_fn_name = similarity
    cls = getattr(L, inner_name)
    gather, gather_note = across_devices(cls) if inner_name == "SparseMultipleNegativesRankingLoss" else ({}, "")
    inner = cls(model, **kwargs, **gather)
    if head == "splade":
        doc, query = SPLADE_WEIGHTS
        loss = L.SpladeLoss(model, inner, document_regularizer_weight=doc, query_regularizer_weight=query)
        # sentence-transformers' trainer adds SpladeRegularizerWeightSchedulerCallback: the weights rise from 0
        reason = (f"{fmt.kind} data -> {inner_name} in SpladeLoss (FLOPS weights: documents {doc:g}, queries "
                  f"{query:g}, each reached over the first third of training)")
    else:
        loss = L.CSRLoss(model, loss=inner)
        reason = f"{fmt.kind} data -> {inner_name} in CSRLoss (with the sparse autoencoder's reconstruction terms)"
    if kwargs:
        reason += f"; {model.similarity_fn_name} similarity, scale {kwargs['scale']:g}"
    if gather_note:
        reason += f"; {gather_note}"
    return SparseLoss(loss, reason, in_batch_negatives=inner_name == "SparseMultipleNegativesRankingLoss")


def make_sparse_evaluator(eval_dataset: Any, fmt: DataFormat, name: str = "heldout", batch_size: int = 32) -> Any:
    """Retrieval (MRR@10, nDCG@10 and the active dimensions of queries and documents) for pairs (negatives join the
    corpus), Spearman for scores, classification for 0/1 labels."""
    if eval_dataset is None or len(eval_dataset) < 2:
        return None
    from sentence_transformers.sparse_encoder import evaluation as E

    cols = fmt.text_columns
    if fmt.kind in ("pair", "triplet"):
        from .evaluation import retrieval_sets

        queries, corpus, relevant = retrieval_sets(eval_dataset[cols[0]], eval_dataset[cols[1]],
                                                   [t for c in cols[2:] for t in eval_dataset[c]])
        return E.SparseInformationRetrievalEvaluator(queries, corpus, relevant,
                                                     name=name, batch_size=batch_size, mrr_at_k=[10],
                                                     ndcg_at_k=[10], accuracy_at_k=[1, 10],
                                                     precision_recall_at_k=[10], map_at_k=[100], write_csv=False)
    a, b, labels = eval_dataset[cols[0]], eval_dataset[cols[1]], eval_dataset[fmt.label_column]
    if fmt.kind == "score":
        return E.SparseEmbeddingSimilarityEvaluator(a, b, labels, name=name, batch_size=batch_size, write_csv=False)
    return E.SparseBinaryClassificationEvaluator(a, b, labels, name=name, batch_size=batch_size, write_csv=False)


#: The metrics printed in the before/after table, per format (metrics.json keeps them all).
HEADLINE = {"pair": ("mrr@10", "ndcg@10", "query_active_dims", "corpus_active_dims"),
            "triplet": ("mrr@10", "ndcg@10", "query_active_dims", "corpus_active_dims"),
            # SparseCoSENTLoss and SparseCosineSimilarityLoss set the model's similarity to cosine
            "score": ("spearman_cosine", "spearman_dot", "active_dims"),
            "binary": ("cosine_ap", "cosine_accuracy", "dot_ap", "dot_accuracy")}


def headline(metrics: dict[str, float], kind: str) -> dict[str, float]:
    """The few metrics worth printing for this format."""
    wanted = HEADLINE.get(kind, ())
    return {k: v for k, v in metrics.items() if any(k.endswith("_" + w) for w in wanted)}
