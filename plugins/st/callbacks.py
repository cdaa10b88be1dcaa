"""Trainer callbacks that work in anyone's trainer, with or without a recipe.

``BeforeAfterCallback`` is a transformers ``TrainerCallback``: it evaluates before and after
training with any sentence-transformers evaluator and writes ``metrics.json`` and ``loss.png``.
``NoPickledArgs`` keeps the Trainer's ``training_args.bin`` pickle out of the checkpoints.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

from .. import report


class BeforeAfterCallback(TrainerCallback):
    """Evaluate at train begin and end; write ``metrics.json`` and the loss curve (rank 0 only).

    Example::

        trainer = SentenceTransformerTrainer(model=model, train_dataset=ds, loss=loss,
                                             callbacks=[BeforeAfterCallback(evaluator, "out")])
    """

    def __init__(self, evaluator: Any = None, output_dir: str | Path | None = None,
                 extra: dict[str, Any] | None = None, headline: Any = None, verbose: bool = True):
        self.evaluator = evaluator
        self.output_dir = Path(output_dir) if output_dir else None
        self.extra = dict(extra or {})
        self.headline = headline  # optional fn(metrics) -> the few metrics to print
        self.verbose = verbose
        self.before: dict[str, float] = {}
        self.after: dict[str, float] = {}
        self.metrics: dict[str, Any] = {}
        self._start = 0.0

    def _dir(self, args: Any) -> Path:
        return self.output_dir or Path(args.output_dir)

    def _evaluate(self, model: Any, epoch: float = 0, steps: int = 0) -> dict[str, float]:
        """The evaluator's numbers. ``epoch`` and ``steps`` go to the evaluator, which files them in the model
        card's training logs: with its defaults (-1, -1) "before" and "after" would share one row label there."""
        if self.evaluator is None or model is None:
            return {}
        scores = self.evaluator(model, epoch=epoch, steps=steps)
        return {k: float(v) for k, v in scores.items() if isinstance(v, (int, float))}

    def evaluate_before(self, model: Any) -> None:
        """Evaluate the base model now. A resumed Trainer loads the checkpoint's weights before ``on_train_begin``,
        so ``training.train`` calls this first: "before" is always the base model, never the checkpoint."""
        self.before = self._evaluate(model)
        self._before_done = True

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        self._start = time.perf_counter()
        if not getattr(self, "_before_done", False):
            self.before = self._evaluate(model)
        self._before_done = False  # a second train() evaluates again

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step >= state.max_steps:  # the last steps' loss too, when they end between logging steps
            control.should_log = True

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if state.global_step == 0:
            return  # nothing trained, so there is no "after" (the recipes then stop with an error)
        self.after = self._evaluate(model, epoch=state.epoch or 0, steps=state.global_step)
        losses = [h for h in state.log_history if "loss" in h]
        self.metrics = {
            **self.extra,
            "before": self.before,
            "after": self.after,
            "before_after": report.before_after(self.before, self.after),
            "train": {
                "global_step": state.global_step,
                "epochs": state.epoch,
                "learning_rate": args.learning_rate,  # the peak rate, which a recipe may choose from the data
                "final_loss": losses[-1]["loss"] if losses else None,
                "seconds_this_session": round(time.perf_counter() - self._start, 2),
            },
            "loss_history": [{"step": h["step"], "loss": h["loss"]} for h in losses],
        }
        if not state.is_world_process_zero:
            return
        out = self._dir(args)
        out.mkdir(parents=True, exist_ok=True)
        report.write_metrics(out, self.metrics)
        report.plot_curve(self.metrics["loss_history"], out / "loss.png")
        pick = self.headline or (lambda m: m)
        headline = report.before_after(pick(self.before), pick(self.after))
        report.plot_before_after(headline, out / "before_after.png")
        if self.verbose and self.evaluator is not None:
            _write(report.format_table(headline))


