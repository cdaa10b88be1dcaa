"""The two ends every recipe shares: ``start`` before any work, ``finish`` after the model is saved.

A recipe reads top to bottom as config -> data -> model -> trainer -> save -> ``finish``; what is the same
for every recipe (the output folder's checks and lock, config.yaml, the Hub push, the Result) lives here once,
and so does what a run that ends early says: ``end``, ``interrupted_message`` and ``as_user_error`` (the CLI
calls them).
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import itertools
import os
import shlex
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import outdir
from .config import describe, dump_yaml
from .device import is_main_process, launched_processes, lightning_devices
from .errors import WRITE_DENIED, UserError, causes
from .report import (
    RUN_DIR_ENV,
    Printer,
    Result,
    keep_running_if_stdout_closes,
    make_folder,
    not_writable,
    prepare_output_dir,
    resolve_output_dir,
)


@dataclass
class _Active:
    """The run this process is doing: its folder, its lock and what to clean up if it fails."""

    out: Path
    lock: outdir.FolderLock | None
    created: Path | None  # the topmost folder this run created, removed again if the run fails with nothing kept
    save_steps: Any = None
    started_ns: int = 0  # when the folder was claimed: files written since then are this run's
    #: (the run record that was there before this run wrote its own, or None; when this run wrote it, in ns):
    #: put back if the run fails before writing anything else, so that a refused run changes nothing
    record_before: tuple[bytes | None, int] | None = None


_ACTIVE: _Active | None = None


def start(cfg: Any, recipe: str) -> tuple[Path, Printer]:
    """Check, create and lock the output folder first, so a bad path or a busy folder fails before any work.

    ``resume=true`` must find a run of the same recipe and model there; a folder whose run stopped before its first
    checkpoint may be run again without ``overwrite``. A refused run leaves the folder as it was."""
    global _ACTIVE
    end(failed=True)  # a run of this process that raised (Python API): drop its lock first
    log = Printer()
    _join_launcher(cfg, log)
    out = resolve_output_dir(cfg.output_dir, recipe, cfg.resume)
    if not is_main_process():
        return out, log  # rank 0 checks, creates and locks it; the others must not race it
    keep_running_if_stdout_closes()
    _not_in_package(out)
    out, created = _create(cfg, out)
    lock = outdir.FolderLock(out)
    active = _Active(out, lock, created, getattr(cfg, "save_steps", None), time.time_ns())
    try:
        lock.acquire()
        restart = not (cfg.resume or cfg.overwrite) and outdir.stopped_early(out)
        if cfg.resume:
            outdir.check_resume(out, recipe, cfg)
        prepare_output_dir(out, recipe, cfg.overwrite or restart, cfg.resume)
        outdir.check_checkpoints_writable(out)
        if restart:
            log(f"output_dir: '{out}' holds a run that stopped before its first checkpoint; starting it again")
        record = out / outdir.RECORD
        active.record_before = (record.read_bytes() if record.is_file() else None), time.time_ns()
        outdir.write_record(out, recipe, cfg)
    except BaseException:
        _ACTIVE = active
        end(failed=True)
        raise
    _ACTIVE = active
    return out, log


def _not_in_package(out: Path) -> None:
    """An output folder inside contrastkit's own package folders (its code and bundled data: the source tree of an
    editable install, else site-packages) is refused: a reinstall or upgrade replaces them, and a checkout would
    carry the model as untracked files beside the code."""
    import contrastkit.plugins
    import contrastkit.recipes

    try:
        where = out.expanduser().absolute().resolve()
    except (OSError, RuntimeError):
        return  # _create words a path the file system refuses
    for package in (contrastkit.recipes, contrastkit.plugins):
        for root in map(Path, package.__path__):
            if where.is_relative_to(root.resolve()):
                raise UserError(f"output_dir '{out}' is inside contrastkit's own package folder '{root}', which a "
                                f"reinstall or upgrade replaces; choose a folder outside it, e.g. "
                                f"output_dir=~/contrastkit-runs/{out.name}")


def _create(cfg: Any, out: Path) -> tuple[Path, Path | None]:
    """Create the output folder: (the folder, the topmost folder this run created or None). A path the file system
    refuses (too long, under a file) is the one line, and a folder made before it failed is removed again."""
    try:
        created = _topmost_missing(out)
    except OSError as exc:  # pathlib's exists() raises ENAMETOOLONG rather than saying False
        raise not_writable(out, exc) from None
    try:
        if cfg.output_dir in (None, "") and not cfg.resume and "CONTRASTKIT_RUN_STAMP" not in os.environ:
            try:
                claimed = _claim_new(out)  # a timestamped default: a run started in the same second gets its own
            except OSError as exc:
                raise not_writable(out, exc) from None
            created, out = (created if claimed == out else claimed), claimed
            os.environ[RUN_DIR_ENV] = str(out)  # for the processes a trainer starts from this one (devices=N)
        else:
            make_folder(out)
    except UserError:
        if created is not None and not created.is_symlink():
            shutil.rmtree(created, ignore_errors=True)  # e.g. the parents of a name too long to create
        raise
    return out, created


def _join_launcher(cfg: Any, log: Printer) -> None:
    """A Lightning recipe under torchrun or ``accelerate launch``: Lightning joins the launcher's processes only when
    devices x num_nodes is their number; else each process trains alone on all the data and writes the same folder.
    ``devices=auto`` takes the launcher's count; another count is refused before any work."""
    launched = launched_processes()
    if launched is None or not all(hasattr(cfg, key) for key in ("devices", "num_nodes", "accelerator")):
        return
    per_machine, machines = launched
    if str(cfg.devices).strip() == "auto" and cfg.num_nodes == 1:
        cfg.devices, cfg.num_nodes = per_machine, machines
        log(f"devices: {per_machine} per machine on {machines} machine(s), the processes the launcher started")
        return
    lightning = lightning_devices(cfg.accelerator, cfg.devices)
    if lightning is not None and lightning * cfg.num_nodes != per_machine * machines:
        raise UserError(f"the launcher started {per_machine * machines} processes ({per_machine} per machine), but "
                        f"devices={cfg.devices} num_nodes={cfg.num_nodes} makes Lightning run "
                        f"{lightning * cfg.num_nodes}, so each process would train alone on all the data; give "
                        f"devices={per_machine} num_nodes={machines}, or devices=auto")


