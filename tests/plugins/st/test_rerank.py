"""The reranker's held-out verdict: a reranker that orders results worse than its retriever says so."""

from contrastkit.plugins.st.rerank import below_retriever


def test_below_retriever_warns_only_when_reranking_loses():
    worse = below_retriever({"heldout_mrr@10": 0.47, "heldout_base_mrr@10": 0.55, "heldout_ndcg@10": 0.5})
    assert worse is not None and "0.4700 < 0.5500" in worse and "\n" not in worse
    assert below_retriever({"heldout_mrr@10": 0.99, "heldout_base_mrr@10": 0.97}) is None
    assert below_retriever({"heldout_spearman": 0.3}) is None  # scores, no retriever order: nothing to compare
