"""Held-out images for kNN: the draw that keeps every class in training, and eval_data matched to the training
classes. The size and the eval-copies-training warning are the text recipes' own (``plugins/splits.py``)."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..images import name_list
from ..splits import EVAL_IS_TRAIN, holdout_size
from .data import ImageData
from .rows import RowImages, pick


def holdout(data: ImageData, seed: int) -> tuple[ImageData, Any]:
    """Hold out ``data.holdout_size`` labelled images for kNN evaluation (every class keeps training images); none
    when unlabelled. The classes with no held-out image are named on ``data.notes``, as kNN does not score them."""
    n_eval = holdout_size(len(data.items))
    if data.labels is None or n_eval < 2:
        return data, None
    train, held = split_off(data, n_eval, seed)
    if len(held.items) < 2:  # every class too small to spare an image
        return data, None
    unscored = sorted(set(data.labels) - set(held.labels))
    if unscored:
        note = (f"{len(unscored)} class(es) have no held-out image, so kNN does not score them (they are trained "
                f"on): {name_list([_name(data, y) for y in unscored])}")
        if note not in data.notes:
            data.notes.append(note)
    _one_class_scored(data, held, "give eval_data= with images of each class")
    return train, held


def _name(data: ImageData, label: int) -> str:
    return data.label_names[label] if data.label_names and label < len(data.label_names) else str(label)


def _one_class_scored(train: ImageData, held: ImageData, fix: str) -> None:
    """A warning on ``train.notes`` when every held-out image is of one class: kNN top-1 then only counts how many
    land nearest that class (a classifier that always answers it scores 1.0), so it says nothing about whether the
    classes are told apart (e.g. 20 held out of 200 "ok" and 3 "defect" images are most often all "ok")."""
    if len(set(held.labels)) != 1:
        return
    note = (f"warning: all {len(held.items)} held-out images are of class '{_name(train, held.labels[0])}', so kNN "
            f"top-1 only measures how many land nearest it, not whether the classes are told apart; {fix}")
    if note not in train.notes:
        train.notes.append(note)


def split_off(data: ImageData, n: int, seed: Any) -> tuple[ImageData, ImageData]:
    """(the rest, ``n`` images drawn at random with ``seed``), each in the data's own order. A labelled class the
    draw would take whole keeps its last-drawn image in the rest, so every class still trains (kNN and supcon need
    it there) and fewer than ``n`` can be drawn. Data whose classes all keep images splits as a plain draw."""
    order = list(range(len(data.items)))
    random.Random(seed).shuffle(order)
    drawn = order[:n]
    if data.labels is not None:
        kept = {data.labels[i] for i in order[n:]}
        for i in reversed(order[:n]):
            if data.labels[i] not in kept:
                kept.add(data.labels[i])
                drawn.remove(i)
    taken = set(drawn)
    return data.subset([i for i in range(len(data.items)) if i not in taken]), data.subset(sorted(taken))


def check_eval_images(train: ImageData, held_out: ImageData) -> None:
    """eval_data images that are training image files measure fit, not generalisation: a warning (with the count
    when only some are) on ``train.notes``, after eval_data's own messages (skipped files, ignored formats)."""
    train.notes.extend(f"eval_data: {m}" for m in held_out.messages())

    def real(items: Any) -> list[str | None]:
        if isinstance(items, RowImages) and getattr(items.ds.features[items.column], "dtype", None) != "string":
            return [None] * len(items)  # a dataset's images are no files; reading them all would only cost time
        return [os.path.realpath(x) if isinstance(x, (str, Path)) else None for x in items]

    seen = {r for r in real(train.items) if r}
    shared = [r for r in real(held_out.items) if r in seen]
    if shared and len(shared) == len(held_out.items):
        train.notes.append(f"warning: every eval_data image is also a training image; {EVAL_IS_TRAIN}")
    elif shared:
        train.notes.append(f"warning: {len(shared)} of {len(held_out.items)} eval_data images are also training "
                           f"images (first: {shared[0]}); the kNN scores are optimistic")


def match_eval_labels(train: ImageData, held_out: ImageData) -> ImageData:
    """eval_data with its labels renumbered by class name to the training data's (each folder or dataset numbers its
    own classes); its images of classes that the training data lacks are left out, with a warning on
    ``train.notes``. kNN needs labels on both sides, so eval_data without labels, or labelled eval_data for
    unlabelled training images, is refused."""
    names, labels = held_out.label_names, held_out.labels
    if labels is None and names and len(names) == 1:  # one class folder: every image is of that class
        labels = [0] * len(held_out.items)
    if labels is None:
        raise UserError("eval_data has no labels, and kNN scores labelled images; put its images in class subfolders "
                        "(or give a label column), or leave eval_data out to hold out 10% of data")
    if train.labels is None or not train.label_names:
        raise UserError("eval_data is labelled but data is not, and kNN scores eval_data against labelled training "
                        "images; put data's images in class subfolders (or give a label column), or leave eval_data "
                        "out")
    # the classes with training images: a dataset's ClassLabel names every class, also ones its rows (a slice,
    # a filtered split) lack, and kNN can never predict a class with no image in the bank
    trained = set(train.labels)
    index = {name: i for i, name in enumerate(train.label_names) if i in trained}
    keep = [i for i, y in enumerate(labels) if names[y] in index]
    missing = sorted({names[y] for y in labels if names[y] not in index})
    if not keep:
        raise UserError(f"eval_data's classes ({name_list(sorted(set(names)))}) are none of data's classes "
                        f"({name_list(sorted(index))}); name eval_data's class subfolders as data's")
    if missing:
        train.notes.append(f"warning: {len(labels) - len(keep)} eval_data image(s) of {len(missing)} class(es) that "
                           f"data lacks are left out of kNN: {name_list(missing)}")
    matched = ImageData(pick(held_out.items, keep), [index[names[labels[i]]] for i in keep],
                        list(train.label_names), held_out.skipped, held_out.source, held_out.hub_id, held_out.notes)
    _one_class_scored(train, matched, "add images of the other classes to eval_data")
    return matched
