"""Every kind of input -> ``datasets.Dataset``: local files, Hub ids, Python objects.

Files go through ``datasets.load_dataset`` (csv, json, parquet). Problems become one-line
``UserError``s that name the input and the fix; nothing here modifies the user's files.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import os
import re
from pathlib import Path
from typing import Any

from .errors import WRITE_DENIED, UserError, causes

#: File extension -> (datasets builder, extra builder kwargs).
FILE_BUILDERS: dict[str, tuple[str, dict[str, Any]]] = {
    ".csv": ("csv", {}),
    ".tsv": ("csv", {"delimiter": "\t"}),
    ".txt": ("text", {}),
    ".json": ("json", {}),
    ".jsonl": ("json", {}),
    ".parquet": ("parquet", {}),
}
TEXT_FORMATS = ".csv, .tsv, .json, .jsonl, .parquet, .txt"
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
#: Hidden columns that carry each row's place in the user's file ("line N") or data ("row N") through shuffles
#: and splits; ``row_names`` reads them and the format checks drop them.
LINE_COLUMN, ROW_COLUMN = "__line__", "__row__"
ROW_COLUMNS = (LINE_COLUMN, ROW_COLUMN)


def log_line(message: str) -> None:
    """Print one 'data: ...' line (rank 0 only, through the run's printer)."""
    from .report import Printer

    Printer()(f"data: {message}")


def detect_delimiter(path: Path, default: str) -> str:
    """The delimiter of a CSV/TSV file among , ; tab |: the one that splits the header into 2+ fields and every
    sampled row into as many (quotes respected); the extension's ``default`` wins ties and single-column files."""
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        sample = fh.read(1 << 16)
        cut = bool(fh.read(1))
    if cut and "\n" in sample:
        sample = sample[:sample.rindex("\n") + 1]  # whole lines only
    best, best_key = default, None
    for delim in DELIMITERS:
        rows = [r for r in csv.reader(io.StringIO(sample), delimiter=delim) if r][:200]
        if not rows or len(rows[0]) < 2:
            continue
        same = sum(len(r) == len(rows[0]) for r in rows) / len(rows)
        key = (same == 1.0, delim == default, same, len(rows[0]))
        if best_key is None or key > best_key:
            best, best_key = delim, key
    return best


def _line_numbers(path: Path, suffix: str, delimiter: str | None) -> list[int] | None:
    """The line in the file where each data row starts (header = line 1), as ``datasets`` reads the rows."""
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        if suffix == ".txt":
            return [n for n, _ in enumerate(fh, start=1)]
        if suffix == ".jsonl":
            return [n for n, line in enumerate(fh, start=1) if line.strip()]
        csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))  # long texts are checked later, with a row
        reader, starts, line = csv.reader(fh, delimiter=delimiter or ","), [], 1
        try:
            for row in reader:
                if row:
                    starts.append(line)
                line = reader.line_num + 1
        except csv.Error:
            return None  # rows named by number instead
        return starts[1:]  # the header is not a row


def looks_like_path(value: str) -> bool:
    """True when a string is meant as a local path rather than a Hub dataset id."""
    return (
        value.startswith((".", "/", "~"))
        or os.sep in value.rstrip("/") and value.count("/") > 1
        or Path(value).suffix.lower() in FILE_BUILDERS
        or Path(value).exists()
    )


RESAVE_UTF8 = "re-save it as UTF-8 (in Excel: 'CSV UTF-8')"


