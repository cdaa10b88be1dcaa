"""Resuming a text-family run: the newest complete checkpoint, and a checkpoint that already holds the run's whole
length (a run stopped after its last save, before its model was saved), which is evaluated and saved without a
step more, or refused when the folder already holds the model saved from it."""

from __future__ import annotations

import os
from typing import Any


def holds_all_steps(trainer: Any, checkpoint: str) -> bool:
    """Whether the checkpoint already trained the run's whole length. Refused (a ``UserError``) when it trained
    more than that, or when the folder already holds the model and metrics saved from it: the Trainer would take
    one more step and rewrite the finished run's metrics, card and checkpoints (the model stays, at learning
    rate 0)."""
    import json
    import math
    from pathlib import Path

    from ..outdir import reached_length

    steps = json.loads((Path(checkpoint) / "trainer_state.json").read_text())["global_step"]
    args, out = trainer.args, Path(trainer.args.output_dir).parent
    if args.max_steps > 0:
        return reached_length(out, steps, steps, args.max_steps, f"{steps} steps", f"max_steps={args.max_steps}",
                              f"max_steps= above {steps}")
    per_epoch = max(1, math.ceil(len(trainer.get_train_dataloader()) / args.gradient_accumulation_steps))
    done = steps / per_epoch
    return reached_length(out, steps, steps, math.ceil(args.num_train_epochs * per_epoch),
                          f"{steps} steps ({done:g} epochs of {per_epoch} steps)", f"epochs={args.num_train_epochs:g}",
                          f"epochs= above {done:g}")


def evaluate_checkpoint(trainer: Any, checkpoint: str) -> Any:
    """Finish a run from a checkpoint that holds all its steps, as an uninterrupted run finishes: its weights and
    state (step count, epochs, loss history) are loaded, the model card gets the training logs, and the train
    begin and end of the caller's callbacks and of the card's run, so "after", metrics.json and the plots come
    out as they would have; the caller saves the model. The library's other callbacks (progress bar, optimizer,
    loggers) need steps, and none is taken. Hugging Face's Trainer would take one step more instead."""
    from transformers import TrainerState
    from transformers.trainer_utils import TrainOutput

    from ..report import Printer

    state = TrainerState.load_from_json(os.path.join(checkpoint, "trainer_state.json"))
    Printer()(f"resume: the checkpoint already holds all {state.global_step} steps; evaluating and saving it")
    trainer._load_from_checkpoint(checkpoint)
    state.is_local_process_zero = trainer.is_local_process_zero()
    state.is_world_process_zero = trainer.is_world_process_zero()
    trainer.state = state
    logs = [h for h in state.log_history if "loss" in h]
    card = getattr(trainer.model, "model_card_data", None)
    if card is not None and hasattr(card, "training_logs"):
        card.training_logs += [{"Epoch": h.get("epoch"), "Step": h["step"], "Training Loss": h["loss"]} for h in logs]
    handler, kept = trainer.callback_handler, trainer.callback_handler.callbacks
    handler.callbacks = [c for c in kept if "ModelCard" in type(c).__name__ or
                         not type(c).__module__.startswith(("transformers.", "sentence_transformers."))]
    try:
        trainer.control = handler.on_train_begin(trainer.args, state, trainer.control)
        # as training leaves the model (and as the Trainer's own evaluation prepares one): its forward in the
        # run's autocast, so "after" is measured as an uninterrupted run measures it
        trainer.accelerator.prepare_model(trainer.model, evaluation_mode=True)
        trainer.control = handler.on_train_end(trainer.args, state, trainer.control)
    finally:
        handler.callbacks = kept
    return TrainOutput(state.global_step, logs[-1]["loss"] if logs else 0.0, {})


def newest_checkpoint(trainer: Any) -> str | None:
    """The newest complete checkpoint (``outdir.newest_checkpoint``) of the trainer's run."""
    from pathlib import Path

    from ..outdir import newest_checkpoint as newest

    found = newest(Path(trainer.args.output_dir))
    return str(found) if found else None
