"""Runs in the user's environment: odd paths, a closed stdout pipe, the umask, a non-UTF-8 locale. Refusals are
checked before any model loads; one short real run covers what needs a process."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

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