def not_utf8(data: bytes, whole: bool = True) -> str | None:
    """Why ``data`` is not UTF-8 text, in words for the user (UTF-16 from Excel's 'Unicode Text', or the first byte
    that is not UTF-8), or None. The recipes and the demo both say it so. ``whole=False``: ``data`` is a file's head,
    whose last multi-byte character may be cut."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "it starts as UTF-16 does, which Excel's 'Unicode Text' saves"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if whole or exc.start < len(data) - 4:
            return f"byte {data[exc.start]:#04x} at offset {exc.start} is not UTF-8"
    return None


def _check_text_file(path: Path) -> None:
    """Catch the common unreadable cases before ``datasets`` turns them into long tracebacks."""
    if path.stat().st_size == 0:
        raise UserError(f"data file '{path}' is empty; give a file with a header row and at least one row")
    if path.suffix.lower() == ".parquet":
        return
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    why = not_utf8(head, whole=path.stat().st_size <= len(head))
    if why and why.startswith("it starts as UTF-16"):
        raise UserError(f"data file '{path}' is not UTF-8 ({why}); {RESAVE_UTF8}")
    if b"\x00" in head:
        raise UserError(f"data file '{path}' looks binary, not {path.suffix or 'text'}; "
                        f"give a UTF-8 {TEXT_FORMATS} file")
    if why:
        raise UserError(f"data file '{path}' is not UTF-8 ({why}); {RESAVE_UTF8}")
    if not head.strip():
        raise UserError(f"data file '{path}' has no content; give a file with at least one row")


def _first_bad_json_line(path: Path) -> int | None:
    with path.open(encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    json.loads(line)
                except json.JSONDecodeError:
                    return number
    return None


def _read(path: str | Path, p: Path, builder: str, kwargs: dict[str, Any]) -> Any:
    """``datasets.load_dataset`` on one file, its failures as one-line ``UserError``s."""
    import datasets

    shown = datasets.is_progress_bar_enabled()  # the user's (or HF_DATASETS_DISABLE_PROGRESS_BARS') setting
    datasets.disable_progress_bars()
    try:
        return datasets.load_dataset(builder, data_files=str(p), split="train", **kwargs)
    except Exception as exc:  # datasets raises many types; all but a refused write elsewhere are a bad file
        if _denied_elsewhere(exc, p):  # e.g. an unwritable HF_DATASETS_CACHE: the run names the variable and fix
            raise
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        if "corresponds to no data" in reason:
            raise UserError(f"data file '{path}' has a header but no rows; add at least one row") from None
        raise UserError(f"data file '{path}' could not be read as {p.suffix[1:].upper()}: {reason[:200]}") from None
    finally:
        if shown:
            datasets.enable_progress_bars()


def _denied_elsewhere(exc: BaseException, path: Path) -> bool:
    """Whether ``exc`` (or its cause) is a write refused somewhere other than the data file, such as the datasets
    cache: "could not be read as CSV: Permission denied" blamed a file that was fine."""
    return any(isinstance(seen, OSError) and seen.errno in WRITE_DENIED and isinstance(seen.filename, (str, os.PathLike))
               and Path(seen.filename).absolute() != path.absolute() for seen in causes(exc))


def _keep_na_words(path: str | Path, p: Path, ds: Any, kwargs: dict[str, Any]) -> Any:
    """pandas reads the cells "NA", "None", "null", "nan", "N/A"... as missing; in a text column they are text (a
    product named NA, the sentence "None"). When a text column has missing cells, the file is read again with the
    column types of the first read (so chunks cannot disagree), where only an empty text cell is missing; numeric
    columns keep pandas' NA words as missing, as before, and the format checks refuse a missing score or label."""
    from pandas._libs.parsers import STR_NA_VALUES

    texts = [c for c, f in ds.features.items() if getattr(f, "dtype", "") in ("string", "large_string")]
    if not any(ds.with_format("arrow")[c].null_count for c in texts):
        return ds
    na_values = {c: [""] if c in texts else sorted(STR_NA_VALUES) for c in ds.column_names}
    return _read(path, p, "csv", {**kwargs, "features": ds.features, "keep_default_na": False,
                                  "na_values": na_values})


def load_file(path: str | Path) -> Any:
    """Load one local data file into a ``datasets.Dataset``."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"data file '{path}' does not exist; check the path (formats: {TEXT_FORMATS})")
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in FILE_BUILDERS)
        if len(files) != 1:
            raise UserError(f"data folder '{path}' holds {len(files)} data files; point data= at one file "
                            f"({TEXT_FORMATS})")
        p = files[0]
    suffix = p.suffix.lower()
    if suffix not in FILE_BUILDERS:
        raise UserError(f"data file '{path}' has an unsupported extension '{suffix}'; use one of {TEXT_FORMATS}")
    _check_text_file(p)
    builder, kwargs = FILE_BUILDERS[suffix]
    if suffix == ".jsonl":
        bad = _first_bad_json_line(p)
        if bad is not None:
            raise UserError(f"data file '{path}' line {bad} is not valid JSON; fix or remove that line")
    if builder == "csv":
        default = kwargs.get("delimiter", ",")
        kwargs = {**kwargs, "delimiter": detect_delimiter(p, default)}
        if kwargs["delimiter"] != default:
            log_line(f"'{p.name}' is {DELIMITERS[kwargs['delimiter']]}-separated (detected; the {suffix} default is "
                 f"{DELIMITERS[default]})")
    ds = _read(path, p, builder, kwargs)
    if builder == "csv":
        ds = _keep_na_words(path, p, ds, kwargs)
    if len(ds) == 0:
        raise UserError(f"data file '{path}' has a header but no rows; add at least one row")
    lines = _line_numbers(p, suffix, kwargs.get("delimiter")) if suffix in (".csv", ".tsv", ".jsonl", ".txt") \
        else None
    if lines is not None and len(lines) == len(ds) and LINE_COLUMN not in ds.column_names:
        ds = ds.add_column(LINE_COLUMN, lines)
    return ds


def with_row_numbers(ds: Any) -> Any:
    """``ds`` with its rows' places kept (file lines from ``load_file``, else 1-based row numbers)."""
    if any(c in ds.column_names for c in ROW_COLUMNS):
        return ds
    return ds.add_column(ROW_COLUMN, list(range(1, len(ds) + 1)))