def finish(cfg: Any, out: Path, metrics: dict[str, Any], model: Any, main: bool | None = None) -> Result:
    """On the main process: ``config.yaml`` beside the saved model (rerun it with ``--config``), the run record's
    note that the folder holds the finished run, then the Hub push when ``push_to_hub`` is set. ``main`` overrides
    the rank check for trainers that know their own (Lightning). The folder's lock is released at the end."""
    if is_main_process() if main is None else main:
        dump_yaml(cfg, out / "config.yaml")
        _follow_umask(out, _ACTIVE.started_ns if _ACTIVE is not None else 0)
        outdir.mark_finished(out, metrics)  # model and metrics saved: resume=true has nothing left to do here
        if cfg.push_to_hub:
            from . import hub
            from .hub.connection import reason

            try:
                hub.push(out, cfg.push_to_hub, hub.PushConfig())
            except Exception as exc:  # noqa: BLE001 - the trained model is safe: say so, and how to push it alone
                end(failed=False)
                why = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {reason(exc)}"
                raise UserError(f"the model was trained and saved in '{out}', but push_to_hub={cfg.push_to_hub} "
                                f"failed: {why}; once that is fixed, 'contrastkit push {shlex.quote(str(out))} "
                                f"{cfg.push_to_hub}' pushes it, without training again (or give another repo id)") from None
    end(failed=False)
    return Result(output_dir=out, metrics=metrics, config=cfg, model=model)


def end(failed: bool) -> None:
    """Release this process's run lock. After a failure, a folder this run created and left with nothing but its
    own bookkeeping is removed again; in a folder that was there before, the run record is put back as it was
    unless the run wrote something else. A refused or failed run leaves no trace."""
    global _ACTIVE
    active, _ACTIVE = _ACTIVE, None
    if active is None:
        return
    if active.lock is not None:
        active.lock.release()
    if os.environ.get(RUN_DIR_ENV) == str(active.out):  # a later run of this process (a notebook) picks its own
        os.environ.pop(RUN_DIR_ENV)
    if failed and active.created is not None and active.out.is_dir() and _only_bookkeeping(active.out):
        shutil.rmtree(active.created, ignore_errors=True)
    elif failed and active.record_before is not None and active.out.is_dir() and \
            not _wrote_since(active.out, active.record_before[1]):
        record = active.out / outdir.RECORD  # a folder that was there before: its record as it was
        if active.record_before[0] is None:
            record.unlink(missing_ok=True)
        else:
            record.write_bytes(active.record_before[0])


