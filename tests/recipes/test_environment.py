"""Runs in the user's environment: odd paths, a closed stdout pipe, the umask, a non-UTF-8 locale. Refusals are
checked before any model loads; one short real run covers what needs a process."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from contrastkit.recipes.cli import main

from tests.conftest import CLI
from tests.recipes.processes import ENV, errors, pairs


def _refused(argv: list[str], capfd) -> str:
    """Run the CLI in this process; it must refuse with one line (exit 2, no traceback). Returns that line."""
    assert main(argv) == 2
    err = capfd.readouterr().err
    assert "Traceback" not in err, err
    (line,) = errors(err)
    return line


def test_an_output_path_too_long_for_the_file_system_is_one_line_and_leaves_no_folder(tmp_path, capfd):
    """A name over 255 bytes made pathlib's exists() raise ENAMETOOLONG: a traceback of several thousand
    characters. The parent folders a refused run would have created are not left behind."""
    long = tmp_path / "new" / ("x" * 300)
    line = _refused(["run", "text", f"data={pairs(tmp_path)}", f"output_dir={long}"], capfd)
    assert "is too long for the file system" in line and "choose a shorter path" in line
    assert len(line) < 400  # the path is shortened in the line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.csv"]


def test_an_output_dir_that_is_a_dangling_symlink_names_its_target(tmp_path, capfd):
    """mkdir said "File exists" about a folder that does not exist. The link and its missing target stay as they
    were."""
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "elsewhere")
    line = _refused(["run", "text", f"data={pairs(tmp_path)}", f"output_dir={link}"], capfd)
    assert f"is a symbolic link to '{tmp_path / 'elsewhere'}', which does not exist; create that folder" in line
    assert link.is_symlink() and not (tmp_path / "elsewhere").exists()


def test_a_run_whose_stdout_reader_leaves_trains_on_and_its_files_follow_the_umask(tmp_path, tiny_text_model):
    """``contrastkit run ... | head -1``: the first print after the reader left raised BrokenPipeError, and the run
    stopped, deleted its folder and exited 0. Now it trains on and says so once on stderr. The same run, under
    umask 027, a C locale and paths with spaces and accents: model.safetensors was 0600 (safetensors writes a
    private temporary file and renames it) while every other file followed the umask."""
    data = Path(pairs(tmp_path, name="päirs ✓.csv"))
    out = tmp_path / "öut dir ✓"
    env = {**ENV, "LC_ALL": "C", "LANG": "C"}
    proc = subprocess.Popen([*CLI, "run", "text", f"data={data}", f"model={tiny_text_model}", f"output_dir={out}",
                             "max_steps=2", "save_steps=1", "min_steps=0", "logging_steps=1"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, umask=0o027)
    first = proc.stdout.readline()  # `| head -1`: read one line, then leave
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=600) == 0, err
    assert first and "Traceback" not in err, err
    (line,) = errors(err)
    assert line == "contrastkit: stdout was closed by its reader; the run goes on, printing nothing more there"
    assert (out / "model.safetensors").is_file() and (out / "config.yaml").is_file()
    modes = {str(p.relative_to(out)): stat.S_IMODE(p.stat().st_mode) for p in out.rglob("*")
             if p.is_file() and not p.name.startswith(".")}
    assert set(modes.values()) == {0o640}, modes
    assert (out / "checkpoints" / "checkpoint-2" / "model.safetensors").is_file()
    assert not os.path.exists(out / ".contrastkit-lock")


def test_a_file_named_checkpoints_in_the_output_folder_is_refused_before_any_work(tmp_path, capfd):
    """overwrite=true into a folder holding a file 'checkpoints': the Trainer's makedirs failed with a traceback at
    the first checkpoint. Refused at the start; the folder stays as it was."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "checkpoints").write_text("my notes")
    line = _refused(["run", "text", f"data={pairs(tmp_path)}", f"output_dir={out}", "overwrite=true"], capfd)
    assert "holds a file named 'checkpoints'" in line and "move or delete that file" in line
    assert [p.name for p in out.iterdir()] == ["checkpoints"] and (out / "checkpoints").read_text() == "my notes"


