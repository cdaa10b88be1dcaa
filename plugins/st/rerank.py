"""Rerankers: a sentence-transformers CrossEncoder trained on the same data as a bi-encoder, its losses, and the
held-out evaluation that reranks a retriever's top-k.

Usable without a recipe: ``choose_rerank_loss(model, dataset, fmt)`` returns the loss and the dataset in the shape
that loss reads; ``make_rerank_evaluator(retriever, held_out, fmt)`` reranks the retriever's candidates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import UserError, did_you_mean
from .formats import DataFormat

#: loss name -> (formats it accepts, sentence_transformers.cross_encoder.losses class, one-line description)
LOSSES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "bce": (("pair", "triplet", "binary"), "BinaryCrossEntropyLoss",
            "each (query, document) pair scored 1 or 0; negatives become 0-labelled pairs"),
    "mnrl": (("pair", "triplet"), "MultipleNegativesRankingLoss",
             "softmax of the positive against the hard negatives and other queries' documents"),
    "lambda": (("pair", "triplet"), "LambdaLoss", "listwise: each query's documents, NDCG-weighted pair swaps"),
    "listnet": (("pair", "triplet"), "ListNetLoss", "listwise: softmax over each query's documents"),
    "mse": (("score",), "MSELoss", "regresses the score in [0, 1]"),
}
#: the formats the reranker trains on (a single text or text-with-class has no query-document relation)
FORMATS = ("pair", "triplet", "score", "binary")


def check_rerank_loss(loss: str | None) -> str:
    """``loss=`` as a key of ``LOSSES`` or "auto"; otherwise a one-line UserError with a hint."""
    name = (loss or "auto").lower().replace("-", "_")
    if name != "auto" and name not in LOSSES:
        raise UserError(f"unknown rerank loss '{loss}'.{did_you_mean(name, LOSSES)} Choose auto or one of: "
                        f"{', '.join(LOSSES)}")
    return name


def check_format(fmt: DataFormat, columns: list[str]) -> None:
    """A reranker reads (query, document) relations: pairs, negatives, scores or 0/1 labels."""
    if fmt.kind not in FORMATS:
        raise UserError(f"the rerank recipe needs query/document columns (anchor,positive[,negative...] | "
                        f"sentence1,sentence2,score | sentence1,sentence2,label), but [{', '.join(columns)}] is "
                        f"{fmt.kind} data; use the text recipe for it")


def check_one_label(model: Any, name: str) -> None:
    """A reranker scores each (query, document) with one number; every loss here refuses a CrossEncoder with more
    output labels (an NLI classifier has 3) with a traceback, so say it in one line, before mining."""
    labels = getattr(model, "num_labels", 1)
    if labels != 1:
        raise UserError(f"model '{name}' is a CrossEncoder with {labels} output labels (a classifier, e.g. NLI), "
                        f"and a reranker scores with one; pass model= a reranker (a 1-label CrossEncoder) or a "
                        f"bi-encoder")


def check_negatives_available(loss: str, kind: str, mine_hard_negatives: bool | None) -> None:
    """Pairs with mining off have no negatives, which bce and the listwise losses need; known from the config, so
    the recipe asks before any model loads."""
    if kind == "pair" and mine_hard_negatives is False and check_rerank_loss(loss) not in ("auto", "mnrl"):
        raise UserError(f"loss={loss} needs negatives, and mine_hard_negatives=false leaves the pairs without any; "
                        f"use loss=mnrl (in-batch negatives) or let the retriever mine them")


def reranks(eval_dataset: Any, fmt: DataFormat) -> bool:
    """Whether the held-out evaluation reranks the retriever's candidates (``make_rerank_evaluator`` on pairs)."""
    return eval_dataset is not None and len(eval_dataset) >= 2 and fmt.kind in ("pair", "triplet")


def check_retriever_read(cfg: Any, mines: bool, kind: str, eval_kind: str) -> None:
    """``retriever=`` (it mines and retrieves) and ``top_k=`` (the candidates reranked in evaluation) changed from
    their defaults where the data's formats rule both out fail in one line, before any model loads: scored or
    labelled pairs use no retriever, and the run would otherwise finish as if it had mattered. ``eval_kind``: the
    held-out rows' format (the training rows' when none are held out, as they would be)."""
    from ..config import default_of

    if eval_kind in ("pair", "triplet"):
        return
    held = f"the held-out rows are {eval_kind} data, scored without a retriever"
    if cfg.top_k != default_of(cfg, "top_k"):
        raise UserError(f"top_k={cfg.top_k} sets how many of the retriever's candidates the held-out evaluation "
                        f"reranks, and this run reranks none ({held}); drop top_k=")
    if not mines and cfg.retriever != default_of(cfg, "retriever"):
        mined = f"the training rows are {kind} data" if kind != "pair" else "mine_hard_negatives=false"
        raise UserError(f"retriever={cfg.retriever} mines negatives for anchor/positive pairs and retrieves the "
                        f"held-out candidates to rerank, and this run does neither ({mined}; {held}); drop "
                        f"retriever=")


