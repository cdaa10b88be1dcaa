"""A resumed run's metrics.json loss history (and the loss.png drawn from it) holds the whole run: the steps trained
before the interruption, then the new ones, each step once. Real tiny runs, interrupted and resumed."""

from __future__ import annotations

import json
from pathlib import Path

from tests.recipes.processes import IMAGE, interrupt, pairs, start, wait_for
from tests.recipes.test_recipe_image import _folder


def _steps(history: list[dict]) -> list[int]:
    return [h["step"] for h in history]


def test_a_resumed_image_run_keeps_the_losses_from_before_the_interruption(tmp_path):
    """As a run stopped after step 3 leaves it: checkpoints up to step 2 only, so the resume trains step 3 again."""
    from contrastkit.recipes import image

    out = tmp_path / "out"
    kw = {"data": str(_folder(tmp_path / "images")), "backbone": "tiny-cnn", "image_size": 16, "batch_size": 8,
          "output_dir": str(out), "save_steps": 1}
    first = image.run(max_steps=3, **kw)["metrics"]["history"]
    assert _steps(first) == [1, 2, 3]
    for path in (out / "checkpoints").glob("*.ckpt"):  # what step 3 saved never reached the disk
        if path.name == "last.ckpt" or path.stem.endswith("step=3"):
            path.unlink()
    (out / "metrics.json").unlink()
    again = image.run(max_steps=5, resume=True, **kw)
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert history == again["metrics"]["history"]
    assert _steps(history) == [1, 2, 3, 4, 5]  # step 3 trained twice, written once
    assert history[:2] == first[:2]  # the losses of the steps before the interruption, as they were logged
    assert (out / "loss.png").is_file()


def test_an_image_run_stopped_by_ctrl_c_and_resumed_has_every_step_once(tmp_path):
    data = _folder(tmp_path / "images")
    out = tmp_path / "out"
    args = ["run", "image", f"data={data}", *IMAGE, f"output_dir={out}", "max_steps=100000", "save_steps=1"]
    proc = start(args, tmp_path)
    try:
        wait_for(lambda: len(list((out / "checkpoints").glob("*step=*.ckpt"))) >= 2, proc)
    finally:
        code, err = interrupt(proc)
    assert code == 130, err
    done = max(int(p.stem.rpartition("step=")[2]) for p in (out / "checkpoints").glob("*step=*.ckpt"))
    from contrastkit.recipes.cli import main

    assert main([*args[:-2], f"max_steps={done + 2}", "save_steps=1", "resume=true", f"output_dir={out}"]) == 0
    assert _steps(json.loads((out / "metrics.json").read_text())["history"]) == list(range(1, done + 3))


def test_a_resumed_text_run_keeps_the_losses_from_before_the_interruption(tmp_path, tiny_text_model):
    """The Trainer restores ``state.log_history`` from the checkpoint's trainer_state.json: a guard that the text
    family's metrics.json keeps using it."""
    from contrastkit.recipes import text

    out = tmp_path / "out"
    kw = {"data": pairs(tmp_path), "model": tiny_text_model, "output_dir": str(out), "min_steps": 0,
          "save_steps": 2, "logging_steps": 1, "batch_size": 4}
    first = text.run(max_steps=4, **kw)["metrics"]["loss_history"]
    assert _steps(first) == [1, 2, 3, 4]
    for folder in (out / "checkpoints").glob("checkpoint-*"):  # stopped before step 4's checkpoint was whole
        if folder.name != "checkpoint-2":
            (folder / "trainer_state.json").unlink()
    (out / "metrics.json").unlink()
    text.run(max_steps=6, resume=True, **kw)
    history = json.loads((out / "metrics.json").read_text())["loss_history"]
    assert _steps(history) == [1, 2, 3, 4, 5, 6]
    assert history[:2] == first[:2]
    assert Path(out / "loss.png").is_file()


def test_drawing_a_runs_plots_leaves_a_notebooks_matplotlib_backend_alone(tmp_path):
    """The plots were drawn through pyplot after ``matplotlib.use("Agg")``, which switched a notebook's inline
    backend: after a run, the user's own plots stopped showing."""
    import matplotlib
    import numpy as np
    from contrastkit.plugins.report import plot_before_after, plot_curve
    from contrastkit.plugins.vision.card import plot_pca

    before = matplotlib.get_backend()
    try:
        matplotlib.use("svg")  # a backend of the user's
        plot_curve([{"step": 1, "loss": 1.0}, {"step": 2, "loss": 0.5}], tmp_path / "loss.png")
        plot_before_after({"heldout_mrr@10": {"before": 0.1, "after": 0.3, "delta": 0.2}}, tmp_path / "ba.png")
        plot_pca(np.random.default_rng(0).normal(size=(10, 4)), [0, 1] * 5, ["a", "b"], tmp_path / "pca.png")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
    assert all((tmp_path / name).read_bytes()[:4] == b"\x89PNG" for name in ("loss.png", "ba.png", "pca.png"))
