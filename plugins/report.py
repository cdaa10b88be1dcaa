"""Output folders, ``metrics.json``, plots, the before/after table and the result object.

Shared by every recipe, so each output folder has the same layout:
``config.yaml``, ``metrics.json``, ``loss.png`` (and recipe-specific plots), ``checkpoints/``,
plus the model files and its ``README.md`` card.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from .device import is_main_process, world_size
from .errors import UserError

OUTPUTS_ROOT = Path("outputs")
CHECKPOINTS = "checkpoints"


@dataclass
class Result:
    """What every recipe's ``run()`` returns."""

    output_dir: Path
    metrics: dict[str, Any]
    config: Any = None
    model: Any = field(default=None, repr=False)

    def __getitem__(self, key: str) -> Any:  # result["output_dir"] reads like the JSON users see
        return getattr(self, key)

    def __repr__(self) -> str:
        """What a notebook shows for ``result``: the folder, the first rows of the before/after table, the model's
        class and the settings given (the whole metrics dict ran to thousands of characters)."""
        rows = (self.metrics or {}).get("before_after") or {}
        table = ", ".join(f"{k}: {r['before']:.4f} -> {r['after']:.4f}" for k, r in list(rows.items())[:3])
        more = f", ... ({len(rows)} metrics)" if len(rows) > 3 else ""
        return (f"Result(output_dir='{self.output_dir}', before_after={{{table}{more}}}, "
                f"model={type(self.model).__name__ if self.model is not None else None}, config={self.config!r})")


#: The folder rank 0 claimed for a run without output_dir=; processes that the trainer starts from it (Lightning's
#: devices=N) inherit it and write there too.
RUN_DIR_ENV = "CONTRASTKIT_RUN_DIR"


def default_output_dir(recipe: str) -> Path:
    """``outputs/<recipe>-<timestamp>``: unique per run and sortable, so 'newest' is well defined."""
    stamp = os.environ.get("CONTRASTKIT_RUN_STAMP") or time.strftime("%Y%m%d-%H%M%S")
    return OUTPUTS_ROOT / f"{recipe}-{stamp}"


def latest_output_dir(recipe: str | None = None) -> Path | None:
    """The newest run folder under ``outputs/`` (optionally of one recipe), or None."""
    if not OUTPUTS_ROOT.is_dir():
        return None
    prefix = f"{recipe}-" if recipe else ""
    from .outdir import RECORD  # a run stopped before it finished has its record but no config.yaml yet

    runs = [p for p in OUTPUTS_ROOT.iterdir() if p.is_dir() and p.name.startswith(prefix)
            and ((p / "config.yaml").exists() or recipe is not None and (p / RECORD).exists())]
    return max(runs, key=lambda p: p.stat().st_mtime) if runs else None


def resolve_output_dir(output_dir: str | Path | None, recipe: str, resume: bool) -> Path:
    """The folder a run writes to: ``output_dir``, else the newest run to resume, else a new timestamped one."""
    if output_dir in (None, ""):
        if resume:
            found = latest_output_dir(recipe)
            if found is None:
                raise UserError(f"resume=true found no earlier '{recipe}' run under {OUTPUTS_ROOT}/; "
                                f"pass output_dir= of the run to resume")
            return found
        if world_size() > 1 and os.environ.get(RUN_DIR_ENV):
            return Path(os.environ[RUN_DIR_ENV])
        if world_size() > 1 and "CONTRASTKIT_RUN_STAMP" not in os.environ:
            raise UserError("distributed runs need an explicit output_dir= so every rank writes to the same folder")
        output_dir = default_output_dir(recipe)
    return Path(output_dir).expanduser()


def prepare_output_dir(output_dir: str | Path | None, recipe: str, overwrite: bool, resume: bool) -> Path:
    """Pick and check the output folder; never silently write into someone's existing work."""
    from .outdir import has_checkpoint, is_empty

    out = resolve_output_dir(output_dir, recipe, resume)
    if not is_main_process():
        return out  # rank 0 checks and creates it; the others must not race it over emptiness
    _not_a_file(out)
    if out.is_dir() and not is_empty(out) and not (overwrite or resume):
        raise UserError(f"output_dir '{out}' already exists and is not empty; pass overwrite=true to write into it, "
                        f"resume=true to continue it, or choose another output_dir")
    if resume and not has_checkpoint(out):
        raise UserError(f"resume=true but '{out}' holds no complete checkpoint yet; run the same command without "
                        f"resume=true to start it")
    make_folder(out)
    return out


def _not_a_file(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"output_dir '{out}' is a file; choose a folder path")


def not_writable(out: Path, exc: OSError) -> UserError:
    """The one line for an output folder that cannot be created or written to. A path too long for the file system
    says so (and is shortened in the line, which would else be thousands of characters)."""
    if exc.errno == errno.ENAMETOOLONG:
        shown = str(out) if len(str(out)) <= 120 else f"{str(out)[:60]}...{str(out)[-40:]}"
        return UserError(f"output_dir '{shown}' is too long for the file system ({exc.strerror}: {len(str(out))} "
                         f"characters; each folder name may have at most 255 bytes); choose a shorter path")
    return UserError(f"output_dir '{out}' is not writable ({exc.strerror}); choose a folder you can write to")


