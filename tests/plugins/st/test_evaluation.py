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
