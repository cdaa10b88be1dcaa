"""The reranker's held-out verdict: a reranker that orders results worse than its retriever says so."""

from contrastkit.plugins.st.rerank import below_retriever


def test_below_retriever_warns_only_when_reranking_loses():
    worse = below_retriever({"heldout_mrr@10": 0.47, "heldout_base_mrr@10": 0.55, "heldout_ndcg@10": 0.5})
    assert worse is not None and "0.4700 < 0.5500" in worse and "\n" not in worse
    assert below_retriever({"heldout_mrr@10": 0.99, "heldout_base_mrr@10": 0.97}) is None
    assert below_retriever({"heldout_spearman": 0.3}) is None  # scores, no retriever order: nothing to compare


def test_the_retriever_reads_its_query_and_document_prompts(tiny_text_model):
    """Candidates come from the retriever as a text run saved it: prompts on queries and documents."""
    import numpy as np
    from contrastkit.plugins.st.rerank import retrieve
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(tiny_text_model, device="cpu", prompts={"query": "query: ", "document": "passage: "})
    queries = [f"question {i} on topic {i % 4}" for i in range(6)]
    corpus = [f"answer {i}: about topic {i % 4}, part {i * 3 % 7}" for i in range(20)]

    def ranking(q, d):
        return np.argsort(-(d @ q.T).T, axis=1, kind="stable")[:, :5].tolist()

    expected = ranking(model.encode_query(queries, normalize_embeddings=True),
                       model.encode_document(corpus, normalize_embeddings=True))
    plain = ranking(model.encode(queries, normalize_embeddings=True), model.encode(corpus, normalize_embeddings=True))
    assert plain != expected  # the prompts change the order, so the check below can tell
    assert retrieve(model, queries, corpus, top_k=5) == expected
