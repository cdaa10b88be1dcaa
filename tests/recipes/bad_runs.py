"""Builders for the bad-input matrix's run cases: real finished runs of each recipe, busy folders, broken
copies of a recipe file. Each finished run is trained once per session and copied into the test's folder."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

_RUNS: dict[str, Path] = {}
_HELD: list = []  # locks held by this test process, so a run in it finds the folder busy


def _train(recipe: str, model_arg: str) -> Path:
    from contrastkit.recipes.cli import main

    base = Path(tempfile.mkdtemp(prefix=f"ck-{recipe}-"))
    atexit.register(shutil.rmtree, base, True)
    out = base / "run"
    if recipe == "text":
        data = base / "pairs.csv"
        data.write_text("anchor,positive\n" + "".join(f"q{i},a{i}\n" for i in range(8)), encoding="utf-8")
        args = ["run", "text", f"data={data}", model_arg, "min_steps=0"]
    elif recipe == "image":
        from PIL import Image

        (base / "pics").mkdir()
        for i in range(8):
            Image.new("RGB", (16, 16), (30 * i, 90, 160)).save(base / "pics" / f"img{i}.png")
        args = ["run", "image", f"data={base / 'pics'}", "backbone=tiny-cnn", "image_size=16"]
    else:
        args = ["run", "image-text"]
    assert main([*args, "max_steps=1", "save_steps=1", f"output_dir={out}"]) == 0
    return out


def finished(tmp: Path, recipe: str, model_arg: str) -> str:
    """A copy of a real, finished run of ``recipe`` (with its checkpoint) in ``tmp``."""
    if recipe not in _RUNS:
        _RUNS[recipe] = _train(recipe, model_arg)
    dest = tmp / f"{recipe}-run"
    shutil.copytree(_RUNS[recipe], dest)
    return str(dest)


def busy(tmp: Path) -> str:
    """A folder whose lock this process holds, as a run still writing there would."""
    from contrastkit.plugins.outdir import FolderLock

    folder = tmp / "busy"
    folder.mkdir()
    (folder / "notes.txt").write_text("the other run's")
    lock = FolderLock(folder)
    lock.acquire()
    _HELD.append(lock)
    return str(folder)


def stopped_early(tmp: Path, model_arg: str) -> str:
    """A folder left by a text run interrupted before its first checkpoint: its run record and nothing else."""
    import json

    folder = tmp / "stopped"
    (folder / "checkpoints").mkdir(parents=True)
    model = str(Path(model_arg.partition("=")[2]).resolve())
    (folder / ".contrastkit-run.json").write_text(json.dumps({"recipe": "text", "model": model}))
    return str(folder)


def not_contrastkit(tmp: Path) -> str:
    """Someone's own training folder: checkpoints, but no contrastkit record."""
    folder = tmp / "theirs"
    (folder / "checkpoints" / "checkpoint-10").mkdir(parents=True)
    (folder / "checkpoints" / "checkpoint-10" / "trainer_state.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"weights")
    return str(folder)


def _text_recipe() -> str:
    from contrastkit.recipes import recipe_source

    return recipe_source("text").read_text(encoding="utf-8").rstrip("\n")


#: the line a broken copy of the text recipe breaks on: one past the original's last line
BROKEN_LINE = len(_text_recipe().splitlines()) + 1


def broken_recipe(tmp: Path, kind: str) -> str:
    """A copy of the text recipe with a syntax error, a failing import or a NameError on line BROKEN_LINE."""
    line = {"syntax": "def broken(:", "import": "import no_such_module_abc", "name": "print(undefined_name)"}[kind]
    path = tmp / "mine.py"
    path.write_text(_text_recipe() + "\n" + line + "\n", encoding="utf-8")
    return str(path)
