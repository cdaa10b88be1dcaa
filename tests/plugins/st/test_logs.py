"""What a text run prints into a log file (stdout and stderr not a terminal: ``> run.log 2>&1``, nohup, Slurm, CI):
one readable line per logging step, no progress-bar redraws, and the same lines above the bar in a terminal."""

from __future__ import annotations

import subprocess

from tests.conftest import run_logged


def test_a_log_file_gets_one_readable_line_per_logging_step_and_no_bars(tiny_text_model, pairs_csv, tmp_path):
    done, printed, warned = run_logged(tmp_path, "run", "text", f"model={tiny_text_model}", f"data={pairs_csv}",
                                       "max_steps=3", "logging_steps=1", "batch_size=8", "save_steps=2",
                                       f"output_dir={tmp_path / 'run'}")
    assert done.returncode == 0, warned[-2000:]
    steps = [line for line in printed.splitlines() if line.startswith("step ")]
    assert [line.split("  ")[0] for line in steps] == ["step 1/3", "step 2/3", "step 3/3"], printed
    assert all(" loss " in line and " lr " in line and " elapsed 0:00:" in line for line in steps), steps
    assert " left 0:00:" in steps[1] and "left" not in steps[2]  # none on the last step
    assert "trained 3 steps in 0:00:" in printed and ", mean loss " in printed
    assert "{'" not in printed + warned  # the Trainer's dicts of quoted numbers
    # no bar of the training's 3 steps, and none while checkpoints and the model are written
    assert "/3 [" not in warned and "Writing model shards" not in warned, warned[-2000:]
    assert "Computing widget examples" not in warned  # it cleared itself with no newline: step 1 joined it
    # the libraries' own bars: loading the model, mining's similarity scores, datasets' filter and map
    assert not [bar for bar in ("Loading weights", "Computing similarity scores", "Filter:", "Map:") if bar in warned]
    assert "Cannot enable progress bars" not in warned  # the data loader put back only what it had turned off


def test_a_step_line_reads_as_words():
    from contrastkit.plugins.report import step_line

    line = step_line({"loss": 2.0163, "grad_norm": 6.2231, "learning_rate": 5e-05, "epoch": 0.047619,
                     "total_flos": 1.0}, 20, 100, 12.4, left=48.9)
    assert line == "step 20/100  loss 2.016  grad_norm 6.223  lr 5e-05  epoch 0.05  elapsed 0:00:12  left 0:00:48"
    summary = step_line({"train_runtime": 3725.2, "train_steps_per_second": 0.0268, "train_loss": 3.6581,
                        "epoch": 1.0}, 100, 100, 3725.2)
    assert summary == "trained 100 steps in 1:02:05 (0.0268 steps/s), mean loss 3.658"




#: a sparse run's evaluation in small: sentence-transformers normalises a sparse batch, and torch notes (once per
#: process, from C++) that it skips its invariant checks; a fresh process, so the note is not spent yet
SPARSE_NOTE = """
import warnings, torch
from sentence_transformers.util.tensor import normalize_embeddings
from contrastkit.plugins.st.callbacks import quiet_run
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")  # a user's filters that show everything
    with quiet_run():
        normalize_embeddings(torch.tensor([[0.0, 3.0], [4.0, 0.0]]).to_sparse())
print(sum("Sparse invariant checks" in str(w.message) for w in caught))
"""


def test_torchs_sparse_invariant_note_is_hidden_while_a_run_trains():
    import sys

    done = subprocess.run([sys.executable, "-c", SPARSE_NOTE], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "0", done.stdout + done.stderr[-2000:]


def test_quiet_run_hides_by_message_and_only_inside_the_block():
    import warnings

    from contrastkit.plugins.st.callbacks import quiet_run

    note = "Sparse invariant checks are implicitly disabled. Memory errors (e.g. SEGFAULT) will occur ..."
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_run():
            warnings.warn(note, UserWarning, stacklevel=1)
            warnings.warn("another UserWarning", UserWarning, stacklevel=1)
        warnings.warn(note, UserWarning, stacklevel=1)  # after the block: the user's filters again
    assert [str(w.message) for w in caught] == ["another UserWarning", note]


def test_bars_only_on_a_terminal_that_redraws(monkeypatch):
    """Both trainers (transformers' and Lightning's) ask ``report.progress_bars``."""
    import os
    import sys

    from contrastkit.plugins.report import progress_bars

    leader, follower = os.openpty()  # a real terminal, as a shell's
    try:
        with open(follower, "w") as terminal:
            monkeypatch.setattr(sys, "stderr", terminal)
            monkeypatch.setenv("TERM", "xterm-256color")
            assert progress_bars()
            monkeypatch.setenv("TERM", "dumb")  # Emacs' shell and compile buffers: no redraws
            assert not progress_bars()
    finally:
        os.close(leader)
    monkeypatch.setattr(sys, "stderr", open(os.devnull, "w"))  # noqa: SIM115 - a log file
    monkeypatch.setenv("TERM", "xterm-256color")
    assert not progress_bars()


def test_a_crossencoders_new_score_head_is_not_reported_missing_but_other_missing_weights_are(tiny_text_model):
    """transformers' LOAD REPORT listed the new head's classifier.* as MISSING, "Consider training on your
    downstream task", on every rerank run from a bi-encoder: the run is that training."""
    import logging

    from contrastkit.plugins.st import models

    logger, seen = logging.getLogger("transformers.modeling_utils"), []
    collect = logging.Handler()
    collect.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(collect)
    library, level = logging.getLogger("transformers"), logging.getLogger("transformers").level
    library.setLevel(logging.WARNING)  # transformers' own default (the tests' conftest quiets it to errors)
    try:
        models.load_model(tiny_text_model, kind="cross", device="cpu")
        assert not [m for m in seen if "LOAD REPORT" in m], seen
        with models._new_head_report_hidden():
            logger.warning("BertModel LOAD REPORT from: x\nKey | Status | \n-+-+-\nbert.pooler.dense.weight | "
                           "MISSING | \nclassifier.bias | MISSING | ")
        assert len(seen) == 1 and "bert.pooler.dense.weight | MISSING" in seen[0]
    finally:
        logger.removeHandler(collect)
        library.setLevel(level)