def column_values(ds: Any, column: str) -> list:
    """A column as a Python list, read through Arrow (about 100x faster than ``ds[column]`` on 200k rows)."""
    return ds.with_format("arrow")[column].to_pylist()


def row_places(ds: Any) -> list[int]:
    """Each row's place in the user's data as a number: its file line, or its 1-based row before any shuffle."""
    column = next((c for c in ROW_COLUMNS if c in ds.column_names), None)
    return column_values(ds, column) if column else list(range(1, len(ds) + 1))


def row_names(ds: Any) -> list[str]:
    """Each row's place in the user's data: ``line N`` of the file, or ``row N`` (1-based) before any shuffle."""
    word = "line" if LINE_COLUMN in ds.column_names else "row"
    return [f"{word} {n}" for n in row_places(ds)]


def file_order(ds: Any) -> list[int]:
    """The row indices of ``ds`` in the order of the user's file, so a check that stops at the first bad row
    names the earliest one even after a shuffle or a split."""
    places = row_places(ds)
    return sorted(range(len(ds)), key=places.__getitem__)


def data_columns(ds: Any) -> list[str]:
    """The user's columns, without the hidden row-number ones."""
    return [c for c in ds.column_names if c not in ROW_COLUMNS]


#: The splits evaluation data is taken from, in this order, when eval_data= is a dataset with several splits and no
#: eval_split= is given (training data takes ``train``).
EVAL_SPLITS = ("validation", "valid", "dev", "test")


def default_split(splits: list[str], what: str, name: str) -> str:
    """``train`` for training data, else the first of ``EVAL_SPLITS`` for eval_data (said in one line, as it is a
    choice); a dataset without such a split gives its ``train`` split (or its only one)."""
    chosen = "train" if "train" in splits else splits[0]
    if what == "eval_data":
        chosen = next((s for s in EVAL_SPLITS if s in splits), chosen)
        if len(splits) > 1:
            log_line(f"held out: the '{chosen}' split of {name} (splits: {', '.join(splits)}); eval_split= picks "
                     f"another")
    return chosen


def load_hub(name: str, subset: str | None = None, split: str | None = None, what: str = "data") -> Any:
    """Load a dataset from the Hugging Face Hub (or its local cache), with an offline-aware error. Without
    ``split``, training data takes ``train`` and eval_data its evaluation split (``default_split``)."""
    import datasets

    from .hub import offline_if_unreachable

    try:
        with offline_if_unreachable(f"dataset '{name}'"):
            if split is None and what == "eval_data":
                split = default_split(datasets.get_dataset_split_names(name, subset), what, f"'{name}'")
            ds = datasets.load_dataset(name, subset, split=split or "train")
    except Exception as exc:  # noqa: BLE001
        text = f"{type(exc).__name__}: {exc}"
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
        if offline or any(s in text for s in ("offline", "Connection", "resolve", "Max retries", "NameResolution")):
            if "/" not in name:  # more likely a mistyped local path than a Hub id
                raise UserError(f"'{name}' is not a file or folder here, nor a dataset in the local Hub cache (the "
                                f"Hub cannot be reached); check the path") from None
            raise UserError(f"dataset '{name}' is not in the local cache and the Hub cannot be reached (offline); "
                            f"download it first or pass a local file with data=PATH") from None
        listed = re.search(r"(?:available configs: |Available: |Should be one of )\[([^\]]*)\]", text)
        names = f" ({', '.join(ast.literal_eval(f'[{listed[1]}]'))})" if listed else ""
        subset_key = "eval_subset" if what == "eval_data" else "subset"
        if "Config name is missing" in text:
            raise UserError(f"dataset '{name}' has several subsets{names}; pass {subset_key}= one of them") from None
        if "BuilderConfig" in text and "not found" in text:
            raise UserError(f"dataset '{name}' has no subset '{subset}'{names.replace(' (', ' (subsets: ')}; pass "
                            f"{subset_key}= an existing one") from None
        if "Unknown split" in text or "split" in text.lower() and split:
            option = "eval_split" if what == "eval_data" else "split"
            raise UserError(f"dataset '{name}' has no split '{split}'{names.replace(' (', ' (splits: ')}; pass "
                            f"{option}= an existing one") from None
        raise UserError(f"dataset '{name}' could not be loaded from the Hub: {text.splitlines()[0][:200]}") from None
    return ds


