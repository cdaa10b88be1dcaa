"""kNN evaluation on known answers."""

from __future__ import annotations

import numpy as np


def _clusters(n_per_class=30, classes=3, dim=16, spread=0.05, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[:classes] * 5
    x = np.concatenate([c + rng.normal(0, spread, (n_per_class, dim)) for c in centres])
    return x, np.repeat(np.arange(classes), n_per_class)


def test_knn_is_perfect_on_separated_clusters_and_near_chance_on_shuffled_labels():
    from contrastkit.plugins.vision.knn import knn_accuracy

    bank, bank_labels = _clusters(seed=0)
    query, query_labels = _clusters(n_per_class=20, seed=1)
    assert knn_accuracy(bank, bank_labels, query, query_labels, k=20) == 1.0
    shuffled = np.random.default_rng(2).permutation(bank_labels)
    accuracy = knn_accuracy(bank, shuffled, query, query_labels, k=20)
    assert accuracy < 0.6  # chance is 1/3; perfect would be 1.0
