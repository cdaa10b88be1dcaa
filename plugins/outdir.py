"""Whose output folder is this? The run lock, the run record, resume checks and runs that stopped early.

Two hidden files in an output folder, both left out of the Hub push (``.contrastkit-*``) and of the "is it
empty?" check:

- ``.contrastkit-lock`` is held with an exclusive ``flock`` while a run writes there, and names that run (PID,
  start time, command). The OS drops the lock when the process ends, also on a crash, so a left-over file never
  blocks the next run. A run that ends normally deletes it.
- ``.contrastkit-run.json`` says which recipe wrote the folder and from which model, so ``resume=true`` can refuse
  a folder of another recipe or model before anything loads.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from .errors import UserError

LOCK = ".contrastkit-lock"
RECORD = ".contrastkit-run.json"
WRITE_PROBE = ".contrastkit-write-test"  # written and deleted at once, to check that the folder takes files
#: the run's own bookkeeping in an output folder: never the user's output
OWN_FILES = frozenset({LOCK, RECORD, WRITE_PROBE})
CHECKPOINTS = "checkpoints"
#: config fields that decide whether a checkpoint fits the model a run builds (checked by resume=true)
MODEL_FIELDS = ("model", "backbone", "method")
#: the prompts the texts trained with (text and sparse recipes): a resumed run must not switch them halfway
PROMPTS_FIELD = "prompts"
#: and the training data's: a resumed run trains on what its checkpoint trained on (a path, a Hub id; data given as
#: Python objects is not recorded, so not compared)
DATA_FIELD = "data"
#: a Hub dataset's subset and split are part of which data it is
HUB_FIELDS = ("subset", "split")
#: how the checkpoint trained, compared as given ("auto" and an unset default too): the restored optimizer keeps its
#: learning rate and parameter groups, the columns, mining and loss decide what the rows mean, and the batch size
#: what a step is (its rows, the steps per epoch). The user's batch_size is recorded: the out-of-memory fallback's
#: smaller micro-batches (with gradient accumulation) and the image recipe's cap at the image count keep it.
TRAINING_FIELDS = ("learning_rate", "loss", "freeze_embeddings", "columns", "mine_hard_negatives", "batch_size")
#: the record's step count of the model and metrics saved in the folder (``mark_finished``)
FINISHED = "finished_steps"
#: files that only a saved model puts at the top of an output folder (a Trainer recipe's, the image encoder's)
MODEL_FILES = ("model.safetensors", "modules.json", "pytorch_model.bin")


class FolderLock:
    """An exclusive, non-blocking ``flock`` on ``folder/.contrastkit-lock``; ``acquire`` refuses a held folder."""

    def __init__(self, folder: Path):
        self.path = folder / LOCK
        self.fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise a UserError that names the run holding it."""
        try:
            import fcntl
        except ImportError:  # Windows: no flock; runs are not locked there
            return
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise UserError(f"output_dir '{self.path.parent}' is not writable ({exc.strerror}); choose a folder "
                                f"you can write to") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read_holder(fd)
                os.close(fd)
                raise UserError(f"output_dir '{self.path.parent}' is in use by another run ({holder}); wait for it "
                                f"to finish, or choose another output_dir") from None
            try:  # a run that just ended may have deleted the file we opened: lock the one on disk
                on_disk, ours = os.stat(self.path), os.fstat(fd)
                same = (on_disk.st_dev, on_disk.st_ino) == (ours.st_dev, ours.st_ino)
            except OSError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                                 "command": _command()}).encode())
        self.fd = fd
        _HELD.add(_key(self.path))

    def release(self) -> None:
        """Delete the lock file and drop the lock (deleting first, so no one locks a file that is going away)."""
        if self.fd is None:
            return
        _HELD.discard(_key(self.path))
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        os.close(self.fd)  # closing drops the flock
        self.fd = None


def holder(folder: Path) -> str | None:
    """The run that holds ``folder``'s lock ("PID ..., started ...: command"), or None when none does. Only looks:
    it creates and writes nothing, so it works on a read-only folder. A lock this process holds does not count (a
    run pushing its own folder at the end)."""
    path = folder / LOCK
    try:
        import fcntl
    except ImportError:  # Windows: no flock, so no run holds a folder
        return None
    if _key(path) in _HELD:
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # no lock file: no run has written here since the last one ended
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return _read_holder(fd)
    finally:
        os.close(fd)  # closing drops the shared lock, if we got it
    return None


#: the lock files this process holds (``FolderLock.acquire``), as resolved paths
_HELD: set[str] = set()


def _key(path: Path) -> str:
    return str(path.resolve())


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "a run that is just starting"
    return f"PID {info.get('pid')}, started {info.get('started')}: {info.get('command')}"


def _command() -> str:
    argv = list(sys.argv)
    if argv and argv[0].endswith(("__main__.py", "cli.py")) or argv[:1] == ["-m"]:
        argv[0] = "contrastkit"
    else:
        argv[0] = Path(argv[0]).name if argv else "python"
    return " ".join(argv)[:300]