def to_dataset(data: Any, subset: str | None = None, split: str | None = None, what: str = "data") -> Any:
    """Turn a path, a Hub id, a ``Dataset``, a DataFrame, a dict of lists or a list of dicts into a Dataset."""
    import datasets

    if data is None:
        raise UserError(f"no {what} given; pass {what}=PATH (e.g. pairs.csv) or a Hugging Face dataset id")
    check_not_blank(data, what)
    if isinstance(data, datasets.DatasetDict):
        key = split or default_split(list(data), what, "the DatasetDict")
        if key not in data:
            raise UserError(f"{what} has no split '{key}'; splits found: {', '.join(data)}")
        return data[key]
    if isinstance(data, datasets.Dataset):
        return data
    if type(data).__name__ == "DataFrame":
        import pyarrow as pa

        try:
            return datasets.Dataset.from_pandas(data, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # objects Arrow cannot convert, e.g. PIL images
            return datasets.Dataset.from_list(data.to_dict("records"))  # datasets' own types (Image) take them
    if isinstance(data, dict):
        lengths = {k: len(v) for k, v in data.items() if isinstance(v, (list, tuple))}
        if len(lengths) != len(data) or len(set(lengths.values())) > 1:
            raise UserError(f"{what} as a dict must map column names to lists of equal length; got lengths {lengths}")
        return datasets.Dataset.from_dict({k: list(v) for k, v in data.items()})
    if isinstance(data, (list, tuple)):
        if not data:
            raise UserError(f"{what} is an empty list; give at least one row")
        if all(isinstance(row, dict) for row in data):
            return datasets.Dataset.from_list(list(data))
        if all(isinstance(row, str) for row in data):
            return datasets.Dataset.from_dict({"text": list(data)})
        raise UserError(f"{what} as a list must hold dicts with named columns (e.g. {{'anchor': ..., 'positive': ...}}) "
                        f"or plain strings; column order is never used to guess meaning")
    if isinstance(data, (str, Path)):
        text = str(data)
        if isinstance(data, Path) or looks_like_path(text):
            if unused := unused_hub_options(subset, split, what):
                log_line(f"warning: {unused}; {what} '{text}' is a local file, read whole")
            return load_file(text)
        return load_hub(text, subset=subset, split=split, what=what)
    raise UserError(f"{what} of type {type(data).__name__} is not supported; pass a file path, a Hub id, a Dataset, "
                    f"a pandas DataFrame, a dict of lists or a list of dicts")


def unused_hub_options(subset: str | None, split: str | None, what: str = "data") -> str | None:
    """``split=test applies to Hub datasets`` when ``subset=``/``split=`` (``eval_subset=``/``eval_split=``) are
    given for local data, which is read whole (they pick part of a Hub dataset); else None."""
    subset_key, split_key = ("eval_subset", "eval_split") if what == "eval_data" else ("subset", "split")
    given = [f"{k}={v}" for k, v in ((subset_key, subset), (split_key, split)) if v not in (None, "")]
    return f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} to Hub datasets" if given else None


def check_not_blank(data: Any, what: str = "data") -> None:
    """``data=`` with no value is a mistake (an unset shell variable), never "the current folder"."""
    if isinstance(data, (str, Path)) and not str(data).strip():
        raise UserError(f"{what}= is empty; give a file, folder or Hub dataset id (or leave {what}= out "
                        f"to use the recipe's default)")


def sample_path(name: str) -> str:
    """Path of a file bundled in ``contrastkit.recipes.sample_data``."""
    from importlib.resources import files

    return str(files("contrastkit.recipes.sample_data") / name)
