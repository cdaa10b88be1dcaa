"""Runs as users have them: two runs into one folder, Ctrl-C, resuming, a full disk. Real processes and real
signals where it matters; tiny models, so each test takes seconds."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import time
from pathlib import Path

import pytest
from contrastkit.plugins.vision.training import is_whole
from contrastkit.recipes.cli import main

from tests.conftest import CLI
from tests.recipes.test_recipe_image import _folder

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
IMAGE = ["backbone=tiny-cnn", "image_size=16", "batch_size=8"]


def _pairs(tmp_path: Path, rows: int = 24, name: str = "pairs.csv") -> str:
    path = tmp_path / name
    path.write_text("anchor,positive\n" + "".join(f"question {i} on topic {i % 5},answer {i} for topic {i % 5}\n"
                                                  for i in range(rows)), encoding="utf-8")
    return str(path)


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    # Ctrl-C must reach the run as a user's would: a suite started in the background (`make test &`) ignores
    # SIGINT, a child inherits an ignored signal, and Python then installs no KeyboardInterrupt handler. A handled
    # signal is reset to the default at exec, so the child starts while this process handles SIGINT.
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen([*CLI, *args], cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _wait_for(check, proc: subprocess.Popen, seconds: float = 120, every: float = 0.2) -> None:
    deadline = time.time() + seconds
    while not check():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "timed out"
        time.sleep(every)


def _interrupt(proc: subprocess.Popen) -> tuple[int, str]:
    """Ctrl-C; the exit is 130, or death by SIGINT itself (a shell shows both as 130) when the signal meets the
    interpreter's own shutdown."""
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # a library swallowed it mid-import: press Ctrl-C again, as a user would
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    return (130 if proc.returncode == -signal.SIGINT else proc.returncode), err


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("contrastkit:")]


def test_a_second_run_into_a_busy_folder_is_refused_and_ctrl_c_before_a_checkpoint_says_rerun(tmp_path,
                                                                                            tiny_text_model, capfd):
    out = tmp_path / "out"
    out.mkdir()  # the user's empty folder: it stays after the run stops
    args = ["run", "text", f"data={_pairs(tmp_path)}", f"model={tiny_text_model}", f"output_dir={out}",
            "max_steps=100000", "save_steps=100000", "min_steps=0"]
    first = _start(args, tmp_path)
    try:
        _wait_for(lambda: (out / ".contrastkit-lock").is_file() and (out / ".contrastkit-run.json").is_file(), first)
        snapshot = sorted(out.iterdir())
        second = main([*args, "overwrite=true"])  # the second run: this test's own process
        second_err = capfd.readouterr().err
        assert first.poll() is None  # the first run was still going when the second one was refused
        assert sorted(out.iterdir()) == snapshot
    finally:
        code, err = _interrupt(first)
    assert second == 2 and "Traceback" not in second_err, second_err
    (line,) = _errors(second_err)
    assert "in use by another run" in line and f"PID {first.pid}" in line and "max_steps=100000" in line
    # Ctrl-C before the first checkpoint: one clear line, and the next step it names works
    assert code == 130 and "Traceback" not in err, err
    (line,) = _errors(err)
    assert "before the first checkpoint" in line and "run the same command again" in line
    assert not (out / ".contrastkit-lock").exists()  # released, no junk left
    assert {p.name for p in out.iterdir()} <= {".contrastkit-run.json", "checkpoints"}  # its record, no checkpoint
    assert not list(out.glob("checkpoints/checkpoint-*/trainer_state.json"))
    assert main([*args, "resume=true"]) == 2  # resume says what to do instead ...
    assert main([*args[:-3], "max_steps=1", "min_steps=0"]) == 0  # ... and the plain rerun (shorter here) works
    assert (out / "model.safetensors").is_file() and not (out / ".contrastkit-lock").exists()


