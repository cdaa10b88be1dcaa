"""Held-out retrieval: a question asked on several rows is one query, relevant to every answer it was given."""

from __future__ import annotations

import datasets
from contrastkit.plugins.st import evaluation, rerank, sparse
from contrastkit.plugins.st.formats import detect_format

ROWS = {"anchor": ["how do I boil pasta", "how do I boil pasta", "what is a lemma", "why is the sky blue"],
        "positive": ["salt the water, boil it", "cook it for ten minutes", "a headword", "light scatters"]}


def test_retrieval_sets_merge_repeated_queries_and_keep_every_document():
    queries, corpus, relevant = evaluation.retrieval_sets(ROWS["anchor"], ROWS["positive"], ["a negative"])
    assert list(queries.values()) == ["how do I boil pasta", "what is a lemma", "why is the sky blue"]
    assert list(corpus.values()) == [*ROWS["positive"], "a negative"]
    assert [sorted(corpus[d] for d in relevant[q]) for q in queries] == [
        ["cook it for ten minutes", "salt the water, boil it"], ["a headword"], ["light scatters"]]


def test_dense_sparse_and_rerank_evaluators_ask_each_question_once(tiny_text_model):
    from sentence_transformers import SentenceTransformer

    data, fmt = detect_format(datasets.Dataset.from_dict(ROWS))
    dense = evaluation.make_evaluator(fmt, data)
    assert len(dense.queries) == 3 and len(dense.relevant_docs[dense.queries_ids[0]]) == 2
    sparse_eval = sparse.make_sparse_evaluator(data, fmt)
    assert len(sparse_eval.queries) == 3
    retriever = SentenceTransformer(tiny_text_model, device="cpu")
    reranking = rerank.make_rerank_evaluator(retriever, data, fmt, top_k=4)
    assert [s["query"] for s in reranking.samples] == ["how do I boil pasta", "what is a lemma",
                                                       "why is the sky blue"]
    assert sorted(reranking.samples[0]["positive"]) == ["cook it for ten minutes", "salt the water, boil it"]


def test_held_out_classes_that_form_no_triplet_go_back_to_training_with_the_training_class_ids():
    from contrastkit.plugins.st.formats import detect_format

    train, fmt = detect_format(datasets.Dataset.from_dict({"text": ["a", "b", "c"], "label": ["bug", "billing", "bug"]}))
    held, held_fmt = detect_format(datasets.Dataset.from_dict({"text": ["d", "e"], "label": ["bug", "refund"]}),
                                   held_out=True)
    lines = []
    merged, none = evaluation.unused_holdout(fmt, train, held, False, lines.append)
    assert none is None and merged["text"] == ["a", "b", "c", "d", "e"]
    assert [fmt.classes[i] for i in merged["label"]] == ["bug", "billing", "bug", "bug", "refund"]
    assert lines == [f"data: {evaluation.NO_TRIPLET.format(n=2)}, so all 5 rows train (none held out)"]
    assert evaluation.make_evaluator(held_fmt, held) is None  # nothing to evaluate, as unused_holdout found
    held3, _ = detect_format(datasets.Dataset.from_dict({"text": ["d", "e", "f"], "label": ["bug", "refund", "bug"]}),
                             held_out=True)
    assert evaluation.unused_holdout(fmt, train, held3, False, lines.append) == (train, held3)


def test_eval_data_of_classes_that_form_no_triplet_says_there_is_no_evaluation(capsys):
    held, fmt = detect_format(datasets.Dataset.from_dict({"text": ["d", "e"], "label": ["bug", "bug"]}), held_out=True)
    assert evaluation.unused_holdout(fmt, held, held, True, print) == (held, held)
    assert evaluation.make_evaluator(fmt, held) is None
    assert capsys.readouterr().out == f"data: no evaluation: {evaluation.NO_TRIPLET.format(n=2)}\n"


def test_one_held_out_row_is_said_to_give_no_evaluation(capsys):
    data, fmt = detect_format(datasets.Dataset.from_dict({k: v[:1] for k, v in ROWS.items()}))
    assert evaluation.make_evaluator(fmt, data) is None
    assert "no evaluation: 1 held-out row(s)" in capsys.readouterr().out
