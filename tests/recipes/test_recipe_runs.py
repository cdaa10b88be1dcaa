"""Runs as users have them: two runs into one folder, Ctrl-C, resuming, a full disk. Real processes and real
signals where it matters; tiny models, so each test takes seconds. The image recipe's resume tests are in
test_resume_image.py."""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

import pytest
from contrastkit.recipes.cli import main

from tests.recipes.processes import IMAGE, errors, hashes, interrupt, pairs, start, wait_for
from tests.recipes.test_recipe_image import _folder


def test_a_second_run_into_a_busy_folder_is_refused_and_ctrl_c_before_a_checkpoint_says_rerun(tmp_path,
                                                                                            tiny_text_model, capfd):
    out = tmp_path / "out"
    out.mkdir()  # the user's empty folder: it stays after the run stops
    args = ["run", "text", f"data={pairs(tmp_path)}", f"model={tiny_text_model}", f"output_dir={out}",
            "max_steps=100000", "save_steps=100000", "min_steps=0"]
    first = start(args, tmp_path)
    try:
        wait_for(lambda: (out / ".contrastkit-lock").is_file() and (out / ".contrastkit-run.json").is_file(), first)
        snapshot = sorted(out.iterdir())
        second = main([*args, "overwrite=true"])  # the second run: this test's own process
        second_err = capfd.readouterr().err
        assert first.poll() is None  # the first run was still going when the second one was refused
        assert sorted(out.iterdir()) == snapshot
    finally:
        code, err = interrupt(first)
    assert second == 2 and "Traceback" not in second_err, second_err
    (line,) = errors(second_err)
    assert "in use by another run" in line and f"PID {first.pid}" in line and "max_steps=100000" in line
    # Ctrl-C before the first checkpoint: one clear line, and the next step it names works
    assert code == 130 and "Traceback" not in err, err
    (line,) = errors(err)
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
    args = ["run", "text", f"data={pairs(tmp_path)}", f"eval_data={pairs(tmp_path, 1000, 'eval.csv')}",
            f"model={tiny_text_model}", f"output_dir={out}", "max_steps=2", "save_steps=1", "min_steps=0",
            "logging_steps=1"]
    proc = start(args, tmp_path)
    try:
        # polled often: the window between the last checkpoint and the saved model is the evaluation's second
        wait_for(lambda: (out / "checkpoints" / "checkpoint-2" / "trainer_state.json").is_file(), proc, every=0.01)
    finally:
        code, err = interrupt(proc)
    assert code == 130 and not (out / "model.safetensors").exists(), err  # stopped after its last checkpoint
    capfd.readouterr()
    assert main([*args, "resume=true"]) == 0
    said = capfd.readouterr().out
    assert "resume: the checkpoint already holds all 2 steps; evaluating and saving it" in said
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train"]["global_step"] == 2 and [h["step"] for h in metrics["loss_history"]] == [1, 2]
    assert metrics["after"] != metrics["before"] and (out / "loss.png").is_file()
    saved = hashes(out / "checkpoints" / "checkpoint-2")["model.safetensors"]
    assert hashes(out)["model.safetensors"] == saved  # the checkpoint's weights, no step more
    files = hashes(out)
    assert main([*args, "resume=true"]) == 2
    (line,) = errors(capfd.readouterr().err)
    assert "already trained 2 steps, all of this run's max_steps=2" in line
    assert hashes(out) == files


