"""Every kind of input -> ``datasets.Dataset``: local files, Hub ids, Python objects.

Files go through ``datasets.load_dataset`` (csv, json, parquet). Problems become one-line
``UserError``s that name the input and the fix; nothing here modifies the user's files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import UserError

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


def looks_like_path(value: str) -> bool:
    """True when a string is meant as a local path rather than a Hub dataset id."""
    return (
        value.startswith((".", "/", "~"))
        or os.sep in value.rstrip("/") and value.count("/") > 1
        or Path(value).suffix.lower() in FILE_BUILDERS
        or Path(value).exists()
    )


def _check_text_file(path: Path) -> None:
    """Catch the common unreadable cases before ``datasets`` turns them into long tracebacks."""
    if path.stat().st_size == 0:
        raise UserError(f"data file '{path}' is empty; give a file with a header row and at least one row")
    if path.suffix.lower() == ".parquet":
        return
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    if b"\x00" in head:
        raise UserError(f"data file '{path}' looks binary, not {path.suffix or 'text'}; "
                        f"give a UTF-8 {TEXT_FORMATS} file")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a multi-byte character cut at the 64 KiB boundary
            raise UserError(f"data file '{path}' is not UTF-8 (byte {head[exc.start]:#04x} at offset {exc.start}); "
                            f"re-save it as UTF-8") from None
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


def load_file(path: str | Path) -> Any:
    """Load one local data file into a ``datasets.Dataset``."""
    import datasets

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
    datasets.disable_progress_bars()
    try:
        ds = datasets.load_dataset(builder, data_files=str(p), split="train", **kwargs)
    except Exception as exc:  # noqa: BLE001 - datasets raises many types; all are a bad file to the user
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        if "corresponds to no data" in reason:
            raise UserError(f"data file '{path}' has a header but no rows; add at least one row") from None
        raise UserError(f"data file '{path}' could not be read as {suffix[1:].upper()}: {reason[:200]}") from None
    finally:
        datasets.enable_progress_bars()
    if len(ds) == 0:
        raise UserError(f"data file '{path}' has a header but no rows; add at least one row")
    return ds


def load_hub(name: str, subset: str | None = None, split: str | None = None) -> Any:
    """Load a dataset from the Hugging Face Hub (or its local cache), with an offline-aware error."""
    import datasets

    try:
        ds = datasets.load_dataset(name, subset, split=split or "train")
    except Exception as exc:  # noqa: BLE001
        text = f"{type(exc).__name__}: {exc}"
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
        if offline or any(s in text for s in ("offline", "Connection", "resolve", "Max retries", "NameResolution")):
            raise UserError(f"dataset '{name}' is not in the local cache and the Hub cannot be reached (offline); "
                            f"download it first or pass a local file with data=PATH") from None
        if "Unknown split" in text or "split" in text.lower() and split:
            raise UserError(f"dataset '{name}' has no split '{split}'; pass split= with an existing split") from None
        raise UserError(f"dataset '{name}' could not be loaded from the Hub: {text.splitlines()[0][:200]}") from None
    return ds


def to_dataset(data: Any, subset: str | None = None, split: str | None = None, what: str = "data") -> Any:
    """Turn a path, a Hub id, a ``Dataset``, a DataFrame, a dict of lists or a list of dicts into a Dataset."""
    import datasets

    if data is None:
        raise UserError(f"no {what} given; pass {what}=PATH (e.g. pairs.csv) or a Hugging Face dataset id")
    if isinstance(data, datasets.DatasetDict):
        key = split or ("train" if "train" in data else next(iter(data)))
        if key not in data:
            raise UserError(f"{what} has no split '{key}'; splits found: {', '.join(data)}")
        return data[key]
    if isinstance(data, datasets.Dataset):
        return data
    if type(data).__name__ == "DataFrame":
        return datasets.Dataset.from_pandas(data, preserve_index=False)
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
            return load_file(text)
        return load_hub(text, subset=subset, split=split)
    raise UserError(f"{what} of type {type(data).__name__} is not supported; pass a file path, a Hub id, a Dataset, "
                    f"a pandas DataFrame, a dict of lists or a list of dicts")


def holdout_size(rows: int, fraction: float = 0.1, max_eval: int = 1000) -> int:
    """How many rows every recipe holds out when no eval_data is given: 10%, at most 1,000."""
    return min(max_eval, int(rows * fraction))


def split_train_eval(train: Any, eval_data: Any = None, seed: int = 42, min_train: int = 2) -> tuple[Any, Any]:
    """Use ``eval_data`` when given; otherwise hold out ``holdout_size`` rows, reproducibly."""
    if eval_data is not None:
        return train, eval_data
    n_eval = holdout_size(len(train))
    if n_eval < 2 or len(train) - n_eval < min_train:
        return train, None  # too small to hold anything out; training still runs, evaluation is skipped
    parts = train.train_test_split(test_size=n_eval, seed=seed, shuffle=True)
    return parts["train"], parts["test"]


def load_splits(cfg: Any, sample: str) -> tuple[Any, Any]:
    """A recipe's training data (the bundled ``sample`` when ``cfg.data`` is None) and its held-out split:
    ``cfg.eval_data`` when given, else ``holdout_size`` rows of the data."""
    train = to_dataset(cfg.data if cfg.data is not None else sample_path(sample), cfg.subset, cfg.split)
    held_out = to_dataset(cfg.eval_data, what="eval_data") if cfg.eval_data is not None else None
    return split_train_eval(train, held_out, seed=cfg.seed)


def sample_path(name: str) -> str:
    """Path of a file bundled in ``contrastkit.recipes.sample_data``."""
    from importlib.resources import files

    return str(files("contrastkit.recipes.sample_data") / name)
