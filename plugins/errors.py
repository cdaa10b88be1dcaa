"""The one error type that reaches the user as a one-line message (exit code 2, no traceback)."""

from __future__ import annotations

from collections.abc import Iterable


class UserError(ValueError):
    """Bad input from the user: a file, a column, a config value. The message names it and the fix."""

    exit_code = 2

    def __init__(self, message: str):
        # Keep it one line: the CLI prints it as-is.
        super().__init__(" ".join(str(message).split()))


class UnknownArgument(UserError, TypeError):
    """A key no config field has (``text.run(epoch=2)``), or a positional value a config cannot place: one line for
    the CLI, and a TypeError too, as Python raises for a bad call (``except TypeError`` in a user's code catches it)."""


def did_you_mean(value: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """`` Did you mean 'x'?`` for the closest of ``choices``, or an empty string: every "unknown ..." error uses it."""
    import difflib

    close = difflib.get_close_matches(str(value), list(choices), n=1, cutoff=cutoff)
    return f" Did you mean '{close[0]}'?" if close else ""
