"""Evaluation: the sentence-transformers evaluator that fits a data format, and the metrics worth printing."""

from __future__ import annotations

import random
from typing import Any

from ..data import log_line
from .formats import DataFormat, class_ids


def make_evaluator(fmt: DataFormat, eval_dataset: Any, name: str = "heldout", batch_size: int = 32,
                   seed: int = 42, matryoshka_dims: list[int] | None = None, truncate_dim: int | None = None
                   ) -> Any | None:
    """The evaluator that fits the format (IR for pairs, Triplet, EmbeddingSimilarity, BinaryClassification).

    With ``matryoshka_dims`` it also evaluates the embeddings cut to each of those dimensions (metrics
    ``{name}_dim{d}_...``), beside the whole embedding (``{name}_...``): MatryoshkaLoss trains the cut ones, and
    the whole one alone said nothing of them (nor, with dims below the model's, of anything the loss trained)."""
    if matryoshka_dims:
        whole = make_evaluator(fmt, eval_dataset, name, batch_size, seed)
        if whole is None:
            return None
        cut = [make_evaluator(fmt, eval_dataset, f"{name}_dim{d}", batch_size, seed, truncate_dim=d)
               for d in sorted(set(matryoshka_dims), reverse=True)]
        return _each_dimension([whole, *cut])
    if eval_dataset is None or len(eval_dataset) < 2:
        if eval_dataset is not None and fmt.kind != "single":  # else the run would just skip it, unsaid
            log_line(f"no evaluation: {len(eval_dataset)} held-out row(s) give nothing to rank or compare; "
                     f"evaluation takes 2 or more")
        return None
    from sentence_transformers.sentence_transformer import evaluation as E

    cols = fmt.text_columns
    common = {"batch_size": batch_size, "truncate_dim": truncate_dim}
    if fmt.kind == "pair":
        queries, corpus, relevant = retrieval_sets(eval_dataset[cols[0]], eval_dataset[cols[1]])
        return E.InformationRetrievalEvaluator(queries, corpus, relevant, name=name, **common,
                                               mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[1, 5],
                                               precision_recall_at_k=[1, 10], map_at_k=[100], write_csv=False)
    if fmt.kind == "triplet":
        return E.TripletEvaluator(eval_dataset[cols[0]], eval_dataset[cols[1]], eval_dataset[cols[2]], name=name,
                                  **common, write_csv=False)
    if fmt.kind == "score":
        return E.EmbeddingSimilarityEvaluator(eval_dataset[cols[0]], eval_dataset[cols[1]],
                                              eval_dataset[fmt.label_column], name=name, **common,
                                              write_csv=False)
    if fmt.kind == "binary":
        return E.BinaryClassificationEvaluator(eval_dataset[cols[0]], eval_dataset[cols[1]],
                                               eval_dataset[fmt.label_column], name=name, **common,
                                               write_csv=False)
    if fmt.kind == "labeled":
        triplets = labeled_triplets(eval_dataset[cols[0]], eval_dataset[fmt.label_column], seed)
        if not triplets:
            log_line(f"no evaluation: {NO_TRIPLET.format(n=len(eval_dataset))}")
            return None
        a, p, n = zip(*triplets)
        return E.TripletEvaluator(list(a), list(p), list(n), name=name, **common, write_csv=False)
    return None  # single texts have no labels to evaluate against


def _each_dimension(evaluators: list[Any]) -> Any:
    """A SequentialEvaluator of ``evaluators`` without its "sequential_score": a copy of one evaluator's main
    metric under a name that says neither which metric nor which dimension."""
    from sentence_transformers.sentence_transformer.evaluation import SequentialEvaluator

    class EachDimension(SequentialEvaluator):
        def __call__(self, *args: Any, **kwargs: Any) -> dict[str, float]:
            scores = super().__call__(*args, **kwargs)
            scores.pop("sequential_score", None)
            return scores

    return EachDimension(evaluators)


def retrieval_sets(queries: list[str], positives: list[str], documents: list[str] = ()
                   ) -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    """(queries, corpus, relevant) for sentence-transformers' retrieval evaluators from held-out rows: one query
    per distinct text, relevant to the positives of all its rows (a question asked twice with two answers has
    both: each alone would rank the other as a miss), one corpus entry per distinct text of ``positives`` and
    ``documents`` (negatives)."""
    corpus_ids: dict[str, str] = {}
    for text in [*positives, *documents]:
        corpus_ids.setdefault(text, f"d{len(corpus_ids)}")
    query_ids: dict[str, str] = {}
    relevant: dict[str, set[str]] = {}
    for query, positive in zip(queries, positives):
        relevant.setdefault(query_ids.setdefault(query, f"q{len(query_ids)}"), set()).add(corpus_ids[positive])
    return ({qid: q for q, qid in query_ids.items()}, {cid: t for t, cid in corpus_ids.items()}, relevant)


NO_TRIPLET = ("the {n} held-out rows form no (text, same-class text, other-class text) triplet to evaluate (that "
              "takes two rows of one class and a row of another)")


def unused_holdout(fmt: DataFormat, train: Any, held_out: Any, given: bool, log: Any = print) -> tuple[Any, Any]:
    """(train, held_out) with held-out rows that nothing would evaluate (single texts, or class-labelled rows that
    form no triplet) not held out: rows split off the data go back into training; an ``eval_data=`` (``given``) is
    left unused (``make_evaluator`` says so for class-labelled rows). Says which."""
    if held_out is None:
        return train, held_out
    if fmt.kind == "labeled" and not given:
        text, label = fmt.text_columns[0], fmt.label_column
        if labeled_triplets(held_out[text], held_out[label]):
            return train, held_out
        import datasets

        log(f"data: {NO_TRIPLET.format(n=len(held_out))}, so all {len(train) + len(held_out)} rows train "
            f"(none held out)")
        return datasets.concatenate_datasets([train, class_ids(held_out, fmt)]), None
    if fmt.kind != "single":
        return train, held_out
    if given:
        log("warning: eval_data is not used: single texts have no pairs or labels to evaluate against")
        return train, None
    import datasets

    log(f"data: single texts have no pairs or labels to evaluate against, so all {len(train) + len(held_out)} "
        f"rows train (none held out)")
    return datasets.concatenate_datasets([train, held_out]), None


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


def headline(metrics: dict[str, float], kind: str) -> dict[str, float]:
    """The few metrics worth printing for this format."""
    wanted = HEADLINE.get(kind, ())
    return {k: v for k, v in metrics.items() if any(k.endswith("_" + w) for w in wanted)}
