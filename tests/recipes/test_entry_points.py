"""Third-party recipes through the ``contrastkit.recipes`` entry-point group, with real installed metadata.

Each test writes tiny distributions (``<name>.dist-info`` with METADATA and entry_points.txt, plus the module)
into a folder put on PYTHONPATH, then drives the real CLI in a subprocess.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from tests.conftest import run_cli

PLUGIN_RECIPE = '''
"""Count the words in a list of texts (a third-party recipe used by the tests)."""

from dataclasses import dataclass

from contrastkit.plugins.config import field, resolve
from contrastkit.plugins.errors import UserError

DESCRIPTION = "Count words in texts: an example plugin recipe."


@dataclass
class Config:
    """The word-count recipe's settings."""

    texts: list[str] = field(["a b", "c"], "texts to count")
    multiplier: int = field(1, "multiply every count by this")
    output_dir: str | None = field(None, "where to write metrics.json")

    def validate(self):
        if self.multiplier <= 0:
            raise UserError(f"config field 'multiplier' must be positive, got {self.multiplier}")


def run(cfg=None, **overrides):
    """Write metrics.json with the word count."""
    cfg = resolve(Config, cfg, **overrides)
    from contrastkit.plugins import report

    out = report.prepare_output_dir(cfg.output_dir, "wordcount", overwrite=False, resume=False)
    words = sum(len(t.split()) for t in cfg.texts) * cfg.multiplier
    metrics = {"before": {}, "after": {"words": words}, "before_after": {}}
    report.write_metrics(out, metrics)
    return report.Result(output_dir=out, metrics=metrics, config=cfg)
'''


def _distribution(site: Path, dist: str, entries: dict[str, str], modules: dict[str, str]) -> None:
    """Write an installed-looking distribution: ``dist-0.1.dist-info/{METADATA,entry_points.txt}`` + modules."""
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "\n".join(f"{name} = {module}" for name, module in entries.items())
    (info / "entry_points.txt").write_text(f"[contrastkit.recipes]\n{lines}\n")
    for rel, source in modules.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))


@pytest.fixture
def plugin_env(tmp_path) -> dict[str, str]:
    """One good plugin package and three broken ones, on PYTHONPATH for the subprocess."""
    site = tmp_path / "site"
    _distribution(site, "ck-wordcount", {"wordcount": "ck_wordcount.recipe"},
                  {"ck_wordcount/__init__.py": "", "ck_wordcount/recipe.py": PLUGIN_RECIPE})
    _distribution(site, "ck-broken", {"broken-import": "ck_broken.needs_missing_dep",
                                      "broken-crash": "ck_broken.crashes",
                                      "broken-norun": "ck_broken.no_run"},
                  {"ck_broken/__init__.py": "",
                   "ck_broken/needs_missing_dep.py": "import contrastkit_test_no_such_dependency\n",
                   "ck_broken/crashes.py": "raise RuntimeError('plugin blew up at import')\n",
                   "ck_broken/no_run.py": "class Config:\n    pass\n"})
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path}


def test_plugin_recipe_lists_shows_runs_and_copies(plugin_env, tmp_path):
    listed = run_cli("list", env=plugin_env)
    assert listed.returncode == 0, listed.stderr
    line = next(ln for ln in listed.stdout.splitlines() if ln.startswith("wordcount"))
    assert "Count words in texts" in line and "[from ck-wordcount]" in line

    shown = run_cli("show", "wordcount", env=plugin_env)
    assert shown.returncode == 0, shown.stderr
    assert "multiplier" in shown.stdout and "multiply every count" in shown.stdout

    out = tmp_path / "run"
    done = run_cli("run", "wordcount", "texts=[one two three, four]", "multiplier=2", f"output_dir={out}",
                   env=plugin_env)
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "metrics.json").read_text())["after"]["words"] == 8

    bad = run_cli("run", "wordcount", "multiplier=0", f"output_dir={tmp_path / 'bad'}", env=plugin_env)
    assert bad.returncode == 2 and "multiplier" in bad.stderr and "Traceback" not in bad.stderr

    copied = run_cli("cp", "wordcount", str(tmp_path / "mine.py"), env=plugin_env)
    assert copied.returncode == 0, copied.stderr
    assert (tmp_path / "mine.py").read_text() == textwrap.dedent(PLUGIN_RECIPE)
    again = run_cli("run", str(tmp_path / "mine.py"), f"output_dir={tmp_path / 'copy'}", env=plugin_env)
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "copy" / "metrics.json").read_text())["after"]["words"] == 3


def test_broken_plugins_are_one_line_each_and_builtins_still_work(plugin_env, tmp_path):
    listed = run_cli("list", env=plugin_env)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    lines = listed.stdout.splitlines()
    for name, reason in (("broken-import", "contrastkit_test_no_such_dependency"),
                         ("broken-crash", "plugin blew up at import"), ("broken-norun", "no run(cfg)")):
        hits = [ln for ln in lines if ln.startswith(name + " ")]
        assert len(hits) == 1 and "BROKEN" in hits[0] and reason in hits[0] and "[from ck-broken]" in hits[0]
    for builtin in ("text", "image", "image-text"):
        assert any(ln.startswith(builtin + " ") and "BROKEN" not in ln for ln in lines)

    for name in ("broken-import", "broken-crash", "broken-norun"):
        done = run_cli("run", name, env=plugin_env)
        assert done.returncode == 2, done.stderr[-1500:]
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert name in done.stderr

    from contrastkit.plugins.st.shapes import make_shapes

    csv_path = make_shapes(tmp_path / "data", n=8, seed=2)
    env = {**plugin_env, "CONTRASTKIT_CACHE": str(tmp_path / "cache")}
    out = tmp_path / "builtin"
    done = run_cli("run", "image-text", f"data={csv_path}", "max_steps=1", "batch_size=4", f"output_dir={out}",
                   env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "model.safetensors").exists()
