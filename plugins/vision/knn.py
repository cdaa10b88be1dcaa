"""kNN evaluation of embeddings (lightly's weighted kNN on cosine similarity) and a collapse check."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


def knn_correct(bank: Any, bank_labels: Any, query: Any, query_labels: Any, k: int = 20,
                t: float = 0.1) -> np.ndarray:
    """Per query: whether the weighted kNN top-1 on cosine similarity (lightly's ``knn_predict``) is right."""
    from lightly.utils.benchmarking import knn_predict

    bank = F.normalize(torch.as_tensor(np.asarray(bank), dtype=torch.float32), dim=1)
    query = F.normalize(torch.as_tensor(np.asarray(query), dtype=torch.float32), dim=1)
    bank_labels = torch.as_tensor(np.asarray(bank_labels), dtype=torch.long)
    query_labels = torch.as_tensor(np.asarray(query_labels), dtype=torch.long)
    classes = int(max(bank_labels.max(), query_labels.max())) + 1
    hits = [knn_predict(query[start:start + 1024], bank.T, bank_labels, classes, min(k, len(bank)), t)[:, 0]
            == query_labels[start:start + 1024] for start in range(0, len(query), 1024)]
    return torch.cat(hits).numpy()


def knn_accuracy(bank: Any, bank_labels: Any, query: Any, query_labels: Any, k: int = 20, t: float = 0.1) -> float:
    """Weighted kNN top-1 accuracy on cosine similarity, as lightly's benchmarks compute it."""
    return int(knn_correct(bank, bank_labels, query, query_labels, k, t).sum()) / len(query)


def linear_probe_accuracy(train: Any, train_labels: Any, query: Any, query_labels: Any) -> float | None:
    """Top-1 accuracy of a logistic-regression probe (scikit-learn, standardised features) fitted on ``train``;
    None when the training labels have fewer than 2 classes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(set(np.asarray(train_labels).tolist())) < 2:
        return None
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    probe.fit(np.asarray(train), np.asarray(train_labels))
    return float((probe.predict(np.asarray(query)) == np.asarray(query_labels)).mean())


def embedding_spread(embeddings: np.ndarray) -> dict[str, float]:
    """Collapse check for L2-normalised embeddings: mean pairwise cosine (1.0 = collapsed) and mean per-dim std."""
    e = np.asarray(embeddings, dtype=np.float64)
    n = len(e)
    if n < 2:
        return {"mean_cosine": float("nan"), "embedding_std": float("nan")}
    total = e.sum(axis=0)
    return {"mean_cosine": round(float((total @ total - n) / (n * (n - 1))), 4),
            "embedding_std": round(float(e.std(axis=0).mean()), 5)}

