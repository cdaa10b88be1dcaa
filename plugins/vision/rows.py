"""The images of a ``datasets.Dataset``, read from its Arrow table when asked for rather than copied out.

A Hub dataset (or one from ``load_from_disk``) is memory-mapped: its compressed images stay on disk until a row is
read. ``list(ds["image"])`` would copy every image's bytes into Python objects for the whole run (and again into
each subset, split and spawned dataloader worker), which fails for a dataset larger than memory. ``RowImages`` is
a sequence over the dataset and a list of its row numbers instead: indexing reads one row, a slice or ``take``
gives another ``RowImages`` over the same dataset, and pickling it (dataloader workers) pickles the dataset's file
references and the row numbers, not the images.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

#: Rows read from the Arrow table at a time while iterating (one ``Dataset.__getitem__`` call per batch).
READ_ROWS = 64


class RowImages(Sequence):
    """Column ``column`` of ``ds`` (best with only that column, undecoded) at rows ``rows`` (all rows when None):
    each item is the value ``ds[row][column]`` (for ``datasets.Image(decode=False)``, ``{"bytes", "path"}``)."""

    def __init__(self, ds: Any, column: str, rows: Any = None):
        self.ds, self.column = ds, column
        self.rows = np.arange(len(ds), dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return RowImages(self.ds, self.column, self.rows[i])
        return self.ds[int(self.rows[operator.index(i)])][self.column]

    def __iter__(self) -> Iterator[Any]:
        for start in range(0, len(self.rows), READ_ROWS):
            yield from self.ds[self.rows[start:start + READ_ROWS].tolist()][self.column]

    def take(self, idx: Sequence[int]) -> RowImages:
        """The items at positions ``idx`` (of this sequence), still unread."""
        return RowImages(self.ds, self.column, self.rows[np.asarray(idx, dtype=np.int64)])

    def __repr__(self) -> str:
        return f"RowImages({len(self)} rows of column '{self.column}')"


def pick(items: Sequence, idx: Sequence[int]) -> Sequence:
    """``items`` at positions ``idx``: a ``RowImages`` stays unread, anything else becomes a list."""
    return items.take(idx) if isinstance(items, RowImages) else [items[i] for i in idx]