def make_folder(out: Path) -> None:
    """Create ``out`` (and its parents) and check that files can be written there, or raise the one line."""
    from .outdir import WRITE_PROBE

    if out.is_symlink() and not out.exists():  # mkdir would say "File exists", which misleads
        raise UserError(f"output_dir '{out}' is a symbolic link to '{os.readlink(out)}', which does not exist; "
                        f"create that folder, or choose another output_dir")
    _not_a_file(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / WRITE_PROBE
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise not_writable(out, exc) from None


def read_metrics(output_dir: str | Path) -> dict[str, Any] | None:
    """The ``metrics.json`` a run wrote into ``output_dir``, or None (no such file, or not valid JSON)."""
    path = Path(output_dir).expanduser() / "metrics.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _clean(value.item())
    return value


def write_metrics(output_dir: str | Path, metrics: dict[str, Any]) -> Path:
    """Write ``metrics.json`` (non-finite numbers become null, so it stays valid JSON; paths under the home folder
    as ``~/...``, as in config.yaml: a push uploads it, and it should name no user)."""
    from .config import home_as_tilde

    path = Path(output_dir) / "metrics.json"
    path.write_text(json.dumps(home_as_tilde(_clean(metrics)), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def before_after(before: dict[str, float], after: dict[str, float]) -> dict[str, dict[str, float]]:
    """``{metric: {before, after, delta}}`` for the metrics both evaluations share."""
    rows = {}
    for key, value in after.items():
        old = before.get(key)
        if isinstance(value, (int, float)) and isinstance(old, (int, float)):
            rows[key] = {"before": float(old), "after": float(value), "delta": float(value) - float(old)}
    return rows


def format_table(rows: dict[str, dict[str, float]], title: str = "evaluation on the held-out split") -> str:
    """The printed before/after table."""
    if not rows:
        return f"{title}: no metrics (no held-out data)"
    width = max(len(k) for k in rows)
    lines = [title, f"  {'metric':<{width}}  {'before':>8}  {'after':>8}  {'change':>8}"]
    for key, r in rows.items():
        lines.append(f"  {key:<{width}}  {r['before']:>8.4f}  {r['after']:>8.4f}  {r['delta']:>+8.4f}")
    return "\n".join(lines)


def markdown_table(rows: dict[str, dict[str, float]], before: str = "before", after: str = "after") -> str:
    """The before/after table in Markdown, for model cards: the printed table's numbers, four decimals."""
    lines = [f"| metric | {before} | {after} | change |", "|---|---|---|---|"]
    lines += [f"| {k} | {r['before']:.4f} | {r['after']:.4f} | {r['delta']:+.4f} |" for k, r in rows.items()]
    return "\n".join(lines)


def _figure(figsize: tuple[float, float]) -> Any:
    """A figure drawn without pyplot: pyplot's ``matplotlib.use("Agg")`` switched a notebook's backend, and its
    plots stopped showing after a run; a plain ``Figure`` saves to a file under any backend."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=100)


def plot_curve(history: list[dict[str, Any]], path: str | Path, key: str = "loss",
               x_key: str = "step", title: str = "training loss") -> Path | None:
    """Plot one logged value against the step; returns None when nothing was logged."""
    points = [(h[x_key], h[key]) for h in history if key in h and x_key in h and h[key] is not None]
    if not points:
        return None
    fig = _figure(figsize=(6, 3.5))
    ax = fig.subplots()
    ax.plot([p[0] for p in points], [p[1] for p in points], marker="o" if len(points) < 30 else None)
    ax.set_xlabel(x_key)
    ax.set_ylabel(key)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


@cache
def _glyphs(font_path: str) -> frozenset[int]:
    from matplotlib.font_manager import get_font

    return frozenset(get_font(font_path).get_charmap())


def label_font(texts: Iterable[str]) -> Any:
    """Font properties that draw every character of ``texts``: matplotlib's default font, else an installed font that
    has them all (e.g. a CJK font); None when no installed font has them all. A new object each call: callers set
    its size."""
    from matplotlib.font_manager import FontProperties

    found = _font_with(frozenset(ord(c) for text in texts for c in str(text) if not c.isspace()))
    return None if found is None else FontProperties() if found == "" else FontProperties(fname=found)


@cache
def _font_with(needed: frozenset[int]) -> str | None:
    """"" when the default font has ``needed``, else the path of the first installed font that has them, or None.
    Cached: searching every font takes a while, and the demo draws a heatmap per request."""
    from matplotlib.font_manager import FontProperties, findfont, fontManager

    if needed <= _glyphs(findfont(FontProperties())):
        return ""
    upright = sorted(fontManager.ttflist, key=lambda f: (f.style != "normal", f.weight not in (400, "normal")))
    # matplotlib's own Last Resort font "has" every glyph, as a box
    return next((f.fname for f in upright if not f.name.startswith("Last Resort") and needed <= _glyphs(f.fname)),
                None)


def plot_before_after(rows: dict[str, dict[str, float]], path: str | Path,
                      title: str = "held-out evaluation: before and after training") -> Path | None:
    """Grouped bars of each metric before and after training; None when there is nothing to compare."""
    if not rows:
        return None
    names = list(rows)
    x = range(len(names))
    fig = _figure(figsize=(1.6 + 1.5 * len(names), 3.5))
    ax = fig.subplots()
    ax.bar([i - 0.2 for i in x], [rows[n]["before"] for n in names], 0.4, label="before", color="#9aa5b1")
    ax.bar([i + 0.2 for i in x], [rows[n]["after"] for n in names], 0.4, label="after", color="#e8590c")
    for i, n in enumerate(names):
        ax.annotate(f"{rows[n]['delta']:+.3f}", (i + 0.2, rows[n]["after"]), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(x), [n.removeprefix("heldout_") for n in names], rotation=15, fontsize=8)
    ax.set_ylim(0, max(1.0, max(max(r["before"], r["after"]) for r in rows.values()) * 1.1))
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


class _ClosedPipeSafe:
    """``sys.stdout`` for a run whose stdout is a pipe: when the reader leaves (``contrastkit run ... | head -1``),
    the log goes to /dev/null and the run trains on, with one line on stderr. Without it the next print (ours, or
    the Trainer's loss lines) raised BrokenPipeError: the run stopped, removed its folder and exited 0."""

    def __init__(self, stream: Any):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._reader_left()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._reader_left()

    def _reader_left(self) -> None:
        os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())
        print("contrastkit: stdout was closed by its reader; the run goes on, printing nothing more there",
              file=sys.stderr, flush=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def keep_running_if_stdout_closes() -> None:
    """Wrap ``sys.stdout`` in ``_ClosedPipeSafe`` when it is a pipe (a terminal or a file never closes early)."""
    try:
        piped = stat.S_ISFIFO(os.fstat(sys.stdout.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):  # no real file behind it (pytest's capture, a notebook)
        return
    if piped and not isinstance(sys.stdout, _ClosedPipeSafe):
        sys.stdout = _ClosedPipeSafe(sys.stdout)


def _clock(seconds: float) -> str:
    """``h:mm:ss``, as tqdm and Lightning show times."""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def step_line(logs: dict[str, Any], step: int, max_steps: int, elapsed: float, left: float | None = None) -> str:
    """One readable line for a training log (the Trainer's ``logs``, or the image recipe's): ``step 20/100  loss
    2.016  grad_norm 6.2  lr 5e-05  epoch 0.40  elapsed 0:00:12  left 0:00:48``; the end-of-training summary as
    ``trained ...``, in place of the Trainer's dict of quoted numbers (``{'loss': '2.016', ...}``). ``left``: the
    seconds still to go, when known."""
    def num(value: Any, digits: int = 4) -> str:
        return f"{value:.{digits}g}" if isinstance(value, float) else str(value)

    logs = {k: v for k, v in logs.items() if k != "total_flos"}
    if "train_runtime" in logs:
        rate = logs.get("train_steps_per_second")
        return (f"trained {step} steps in {_clock(logs['train_runtime'])}"
                + (f" ({num(rate, 3)} steps/s)" if rate else "")
                + (f", mean loss {num(logs['train_loss'])}" if "train_loss" in logs else ""))
    shown = {"learning_rate": lambda v: f"lr {num(v, 3)}",
             "epoch": lambda v: f"epoch {v:.2f}" if isinstance(v, float) else f"epoch {v}"}
    parts = [f"step {step}/{max_steps}"] + [shown.get(k, lambda v, k=k: f"{k} {num(v)}")(v) for k, v in logs.items()]
    parts.append(f"elapsed {_clock(elapsed)}")
    if left is not None and step < max_steps:
        parts.append(f"left {_clock(left)}")
    return "  ".join(parts)


def progress_bars() -> bool:
    """Whether to draw progress bars: only where stderr, their stream, is a terminal that redraws a line (not
    ``TERM=dumb``), or in a Jupyter notebook (widgets). In a log file (``> run.log 2>&1``, nohup, Slurm, CI) a
    bar is every redraw kept, carriage returns and all, or (Lightning's) one line at the end: runs print lines."""
    try:
        tty = sys.stderr is not None and sys.stderr.isatty()
    except (ValueError, AttributeError):  # closed, or replaced by an object without isatty
        tty = False
    if tty and os.environ.get("TERM", "") != "dumb":
        return True
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return type(shell).__name__ == "ZMQInteractiveShell"  # a Jupyter kernel: no terminal, yet it draws widgets


class Printer:
    """``print`` on rank 0 only, so distributed runs do not repeat every line."""

    def __call__(self, *args: Any) -> None:
        if is_main_process():
            print(*args, flush=True)