def _write(text: str) -> None:
    """Print above the Trainer's progress bar, which closes only after this callback's ``on_train_end``: tqdm clears
    the bar, prints and draws it again (a plain print would start on the bar's line)."""
    import sys

    from tqdm.auto import tqdm

    tqdm.write(text)
    sys.stdout.flush()


class ReadableProgress(ProgressCallback):
    """transformers' progress bar (``bars``) or none, and each log as one line of words on stdout
    (``report.step_line``): one per logging step and the summary at the end. Without bars the lines are a log file's
    progress; with them they print above the bar. ``training.make_trainer`` puts it in place of the Trainer's
    ``ProgressCallback`` or ``PrinterCallback``."""

    def __init__(self, bars: bool = True):
        super().__init__()
        self.bars = bars
        self._start = 0.0
        self._first: tuple[float, int] | None = None  # (time, step) after this session's first step

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._start, self._first = time.perf_counter(), None
        self.current_step = state.global_step  # a resumed run's bar starts where the checkpoint stopped
        if self.bars and state.is_world_process_zero:
            from tqdm.auto import tqdm

            self.training_bar = tqdm(total=state.max_steps, initial=state.global_step, dynamic_ncols=True)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._first is None:  # the time left is timed from here: the first step also warms up the loader
            self._first = time.perf_counter(), state.global_step
        if self.bars:
            super().on_step_end(args, state, control, **kwargs)

    def _left(self, step: int, max_steps: int) -> float | None:
        """Seconds still to go at this session's pace since its first step; None before two steps."""
        if self._first is None or step <= self._first[1]:
            return None
        when, first = self._first
        return (time.perf_counter() - when) / (step - first) * (max_steps - step)

    def on_prediction_step(self, args: Any, state: Any, control: Any, eval_dataloader: Any = None,
                           **kwargs: Any) -> None:
        if self.bars:
            super().on_prediction_step(args, state, control, eval_dataloader=eval_dataloader, **kwargs)

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        line = report.step_line(logs, state.global_step, state.max_steps, time.perf_counter() - self._start,
                        self._left(state.global_step, state.max_steps))
        _write(line) if self.training_bar is not None else print(line, flush=True)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.training_bar is not None:
            self.training_bar.close()
            self.training_bar = None


def readable_progress(trainer: Any) -> None:
    """Put ``callbacks.ReadableProgress`` in place of the Trainer's progress bar (or of its ``PrinterCallback``):
    bars only in a terminal (``report.progress_bars``), and each log as a line of words, not a dict of quoted
    numbers. A notebook keeps its own widget."""
    from transformers.trainer_callback import PrinterCallback

    handler = trainer.callback_handler
    if not any(type(c) in (ProgressCallback, PrinterCallback) for c in handler.callbacks):
        return  # a notebook's NotebookProgressCallback, or one the caller chose
    for default in (ProgressCallback, PrinterCallback):
        trainer.remove_callback(default)
    trainer.add_callback(ReadableProgress(bars=report.progress_bars()))


@contextlib.contextmanager
def widget_bar_off() -> Any:
    """In a log file, sentence-transformers' "Computing widget examples" bar off while a trainer is made (the one
    place that draws it), and back after. The bar has no switch of its own, and it clears itself with a carriage
    return and no newline, so with ``2>&1`` the first ``step 1/N`` line would share its line."""
    import functools

    from sentence_transformers.base import model_card

    bar = getattr(model_card, "tqdm", None)
    if bar is None or report.progress_bars():
        yield
        return
    model_card.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        model_card.tqdm = bar


#: library warnings a run's user cannot act on, hidden by message while the run trains and evaluates: torch's note,
#: on the sparse tensors sentence-transformers builds, that it skips its own invariant checks (a developer's switch;
#: torch raises it once per process, so a process that ran a sparse run does not see it later either)
LIBRARY_WARNINGS = (r"Sparse invariant checks are implicitly disabled",)


