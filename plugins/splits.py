"""Training and held-out splits of a ``datasets.Dataset``: how much to hold out, which rows, and the warnings for
repeated rows and eval sets that copy the training set.

Every recipe holds out the same way (10%, at most 1,000 rows, drawn with the run's seed), so before/after numbers
mean the same thing across recipes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .data import column_values, data_columns, log_line, row_names, sample_path, to_dataset, with_row_numbers
from .errors import UserError


def holdout_size(rows: int, fraction: float = 0.1, max_eval: int = 1000) -> int:
    """How many rows every recipe holds out when no eval_data is given: 10%, at most 1,000."""
    return min(max_eval, int(rows * fraction))


def split_train_eval(train: Any, eval_data: Any = None, seed: int = 42, min_train: int = 2,
                     groups: list | None = None, classes: list | None = None) -> tuple[Any, Any]:
    """Use ``eval_data`` when given; otherwise hold out ``holdout_size`` rows, reproducibly. Rows with one
    ``groups`` value (e.g. one image's captions) stay on one side, so held-out rows are not half trained on.
    Rows with ``classes`` (text,label data) are held out class by class (``by_class``), so they form the
    (text, same-class text, other-class text) triplets they are evaluated on; classes too small for that are
    said in one line and the rows drawn as for other data."""
    if len(train) < 2:
        raise UserError(f"data has {len(train)} usable row; training needs at least 2 rows (and 20 or more to hold "
                        f"some out for evaluation)")
    if eval_data is not None:
        return train, eval_data
    n_eval = holdout_size(len(train))
    if n_eval < 2 or len(train) - n_eval < min_train:
        return train, None  # too small to hold anything out; training still runs, evaluation is skipped
    if classes is not None:
        held = by_class(classes, n_eval, seed)
        if held:
            kept = sorted(set(range(len(train))) - set(held))
            return train.select(kept), train.select(held)
        log_line(f"held out: {n_eval} rows drawn at random, not class by class, which takes 30 or more rows, a "
                 f"class of 3 or more (a held-out pair and a training row) and another of 2 or more")
    if groups is not None and len(set(groups)) < len(groups):
        return split_groups(train, groups, n_eval, seed)
    parts = train.train_test_split(test_size=n_eval, seed=seed, shuffle=True)
    return parts["train"], parts["test"]


def split_groups(data: Any, groups: list, n_eval: int, seed: int) -> tuple[Any, Any | None]:
    """Whole groups drawn with ``seed`` until at least ``n_eval`` rows are held out; each part in the data's own
    order. None held out when that would leave training fewer than half the rows (one group holds most)."""
    import random

    rows: dict[Any, list[int]] = {}
    for i, g in enumerate(groups):
        rows.setdefault(g, []).append(i)
    order = list(rows)
    random.Random(seed).shuffle(order)
    held: list[int] = []
    for g in order:
        if len(held) >= n_eval:
            break
        held += rows[g]
    if len(held) > len(groups) // 2:
        return data, None
    kept = sorted(set(range(len(groups))) - set(held))
    return data.select(kept), data.select(sorted(held))


def by_class(classes: list, n_eval: int, seed: int) -> list[int]:
    """``n_eval`` row indices (in the data's order) held out in proportion to each class's size: the class whose
    held-out share would stay the smallest gives the next row, a class's first two rows together (a held-out row
    needs a same-class partner to form a triplet), and every class keeps at least one training row. The two
    largest classes give theirs first (the second one row when it has only two), so the held-out rows always
    hold a same-class pair and another class to tell it from. Ties and the rows of each class are drawn with
    ``seed``. Empty when no such split exists: fewer than 3 rows to hold out, or no class of 3 or more rows and
    another of 2 or more."""
    import random

    rng = random.Random(seed)
    rows: dict[Any, list[int]] = {}
    for i, c in enumerate(classes):
        rows.setdefault(c if isinstance(c, (str, int, float, bool, type(None))) else repr(c), []).append(i)
    for members in rows.values():
        rng.shuffle(members)
    tie = dict(zip(rows, rng.sample(range(len(rows)), len(rows))))
    big = sorted((c for c in rows if len(rows[c]) >= 2), key=lambda c: (-len(rows[c]), tie[c]))
    if len(big) < 2 or len(rows[big[0]]) < 3 or n_eval < 3:
        return []
    taken = {big[0]: 2, big[1]: min(2, n_eval - 2, len(rows[big[1]]) - 1)}
    # (the class's share once it gives its m-th row, tie, class, rows given): its first two rows come together
    steps = sorted((m / len(rows[c]), tie[c], c, 2 if m == 2 else 1) for c in big for m in range(2, len(rows[c]))
                   if m > 2 or c not in taken)
    total = sum(taken.values())
    for _, _, c, size in steps:  # a row beyond the pair only joins a class that gave its pair
        if total + size <= n_eval and (size == 2 or taken.get(c, 0) >= 2):
            taken[c] = taken.get(c, 0) + size
            total += size
    return sorted(i for c, k in taken.items() for i in rows[c][:k])


def row_keys(ds: Any, columns: list[str] | None = None) -> list[tuple]:
    """Each row's values in ``columns`` (default: the user's columns) as a hashable tuple."""
    cols = [column_values(ds, c) for c in (columns or data_columns(ds))]
    return [tuple(v if isinstance(v, (str, int, float, bool, type(None))) else repr(v) for v in row)
            for row in zip(*cols)]


REPEATS_WEIGH_MORE = "repeated rows weigh more in training and can land in both the training and held-out split"


def repeats(keys: list) -> list[tuple[int, int]]:
    """(row, the earlier row it repeats) for every key seen before, in order."""
    first: dict[Any, int] = {}
    out = []
    for i, key in enumerate(keys):
        if key in first:
            out.append((i, first[key]))
        else:
            first[key] = i
    return out


def warn_duplicates(ds: Any, columns: list[str] | None = None, what: str = "data") -> None:
    """One warning line when rows repeat an earlier row: they weigh more in training and can leak into the
    held-out split. Only one distinct row is an error, like a single row."""
    keys = row_keys(ds, columns)
    again = repeats(keys)
    if len(ds) > 1 and len(again) == len(ds) - 1:
        raise UserError(f"every row of {what} is the same; training needs at least 2 different rows")
    if again:
        names = row_names(ds)
        i, j = again[0]
        log_line(f"warning: {len(again)} row(s) of {what} repeat an earlier row (first: {names[i]}, same as "
             f"{names[j]}); {REPEATS_WEIGH_MORE}")


def same_source(data: Any, eval_data: Any) -> bool:
    """True when eval_data= names the training file or folder (a Hub id named twice is two splits of it, which
    the row comparison in ``check_eval_overlap`` judges)."""
    return isinstance(data, (str, Path)) and isinstance(eval_data, (str, Path)) and bool(str(data).strip()) and \
        Path(data).expanduser().exists() and Path(data).expanduser().resolve() == Path(eval_data).expanduser().resolve()


EVAL_IS_TRAIN = ("evaluation on training rows shows how well they are fitted, not how the model does on new "
                 "data; leave eval_data out to hold out 10% instead")


def check_eval_overlap(data: Any, eval_data: Any, train: Any, held_out: Any, columns: list[str] | None = None,
                       eval_columns: list[str] | None = None) -> None:
    """An eval set that is (or copies) the training set measures fit, not generalisation: one warning line, with
    the count when only some eval rows are training rows. Rows are compared by content: the training rows'
    ``columns`` against the eval rows' ``eval_columns`` (default: the same names), side by side; no columns to
    compare (``[]``) checks nothing."""
    if same_source(data, eval_data):
        inside = list(range(len(held_out)))
    elif columns == []:
        return
    else:
        trained = set(row_keys(train, columns))  # once, not once per eval row
        inside = [i for i, key in enumerate(row_keys(held_out, eval_columns or columns)) if key in trained]
    if inside and len(inside) == len(held_out):
        log_line(f"warning: every eval_data row is also a training row; {EVAL_IS_TRAIN}")
    elif inside:
        log_line(f"warning: {len(inside)} of {len(held_out)} eval_data rows are also training rows (first: "
             f"{row_names(held_out)[inside[0]]}); the after-training scores are optimistic")


#: What reads a dataset's columns for ``load_splits``: ``(dataset, columns=) -> {column: role}`` in the order the
#: loss reads them, roles ``text`` (texts, in their places), ``class`` (a text's class) or ``label``; any other role
#: (or a plain list of columns) names columns without saying what they hold.
Reader = Callable[[Any, Any], dict[str, str]]


def compared_columns(train: Any, held_out: Any, train_roles: dict[str, str] | None,
                     eval_roles: dict[str, str] | None) -> tuple[list[str], list[str]]:
    """The training and eval columns that hold the same content, side by side: the texts in the places the loss
    reads them (first text, second text, negatives; as many places as both have), whatever each file calls them,
    when the roles are known; else the columns both name alike."""
    texts = [[c for c, role in roles.items() if role == "text"] for roles in (train_roles or {}, eval_roles or {})]
    places = min(map(len, texts))
    if places:
        return texts[0][:places], texts[1][:places]
    common = [c for c in (eval_roles or data_columns(held_out)) if c in train.column_names]
    return common, common


def _roles(used: Reader | None, dataset: Any, columns: Any) -> dict[str, str] | None:
    """``used(dataset, columns)`` as {column: role} (a list's columns with no role said); None without ``used``."""
    if used is None:
        return None
    found = used(dataset, columns)
    return found if isinstance(found, dict) else dict.fromkeys(found, "column")


def load_splits(cfg: Any, sample: str, used: Reader | None = None) -> tuple[Any, Any]:
    """A recipe's training data (the bundled ``sample`` when ``cfg.data`` is None) and its held-out split:
    ``cfg.eval_data`` when given (or a DatasetDict's evaluation split, ``eval_source``), else ``holdout_size``
    rows of the data, class by class for text,label data. Rows keep their place in the user's file
    (``row_names``); repeated rows and an eval set that copies the training set are reported, compared on the
    columns ``used(dataset, cfg.columns)`` names (default: all), eval rows by the roles of their columns."""
    source = cfg.data if cfg.data is not None else sample_path(sample)
    train = with_row_numbers(to_dataset(source, cfg.subset, cfg.split))
    held_out, eval_source = None, cfg.eval_source()
    if eval_source is not None:
        subset, split = cfg.eval_options()
        held_out = with_row_numbers(to_dataset(eval_source, subset, split, what="eval_data"))
    roles = _roles(used, train, cfg.columns)
    if held_out is not None:
        check_eval_overlap(source, cfg.eval_data, train, held_out,
                           *compared_columns(train, held_out, roles, _roles(used, held_out, cfg.columns)))
    warn_duplicates(train, list(roles or ()) or None)
    label = next((c for c, role in (roles or {}).items() if role == "class"), None)
    return split_train_eval(train, held_out, seed=cfg.seed,
                            classes=column_values(train, label) if label else None)
