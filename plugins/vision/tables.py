"""Image data from a table: a ``datasets.Dataset`` (a Hub dataset, one built in Python) or a CSV, TSV, JSON Lines or
Parquet file of image paths, with its label column -> ``ImageData``. The images are read a row at a time from the
table (``RowImages``), never copied out whole."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..errors import UserError
from .data import ImageData, _check_images
from .rows import RowImages, pick


def _row_name(i: int, value: Any) -> str:
    """``row 3 (cat.png)``: a dataset row (numbered from 1) as messages name it, with its file name where it has one."""
    path = value.get("path") if isinstance(value, dict) else value if isinstance(value, str) and value else None
    return f"row {i + 1}" + (f" ({Path(path).name})" if path else "")


def _no_label(value: Any, class_label: bool) -> bool:
    """Whether a label cell is empty: None, NaN (pandas' missing number), a blank string, or ClassLabel's -1. They
    would otherwise become classes named "None", "nan" or "", each trained on as a class of its own."""
    if value is None or (isinstance(value, str) and not value):
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return class_label and value == -1


#: the column names read as labels, in this order; else a dataset's only ClassLabel column
LABEL_COLUMNS = ("label", "labels", "fine_label")


def _label_column(ds: Any, image_col: str) -> tuple[str | None, str | None]:
    """(the label column or None, a note naming the columns left unread when there is none). A ClassLabel column
    is a label column whatever its name ("coarse_label", "category"); a plain column named otherwise ("class") is
    not guessed at, but named, so "no labels" does not read as if the dataset had no column of classes."""
    import datasets

    found = next((c for c in LABEL_COLUMNS if c in ds.column_names), None)
    class_labels = [c for c, f in ds.features.items() if isinstance(f, datasets.ClassLabel)]
    if found is None and len(class_labels) == 1:
        found = class_labels[0]
    others = [c for c in ds.column_names if c != image_col]
    if found or not others:
        return found, None
    return None, (f"no label column ({', '.join(LABEL_COLUMNS)}, or one ClassLabel column) among the columns "
                  f"{', '.join(others)}: the images are unlabelled; to train on a column of classes, name it 'label' "
                  f"(Dataset.rename_column)")


def from_dataset(ds: Any, what: str, strict: bool, hub_id: str | None) -> ImageData:
    import datasets

    cols = [c for c, f in ds.features.items() if isinstance(f, datasets.Image)] or \
        [c for c in ("image", "img") if c in ds.column_names]
    if not cols:
        raise UserError(f"{what} has no image column (columns: {', '.join(ds.column_names)}); "
                        f"name it 'image'")
    label_col, unread = _label_column(ds, cols[0])
    raw = list(ds[label_col]) if label_col else []
    if any(isinstance(v, (list, tuple)) for v in raw):
        raise UserError(f"{what}'s label column '{label_col}' holds lists of labels (multi-label), which the image "
                        f"recipe does not support; give one label per image, or drop the column to train unlabelled")
    feature, feat = ds.features.get(cols[0]), ds.features[label_col] if label_col else None
    ds = ds.select_columns([cols[0]])  # rows read later carry the image only
    if isinstance(feature, datasets.Image):
        # undecoded ({"bytes", "path"}): a broken or empty image is skipped by _check_images, not a crash in
        # datasets, and the images stay compressed in the (memory-mapped) table until a view reads their row
        ds = ds.cast_column(cols[0], datasets.Image(decode=False))
    items = RowImages(ds, cols[0])
    keep, skipped, notes = _check_images(items, lambda i: _row_name(i, items[i]), strict, what)
    notes += [unread] if unread else []
    labels = names = None
    if label_col:
        class_label = isinstance(feat, datasets.ClassLabel)
        raw = [raw[i] for i in keep]
        # -1 is ClassLabel's "no label" (many Hub test splits); rows without one make the images unlabelled, as
        # loose images beside class subfolders do, since training and kNN take labels for all images or none
        if not class_label:  # " cat" from a CSV's "img.png, cat" is the class cat
            raw = [v.strip() if isinstance(v, str) else v for v in raw]
        missing = sum(_no_label(v, class_label) for v in raw)
        if missing == len(raw):
            notes.append(f"label column '{label_col}' gives no row a label (-1 or empty): the images are unlabelled")
        elif missing:
            notes.append(f"warning: {missing} of {len(raw)} rows have no label in column '{label_col}' (-1 or empty); "
                         f"images are unlabelled and kNN evaluation is skipped (label every row, or filter out the "
                         f"unlabelled ones)")
        else:
            if class_label:
                names, labels = list(feat.names), raw
            else:  # numbers in numeric order (2 before 10), the way a user reads their classes
                numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw)
                names = [str(v) for v in sorted(set(raw))] if numeric else sorted(set(map(str, raw)))
                ids = {name: i for i, name in enumerate(names)}
                labels = [ids[str(v)] for v in raw]
    return ImageData(pick(items, keep), labels, names, skipped,
                     source=f"Hugging Face dataset '{hub_id}'" if hub_id else "a datasets.Dataset", hub_id=hub_id,
                     notes=notes)


#: table files of image paths read as data (``plugins/data.py`` loads them)
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
#: a table file's column of image paths, the first of these it has
PATH_COLUMNS = ("image", "img", "file_name", "filename", "file", "path", "filepath")


def from_file(path: Path, what: str, strict: bool) -> ImageData:
    """A CSV, TSV, JSON Lines or Parquet file with a column of image paths (relative to the file's folder, as the
    image-text recipe reads them) and an optional label column, as ``from_dataset`` reads a dataset."""
    from ..data import to_dataset

    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise UserError(f"{what} '{path}' is a file; point {what}= at a folder of images, or at a "
                        f"{'/'.join(TABLE_SUFFIXES)} table with a column of image paths")
    ds = to_dataset(str(path), what=what)
    column = next((c for c in PATH_COLUMNS if c in ds.column_names), None)
    if column is None:
        shown = [c for c in ds.column_names if not c.startswith("__")]
        raise UserError(f"{what} '{path}' has no column of image paths (columns: {', '.join(shown)}); name it "
                        f"'image' (paths relative to the file's folder)")
    base = path.expanduser().resolve().parent
    paths = [str(base / Path(v.strip()).expanduser()) if isinstance(v, str) and v.strip() else "" for v in ds[column]]
    ds = ds.remove_columns([c for c in ds.column_names if c.startswith("__") or c == column]).add_column("image", paths)
    data = from_dataset(ds, f"{what} '{path}'", strict, None)
    data.source = f"table file '{path.name}'"
    return data

