"""The image recipe resumed as users resume it: after Ctrl-C (a real process, a real signal), after its last
checkpoint, with fewer steps or epochs than the checkpoint holds, and from a finished run, which is refused and
left byte for byte as it was. Tiny models, so each test takes seconds."""

from __future__ import annotations

import json

import pytest
from contrastkit.plugins.vision.training import is_whole
from contrastkit.recipes.cli import main

from tests.recipes.processes import IMAGE, errors, hashes, interrupt, start, wait_for
from tests.recipes.test_recipe_image import _folder


def test_ctrl_c_in_the_image_recipe_says_contrastkit_and_resume_true_continues(tmp_path, capfd):
    """Ctrl-C mid-training: one line naming resume=true, which continues. Then Ctrl-C after the last checkpoint, while
    the "after" kNN runs (1,000 held-out images keep it busy for a second): resume=true evaluates and saves that
    checkpoint with no step more, as the run would have; once the model is saved, resume=true is refused."""
    data = _folder(tmp_path / "images")
    out = tmp_path / "out"
    args = ["run", "image", f"data={data}", *IMAGE, f"output_dir={out}", "max_steps=100000", "save_steps=1"]
    proc = start(args, tmp_path)
    try:
        wait_for(lambda: any((out / "checkpoints").glob("*.ckpt")), proc)
    finally:
        code, err = interrupt(proc)
    assert code == 130 and "Traceback" not in err, err
    (line,) = errors(err)
    assert f"resume=true output_dir={out}" in line and "checkpoints" in line
    assert not (out / "model.safetensors").exists()  # an interrupted run saves no "finished" model
    # the command it names continues (here with a step budget 2 past the newest checkpoint, so it ends soon), and
    # is stopped again once the checkpoint of its last step is whole, polled often: the window is the "after" kNN
    done = max(int(p.stem.rpartition("step=")[2]) for p in (out / "checkpoints").glob("*step=*.ckpt")) + 2
    args = [*args[:-2], f"max_steps={done}", "save_steps=1", "resume=true",
            f"eval_data={_folder(tmp_path / 'held-out', per_class=500)}"]
    last = out / "checkpoints" / f"epoch={(done - 1) // 2}-step={done}.ckpt"  # 18 training images: 2 steps an epoch
    proc = start(args, tmp_path)
    try:
        wait_for(lambda: is_whole(last), proc, every=0.01)
    finally:
        code, err = interrupt(proc)
    assert code == 130 and not (out / "model.safetensors").exists(), err  # stopped after its last checkpoint
    capfd.readouterr()
    checkpoints = hashes(out / "checkpoints")
    assert main(args) == 0
    assert hashes(out / "checkpoints") == checkpoints  # read, not written again
    assert f"resume: the checkpoint already holds all {done} steps; evaluating and saving it" in capfd.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == done and [h["step"] for h in metrics["history"]] == list(range(1, done + 1))
    assert metrics["eval_images"] == 1000 and (out / "loss.png").is_file()
    assert metrics["embedding_spread"]["after"] != metrics["embedding_spread"]["before"]  # "after" was evaluated
    import torch
    from safetensors.torch import load_file

    trained = torch.load(last, map_location="cpu", weights_only=True)["state_dict"]
    saved = load_file(out / "model.safetensors")  # tiny-cnn starts random: wise_ft=1 keeps the trained weights
    assert saved and all(torch.equal(v, trained[f"backbone.{k}"]) for k, v in saved.items())  # no step more
    files = hashes(out)
    assert main(args) == 2
    (line,) = errors(capfd.readouterr().err)
    assert f"already trained {done} steps, all of this run's max_steps={done}" in line
    assert hashes(out) == files


