"""Length-aware batching for in-batch-negative losses, built on sentence-transformers' NoDuplicatesBatchSampler.

Padding every batch to its longest text wastes compute when texts vary in length. This sampler sorts the rows
by length (with per-epoch noise, so buckets differ between epochs), cuts the order into buckets of a few
batches, shuffles each bucket, fills duplicate-free batches along that order (a row whose text is already in the
batch waits for the next one, as in sentence-transformers' ``NoDuplicatesBatchSampler``), and shuffles the order
of all batches so training never runs short-to-long. Every row comes once per epoch, in full batches but the last
few, and ``len()`` is the number of batches yielded.

Pass the class as ``SentenceTransformerTrainingArguments(batch_sampler=LengthGroupedNoDuplicatesBatchSampler)``.
Under DDP, accelerate shards the batches this sampler yields; every rank seeds from ``seed + epoch`` and so
builds the same batch list, as the library's own samplers do.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

#: Batches per length bucket, whose rows are shuffled before batching: larger keeps more randomness inside a batch,
#: smaller pads less; 1 groups most tightly.
BUCKET_BATCHES = 1
#: Per-epoch multiplicative noise on lengths, so that who shares a batch changes between epochs.
LENGTH_NOISE = 0.2


def text_lengths(dataset: Any, valid_label_columns: list[str] | None = None) -> list[int]:
    """Characters per row, summed over the text columns (a tokenizer-free proxy for padded length)."""
    skip = set(valid_label_columns or [])
    lengths = [0] * len(dataset)
    for column in (c for c in dataset.column_names if c not in skip):
        for i, value in enumerate(_values(dataset, column)):
            lengths[i] += len(value) if isinstance(value, str) else 0
    return lengths


def _values(dataset: Any, column: str) -> list[Any]:
    """One column's values, read in one slice: iterating ``dataset[column]`` formats row by row, about 20 us a
    value (3 s of the sampler's set-up on 100k pairs)."""
    return dataset[column][:]


def fill_batches(order: list[int], values: list[set[str]], batch_size: int, drop_last: bool) -> list[list[int]]:
    """Cut ``order`` greedily into duplicate-free batches: each batch takes the first rows, in order, whose texts
    (``values``) are not yet in it; a row that clashes waits, in its place, for the next batch.

    The rows still waiting are a linked list over positions in ``order`` (as in sentence-transformers'
    ``NoDuplicatesBatchSampler``), so a batch costs the rows it looks at: rebuilding the list of pending rows
    after each batch made an epoch quadratic in its rows (4 s on 300k pairs, a minute on a million)."""
    following = list(range(1, len(order) + 1))  # position -> next waiting position; len(order) ends the list
    head, end, batches = 0, len(order), []
    while head != end:
        batch, seen, before, pos = [], set(), -1, head
        while pos != end:
            i, after = order[pos], following[pos]
            if values[i].isdisjoint(seen):
                batch.append(i)
                seen |= values[i]
                if before == -1:  # unlink pos: it is batched
                    head = after
                else:
                    following[before] = after
                if len(batch) == batch_size:
                    break
            else:
                before = pos  # it waits, in its place
            pos = after
        if len(batch) == batch_size or not drop_last:
            batches.append(batch)
    return batches


class LengthGroupedNoDuplicatesBatchSampler(NoDuplicatesBatchSampler):
    """Duplicate-free batches of texts of similar length, yielded in a shuffled order."""

    def __init__(self, dataset: Any, batch_size: int, drop_last: bool, valid_label_columns: list[str] | None = None,
                 generator: torch.Generator | None = None, seed: int = 0, bucket_batches: int = BUCKET_BATCHES,
                 **kwargs: Any) -> None:
        super().__init__(dataset, batch_size=batch_size, drop_last=drop_last,
                         valid_label_columns=valid_label_columns, generator=generator, seed=seed, **kwargs)
        self.bucket_batches = bucket_batches
        self.lengths = torch.tensor(text_lengths(self.dataset), dtype=torch.float64)
        # the texts of each row, as the parent compares them: a row clashes with a batch that holds any of them
        columns = [_values(self.dataset, c) for c in self.dataset.column_names if c != "dataset_name"]
        self.values = [set(map(str, row)) for row in zip(*columns)]
        self._cached: tuple[int, list[list[int]]] | None = None

    def _buckets(self, gen: torch.Generator) -> list[torch.Tensor]:
        noise = 1 + LENGTH_NOISE * (2 * torch.rand(len(self.lengths), generator=gen, dtype=torch.float64) - 1)
        order = torch.argsort(self.lengths * noise, stable=True)
        return list(torch.split(order, self.batch_size * self.bucket_batches))

    def _batches(self) -> list[list[int]]:
        """This epoch's batches, in the order they are yielded; cached, so ``len()`` is exactly what iterating gives.

        The rows, bucket after bucket (each bucket shuffled inside), are cut greedily (``fill_batches``): a row whose text
        is already in the batch waits for the next one, so every batch but the last few is full and every row comes
        once. (Cutting each bucket on its own would leave each bucket's clashing rows in extra, tiny batches.)"""
        if self._cached is not None and self._cached[0] == self.epoch:
            return self._cached[1]
        gen = torch.Generator().manual_seed(self.seed + self.epoch)  # same on every rank, different per epoch
        order = [i for b in self._buckets(gen) for i in b[torch.randperm(len(b), generator=gen)].tolist()]
        batches = fill_batches(order, self.values, self.batch_size, self.drop_last)
        batches = [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]
        self._cached = (self.epoch, batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._batches()

    def __len__(self) -> int:
        """Number of batches this epoch yields: the rows over batch_size, plus any batch left short by clashing texts."""
        return len(self._batches())
