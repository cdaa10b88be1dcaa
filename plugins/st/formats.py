"""Data formats: name each column's role from its name, check the rows, and put the columns in loss order.

The formats follow the Inputs tables in the docstrings of sentence-transformers' losses: anchor/positive pairs
(with optional negatives), two texts with a score or a 0/1 label, a text with a class label, or a single text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from ..data import ROW_COLUMNS, column_values, data_columns, file_order, log_line, row_names
from ..errors import UserError

#: A text longer than this is a broken file (an unclosed quote swallows the rest), not a sentence.
MAX_TEXT_CHARS = 100_000


#: Recognised column names for each role (lower case). Order of columns is never used.
ALIASES: dict[str, tuple[str, ...]] = {
    "anchor": ("anchor", "query", "question", "queries"),
    "positive": ("positive", "answer", "document", "passage", "pos", "response", "positives"),
    "text1": ("sentence1", "text1", "sentence_1", "text_1", "sentence_a", "premise"),
    "text2": ("sentence2", "text2", "sentence_2", "text_2", "sentence_b", "hypothesis"),
    "score": ("score", "scores", "similarity", "similarity_score"),
    "label": ("label", "labels", "class", "category"),
    "text": ("text", "sentence", "sentences", "content", "body"),
}
#: negative, negatives, neg, neg_2, negative_1, hard_negative, negative_passage; not negation or negotiate
NEGATIVE_NAME = re.compile(r"(hard_?)?neg(ative)?s?([\d_ -]|$)")

#: roles that fill the same place: the first and second text of a pair
SAME_ROLE = {"anchor": "text1", "text1": "anchor", "positive": "text2", "text2": "positive"}
ACCEPTED = ("anchor,positive[,negative...] | sentence1,sentence2,score | sentence1,sentence2,label(0/1) "
            "| text,label | text")
KNOWN_SCORE_RANGES = ((0.0, 1.0), (-1.0, 1.0), (0.0, 5.0), (0.0, 10.0), (0.0, 100.0))


@dataclass
class DataFormat:
    """What the columns mean: ``kind`` plus the canonical order of the text columns."""

    kind: str  # pair | triplet | score | binary | labeled | single
    text_columns: list[str]
    label_column: str | None = None
    notes: list[str] = field(default_factory=list)
    #: labeled training data: the class values in the order of their ids (held-out labels keep their values)
    classes: list = field(default_factory=list)


def _role_of(column: str) -> str | None:
    low = column.strip().lower()  # " anchor" in a header written with spaces after the commas
    for role, names in ALIASES.items():
        if low in names:
            return role
    if NEGATIVE_NAME.match(low):
        return "negative"
    return None


def used_columns(dataset: Any, columns: dict[str, str] | None = None) -> dict[str, str]:
    """The columns a run reads, each with its role, in the order the loss reads them: ``text`` (the first text, the
    second, the negatives), ``class`` (the class of text,label rows) or ``label`` (a pair's score or 0/1 label).
    The rest are ignored, so they must not make two rows differ (a pandas index column would make every row
    unique), and the held-out split and the eval overlap check read the roles, not the names. eval_data without
    the mapped columns is read by its own names, as ``detect_format`` reads it. Data whose format cannot be told
    (the run stops at ``detect_format``) gives the mapped and role-named columns, each as ``column``."""
    try:
        fmt = _column_format(dataset, columns) or _column_format(dataset, None)
    except UserError:
        mapped = set((columns or {}).values())
        return {c: "column" for c in data_columns(dataset) if c in mapped or _role_of(c) is not None}
    roles = dict.fromkeys(fmt.text_columns, "text")
    if fmt.label_column:
        roles[fmt.label_column] = "class" if fmt.kind == "labeled" else "label"
    return roles


def detect_format(dataset: Any, columns: dict[str, str] | None = None,
                  held_out: bool | DataFormat = False) -> tuple[Any, DataFormat]:
    """Name each column's role from its name (or ``columns=``), check the rows, and put columns in loss order.
    ``held_out``: evaluation rows, which need not teach anything (a few held-out rows may share one score, or one
    class); pass the training data's format to read a held-out label column as the training data reads it."""
    fmt = _column_format(dataset, columns)
    if fmt is None:
        return _missing_mapped(dataset, columns or {}, held_out)
    keep = fmt.text_columns + ([fmt.label_column] if fmt.label_column else [])
    dataset = dataset.select_columns(keep + [c for c in ROW_COLUMNS if c in dataset.column_names])
    names, order = row_names(dataset), file_order(dataset)  # errors name the file's first bad line, not the split's
    _check_texts(dataset, fmt.text_columns, names, order)
    if not held_out:
        _check_teaches(dataset, fmt, names, order)
    dataset, fmt = _check_labels(dataset, fmt, names, order, held_out)
    return dataset.select_columns(keep), fmt


def _mapped_roles(mapping: dict[str, str], found: list[str]) -> dict[str, list[str]] | None:
    """``columns=`` as role -> columns (sentence1/sentence2 as text1/text2, negative_N as negative); None when it
    names a column the rows lack. A column mapped twice, or a role that does not exist, is a one-line error."""
    twice = next((col for col in mapping.values() if list(mapping.values()).count(col) > 1), None)
    if twice is not None:
        both = " and ".join(role for role, col in mapping.items() if col == twice)
        raise UserError(f"columns= maps {both} to the same column '{twice}'; map each role to its own column")
    roles: dict[str, list[str]] = {}
    for role, col in mapping.items():
        key = "negative" if role.startswith("negative") else {"sentence1": "text1", "sentence2": "text2"}.get(role, role)
        if key not in ALIASES and key != "negative":
            raise UserError(f"columns= has unknown role '{role}'; roles are anchor, positive, negative, sentence1/"
                            f"text1, sentence2/text2, score, label, text")
        if col not in found:
            return None
        roles.setdefault(key, []).append(col)
    return roles


def _column_format(dataset: Any, columns: dict[str, str] | None) -> DataFormat | None:
    """The format the column names (and ``columns=``) say, with the ignored columns noted; no row is read. None
    when ``columns=`` names a column the rows lack. Every column the format does not read is named as ignored, so
    a run never trains on other columns than the user meant without saying so."""
    found = data_columns(dataset)
    found_str = ", ".join(found) or "none"
    roles = _mapped_roles(dict(columns or {}), found)
    if roles is None:
        return None
    mapped = {c for cols in roles.values() for c in cols}
    # a role columns= names takes no other column: the rest of its look-alikes are ignored
    given = set(roles) | {SAME_ROLE[r] for r in roles if r in SAME_ROLE}
    ignored: dict[str, str] = {}
    for col in found:
        if col in mapped:
            continue
        role = _role_of(col)
        if role is None or role in given:
            ignored[col] = col
        elif role == "negative" and _dtype(dataset, col) not in ("string", "large_string", "null", None):
            ignored[col] = f"{col} (not text)"  # e.g. negative_score: a number beside the negative
        elif role in roles and role != "negative":
            raise UserError(f"columns '{roles[role][0]}' and '{col}' both look like the {role} column; "
                            f"pick one with columns={{{role}: NAME}} (found: {found_str})")
        else:
            roles.setdefault(role, []).append(col)
    _refuse_two_pairs(roles, found_str)
    for role in ("score", "label"):  # mine_hard_negatives(output_scores=True) writes a list of scores per triplet
        col = roles.get(role, [None])[0]
        if col and col not in mapped and roles.get("negative") and _dtype(dataset, col) is None:
            ignored[col] = f"{col} (a list per row, as mined triplets carry their scores)"
            del roles[role]
    fmt = _choose_format(dataset, roles, found)
    read = set(fmt.text_columns) | {fmt.label_column}  # a lone column is read whatever its name
    ignored = {c: ignored.get(c, c) for c in found if c not in read}
    if ignored:
        fmt.notes.append(f"ignored columns: {', '.join(ignored.values())}")
    return fmt


def _refuse_two_pairs(roles: dict[str, list[str]], found_str: str) -> None:
    """anchor/positive and sentence1/sentence2 are the same two places: sentence-transformers' losses read their
    inputs by position, and their Inputs tables call those places (anchor, positive) or (input_A, input_B) pairs,
    with a score or a 0/1 label alike. Data with both kinds of name holds two candidate pairs; nothing says which
    one the user meant, so the run asks rather than train on one of them."""
    clash = [(roles[a][0], roles[b][0], place) for a, b, place in (("anchor", "text1", "first"),
                                                                  ("positive", "text2", "second"))
             if roles.get(a) and roles.get(b)]
    if not clash:
        return

    def col(role: str) -> str | None:
        return (roles.get(role) or roles.get(SAME_ROLE[role]) or [None])[0]

    picks = [", ".join(f"{key}: {col(role)}" for key, role in pair if col(role))
             for pair in ((("anchor", "anchor"), ("positive", "positive")),
                          (("sentence1", "text1"), ("sentence2", "text2")))]
    both = ", and ".join(f"'{a}' and '{b}' {'both look like the ' if i == 0 else 'the '}{place}"
                         for i, (a, b, place) in enumerate(clash))
    raise UserError(f"columns {both} text of a pair (sentence-transformers' losses read anchor/positive and "
                    f"sentence1/sentence2 in the same places); say which to train on: columns={{{picks[0]}}} or "
                    f"columns={{{picks[1]}}} (found: {found_str})")


def _choose_format(dataset: Any, roles: dict[str, list[str]], found: list[str]) -> DataFormat:
    """The format that the columns' roles make up (the kinds of ``ACCEPTED``), or a one-line error."""
    found_str = ", ".join(found) or "none"

    def one(role: str) -> str | None:
        return roles.get(role, [None])[0]

    anchor, positive = one("anchor") or one("text1"), one("positive") or one("text2")
    score, label, text, negatives = one("score"), one("label"), one("text"), roles.get("negative", [])
    if not roles and len(found) == 1:
        text = found[0]  # one column: nothing to confuse
    elif set(roles) == {"label"} and len(found) == 2 and _is_label_like(dataset, found):
        text, label = _is_label_like(dataset, found)  # one text column, named anything, and its label: class data

    if anchor and positive:
        if score and label:
            raise UserError(f"the data has both a score column '{score}' and a label column '{label}'; drop one "
                            f"or map the one to use with columns= (found: {found_str})")
        if score:
            return DataFormat("score", [anchor, positive], score)
        if label:
            return DataFormat("binary", [anchor, positive], label)
        if negatives:
            return DataFormat("triplet", [anchor, positive, *negatives])
        return DataFormat("pair", [anchor, positive])
    if text and label and not (anchor or positive):
        return DataFormat("labeled", [text], label)
    if (text or anchor) and not (positive or score or label or negatives):
        return DataFormat("single", [text or anchor])
    raise UserError(f"cannot tell the data format from columns [{found_str}]; accepted: {ACCEPTED}; "
                    f"map yours with columns={{anchor: COL, positive: COL}}")


def _missing_mapped(dataset: Any, mapping: dict[str, str], held_out: bool | DataFormat) -> tuple[Any, DataFormat]:
    """``columns=`` names a column the rows lack. Only eval_data can (the data itself was read with the same
    mapping): its own column names are used when they say the format alone, else a one-line error."""
    found_str = ", ".join(data_columns(dataset)) or "none"
    role, col = next((r, c) for r, c in mapping.items() if c not in data_columns(dataset))
    if not held_out:
        raise UserError(f"columns= maps {role} to '{col}', but the data has columns: {found_str}")
    try:
        dataset, fmt = detect_format(dataset, None, held_out)
    except UserError:
        raise UserError(f"columns= maps {role} to '{col}', but eval_data has columns: {found_str}; give eval_data "
                        f"the data's column names") from None
    log_line(f"eval_data has no column '{col}' (columns= maps {role} to it); its own columns "
             f"{', '.join(dataset.column_names)} are read by their names")
    return dataset, fmt


def _dtype(dataset: Any, col: str) -> str | None:
    """The column's Arrow type name; None for lists and structs, whose values are not one scalar per row."""
    return getattr(dataset.features[col], "dtype", None)


def _check_teaches(dataset: Any, fmt: DataFormat, names: list[str], order: list[int]) -> None:
    """Rows whose two texts are the same teach a contrastive loss nothing: an error when every row is so,
    a note with the count when some are."""
    if fmt.kind not in ("pair", "triplet", "score", "binary"):
        return
    a, b = fmt.text_columns[:2]
    first, second = column_values(dataset, a), column_values(dataset, b)
    same = [i for i in order if first[i].strip() == second[i].strip()]
    if same and len(same) == len(dataset):
        raise UserError(f"every row has the same text in '{a}' and '{b}'; a pair teaches something only when its "
                        f"two texts differ (check that columns= maps two different columns)")
    if same:
        fmt.notes.append(f"warning: {len(same)} of {len(dataset)} rows have the same text in '{a}' and '{b}' "
                         f"(first: {names[same[0]]}); they teach nothing, remove them")


def _is_label_like(dataset: Any, cols: list[str]) -> tuple[str, str] | None:
    """(text, label) for two columns: one named like a label (its classes numbers or names) and one of text."""
    feats = dataset.features
    labels = [c for c in cols if _role_of(c) == "label"]
    texts = [c for c in cols if c not in labels and getattr(feats[c], "dtype", "") in ("string", "large_string")]
    if len(labels) == 1 and len(texts) == 1:
        return texts[0], labels[0]
    return None


def _check_texts(dataset: Any, cols: list[str], names: list[str], order: list[int]) -> None:
    columns = {col: column_values(dataset, col) for col in cols}
    for i in order:
        for col, values in columns.items():
            row, v = names[i], values[i]
            if v is None or (isinstance(v, float) and math.isnan(v)):
                raise UserError(f"column '{col}' {row} is empty (NaN/null); remove that row or fill it in")
            if not isinstance(v, str):
                raise UserError(f"column '{col}' {row} is {type(v).__name__}, not text; every {col} must be text")
            if not v.strip():
                raise UserError(f"column '{col}' {row} is an empty text; remove that row or fill it in")
            if len(v) > MAX_TEXT_CHARS:
                raise UserError(f"column '{col}' {row} is {len(v):,} characters long (limit {MAX_TEXT_CHARS:,}); "
                                f"this is usually an unclosed quote or a missing line break in the file, fix that row")


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _check_labels(dataset: Any, fmt: DataFormat, names: list[str], order: list[int],
                  held_out: bool | DataFormat = False) -> tuple[Any, DataFormat]:
    """Check labels/scores; scores are mapped to [0, 1] from the first known range that holds them."""
    col = fmt.label_column
    if col is None:
        return dataset, fmt
    values = column_values(dataset, col)
    bad = next((i for i in order if values[i] is None or (isinstance(values[i], float) and math.isnan(values[i]))),
               None)
    if bad is not None:
        raise UserError(f"column '{col}' {names[bad]} is empty or NA (NaN/null); every row needs a {fmt.kind} value")
    listed = next((i for i in order if isinstance(values[i], (list, dict))), None)
    if listed is not None:
        one = "class" if fmt.kind == "labeled" else "number"
        raise UserError(f"column '{col}' holds a {type(values[listed]).__name__} on each row ({names[listed]}: "
                        f"{str(values[listed])[:40]}); a {col} must be one {one} per row")
    if fmt.kind in ("score", "binary"):
        strings = [i for i in order if isinstance(values[i], str)]
        if strings:  # one text cell makes the whole CSV column text: name the first cell that is not a number
            text = min(strings, key=lambda i: _is_number(values[i]))
            raise UserError(f"column '{col}' holds text ({names[text]}: {str(values[text])[:40]!r}); a {col} must be "
                            f"a number")
        uniq = set(values)
        if len(uniq) == 1 and len(values) > 1 and not held_out:
            raise UserError(f"column '{col}' is {values[0]!r} on every row; a {col} teaches something only when it "
                            f"varies (for positive pairs only, drop the column and name the texts anchor,positive)")
        # held-out rows of soft labels may draw only 0s and 1s: they are scores all the same
        graded = isinstance(held_out, DataFormat) and held_out.kind == "score"
        if fmt.kind == "binary" or (uniq <= {0, 1} and _role_of(col) == "label"):
            if uniq <= {0, 1} and not graded:
                fmt.kind = "binary"
                return dataset.map(lambda r: {col: int(r[col])}), fmt
            if all(isinstance(v, (int, float)) for v in values) and _role_of(col) == "label" and \
                    all(0 <= v <= 1 for v in values):
                fmt = DataFormat("score", fmt.text_columns, col, fmt.notes)  # soft labels are scores
            else:
                raise UserError(f"column '{col}' must hold 0/1 labels for pair classification; found values "
                                f"{sorted(uniq)[:5]}; use a 'score' column for graded similarity")
        lo, hi = float(min(values)), float(max(values))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise UserError(f"column '{col}' has infinite values; scores must be finite numbers")
        rng = next((r for r in KNOWN_SCORE_RANGES if r[0] <= lo and hi <= r[1]), None)
        if rng is None:
            raise UserError(f"column '{col}' ranges from {lo:g} to {hi:g}, outside the known score ranges "
                            f"{', '.join(f'[{a:g}, {b:g}]' for a, b in KNOWN_SCORE_RANGES)}; rescale it to [0, 1]")
        fmt.notes.append(f"scores in '{col}' range {lo:g}..{hi:g}; read as [{rng[0]:g}, {rng[1]:g}]"
                         + (" and mapped to [0, 1]" if rng != (0.0, 1.0) else ""))
        if rng != (0.0, 1.0):
            a, b = rng
            dataset = dataset.map(lambda r: {col: (float(r[col]) - a) / (b - a)})
        else:
            dataset = dataset.map(lambda r: {col: float(r[col])})
        return dataset, fmt
    if held_out:  # only compared with each other (evaluation.labeled_triplets), never fed to a loss
        return dataset, fmt
    if len(set(values)) < 2:
        raise UserError(f"column '{col}' has a single class; batch triplet losses need at least two classes")
    return class_ids(dataset, fmt), fmt


def class_ids(dataset: Any, fmt: DataFormat) -> Any:
    """``dataset`` with its class labels as ids, so the batch triplet losses can compare them: the place of each
    label in ``fmt.classes``, where labels new to it are added (held-out rows given back to training keep the
    training rows' ids)."""
    import datasets

    col = fmt.label_column
    known = set(fmt.classes)
    fmt.classes += [v for v in sorted(set(column_values(dataset, col)), key=str) if v not in known]
    ids = {v: i for i, v in enumerate(fmt.classes)}
    # the new type stated: datasets keeps a text column's type (large_string from CSV or Parquet) through map
    features = dataset.features.copy()
    features[col] = datasets.Value("int64")
    return dataset.map(lambda r: {col: ids[r[col]]}, features=features)