def cleans_up_refusals(recipe_run: Callable) -> Callable:
    """Decorates a recipe's ``run``: however it ends early, ``end(failed=True)`` runs at once, so a run called from
    Python (a notebook's kernel lives on) leaves no folder and no lock behind, as on the CLI. A realistic fault (a
    full disk, a file it may not write) becomes its one-line ``UserError``, and Ctrl-C's ``KeyboardInterrupt``
    carries the command that goes on (the CLI prints it). ``help(run)`` lists the recipe's keywords."""
    @functools.wraps(recipe_run)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return recipe_run(*args, **kwargs)
        except UserError:
            end(failed=True)
            raise
        except BaseException as exc:
            fault = as_user_error(exc) if isinstance(exc, Exception) else None
            if isinstance(exc, KeyboardInterrupt):
                exc.args = (f"contrastkit: {interrupted_message()}",)  # read before end() forgets the folder
            end(failed=True)
            if fault is not None:
                raise fault from None
            raise

    cls = recipe_run.__globals__.get("Config")  # each recipe module defines its Config before its run
    if isinstance(cls, type) and dataclasses.is_dataclass(cls):
        document_run(wrapper, cls)
    return wrapper


def document_run(run: Any, cls: type) -> None:
    """Give a recipe's ``run(cfg=None, **overrides)`` the keywords it takes, for ``help(text.run)``, a notebook's
    Shift-Tab and ``inspect.signature``: every ``cls`` field as a keyword with its type and default, and the help
    lines of ``contrastkit show`` in its docstring. ``**overrides`` alone said nothing of what a run takes."""
    import inspect
    import typing

    hints, fields = typing.get_type_hints(cls), describe(cls)
    params = [inspect.Parameter("cfg", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                annotation=f"{cls.__qualname__} | dict | str | None")]
    params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hints[name])
               for name, _, default, _ in fields]
    run.__signature__ = inspect.Signature(params, return_annotation="Result")
    lines = [f"    {name}={default!r}: {text}" for name, _, default, text in fields]
    run.__doc__ = f"{(run.__doc__ or '').rstrip()}\n\nKeywords (``contrastkit show`` lists them too):\n" + \
        "\n".join(lines)


def _follow_umask(folder: Path, since_ns: int) -> None:
    """safetensors >= 0.8 writes each file as a private temporary file renamed into place, so ``model.safetensors``
    (and each checkpoint's) is 0600 whatever the umask, while every other file of the folder follows it: on a
    shared machine the team can read the config but not the weights (safetensors#782). The .safetensors files
    this run wrote get the mode the umask gives a new file."""
    if os.name != "posix":
        return
    umask = os.umask(0o022)
    os.umask(umask)
    mode = 0o666 & ~umask
    for path in folder.rglob("*.safetensors"):
        try:
            info = path.lstat()
            if stat.S_ISREG(info.st_mode) and info.st_mtime_ns >= since_ns and stat.S_IMODE(info.st_mode) == 0o600:
                path.chmod(mode)
        except OSError:
            continue


def _wrote_since(folder: Path, since_ns: int) -> bool:
    """Whether a file in ``folder`` other than the run's own bookkeeping changed at or after ``since_ns``."""
    for root, _, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            if not (path.parent == folder and name in outdir.OWN_FILES):
                try:
                    if path.stat().st_mtime_ns >= since_ns:
                        return True
                except OSError:
                    continue
    return False


def _only_bookkeeping(folder: Path) -> bool:
    own = outdir.OWN_FILES
    for path in folder.iterdir():
        if path.name == outdir.CHECKPOINTS and path.is_dir() and not any(path.iterdir()):
            continue
        if path.name not in own:
            return False
    return True