def has_checkpoint(folder: Path) -> bool:
    """A complete checkpoint: a Trainer ``checkpoint-N`` (trainer_state.json is written last) or a Lightning .ckpt."""
    ckpts = folder / CHECKPOINTS
    if not ckpts.is_dir():
        return False
    return newest_checkpoint(ckpts) is not None or any(ckpts.glob("*.ckpt"))


def newest_checkpoint(checkpoints: Path) -> Path | None:
    """The newest complete Trainer ``checkpoint-N`` in ``checkpoints`` (a run's ``checkpoints`` folder, or any
    Trainer's output_dir): trainer_state.json is written last, so one cut off by a kill is skipped. None: none."""
    found = [p for p in checkpoints.glob("checkpoint-*")
             if p.name.rpartition("-")[2].isdigit() and (p / "trainer_state.json").is_file()]
    return max(found, key=lambda p: int(p.name.rpartition("-")[2])) if found else None


def unfinished(folder: Path) -> str | None:
    """Why ``folder`` holds no model of its run: a contrastkit run that has not saved its model (it stopped, or is
    still training), with the command that finishes it; None for any other folder. Its model files, if any, are an
    earlier run's (``overwrite=true`` keeps them until the new model replaces them), and the line says so. Callers
    add what else to do (push it after, pass a checkpoint)."""
    record = read_record(folder) or {}
    if FINISHED not in record or isinstance(record[FINISHED], int):
        return None
    recipe = record.get("recipe") or "RECIPE"
    earlier = "; the model files there are an earlier run's" if any(
        (folder / name).is_file() for name in MODEL_FILES) else ""
    how = (f"finish it from its last checkpoint with `contrastkit run {recipe} resume=true output_dir={folder}`"
           if has_checkpoint(folder) else "run the same command again to train it")
    return f"output folder '{folder}' holds a {recipe} run that has not saved its model yet (it stopped, or is " \
           f"still training{earlier}); {how}"


def stopped_early(folder: Path) -> bool:
    """A contrastkit run that stopped before its first checkpoint: its record, perhaps an empty or cut-off
    checkpoints folder, and nothing else. Running again there is safe (nothing of value to overwrite)."""
    if not (folder / RECORD).is_file() or has_checkpoint(folder):
        return False
    return all(p.name in OWN_FILES or p.name == CHECKPOINTS for p in folder.iterdir())


def check_checkpoints_writable(folder: Path) -> None:
    """The ``checkpoints`` folder an earlier run left (``overwrite=true``, ``resume=true``) must take new checkpoints:
    a file of that name, or a folder this user cannot write, failed at the first checkpoint with a traceback,
    after the data and model had loaded and a save interval had trained."""
    path = folder / CHECKPOINTS
    if path.exists() and not path.is_dir():
        raise UserError(f"output_dir '{folder}' holds a file named '{CHECKPOINTS}', where the run keeps its "
                        f"checkpoint folder; move or delete that file, or choose another output_dir")
    if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"output_dir '{folder}' holds a '{CHECKPOINTS}' folder you cannot write to (an earlier "
                        f"run's, perhaps another user's); make it writable or remove it, or choose another output_dir")


def is_empty(folder: Path) -> bool:
    """No entries but the run's own bookkeeping (a lock left by a crash, the write probe)."""
    return all(p.name in (LOCK, WRITE_PROBE) for p in folder.iterdir())


def identity(cfg: Any) -> dict[str, Any]:
    """The model, data and training fields of ``cfg`` that a checkpoint must match, paths made absolute (``./m``
    == ``/abs/m``)."""
    out = {}
    for name in (*MODEL_FIELDS, PROMPTS_FIELD, DATA_FIELD, *HUB_FIELDS, *TRAINING_FIELDS):
        value = getattr(cfg, name, None)
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if name == DATA_FIELD and not isinstance(value, (str, type(None))):  # rows, a DataFrame, a Dataset
            continue
        # settled from the data later (the image recipe's method), then recorded and checked; prompts=auto is
        # compared as it is: it reads the base model, which model= pins
        if value == "auto" and name not in (PROMPTS_FIELD, *TRAINING_FIELDS):
            continue
        if isinstance(value, str) and value and Path(value).expanduser().exists():
            value = str(Path(value).expanduser().resolve())
        if hasattr(cfg, name):
            out[name] = value
    return out


