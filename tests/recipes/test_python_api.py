"""The Python API as a notebook user calls it: ``Config`` objects and ``run()`` keywords, checked before any work.

No training here: every call below is refused (or only builds a config) before a model or data is loaded.
"""

from __future__ import annotations

import pytest
from contrastkit.plugins.config import resolve
from contrastkit.plugins.errors import UserError


def test_a_config_takes_keywords_only_and_a_misspelt_one_gets_a_did_you_mean():
    """Fields are ordered by their shared part, push_to_hub first: ``text.Config("you/pairs")`` set push_to_hub, and
    a run with a token pushed the model to the repo the user meant as data. A typo was a bare TypeError."""
    from contrastkit.recipes import image, text

    with pytest.raises(TypeError, match=r"^text\.Config\(\) takes keyword arguments only, e.g. text\.Config\("
                                        r"data='pairs.csv', epochs=2\); got 1 positional \('you/pairs'\)$"):
        text.Config("you/pairs")
    with pytest.raises(UserError, match=r"^unknown config key 'epoch'\. Did you mean 'epochs'\? Run 'contrastkit "
                                        r"show image' to list the valid keys\.$"):
        image.Config(epoch=2)
    cfg = text.Config(data="pairs.csv", epochs=2)  # a good one builds, and is checked when run
    assert resolve(text.Config, cfg).epochs == 2.0


@pytest.mark.parametrize(("key", "meant"), [("lr", "learning_rate"), ("num_train_epochs", "epochs"),
                                            ("per_device_train_batch_size", "batch_size"),
                                            ("hub_model_id", "push_to_hub"), ("overwrite_output_dir", "overwrite"),
                                            ("model_name_or_path", "model"), ("bf16", "precision")])
def test_a_name_from_transformers_training_arguments_points_at_ours(key, meant):
    """Spelling alone sent num_train_epochs to max_train_tokens, per_device_train_batch_size to mini_batch_size and
    hub_model_id to guide_model; lr, bf16 and model_name_or_path got no hint. Raised from run() as from Config()."""
    from contrastkit.recipes import text

    for call in (lambda: text.run(**{key: 1}), lambda: text.Config(**{key: 1})):
        with pytest.raises(TypeError, match=f"unknown config key '{key}'. Did you mean '{meant}'\\?"):
            call()


def test_a_transformers_name_with_no_field_here_gets_no_far_fetched_guess():
    from contrastkit.recipes import image

    with pytest.raises(UserError) as refused:  # difflib alone: max_steps
        image.Config(max_seq_len=64)
    assert "Did you mean" not in str(refused.value)
    with pytest.raises(UserError, match="Did you mean 'backbone'"):
        image.Config(model_name_or_path="resnet18")


def test_every_recipes_run_shows_its_keywords_for_help_and_shift_tab():
    """``help(text.run)`` showed ``run(cfg=None, **overrides)``: nothing of what a run takes. plugins/run.py's
    ``cleans_up_refusals`` gives every recipe's run its Config's keywords (``run.document_run``)."""
    import importlib
    import inspect

    for name in ("text", "rerank", "sparse", "image", "image_text"):
        recipe = importlib.import_module(f"contrastkit.recipes.{name}")
        params = inspect.signature(recipe.run).parameters
        assert list(params)[:2] == ["cfg", "data"] and params["cfg"].default is None, name
        assert params["epochs"].kind is inspect.Parameter.KEYWORD_ONLY, name
        assert params["epochs"].annotation in (float, int | None) and "seed" in params and "overrides" not in params
        assert "\n    epochs=" in recipe.run.__doc__ and "Keywords" in recipe.run.__doc__, name
    from contrastkit.recipes import text

    assert "loss" in inspect.signature(text.run).parameters
    with pytest.raises(UserError, match="Did you mean 'epochs'"):  # still checked by resolve, as before
        text.run(epoch=2)


