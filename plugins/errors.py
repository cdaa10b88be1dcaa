"""The one error type that reaches the user as a one-line message (exit code 2, no traceback)."""

from __future__ import annotations


class UserError(ValueError):
    """Bad input from the user: a file, a column, a config value. The message names it and the fix."""

    exit_code = 2

    def __init__(self, message: str):
        # Keep it one line: the CLI prints it as-is.
        super().__init__(" ".join(str(message).split()))