@dataclass
class RerankLoss:
    """The chosen loss, why, the dataset in the shape that loss reads, and whether batches must not repeat texts."""

    loss: Any
    name: str
    reason: str
    dataset: Any
    in_batch_negatives: bool


def auto_loss(kind: str, mined: bool = False) -> tuple[str, str]:
    """The default loss for a data format, with its reason; ``mined``: the triplets' negatives came from mining
    pairs (pairs themselves have none, and train on in-batch negatives alone)."""
    if mined:
        return "mnrl", "query/document pairs with mined negatives -> MultipleNegativesRankingLoss"
    return {"pair": ("mnrl", ("query/document pairs without negatives -> MultipleNegativesRankingLoss on other "
                              "queries' documents in the batch")),
            "triplet": ("mnrl", "query/document pairs with negative columns -> MultipleNegativesRankingLoss"),
            "score": ("mse", "two texts and a score -> MSELoss on the sigmoid score"),
            "binary": ("bce", "two texts and a 0/1 label -> BinaryCrossEntropyLoss")}[kind]


def check_loss_fits(loss: str, kind: str) -> str:
    """The loss name (``auto`` as it is) after checking that ``kind`` data trains it; the recipe asks before
    mining, so a mismatch fails before the slow part."""
    name = check_rerank_loss(loss)
    formats = LOSSES[name][0] if name != "auto" else FORMATS
    if kind not in formats:
        raise UserError(f"rerank loss '{name}' needs {' or '.join(formats)} data, but the data is {kind} data; "
                        f"use loss=auto or change the data")
    return name


def choose_rerank_loss(model: Any, dataset: Any, fmt: DataFormat, loss: str = "auto",
                       pos_weight: float | None = None, mined: bool = False) -> RerankLoss:
    """Pick (or check) the loss and reshape ``dataset`` (columns in ``fmt`` order) into what it reads:
    labelled pairs for ``bce``, (query, [documents], [labels]) lists for the listwise losses, the tuples as they are
    for ``mnrl``. ``pos_weight`` weighs positives in ``bce`` (sentence-transformers' docs use the negatives per
    positive when negatives outnumber positives)."""
    import torch
    from sentence_transformers.cross_encoder import losses as L

    name = check_loss_fits(loss, fmt.kind)
    # ``mined``: the negative columns came from mining the pairs, which the reason says as the docs print it
    name, reason = auto_loss(fmt.kind, mined) if name == "auto" else (name, f"loss={name} was set")
    cls = getattr(L, LOSSES[name][1])
    cols = fmt.text_columns
    kwargs: dict[str, Any] = {}
    if fmt.kind in ("pair", "triplet"):
        if name == "bce":
            dataset = labeled_pairs(dataset, cols)
            negatives = len(cols) - 2
            if pos_weight is None and negatives > 1:
                pos_weight = float(negatives)
            if pos_weight:
                kwargs["pos_weight"] = torch.tensor(pos_weight)
                reason += f", positives weighted x{pos_weight:g}"
        elif name in ("lambda", "listnet"):
            dataset = labeled_lists(dataset, cols)
        else:
            kwargs["num_negatives"] = 4  # random in-batch documents beside the hard negatives (the loss's default)
    elif fmt.kind == "score":
        kwargs["activation_fn"] = torch.nn.Sigmoid()  # the score is in [0, 1], as the model's predict() returns
    if fmt.kind in ("score", "binary") and not isinstance(model.activation_fn, torch.nn.Sigmoid):
        # a base saved with another activation (ms-marco rerankers keep Identity) would predict() raw logits, not
        # the [0, 1] score or probability it is trained towards here, and be evaluated on them
        reason += (f"; the base's {type(model.activation_fn).__name__} activation -> Sigmoid, so predict() gives "
                   f"scores in [0, 1]")
        model.activation_fn = torch.nn.Sigmoid()
    built = cls(model, **kwargs)
    return RerankLoss(built, name, reason, dataset, in_batch_negatives=name == "mnrl")


def labeled_pairs(dataset: Any, cols: list[str]) -> Any:
    """(query, positive, negative...) rows -> one (query, document, label) row per document."""
    from datasets import Dataset

    queries, documents, labels = [], [], []
    for row in dataset:
        for i, col in enumerate(cols[1:]):
            queries.append(row[cols[0]])
            documents.append(row[col])
            labels.append(1.0 if i == 0 else 0.0)
    return Dataset.from_dict({"query": queries, "document": documents, "label": labels})