def test_ctrl_c_in_a_notebook_cell_frees_the_folder_and_says_how_to_go_on(tmp_path):
    """The kernel lives on after Ctrl-C: it held the folder's lock, so 'contrastkit run ... resume=true' from a
    terminal was refused as "in use by another run (PID <the kernel>)"; and Python said only KeyboardInterrupt.
    The folder variable of a run without output_dir is gone after it, so a later run picks its own."""
    import os

    from contrastkit.plugins import outdir, run
    from contrastkit.plugins.report import RUN_DIR_ENV
    from contrastkit.recipes import text

    @run.cleans_up_refusals
    def interrupted(**overrides):  # a recipe's run, Ctrl-C'd once its folder is set up and a checkpoint saved
        out, _ = run.start(resolve(text.Config, **overrides), "text")
        (out / "checkpoints" / "checkpoint-3").mkdir(parents=True)
        (out / "checkpoints" / "checkpoint-3" / "trainer_state.json").write_text("{}")
        raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt, match=f"contrastkit: interrupted; the checkpoints in '{out}' are kept"):
        interrupted(data="pairs.csv", output_dir=str(out))
    lock = outdir.FolderLock(out)
    lock.acquire()  # another run (a terminal's resume) may take the folder now
    lock.release()
    assert (out / "checkpoints" / "checkpoint-3").is_dir()
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        with pytest.raises(KeyboardInterrupt):
            interrupted(data="pairs.csv")  # no output_dir: a timestamped folder, named for a trainer's processes
    finally:
        os.chdir(cwd)
    assert RUN_DIR_ENV not in os.environ


def test_a_config_shows_what_was_set_and_names_a_python_object_by_its_type():
    """The dataclass repr listed every field (about 1,500 characters for text.Config, and again in each Result)."""
    import pandas as pd
    from contrastkit.recipes import image, text

    assert repr(text.Config()) == "text.Config()"
    frame = pd.DataFrame({"anchor": ["a"] * 50, "positive": ["b"] * 50})
    cfg = resolve(text.Config, data=frame, epochs="3", columns={"anchor": "q"}, overwrite=True, batch_size=16)
    assert repr(cfg) == ("text.Config(data=<DataFrame>, columns={'anchor': 'q'}, epochs=3.0, batch_size=16, "
                         "overwrite=True)")  # in reading order, as contrastkit show lists them
    assert repr(text.Config(epochs=1)) == "text.Config()"  # 1 is the default 1.0
    assert repr(image.Config(overwrite=0)) == "image.Config(overwrite=0)"  # 0 is not the default False


def test_a_refusal_shows_as_its_one_line_in_a_notebook():
    """IPython and Jupyter print what ``_render_traceback_`` gives: the one line the CLI prints, where a notebook
    showed every library frame down to the check that refused."""
    from contrastkit.recipes import text

    with pytest.raises(UserError) as refused:
        text.run(epoch=2)
    assert refused.value._render_traceback_() == [f"UnknownArgument: {refused.value}"]


def test_ipython_shows_the_one_line_and_the_session_goes_on(capsys, tmp_path, monkeypatch):
    IPython = pytest.importorskip("IPython")  # not a dependency: runs where IPython is installed

    monkeypatch.chdir(tmp_path)
    shell = IPython.core.interactiveshell.InteractiveShell.instance(colors="nocolor")
    shell.run_cell("from contrastkit.recipes import text\ntext.run(data='no-such.csv', output_dir='unused')")
    shown = capsys.readouterr().out
    assert shown.strip() == "UserError: data file 'no-such.csv' does not exist; check the path (formats: .csv, .tsv, " \
                            ".json, .jsonl, .parquet, .txt)"
    assert shell.run_cell("1 + 1").result == 2


def test_a_result_shows_its_folder_table_and_model_in_a_few_lines():
    """A notebook showed ``result`` as its whole metrics dict (about 2,000 characters)."""
    from pathlib import Path

    from contrastkit.plugins.report import Result
    from contrastkit.recipes import text

    rows = {f"heldout_m{i}": {"before": 0.5, "after": 0.625, "delta": 0.125} for i in range(5)}
    metrics = {"before_after": rows, "history": [{"step": s, "loss": 1.0} for s in range(200)]}
    shown = repr(Result(Path("outputs/run"), metrics, text.Config(data="pairs.csv", epochs=2), model=object()))
    assert shown == ("Result(output_dir='outputs/run', before_after={heldout_m0: 0.5000 -> 0.6250, heldout_m1: "
                     "0.5000 -> 0.6250, heldout_m2: 0.5000 -> 0.6250, ... (5 metrics)}, model=object, "
                     "config=text.Config(data='pairs.csv', epochs=2))")