def _unprivileged() -> list[str]:
    """A command prefix under which file permissions apply: none for a normal user; for root, setpriv without the
    capabilities that override them (skipped where setpriv is missing)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: file permissions cannot apply")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search,-fowner"]


def test_output_files_the_user_cannot_write_are_one_line(tmp_path, tiny_text_model):
    """A shared folder of an earlier run, another user's: a 'checkpoints' folder this user cannot write is refused
    before any work (it failed with a traceback at the first checkpoint); a read-only file the run rewrites at the
    end (config.json) is one line that names it, with the command that goes on, not a traceback."""
    args = [*_unprivileged(), *CLI, "run", "text", f"data={pairs(tmp_path)}", f"model={tiny_text_model}",
            "max_steps=1", "min_steps=0", "save_steps=1", "overwrite=true"]
    locked, ro_file = tmp_path / "locked", tmp_path / "ro_file"
    (locked / "checkpoints").mkdir(parents=True)
    (locked / "checkpoints").chmod(0o555)
    ro_file.mkdir()
    (ro_file / "config.json").write_text("{}")
    (ro_file / "config.json").chmod(0o444)
    try:
        done = subprocess.run([*args, f"output_dir={locked}"], env=ENV, capture_output=True, text=True, timeout=600)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert "holds a 'checkpoints' folder you cannot write to" in errors(done.stderr)[0]
        assert sorted(p.name for p in locked.iterdir()) == ["checkpoints"]
        done = subprocess.run([*args, f"output_dir={ro_file}"], env=ENV, capture_output=True, text=True, timeout=600)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        (line,) = errors(done.stderr)
        assert f"cannot write '{ro_file / 'config.json'}' in output_dir '{ro_file}' (Permission denied)" in line
        assert line.endswith("then run the same command with resume=true")
    finally:
        (locked / "checkpoints").chmod(0o755)


def test_an_unwritable_cache_folder_names_the_variable_that_placed_it(tmp_path):
    """XDG_CACHE_HOME on a read-only place: building the tiny CLIP into its cache raised PermissionError, a
    traceback that named neither the variable nor the fix. The refused run leaves no output folder."""
    read_only = tmp_path / "ro"
    read_only.mkdir(mode=0o555)
    env = {k: v for k, v in ENV.items() if k != "CONTRASTKIT_CACHE"}
    env.update(XDG_CACHE_HOME=str(read_only / "xdg"), HF_DATASETS_CACHE=str(tmp_path / "datasets"))
    done = subprocess.run([*_unprivileged(), *CLI, "run", "image-text", "max_steps=1", "output_dir=out"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    (line,) = errors(done.stderr)
    assert f"cannot write the cache folder '{read_only / 'xdg'}' (Permission denied; it comes from " \
           f"XDG_CACHE_HOME={read_only / 'xdg'}); set XDG_CACHE_HOME= to a folder" in line
    assert not (tmp_path / "out").exists()


def test_an_output_dir_inside_the_package_folder_is_refused(tmp_path, capfd):
    """A run wrote its model into contrastkit's own recipes folder (the checkout, for an editable install; else
    site-packages), where a reinstall replaces it. Refused before any work, nothing created there."""
    import contrastkit.recipes

    inside = Path(next(iter(contrastkit.recipes.__path__))) / "my-run"
    line = _refused(["run", "text", f"data={pairs(tmp_path)}", f"output_dir={inside}"], capfd)
    assert "is inside contrastkit's own package folder" in line and "output_dir=~/contrastkit-runs/my-run" in line
    assert not inside.exists()


def test_an_unwritable_datasets_cache_is_named_not_the_data_file(tmp_path):
    """HF_DATASETS_CACHE on a read-only place: every CSV run said "data file 'pairs.csv' could not be read as CSV:
    Permission denied", blaming a file that was fine."""
    read_only = tmp_path / "ro"
    read_only.mkdir(mode=0o555)
    env = {**ENV, "HF_DATASETS_CACHE": str(read_only / "ds")}
    done = subprocess.run([*_unprivileged(), *CLI, "run", "text", f"data={pairs(tmp_path)}", "output_dir=out"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    (line,) = errors(done.stderr)
    assert f"cannot write the cache folder '{read_only / 'ds'}" in line and "set HF_DATASETS_CACHE= to a folder" in \
        line and "could not be read" not in line, line
    assert not (tmp_path / "out").exists()