def labeled_lists(dataset: Any, cols: list[str]) -> Any:
    """(query, positive, negative...) rows -> (query, [documents], [labels]) rows for the listwise losses."""
    from datasets import Dataset

    rows = list(dataset)
    return Dataset.from_dict({"query": [r[cols[0]] for r in rows],
                              "docs": [[r[c] for c in cols[1:]] for r in rows],
                              "labels": [[1.0] + [0.0] * (len(cols) - 2) for _ in rows]})


def retrieve(retriever: Any, queries: list[str], corpus: list[str], top_k: int, batch_size: int = 64) -> list[list[int]]:
    """The indices of each query's ``top_k`` corpus texts by the bi-encoder ``retriever``, best first; queries and
    documents get the retriever's own prompts (a text run saves them), as its retrieval evaluation read them."""
    from sentence_transformers.util import semantic_search

    q = retriever.encode_query(queries, batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=True,
                               show_progress_bar=False)
    d = retriever.encode_document(corpus, batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=True,
                                  show_progress_bar=False)
    hits = semantic_search(q, d, top_k=min(top_k, len(corpus)))
    return [[h["corpus_id"] for h in row] for row in hits]


def make_rerank_evaluator(retriever: Any, eval_dataset: Any, fmt: DataFormat, top_k: int = 20,
                          name: str = "heldout", batch_size: int = 32) -> Any | None:
    """The evaluator that fits the held-out format.

    Pairs (and rows with negatives): every held-out document forms the corpus, the ``retriever`` returns each
    query's ``top_k``, and ``CrossEncoderRerankingEvaluator`` reranks them. Its ``base_*`` metrics are the retriever's
    own order, so the table shows what reranking adds. Scores: Spearman/Pearson; 0/1 labels: classification."""
    if eval_dataset is None or len(eval_dataset) < 2:
        return None
    from sentence_transformers.cross_encoder import evaluation as E

    cols = fmt.text_columns
    if fmt.kind in ("pair", "triplet"):
        from .evaluation import retrieval_sets

        queries, docs, relevant = retrieval_sets(eval_dataset[cols[0]], eval_dataset[cols[1]],
                                                 [t for c in cols[2:] for t in eval_dataset[c]])
        corpus = list(docs.values())
        ranked = retrieve(retriever, list(queries.values()), corpus, top_k, batch_size)
        samples = [{"query": q, "positive": [docs[d] for d in sorted(relevant[qid], key=lambda d: int(d[1:]))],
                    "documents": [corpus[i] for i in ids]} for (qid, q), ids in zip(queries.items(), ranked)]
        return E.CrossEncoderRerankingEvaluator(samples, at_k=10, always_rerank_positives=False, name=name,
                                                batch_size=batch_size, write_csv=False)
    pairs = list(zip(eval_dataset[cols[0]], eval_dataset[cols[1]]))
    labels = eval_dataset[fmt.label_column]
    if fmt.kind == "score":
        return E.CrossEncoderCorrelationEvaluator(pairs, labels, name=name, batch_size=batch_size, write_csv=False)
    return E.CrossEncoderClassificationEvaluator(pairs, labels, name=name, batch_size=batch_size, write_csv=False)


#: The metrics printed in the before/after table, per format (metrics.json keeps them all).
HEADLINE = {"pair": ("mrr@10", "ndcg@10", "base_mrr@10"), "triplet": ("mrr@10", "ndcg@10", "base_mrr@10"),
            "score": ("spearman", "pearson"), "binary": ("average_precision", "f1", "accuracy")}


def headline(metrics: dict[str, float], kind: str) -> dict[str, float]:
    """The few metrics worth printing for this format (``base_mrr@10``: the retriever's own order)."""
    wanted = HEADLINE.get(kind, ())
    return {k: v for k, v in metrics.items() if k.split("_", 1)[-1] in wanted}


def below_retriever(metrics: dict[str, float]) -> str | None:
    """One line when the reranked order scores below the retriever's own order on the held-out split: serving the
    reranker would then make results worse, and the user should know before they deploy it."""
    for key, value in metrics.items():
        if key.endswith("_mrr@10") and not key.endswith("_base_mrr@10"):
            base = metrics.get(key.replace("_mrr@10", "_base_mrr@10"))
            if base is not None and value < base:
                return (f"warning: the reranker orders the held-out queries worse than the retriever alone "
                        f"(MRR@10 {value:.4f} < {base:.4f}); keep the retriever's order, or train on more pairs "
                        f"(a CrossEncoder starts with an untrained score head and needs thousands)")
    return None