def test_resuming_an_image_run_with_fewer_steps_than_its_checkpoint_is_one_line(tmp_path):
    from contrastkit.plugins.errors import UserError
    from contrastkit.recipes import image

    kw = {"data": str(_folder(tmp_path / "images")), "backbone": "tiny-cnn", "image_size": 16, "batch_size": 8,
          "output_dir": str(tmp_path / "out"), "save_steps": 1}
    image.run(max_steps=6, **kw)  # 18 training images, batches of 8: three epochs
    before = hashes(tmp_path / "out")
    with pytest.raises(UserError, match="already trained 6 steps, more than this run's max_steps=1.*raise max_steps= "
                                        "above 6"):
        image.run(max_steps=1, resume=True, **kw)
    assert hashes(tmp_path / "out") == before


def test_resuming_a_finished_image_run_is_one_line_and_leaves_every_file_as_it_was(tmp_path, capfd):
    """The checkpoint at max_steps (saved when training ended, not at a save_steps step): Lightning would train no
    step, and the run would rewrite the finished model unblended and its metrics empty."""
    out = tmp_path / "out"
    args = ["run", "image", f"data={_folder(tmp_path / 'images')}", "backbone=tiny-cnn", "image_size=32",
            "batch_size=8", "method=simclr", "max_steps=3", f"output_dir={out}"]
    assert main(args) == 0
    capfd.readouterr()
    before = hashes(out)
    assert main([*args, "resume=true"]) == 2
    err = capfd.readouterr().err
    assert "Traceback" not in err, err
    (line,) = errors(err)
    assert f"the run in '{out}' already trained 3 steps" in line and "all of this run's max_steps=3" in line
    assert "raise max_steps= above 3" in line
    assert hashes(out) == before  # nothing rewritten, added or removed, the run record included
    # raising max_steps trains on from the checkpoint that max_steps stopped mid-epoch: the steps left, evaluated.
    # Lightning counts that epoch as done and the next one as begun, one step in: it has one step left, then one
    # more epoch of 2 (the run stopped at 4 of 5 steps, "max_epochs=3 reached")
    assert main([*args[:-2], "max_steps=5", f"output_dir={out}", "resume=true"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 5 and [h["step"] for h in metrics["history"]] == [1, 2, 3, 4, 5]
    assert set(metrics["before_after"]) == {"knn_top1"}


@pytest.mark.parametrize("save_steps", [500, 1])  # the checkpoint saved as training ended / at the epoch's last
def test_resuming_an_image_run_that_trained_all_its_epochs_is_one_line(tmp_path, save_steps):  # step, epoch uncounted
    from contrastkit.plugins.errors import UserError
    from contrastkit.recipes import image

    kw = {"data": str(_folder(tmp_path / "images")), "backbone": "tiny-cnn", "image_size": 16, "batch_size": 8,
          "output_dir": str(tmp_path / "out"), "method": "simclr", "save_steps": save_steps}
    image.run(epochs=1, **kw)  # 18 training images, batches of 8: two steps
    before = hashes(tmp_path / "out")
    with pytest.raises(UserError, match=r"already trained 2 steps \(1 epoch of 2 steps\), all of this run's "
                                        r"epochs=1.*raise epochs= above 1"):
        image.run(epochs=1, resume=True, **kw)
    assert hashes(tmp_path / "out") == before
    assert image.run(epochs=2, resume=True, **kw).metrics["steps"] == 4


def test_resumed_image_run_reports_the_base_models_before_metrics(tmp_path):
    from contrastkit.recipes import image

    kw = {"data": str(_folder(tmp_path / "images")), "backbone": "tiny-cnn", "image_size": 16, "batch_size": 8,
          "output_dir": str(tmp_path / "out"), "save_steps": 1, "learning_rate": 1e-2}
    first = image.run(max_steps=3, **kw)
    spread = first.metrics["embedding_spread"]
    assert spread["after"] != spread["before"]
    again = image.run(max_steps=4, resume=True, **kw)
    assert again.metrics["steps"] == 4
    assert again.metrics["embedding_spread"]["before"] == spread["before"]
    assert again.metrics["before"] == first.metrics["before"]