def write_record(folder: Path, recipe: str, cfg: Any) -> None:
    """``.contrastkit-run.json``: the recipe, model and data this folder belongs to (home paths as ``~/...``, as in
    config.yaml: the folder may be shared; ``check_resume`` expands them)."""
    from .config import home_as_tilde

    record = {"recipe": recipe, **home_as_tilde(identity(cfg)), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    before = _own_record(folder) if getattr(cfg, "resume", False) else {}
    record[FINISHED] = before.get(FINISHED)  # a resumed run has not yet replaced the saved model it found
    (folder / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def mark_finished(folder: Path, metrics: dict[str, Any]) -> None:
    """Note in the run record that ``folder`` holds the model and metrics of the run's step count (``_steps`` of
    ``metrics``). Called once they are saved, so ``holds_finished`` tells a finished run from one stopped after its
    last checkpoint."""
    record = _own_record(folder)
    steps = _steps(metrics)
    if record and isinstance(steps, int):
        record[FINISHED] = steps
        (folder / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def holds_finished(folder: Path, steps: int) -> bool:
    """Whether ``folder`` already holds the saved model and metrics of a checkpoint of ``steps`` steps (then
    ``resume=true`` has nothing to do), not just the checkpoint: a run stopped (Ctrl-C, a kill) after its last
    checkpoint but before its model was saved. The record says so; a folder without a contrastkit record of it
    (an older run, or the Trainer used without a recipe) counts as finished when metrics.json gives ``steps``
    steps beside a saved model."""
    record = _own_record(folder)
    if FINISHED in record:
        return record[FINISHED] == steps
    from .report import read_metrics

    return _steps(read_metrics(folder) or {}) == steps and any((folder / name).is_file() for name in MODEL_FILES)


def _steps(metrics: dict[str, Any]) -> Any:
    """The step count metrics.json gives: the image recipe's ``steps``, the Trainer recipes' ``train.global_step``."""
    return metrics.get("steps", (metrics.get("train") or {}).get("global_step"))


def _own_record(folder: Path) -> dict[str, Any]:
    """The run record as written, or {} when the folder has none (or an unreadable one)."""
    try:
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def read_record(folder: Path) -> dict[str, Any] | None:
    """What wrote ``folder``: its run record, else (a run from before records) config.yaml and metrics.json."""
    record = _own_record(folder)
    if record:
        return record
    import yaml

    from .report import read_metrics

    try:
        config = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, yaml.YAMLError):
        return None
    metrics = read_metrics(folder)
    if not isinstance(config, dict) or metrics is None or "recipe" not in metrics:
        return None
    return {"recipe": metrics["recipe"], **{k: config.get(k) for k in MODEL_FIELDS if k in config}}


def check_resume(folder: Path, recipe: str, cfg: Any) -> None:
    """``resume=true`` continues only a run of the same recipe and model; anything else is refused, untouched."""
    if not folder.is_dir() or is_empty(folder):
        raise UserError(f"resume=true but output_dir '{folder}' holds no run yet; run the same command without "
                        f"resume=true to start one")
    record = read_record(folder)
    if record is None:
        raise UserError(f"resume=true but output_dir '{folder}' was not written by a contrastkit run (no {RECORD} "
                        f"or config.yaml); choose the output_dir of the run to continue")
    if record.get("recipe") != recipe:
        raise UserError(f"resume=true but output_dir '{folder}' holds a run of recipe "
                        f"'{record.get('recipe')}', not '{recipe}'; resume it with 'contrastkit run {record.get('recipe')} resume=true "
                        f"output_dir={folder}', or choose another output_dir")
    mine = identity(cfg)
    for name, value in mine.items():
        theirs = record.get(name)
        if name in record and theirs != value and not _same_path(theirs, value):
            theirs, value = _setting(name, theirs), _setting(name, value)
            raise UserError(f"resume=true but output_dir '{folder}' was trained with {theirs}, not {value}; resume "
                            f"with {theirs}, or choose another output_dir for {value}")
    if not has_checkpoint(folder):
        fix = "run the same command without resume=true to start it again" if stopped_early(folder) else \
            "pass overwrite=true instead of resume=true to train it again from the start"
        raise UserError(f"resume=true but output_dir '{folder}' holds no complete checkpoint (none was saved yet; "
                        f"one is saved every save_steps={getattr(cfg, 'save_steps', '?')} steps); {fix}")


def reached_length(out: Path, steps: int, done: float, target: float, trained: str, length: str, fix: str) -> bool:
    """Whether a checkpoint of ``steps`` steps, ``done`` of the run's ``target`` (in steps or epochs), trained the
    run's whole length: then resume only evaluates and saves it. Refused (a ``UserError``) when it trained more,
    or when ``out`` already holds the model and metrics saved from it (``holds_finished``): there is nothing to
    train, and going on would only rewrite the finished run's files. ``trained``, ``length`` and ``fix`` word it."""
    if done < target:
        return False
    if done > target or holds_finished(out, steps):
        raise UserError(f"resume=true but the run in '{out}' already trained {trained}, "
                        f"{'more than' if done > target else 'all of'} this run's {length}: nothing is left to "
                        f"train; raise {fix} to train on, or leave the finished run as it is")
    return True


def _setting(name: str, value: Any) -> str:
    return f"{name}={value}" if value is not None else f"the default {name} (no {name}=)"


def _same_path(a: Any, b: Any) -> bool:
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    return os.path.expanduser(a) == os.path.expanduser(b)
