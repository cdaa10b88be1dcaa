"""The two ends every recipe shares: ``start`` before any work, ``finish`` after the model is saved.

A recipe reads top to bottom as config -> data -> model -> trainer -> save -> ``finish``; what is the same
for every recipe (the output folder's checks, config.yaml, the Hub push, the Result) lives here once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import dump_yaml
from .device import is_main_process
from .report import Printer, Result, prepare_output_dir


def start(cfg: Any, recipe: str) -> tuple[Path, Printer]:
    """Check and create the output folder first, so a bad path fails before any data or model loads."""
    return prepare_output_dir(cfg.output_dir, recipe, cfg.overwrite, cfg.resume), Printer()


def finish(cfg: Any, out: Path, metrics: dict[str, Any], model: Any, main: bool | None = None) -> Result:
    """On the main process: ``config.yaml`` beside the saved model (rerun it with ``--config``), then the Hub push
    when ``push_to_hub`` is set. ``main`` overrides the rank check for trainers that know their own (Lightning)."""
    if is_main_process() if main is None else main:
        dump_yaml(cfg, out / "config.yaml")
        if cfg.push_to_hub:
            from . import hub

            hub.push(out, cfg.push_to_hub, hub.PushConfig())
    return Result(output_dir=out, metrics=metrics, config=cfg, model=model)
