"""The CLI contract shared by every recipe: list, show, run, cp, --help, errors (exit 2, one line)."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest
from contrastkit.recipes import RECIPES
from contrastkit.recipes.cli import main

from tests.conftest import ROOT, run_cli

COMMANDS = ["list", "show", "run", "cp", "push", "push-demo", "demo"]


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"] if command is None else [command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: contrastkit" in out
    if command is None:
        assert all(c in out for c in COMMANDS)


def test_help_of_push_push_demo_and_demo_names_every_option(capsys):
    """The options are key=value words argparse cannot list itself: the help text names them by hand, so it is
    checked against the config classes (built without importing torch, so it cannot read them at run time)."""
    import dataclasses

    from contrastkit.demo.app import DemoConfig
    from contrastkit.plugins.hub import PushConfig, PushDemoConfig

    for command, cls in (("push", PushConfig), ("push-demo", PushDemoConfig), ("demo", DemoConfig)):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = " ".join(capsys.readouterr().out.split())
        assert [f.name for f in dataclasses.fields(cls) if f"{f.name}=" not in out] == [], command


def test_list_shows_every_builtin_recipe_with_a_description(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name, (_, description) in RECIPES.items():
        assert f"{name}" in out and description in out


def test_show_lists_fields_with_defaults_and_help(capsys):
    assert main(["show", "text"]) == 0
    out = capsys.readouterr().out
    assert "learning_rate" in out and "batch_size" in out and "= 42" in out  # seed
    assert "pairs per batch" in out and "default 16 on a CPU, 32 on a GPU" in out  # the help text


def test_help_list_and_show_do_not_import_torch():
    code = ("import sys; from contrastkit.recipes.cli import main; main(['list']); main(['show', 'text']);"
            "bad = [m for m in ('torch', 'sentence_transformers', 'transformers', 'datasets') if m in sys.modules];"
            "assert not bad, bad")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_python_dash_m_is_the_same_cli():
    done = run_cli("list")
    assert done.returncode == 0 and "text" in done.stdout


def test_cp_then_run_the_copy(tmp_path, pairs_csv, tiny_text_model, capsys):
    dest = tmp_path / "my_text.py"
    assert main(["cp", "text", str(dest)]) == 0
    assert dest.read_text() == (ROOT / "recipes" / "text.py").read_text()
    # a user's change to the copy takes effect when the copy runs
    dest.write_text(dest.read_text().replace('DESCRIPTION = "', 'DESCRIPTION = "MY COPY: '))
    assert main(["show", str(dest)]) == 0
    out = tmp_path / "out"
    assert main(["run", str(dest), f"data={pairs_csv}", f"model={tiny_text_model}", "max_steps=1",
                 "batch_size=4", f"output_dir={out}"]) == 0
    assert (out / "model.safetensors").is_file()
    assert main(["cp", "text", str(dest)]) == 2  # never overwrites the user's copy silently
    assert "already exists" in capsys.readouterr().err
    # a name 'contrastkit run' could not run, and a folder that is not there, are refused, nothing written
    assert main(["cp", "text", str(tmp_path / "mine")]) == 2
    assert f"'{tmp_path / 'mine'}' does not end in .py" in capsys.readouterr().err
    assert main(["cp", "text", f"{tmp_path / 'newdir'}/"]) == 2
    assert f"folder '{tmp_path / 'newdir'}/' does not exist" in capsys.readouterr().err
    assert not (tmp_path / "mine").exists() and not (tmp_path / "newdir").exists()


def test_yaml_configs_layered_then_key_value_overrides(tmp_path, pairs_csv, tiny_text_model):
    """--config twice layers the files, the later one winning (as LightningCLI does); key=value wins over both."""
    base, mine = tmp_path / "base.yaml", tmp_path / "my.yaml"
    base.write_text("batch_size: 8\nmax_steps: 3\nseed: 1\n")
    mine.write_text(f"data: {pairs_csv}\nmodel: {tiny_text_model}\nbatch_size: 4\nmax_steps: 3\n")
    out = tmp_path / "out"
    assert main(["run", "text", "--config", str(base), "-c", str(mine), "max_steps=1", f"output_dir={out}"]) == 0
    import yaml

    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["max_steps"] == 1 and saved["batch_size"] == 4 and saved["seed"] == 1


@pytest.mark.parametrize("path", sorted((ROOT / "recipes" / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    from contrastkit.plugins.config import resolve
    from contrastkit.recipes import load_recipe

    name = path.stem.split("_")[0] if not path.stem.startswith("image_text") else "image-text"
    module = load_recipe(name)
    cfg = resolve(module.Config, config=path)
    assert isinstance(cfg, module.Config)
    text = path.read_text()
    assert text.startswith("# "), "each shipped config says in its first line what it is for"
    if "defaults" in text.splitlines()[0].lower():  # it claims to write out the defaults: every value must be one
        import yaml

        defaults = module.Config()
        for key in yaml.safe_load(text):
            assert getattr(cfg, key) == getattr(defaults, key), f"{path.name}: {key}"
    if "every key" in text.splitlines()[0]:
        import dataclasses

        import yaml

        missing = {f.name for f in dataclasses.fields(module.Config)} - set(yaml.safe_load(text))
        assert not missing, f"{path.name} claims every key but lacks {sorted(missing)}"


def test_wheel_installs_only_under_contrastkit(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    wheel = next(tmp_path.glob("contrastkit-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops <= {"contrastkit", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}, tops
    assert "contrastkit/recipes/cli.py" in names and "contrastkit/plugins/st/training.py" in names
    assert "contrastkit/demo/__init__.py" in names
    assert "contrastkit/recipes/sample_data/faq_pairs.csv" in names
    assert not any(n.startswith(("recipes/", "plugins/", "demo/")) for n in names)
    assert not any(n == "contrastkit/__init__.py" for n in names)  # contrastkit stays a namespace
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "contrastkit = contrastkit.recipes.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_an_option_written_with_dashes_gets_the_key_value_form_as_a_hint(capsys):
    from contrastkit.recipes.cli import main

    assert main(["run", "text", "--epochs=2"]) == 2
    assert capsys.readouterr().err == ("contrastkit: error: unrecognized arguments: --epochs=2; write "
                                       "options as key=value, e.g. epochs=2\n")


BAD_ARGV = [  # (argv, what its one error line must name: the bad input and the fix)
    (["runn"], ["'runn'", "Did you mean 'run'?", "contrastkit --help"]),
    (["run", "text", "-x"], ["-x", "contrastkit run --help"]),
    (["run", "text", "-c"], ["--config", "expected one argument", "contrastkit run --help"]),
    (["show"], ["required: recipe", "contrastkit show --help"]),
    (["cp", "text"], ["required: dest", "contrastkit cp --help"]),
    (["cp", "text", "a.py", "b.py"], ["b.py", "contrastkit cp --help"]),
    (["push", "outputs/x"], ["required: repo_id;", "contrastkit push --help"]),  # not 'repo_id, key=value'
    (["demo", "--port", "7860"], ["--port", "e.g. port=VALUE"]),
    (["list", "--long=1"], ["--long=1", "contrastkit list --help"]),  # list takes no key=value: no such hint
    (["--bogus", "run"], ["'--bogus' before the command", "contrastkit --help"]),  # not "COMMAND is required"
]


@pytest.mark.parametrize(("argv", "names"), BAD_ARGV, ids=[" ".join(argv) for argv, _ in BAD_ARGV])
def test_every_argparse_error_is_one_line_naming_the_input_and_the_fix(argv, names):
    done = run_cli(*argv)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("contrastkit: error: "), done.stderr
    assert "usage:" not in done.stderr and "Traceback" not in done.stderr
    assert all(n in lines[0] for n in names), lines[0]
    assert done.stdout == ""
