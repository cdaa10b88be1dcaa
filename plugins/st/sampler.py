"""Length-aware batching for in-batch-negative losses, built on sentence-transformers' NoDuplicatesBatchSampler.

Padding every batch to its longest text wastes compute when texts vary in length. This sampler sorts the rows
by length (with per-epoch noise, so buckets differ between epochs), cuts the order into buckets of a few
batches, lets sentence-transformers' ``NoDuplicatesBatchSampler`` form duplicate-free batches inside each
bucket, and shuffles the order of all batches so training never runs short-to-long.

Pass the class as ``SentenceTransformerTrainingArguments(batch_sampler=LengthGroupedNoDuplicatesBatchSampler)``.
Under DDP, accelerate shards the batches this sampler yields; every rank seeds from ``seed + epoch`` and so
builds the same batch list, as the library's own samplers do.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

#: Batches per length bucket: larger keeps more randomness inside a batch, smaller pads less. With 8, a
#: 512-pair set has only 2 buckets and trains barely faster; 1 groups most tightly.
BUCKET_BATCHES = 1
#: Per-epoch multiplicative noise on lengths, so that who shares a batch changes between epochs.
LENGTH_NOISE = 0.2


def text_lengths(dataset: Any, valid_label_columns: list[str] | None = None) -> list[int]:
    """Characters per row, summed over the text columns (a tokenizer-free proxy for padded length)."""
    skip = set(valid_label_columns or [])
    columns = [c for c in dataset.column_names if c not in skip]
    lengths = [0] * len(dataset)
    for column in columns:
        for i, value in enumerate(dataset[column]):
            lengths[i] += len(value) if isinstance(value, str) else 0
    return lengths


class LengthGroupedNoDuplicatesBatchSampler(NoDuplicatesBatchSampler):
    """Duplicate-free batches of texts of similar length, yielded in a shuffled order."""

    def __init__(self, dataset: Any, batch_size: int, drop_last: bool, valid_label_columns: list[str] | None = None,
                 generator: torch.Generator | None = None, seed: int = 0, bucket_batches: int = BUCKET_BATCHES,
                 **kwargs: Any) -> None:
        super().__init__(dataset, batch_size=batch_size, drop_last=drop_last,
                         valid_label_columns=valid_label_columns, generator=generator, seed=seed, **kwargs)
        self.bucket_batches = bucket_batches
        self.lengths = torch.tensor(text_lengths(self.dataset), dtype=torch.float64)
        self._kwargs = kwargs

    def _buckets(self, gen: torch.Generator) -> list[torch.Tensor]:
        noise = 1 + LENGTH_NOISE * (2 * torch.rand(len(self.lengths), generator=gen, dtype=torch.float64) - 1)
        order = torch.argsort(self.lengths * noise, stable=True)
        size = self.batch_size * self.bucket_batches  # a multiple of batch_size: only the last bucket is ragged
        return list(torch.split(order, size))

    def __iter__(self) -> Iterator[list[int]]:
        gen = torch.Generator().manual_seed(self.seed + self.epoch)  # same on every rank, different per epoch
        batches: list[list[int]] = []
        for b, bucket in enumerate(self._buckets(gen)):
            ids = bucket.tolist()
            inner = NoDuplicatesBatchSampler(self.dataset.select(ids), batch_size=self.batch_size,
                                             drop_last=self.drop_last, generator=torch.Generator(),
                                             seed=self.seed + 7919 * self.epoch + b, **self._kwargs)
            batches.extend([ids[i] for i in batch] for batch in inner)
        for i in torch.randperm(len(batches), generator=gen).tolist():
            yield batches[i]

    def __len__(self) -> int:
        """Number of batches: each bucket but the last is a whole number of batches, so this matches the parent."""
        if len(self.lengths) == 0:
            return 0
        sizes = [len(b) for b in torch.split(torch.arange(len(self.lengths)), self.batch_size * self.bucket_batches)]
        per = (lambda n: n // self.batch_size) if self.drop_last else (lambda n: -(-n // self.batch_size))
        return sum(per(n) for n in sizes)