def _claim_new(out: Path) -> Path:
    """``out``, else ``out-2``, ``out-3``...: the first folder this process creates itself."""
    out.parent.mkdir(parents=True, exist_ok=True)
    for n in itertools.count(1):
        candidate = out if n == 1 else out.with_name(f"{out.name}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def _topmost_missing(out: Path) -> Path | None:
    """The highest folder of ``out``'s path that does not exist yet (what ``mkdir(parents=True)`` creates)."""
    if out.exists():
        return None
    top = out
    while not top.parent.exists() and top.parent != top:
        top = top.parent
    return top


def interrupted_message() -> str:
    """What Ctrl-C leaves, with the one command that goes on from there (the CLI prints it)."""
    active = _ACTIVE
    if active is None or not active.out.is_dir():
        return "interrupted"
    if outdir.has_checkpoint(active.out):
        return (f"interrupted; the checkpoints in '{active.out}' are kept: run the same command with resume=true "
                f"output_dir={active.out} to continue")
    every = f" (one is saved every save_steps={active.save_steps} steps)" if active.save_steps else ""
    return f"interrupted before the first checkpoint{every}; nothing to resume: run the same command again to start over"


#: errno values of a write that found no room: disk full, quota, file-size limit
NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_NO_SPACE_TEXT = ("no space left", "disk quota exceeded", "file too large", "file write failed", "code: 28,",
                  "code: 122,", "code: 27,")


def as_user_error(exc: BaseException) -> UserError | None:
    """A realistic fault mid-run as one line, or None: out of disk space (or quota, or file-size limit) while
    writing. torch and safetensors report it as their own errors, so the whole cause chain is read."""
    for seen in causes(exc):
        if isinstance(seen, OSError) and seen.errno in NO_SPACE or \
                any(text in str(seen).lower() for text in _NO_SPACE_TEXT):
            where = _ACTIVE.out if _ACTIVE is not None else getattr(seen, "filename", None) or "the output folder"
            reason = seen.strerror if isinstance(seen, OSError) and seen.strerror else str(seen).splitlines()[0][:120]
            again = "with resume=true" if isinstance(where, Path) and outdir.has_checkpoint(where) else "again"
            return UserError(f"no room to write in '{where}' ({reason}); free disk space there or choose "
                             f"output_dir= on a disk with room, then run the same command {again}")
        if denied := _denied_in_output(seen) or _denied_in_cache(seen):
            return denied
    return None


#: the environment variables that place the caches a run writes (built models, datasets' Arrow files), most
#: specific first; the last stands for the default ~/.cache
CACHE_VARIABLES = ("CONTRASTKIT_CACHE", "HF_DATASETS_CACHE", "HF_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME")


def _denied_in_cache(exc: BaseException) -> UserError | None:
    """A cache folder the run may not write (HF_HOME or XDG_CACHE_HOME pointing at a read-only place, an unwritable
    ~/.cache): the one line names the variable that placed it and the fix."""
    if not isinstance(exc, OSError) or exc.errno not in WRITE_DENIED or \
            not isinstance(exc.filename, (str, os.PathLike)):
        return None
    denied = Path(exc.filename).expanduser().absolute()
    for name in CACHE_VARIABLES:
        given = os.environ.get(name)
        root = Path(given or "~/.cache").expanduser().absolute() if given or name == "XDG_CACHE_HOME" else None
        if root is not None and (denied.is_relative_to(root) or root.is_relative_to(denied)):
            source = f"{name}={given}" if given else "the default ~/.cache"
            return UserError(f"cannot write the cache folder '{denied}' ({exc.strerror}; it comes from {source}); "
                             f"set {name}= to a folder you can write to")
    return None


def _denied_in_output(exc: BaseException) -> UserError | None:
    """A file or folder in the run's output folder that it may not write (another user's, a read-only mount), met
    mid-run: the one line names it. Elsewhere (a library's own files) it stays a traceback, a bug to report."""
    if _ACTIVE is None or not isinstance(exc, OSError) or exc.errno not in WRITE_DENIED:
        return None
    name = exc.filename if isinstance(exc.filename, (str, os.PathLike)) else None
    try:
        inside = name is not None and Path(name).resolve().is_relative_to(_ACTIVE.out.resolve())
    except (OSError, ValueError):
        inside = False
    if not inside:
        return None
    again = "with resume=true" if outdir.has_checkpoint(_ACTIVE.out) else "again"
    return UserError(f"cannot write '{name}' in output_dir '{_ACTIVE.out}' ({exc.strerror}); make it writable or "
                     f"remove it, or choose another output_dir, then run the same command {again}")