def test_resuming_on_other_data_is_one_line_naming_both_for_image_and_text(tmp_path, tiny_text_model, capfd,
                                                                          monkeypatch):
    """A resumed run would train on other data than its checkpoint did, without saying so: refused, untouched."""
    first, other = _folder(tmp_path / "images"), _folder(tmp_path / "other")
    out = tmp_path / "out"
    args = ["run", "image", *IMAGE, "method=simclr", f"output_dir={out}", "save_steps=1"]
    assert main([*args, f"data={first}", "max_steps=2"]) == 0
    text_out = tmp_path / "text-out"
    text = ["run", "text", f"model={tiny_text_model}", f"output_dir={text_out}", "min_steps=0", "save_steps=1"]
    assert main([*text, f"data={pairs(tmp_path)}", "max_steps=1"]) == 0
    capfd.readouterr()
    image_files, text_files = hashes(out), hashes(text_out)
    assert main([*args, f"data={other}", "max_steps=3", "resume=true"]) == 2
    assert main([*text, f"data={pairs(tmp_path, name='other.csv')}", "max_steps=2", "resume=true"]) == 2
    err = capfd.readouterr().err
    assert "Traceback" not in err, err
    image_line, text_line = errors(err)
    assert f"trained with data={first}, not data={other}; resume with data={first}" in image_line
    assert f"trained with data={tmp_path / 'pairs.csv'}, not data={tmp_path / 'other.csv'}" in text_line
    assert hashes(out) == image_files and hashes(text_out) == text_files
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
    args = ["run", "text", f"data={pairs(tmp_path)}", f"model={tiny_text_model}", f"output_dir={out}", "max_steps=1",
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
    (line,) = errors(err)
    assert f"no room to write in '{out}'" in line and "File too large" in line and "output_dir=" in line


def test_resumed_text_run_reports_the_base_models_before_metrics(tmp_path, tiny_text_model):
    from contrastkit.recipes import text

    kw = {"data": pairs(tmp_path), "eval_data": pairs(tmp_path, 60, "eval.csv"), "model": tiny_text_model,
          "output_dir": str(tmp_path / "out"), "min_steps": 0,
          "save_steps": 1, "batch_size": 4, "learning_rate": 5e-3}
    first = text.run(max_steps=2, **kw)
    assert first.metrics["after"] != first.metrics["before"]  # training moved the numbers: a checkpoint differs
    (first.output_dir / "metrics.json").unlink()  # as a run stopped after its checkpoint leaves it
    again = text.run(max_steps=3, resume=True, **kw)
    assert again.metrics["train"]["global_step"] == 3
    assert again.metrics["before"] == first.metrics["before"]


def test_a_finished_run_leaves_its_record_but_no_lock(tmp_path, tiny_text_model):
    from contrastkit.recipes import text

    out = tmp_path / "out"
    text.run(data=pairs(tmp_path), model=tiny_text_model, output_dir=str(out), max_steps=1, min_steps=0)
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
    text.run(data=pairs(tmp_path), model=tiny_text_model, output_dir=str(out), max_steps=1, min_steps=0)


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
    result = text.run(data=pairs(tmp_path), model=tiny_text_model, max_steps=1, min_steps=0)
    out = Path(result.output_dir).resolve()
    assert out.name.endswith("-2") and out.parent == (tmp_path / "outputs").resolve()
    assert (out / "model.safetensors").read_bytes() != b"someone else's model"
    assert all((f / "model.safetensors").read_text() == "someone else's model" for f in taken)


def test_resuming_with_other_prompts_is_refused_and_the_same_ones_resume(tmp_path, tiny_text_model, capfd):
    """Steps before and after a resume would have read different prefixes: refused, the folder untouched."""
    out = tmp_path / "text-out"
    text = ["run", "text", f"model={tiny_text_model}", f"output_dir={out}", "min_steps=0", "save_steps=1",
            f"data={pairs(tmp_path)}"]
    assert main([*text, "max_steps=1", "prompts={query: 'q: ', document: 'd: '}"]) == 0
    capfd.readouterr()
    files = hashes(out)
    assert main([*text, "max_steps=2", "resume=true"]) == 2  # prompts=auto: the base model's (none), not q:/d:
    line = errors(capfd.readouterr().err)[0]
    assert "was trained with prompts={'query': 'q: ', 'document': 'd: '}, not prompts=auto" in line
    assert hashes(out) == files
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
