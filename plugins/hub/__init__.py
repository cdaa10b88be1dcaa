"""The Hugging Face Hub: push an output folder, load any output back, create a demo Space.

This is the only package that talks to the Hub (through ``huggingface_hub``), one module per concern:
``connection`` (reachability, timeouts, token, repo ids, one-line errors), ``folders`` (what an output holds),
``loading``, ``pushing`` and ``space`` (``contrastkit push-demo``). Every failure is a one-line ``UserError`` that
says what to do; a push is one commit, so it lands completely or not at all.
"""

from .connection import offline_if_unreachable, reachable
from .folders import IGNORE_PATTERNS, files_to_push
from .loading import load
from .pushing import PushConfig, card_for_repo, check_push_target, push
from .space import PushDemoConfig, push_demo, space_files

__all__ = ["IGNORE_PATTERNS", "PushConfig", "PushDemoConfig", "card_for_repo", "check_push_target", "files_to_push", "load",
           "offline_if_unreachable", "push", "push_demo", "reachable", "space_files"]