def test_ctrl_c_after_the_last_checkpoint_resumes_to_the_saved_model_and_a_finished_run_is_refused(
        tmp_path, tiny_text_model, capfd):
    """Ctrl-C while the "after" evaluation runs (1,000 held-out rows keep it busy for a second or more): the checkpoint
    holds all the steps and no model is saved. resume=true evaluates and saves that checkpoint, as the run would
    have; once the model is saved, resume=true is refused as for any finished run."""
    out = tmp_path / "out"
    args = ["run", "text", f"data={_pairs(tmp_path)}", f"eval_data={_pairs(tmp_path, 1000, 'eval.csv')}",
            f"model={tiny_text_model}", f"output_dir={out}", "max_steps=2", "save_steps=1", "min_steps=0",
            "logging_steps=1"]
    proc = _start(args, tmp_path)
    try:
        # polled often: the window between the last checkpoint and the saved model is the evaluation's second
        _wait_for(lambda: (out / "checkpoints" / "checkpoint-2" / "trainer_state.json").is_file(), proc, every=0.01)
    finally:
        code, err = _interrupt(proc)
    assert code == 130 and not (out / "model.safetensors").exists(), err  # stopped after its last checkpoint
    capfd.readouterr()
    assert main([*args, "resume=true"]) == 0
    said = capfd.readouterr().out
    assert "resume: the checkpoint already holds all 2 steps; evaluating and saving it" in said
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train"]["global_step"] == 2 and [h["step"] for h in metrics["loss_history"]] == [1, 2]
    assert metrics["after"] != metrics["before"] and (out / "loss.png").is_file()
    saved = _hashes(out / "checkpoints" / "checkpoint-2")["model.safetensors"]
    assert _hashes(out)["model.safetensors"] == saved  # the checkpoint's weights, no step more
    files = _hashes(out)
    assert main([*args, "resume=true"]) == 2
    (line,) = _errors(capfd.readouterr().err)
    assert "already trained 2 steps, all of this run's max_steps=2" in line
    assert _hashes(out) == files


def test_ctrl_c_in_the_image_recipe_says_contrastkit_and_resume_true_continues(tmp_path, capfd):
    """Ctrl-C mid-training: one line naming resume=true, which continues. Then Ctrl-C after the last checkpoint, while
    the "after" kNN runs (1,000 held-out images keep it busy for a second): resume=true evaluates and saves that
    checkpoint with no step more, as the run would have; once the model is saved, resume=true is refused."""
    data = _folder(tmp_path / "images")
    out = tmp_path / "out"
    args = ["run", "image", f"data={data}", *IMAGE, f"output_dir={out}", "max_steps=100000", "save_steps=1"]
    proc = _start(args, tmp_path)
    try:
        _wait_for(lambda: any((out / "checkpoints").glob("*.ckpt")), proc)
    finally:
        code, err = _interrupt(proc)
    assert code == 130 and "Traceback" not in err, err
    (line,) = _errors(err)
    assert f"resume=true output_dir={out}" in line and "checkpoints" in line
    assert not (out / "model.safetensors").exists()  # an interrupted run saves no "finished" model
    # the command it names continues (here with a step budget 2 past the newest checkpoint, so it ends soon), and
    # is stopped again once the checkpoint of its last step is whole, polled often: the window is the "after" kNN
    done = max(int(p.stem.rpartition("step=")[2]) for p in (out / "checkpoints").glob("*step=*.ckpt")) + 2
    args = [*args[:-2], f"max_steps={done}", "save_steps=1", "resume=true",
            f"eval_data={_folder(tmp_path / 'held-out', per_class=500)}"]
    last = out / "checkpoints" / f"epoch={(done - 1) // 2}-step={done}.ckpt"  # 18 training images: 2 steps an epoch
    proc = _start(args, tmp_path)
    try:
        _wait_for(lambda: is_whole(last), proc, every=0.01)
    finally:
        code, err = _interrupt(proc)
    assert code == 130 and not (out / "model.safetensors").exists(), err  # stopped after its last checkpoint
    capfd.readouterr()
    checkpoints = _hashes(out / "checkpoints")
    assert main(args) == 0
    assert _hashes(out / "checkpoints") == checkpoints  # read, not written again
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
    files = _hashes(out)
    assert main(args) == 2
    (line,) = _errors(capfd.readouterr().err)
    assert f"already trained {done} steps, all of this run's max_steps={done}" in line
    assert _hashes(out) == files


