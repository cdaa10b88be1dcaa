"""What an image run prints into a log file (stdout and stderr not a terminal: ``> run.log 2>&1``, nohup, Slurm,
CI): plain progress lines instead of a bar drawn once at the end, and none of Lightning's lines that a run cannot
act on, hidden only while the run's Lightning code runs."""

from __future__ import annotations

import contextlib
import logging
import warnings

from tests.conftest import run_logged


def test_a_log_file_gets_progress_lines_and_no_bar_or_chatter(tmp_path):
    done, printed, warned = run_logged(tmp_path, "run", "image", "backbone=tiny-cnn", "image_size=16", "max_steps=3",
                                       "batch_size=16", "num_workers=0", f"output_dir={tmp_path / 'run'}")
    assert done.returncode == 0, warned[-2000:]
    steps = [line for line in printed.splitlines() if line.startswith("step ")]
    assert [line.split("  ")[0] for line in steps] == ["step 1/3", "step 2/3", "step 3/3"], printed
    assert all(" loss " in line and " lr " in line and " epoch 0." in line for line in steps), steps
    everything = printed + warned
    assert "Epoch 0/" not in everything and "\r" not in everything  # Lightning's bar, drawn once at the end
    assert "Tip:" not in everything and "TPU available" not in everything and "LeafSpec" not in everything
    assert "`Trainer.fit` stopped" not in everything  # the max_steps=3 it was given
    assert "GPU available" in everything  # kept: it says whether a GPU ran


def test_quiet_lightning_hides_by_message_inside_the_block_only(caplog):
    from contrastkit.plugins.vision.training import quiet_lightning

    logger = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    tip = "\N{ELECTRIC LIGHT BULB} Tip: For seamless cloud logging, try installing litlogger"

    def emit(quiet: bool) -> list[str]:
        caplog.clear()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # the user's own filters: show every warning
            with quiet_lightning() if quiet else contextlib.nullcontext():
                logger.info(tip)
                logger.info("TPU available: False, using: 0 TPU cores")
                logger.info("GPU available: False, used: False")
                warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning, stacklevel=1)
                warnings.warn("some other FutureWarning", FutureWarning, stacklevel=1)
        return [r.getMessage() for r in caplog.records] + [str(w.message) for w in caught]

    with caplog.at_level(logging.INFO, logger=logger.name):
        inside = emit(quiet=True)
        after = emit(quiet=False)
    assert inside == ["GPU available: False, used: False", "some other FutureWarning"]
    assert len(after) == 5 and not logger.filters  # outside the block the user's process sees them all


def test_the_terminal_bar_ends_where_max_steps_ends_the_run(tmp_path):
    import pytorch_lightning as pl
    from contrastkit.plugins.vision.callbacks import progress_bar
    from contrastkit.plugins.vision.training import quiet_lightning
    from pytorch_lightning.demos.boring_classes import BoringModel

    class Totals(pl.Callback):
        def __init__(self):
            self.seen = []

        def on_train_epoch_start(self, trainer, pl_module):
            self.seen.append(trainer.progress_bar_callback.total_train_batches)

    totals = Totals()
    trainer = pl.Trainer(max_steps=3, max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_model_summary=False, callbacks=[progress_bar(), totals], default_root_dir=tmp_path)
    with quiet_lightning():
        trainer.fit(BoringModel())  # 64 batches an epoch, as the recipe sets max_epochs beside max_steps
    assert trainer.num_training_batches == 64 and totals.seen == [3]  # not 3/64 and a time left for 61 more