@contextlib.contextmanager
def quiet_run() -> Any:
    """``LIBRARY_WARNINGS`` hidden and, in a log file, transformers' bars off (``bars_off_in_logs``) inside the
    block; the user's own warning filters and bars are as they were after it."""
    import warnings

    with warnings.catch_warnings(), bars_off_in_logs():
        for message in LIBRARY_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=UserWarning)
        yield


@contextlib.contextmanager
def bars_off_in_logs() -> Any:
    """transformers' own bars ("Writing model shards" at each checkpoint and at the end) off inside the block when
    there is no terminal to redraw them (``report.progress_bars``), and back as they were after it."""
    from transformers.utils import logging as hf_logging

    if report.progress_bars() or not hf_logging.is_progress_bar_enabled():
        yield
        return
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.enable_progress_bar()


def remove_args_pickle(folder: str | Path) -> None:
    """Delete ``training_args.bin`` from ``folder``: the Trainer pickles its arguments there, absolute paths
    included. Nothing loads it (models load from safetensors; resuming reads trainer_state.json)."""
    (Path(folder) / "training_args.bin").unlink(missing_ok=True)


class NoPickledArgs(TrainerCallback):
    """Remove the ``training_args.bin`` pickle the Trainer writes into every checkpoint (rank 0 only)."""

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            remove_args_pickle(Path(args.output_dir) / f"checkpoint-{state.global_step}")


def card_section(trainer: Any) -> str | None:
    """The model card's "Before and after training" section: what the run trained (rows, steps, batch, rate,
    precision, loss) and its held-out before/after table, from the trainer and its ``BeforeAfterCallback``; None without one.

    sentence-transformers' own card shows only the "after" numbers, names the held-out set just "heldout", and,
    for a reranker, puts the change against the retriever's order in brackets with no word of what it is."""
    callback = next((c for c in trainer.callback_handler.callbacks if isinstance(c, BeforeAfterCallback)), None)
    if callback is None or not callback.metrics:
        return None
    metrics, args, state = callback.metrics, trainer.args, trainer.state
    pick = callback.headline or (lambda m: m)
    rows = report.before_after(pick(callback.before), pick(callback.after))
    precision = "bf16 autocast (weights float32)" if args.bf16 else "fp16 mixed precision" if args.fp16 else "fp32"
    from ..device import world_size

    batch = args.per_device_train_batch_size * args.gradient_accumulation_steps * max(1, world_size())
    loss = metrics.get("loss") or type(getattr(trainer, "loss", None)).__name__
    run = (f"Trained with contrastkit on {metrics.get('train_rows', '?')} "
           f"training rows: {state.global_step} steps ({state.epoch or 0:.2f} epochs) of batch size {batch}, peak "
           f"learning rate {args.learning_rate:g}, {precision}, seed {args.seed}; loss {loss}.")
    lines = ["## Before and after training", "", run, ""]
    if not rows:
        return "\n".join([*lines, "No held-out evaluation ran, so this card has no before/after comparison.", ""])
    # "held-out", never "never trained on": an eval_data= that repeats training rows is warned about, not refused
    base = "the distilled static table" if metrics.get("static") else "the base model"  # static: false, or its speed
    lines.append(f"Held-out evaluation on {metrics.get('eval_rows', '?')} rows: \"before\" is {base}, "
                 f"\"after\" is this model (all metrics in `metrics.json`).")
    if any("_base_" in key for key in rows):
        lines.append(_retriever_note(metrics))
    return "\n".join([*lines, "", report.markdown_table(rows, "before training", "after training"), ""])


def _retriever_note(metrics: dict[str, Any]) -> str:
    """What a reranker's held-out numbers measure; the retriever by its Hub id, never a local path."""
    retriever = str(metrics.get("retriever") or "")
    named = f"`{retriever}`" if retriever and not Path(retriever).expanduser().is_absolute() else "a local model folder"
    return (f"Each held-out query's top {metrics.get('top_k', '?')} candidates from the retriever ({named}) are "
            f"reranked; the `base_` rows score the retriever's own order, which training does not change (the "
            f"bracketed numbers in the Evaluation section above are the change against that order).")