def _hashes(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` by its path there, with the SHA-256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_resuming_an_image_run_with_fewer_steps_than_its_checkpoint_is_one_line(tmp_path):
    from contrastkit.plugins.errors import UserError
    from contrastkit.recipes import image

    kw = {"data": str(_folder(tmp_path / "images")), "backbone": "tiny-cnn", "image_size": 16, "batch_size": 8,
          "output_dir": str(tmp_path / "out"), "save_steps": 1}
    image.run(max_steps=6, **kw)  # 18 training images, batches of 8: three epochs
    before = _hashes(tmp_path / "out")
    with pytest.raises(UserError, match="already trained 6 steps, more than this run's max_steps=1.*raise max_steps= "
                                        "above 6"):
        image.run(max_steps=1, resume=True, **kw)
    assert _hashes(tmp_path / "out") == before


def test_resuming_a_finished_image_run_is_one_line_and_leaves_every_file_as_it_was(tmp_path, capfd):
    """The checkpoint at max_steps (saved when training ended, not at a save_steps step): Lightning would train no
    step, and the run would rewrite the finished model unblended and its metrics empty."""
    out = tmp_path / "out"
    args = ["run", "image", f"data={_folder(tmp_path / 'images')}", "backbone=tiny-cnn", "image_size=32",
            "batch_size=8", "method=simclr", "max_steps=3", f"output_dir={out}"]
    assert main(args) == 0
    capfd.readouterr()
    before = _hashes(out)
    assert main([*args, "resume=true"]) == 2
    err = capfd.readouterr().err
    assert "Traceback" not in err, err
    (line,) = _errors(err)
    assert f"the run in '{out}' already trained 3 steps" in line and "all of this run's max_steps=3" in line
    assert "raise max_steps= above 3" in line
    assert _hashes(out) == before  # nothing rewritten, added or removed, the run record included
    # raising max_steps trains on from the checkpoint that max_steps stopped mid-epoch: the one step left, evaluated
    assert main([*args[:-2], "max_steps=4", f"output_dir={out}", "resume=true"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 4 and set(metrics["before_after"]) == {"knn_top1"}


@pytest.mark.parametrize("save_steps", [500, 1])  # the checkpoint saved as training ended / at the epoch's last
def test_resuming_an_image_run_that_trained_all_its_epochs_is_one_line(tmp_path, save_steps):  # step, epoch uncounted
    from contrastkit.plugins.errors import UserError
    from contrastkit.recipes import image

    kw = {"data": str(_folder(tmp_path / "images")), "backbone": "tiny-cnn", "image_size": 16, "batch_size": 8,
          "output_dir": str(tmp_path / "out"), "method": "simclr", "save_steps": save_steps}
    image.run(epochs=1, **kw)  # 18 training images, batches of 8: two steps
    before = _hashes(tmp_path / "out")
    with pytest.raises(UserError, match=r"already trained 2 steps \(1 epoch of 2 steps\), all of this run's "
                                        r"epochs=1.*raise epochs= above 1"):
        image.run(epochs=1, resume=True, **kw)
    assert _hashes(tmp_path / "out") == before
    assert image.run(epochs=2, resume=True, **kw).metrics["steps"] == 4


def test_resuming_on_other_data_is_one_line_naming_both_for_image_and_text(tmp_path, tiny_text_model, capfd,
                                                                          monkeypatch):
    """A resumed run would train on other data than its checkpoint did, without saying so: refused, untouched."""
    first, other = _folder(tmp_path / "images"), _folder(tmp_path / "other")
    out = tmp_path / "out"
    args = ["run", "image", *IMAGE, "method=simclr", f"output_dir={out}", "save_steps=1"]
    assert main([*args, f"data={first}", "max_steps=2"]) == 0
    text_out = tmp_path / "text-out"
    text = ["run", "text", f"model={tiny_text_model}", f"output_dir={text_out}", "min_steps=0", "save_steps=1"]
    assert main([*text, f"data={_pairs(tmp_path)}", "max_steps=1"]) == 0
    capfd.readouterr()
    image_files, text_files = _hashes(out), _hashes(text_out)
    assert main([*args, f"data={other}", "max_steps=3", "resume=true"]) == 2
    assert main([*text, f"data={_pairs(tmp_path, name='other.csv')}", "max_steps=2", "resume=true"]) == 2
    err = capfd.readouterr().err
    assert "Traceback" not in err, err
    image_line, text_line = _errors(err)
    assert f"trained with data={first}, not data={other}; resume with data={first}" in image_line
    assert f"trained with data={tmp_path / 'pairs.csv'}, not data={tmp_path / 'other.csv'}" in text_line
    assert _hashes(out) == image_files and _hashes(text_out) == text_files
    # the same data by another path (relative, from another folder) is the same data: it resumes
    monkeypatch.chdir(tmp_path)
    assert main([*args, "data=images/", "max_steps=3", "resume=true"]) == 0
    assert json.loads((out / "metrics.json").read_text())["steps"] == 3


def test_a_full_disk_while_saving_is_one_line(tmp_path, tiny_text_model, capfd, monkeypatch):
    """RLIMIT_FSIZE makes the kernel refuse writes past 1 MB with EFBIG (Python ignores SIGXFSZ): a real write
    error on the way the model and checkpoints are saved, handled like ENOSPC and EDQUOT. The limit is set on this
    process for the run alone, which goes through the CLI's entry point: the fault becomes exit code 2 and one line
    there (the bad-input tests show that entry point's 2 and one line in a real process)."""
    monkeypatch.chdir(tmp_path)
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(name, "1")
    out = tmp_path / "out"
    args = ["run", "text", f"data={_pairs(tmp_path)}", f"model={tiny_text_model}", f"output_dir={out}", "max_steps=1",
            "min_steps=0"]
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    limit = 1 << 20
    capfd.readouterr()
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        code = main(args)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    err = capfd.readouterr().err
    assert code == 2 and "Traceback" not in err, err[-3000:]
    (line,) = _errors(err)
    assert f"no room to write in '{out}'" in line and "File too large" in line and "output_dir=" in line


def test_resumed_text_run_reports_the_base_models_before_metrics(tmp_path, tiny_text_model):
    from contrastkit.recipes import text

    kw = {"data": _pairs(tmp_path), "eval_data": _pairs(tmp_path, 60, "eval.csv"), "model": tiny_text_model,
          "output_dir": str(tmp_path / "out"), "min_steps": 0,
          "save_steps": 1, "batch_size": 4, "learning_rate": 5e-3}
    first = text.run(max_steps=2, **kw)
    assert first.metrics["after"] != first.metrics["before"]  # training moved the numbers: a checkpoint differs
    (first.output_dir / "metrics.json").unlink()  # as a run stopped after its checkpoint leaves it
    again = text.run(max_steps=3, resume=True, **kw)
    assert again.metrics["train"]["global_step"] == 3
    assert again.metrics["before"] == first.metrics["before"]


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


def test_a_finished_run_leaves_its_record_but_no_lock(tmp_path, tiny_text_model):
    from contrastkit.recipes import text

    out = tmp_path / "out"
    text.run(data=_pairs(tmp_path), model=tiny_text_model, output_dir=str(out), max_steps=1, min_steps=0)
    assert not (out / ".contrastkit-lock").exists()
    record = json.loads((out / ".contrastkit-run.json").read_text())
    assert record["recipe"] == "text" and os.path.expanduser(record["model"]) == str(Path(tiny_text_model).resolve())
    from contrastkit.plugins.hub import files_to_push

    assert not [p for p in files_to_push(out) if ".contrastkit" in str(p)]


def test_a_python_run_that_failed_does_not_keep_its_folder_locked(tmp_path, tiny_text_model):
    """The CLI releases the lock when a run fails; in Python the next run of the same process does."""
    from contrastkit.plugins.errors import UserError
    from contrastkit.recipes import text

    out = tmp_path / "out"
    with pytest.raises(UserError, match="nope.csv"):
        text.run(data=str(tmp_path / "nope.csv"), model=tiny_text_model, output_dir=str(out))
    assert not (out / "model.safetensors").exists()
    text.run(data=_pairs(tmp_path), model=tiny_text_model, output_dir=str(out), max_steps=1, min_steps=0)


def test_resume_without_output_dir_finds_the_newest_run_also_one_that_stopped_early(tmp_path, monkeypatch):
    from contrastkit.plugins import report

    monkeypatch.chdir(tmp_path)
    finished, stopped = tmp_path / "outputs" / "text-20260101-000000", tmp_path / "outputs" / "text-20260102-000000"
    finished.mkdir(parents=True)
    (finished / "config.yaml").write_text("epochs: 1\n")
    stopped.mkdir()
    (stopped / ".contrastkit-run.json").write_text('{"recipe": "text"}')
    os.utime(finished, (1, 1))
    assert report.latest_output_dir("text") == Path("outputs") / stopped.name
    assert report.latest_output_dir() == Path("outputs") / finished.name  # the demo wants a finished model


def test_resumed_image_text_run_reports_the_base_models_before_metrics(tmp_path):
    from contrastkit.recipes import image_text

    kw = {"output_dir": str(tmp_path / "out"), "save_steps": 1, "batch_size": 16, "learning_rate": 1e-2}
    first = image_text.run(max_steps=2, **kw)
    assert first.metrics["after"] != first.metrics["before"]
    (first.output_dir / "metrics.json").unlink()  # as a run stopped after its checkpoint leaves it
    again = image_text.run(max_steps=3, resume=True, **kw)
    assert again.metrics["train"]["global_step"] == 3
    assert again.metrics["before"] == first.metrics["before"]


def test_a_default_output_folder_taken_in_the_same_second_gets_a_new_name(tmp_path, tiny_text_model, monkeypatch):
    """Two runs started in the same second: the second gets outputs/<recipe>-<stamp>-2, the first's is untouched."""
    from contrastkit.recipes import text

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONTRASTKIT_RUN_STAMP", raising=False)
    now = time.time()
    taken = [Path("outputs") / ("text-" + time.strftime("%Y%m%d-%H%M%S", time.localtime(now + s))) for s in range(60)]
    for folder in taken:  # another run's folder for every second this run may start in
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_text("someone else's model")
    result = text.run(data=_pairs(tmp_path), model=tiny_text_model, max_steps=1, min_steps=0)
    out = Path(result.output_dir).resolve()
    assert out.name.endswith("-2") and out.parent == (tmp_path / "outputs").resolve()
    assert (out / "model.safetensors").read_bytes() != b"someone else's model"
    assert all((f / "model.safetensors").read_text() == "someone else's model" for f in taken)


def test_resuming_with_other_prompts_is_refused_and_the_same_ones_resume(tmp_path, tiny_text_model, capfd):
    """Steps before and after a resume would have read different prefixes: refused, the folder untouched."""
    out = tmp_path / "text-out"
    text = ["run", "text", f"model={tiny_text_model}", f"output_dir={out}", "min_steps=0", "save_steps=1",
            f"data={_pairs(tmp_path)}"]
    assert main([*text, "max_steps=1", "prompts={query: 'q: ', document: 'd: '}"]) == 0
    capfd.readouterr()
    files = _hashes(out)
    assert main([*text, "max_steps=2", "resume=true"]) == 2  # prompts=auto: the base model's (none), not q:/d:
    line = _errors(capfd.readouterr().err)[0]
    assert "was trained with prompts={'query': 'q: ', 'document': 'd: '}, not prompts=auto" in line
    assert _hashes(out) == files
    assert main([*text, "max_steps=2", "resume=true", "prompts={query: 'q: ', document: 'd: '}"]) == 0


def test_a_hub_datasets_subset_and_split_are_part_of_what_resumes(tmp_path):
    """A Hub dataset's other split is other data: the record keeps subset and split, and resume compares them."""
    from contrastkit.plugins import outdir
    from contrastkit.plugins.config import resolve
    from contrastkit.plugins.errors import UserError
    from contrastkit.recipes import text

    folder = tmp_path / "run"
    folder.mkdir()
    trained = resolve(text.Config, data="user/pairs", subset="en", split="train")
    outdir.write_record(folder, "text", trained)
    with pytest.raises(UserError, match="was trained with split=train, not split=test"):
        outdir.check_resume(folder, "text", resolve(text.Config, data="user/pairs", subset="en", split="test"))
    with pytest.raises(UserError, match="was trained with subset=en, not the default subset"):
        outdir.check_resume(folder, "text", resolve(text.Config, data="user/pairs", split="train"))
