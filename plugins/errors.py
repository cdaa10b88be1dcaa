"""The one error type that reaches the user as a one-line message (exit code 2, no traceback)."""

from __future__ import annotations

import errno
from collections.abc import Iterable, Iterator


class UserError(ValueError):
    """Bad input from the user: a file, a column, a config value. The message names it and the fix."""

    exit_code = 2

    def __init__(self, message: str):
        # Keep it one line: the CLI prints it as-is.
        super().__init__(" ".join(str(message).split()))

    def _render_traceback_(self) -> list[str]:
        """What IPython and Jupyter show for it: the one line, as the CLI prints it, not the library's frames down to
        the check that refused (``%debug`` still opens them)."""
        return [f"{type(self).__name__}: {self}"]


class UnknownArgument(UserError, TypeError):
    """A key no config field has (``text.run(epoch=2)``), or a positional value a config cannot place: one line for
    the CLI, and a TypeError too, as Python raises for a bad call (``except TypeError`` in a user's code catches it)."""


def did_you_mean(value: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """`` Did you mean 'x'?`` for the closest of ``choices``, or an empty string: every "unknown ..." error uses it."""
    import difflib

    close = difflib.get_close_matches(str(value), list(choices), n=1, cutoff=cutoff)
    return f" Did you mean '{close[0]}'?" if close else ""


#: the names transformers' TrainingArguments and sentence-transformers give some fields, -> ours (the first that
#: a config has): spelling alone pointed num_train_epochs at max_train_tokens and hub_model_id at guide_model
KNOWN_ELSEWHERE = {
    "lr": ("learning_rate",), "num_train_epochs": ("epochs",), "per_device_train_batch_size": ("batch_size",),
    "train_batch_size": ("batch_size",), "model_name_or_path": ("model", "backbone"), "model_name": ("model", "backbone"),
    "train_dataset": ("data",), "eval_dataset": ("eval_data",), "hub_model_id": ("push_to_hub",),
    "fp16": ("precision",), "bf16": ("precision",), "resume_from_checkpoint": ("resume",),
    "overwrite_output_dir": ("overwrite",), "dataloader_num_workers": ("dataloader_workers", "num_workers"),
    "max_seq_len": ("max_seq_length",), "random_seed": ("seed",),
}


def key_hint(key: str, names: list[str]) -> str:
    """The did-you-mean for an unknown config key: for a name the user knows from transformers, ours for it (or no
    guess); else the closest by spelling, above 0.5 (active_dims is not num_negatives)."""
    if key in KNOWN_ELSEWHERE:
        return next((f" Did you mean '{name}'?" for name in KNOWN_ELSEWHERE[key] if name in names), "")
    return did_you_mean(key, names, cutoff=0.55)


#: errno values of a write the system refused: no permission, not permitted, a read-only file system
WRITE_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions behind it: libraries (torch, safetensors, datasets) wrap an OSError in their own."""
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__
