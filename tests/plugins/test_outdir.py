"""Whose output folder is it: what ``resume=true`` may continue, and what config.yaml repeats."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml


def test_resume_refuses_a_changed_training_setting_before_touching_the_folder(tmp_path):
    """The restored optimizer keeps the checkpoint's learning rate and parameter groups: a changed rate would be
    reported but never used, a changed freeze_embeddings ended in a traceback."""
    from contrastkit.plugins import outdir
    from contrastkit.plugins.config import resolve
    from contrastkit.plugins.errors import UserError
    from contrastkit.recipes import text

    folder = tmp_path / "run"
    folder.mkdir()
    outdir.write_record(folder, "text", resolve(text.Config, data="pairs.csv"))
    record = (folder / outdir.RECORD).read_bytes()
    for change, said in [
        ({"learning_rate": 0.5}, "the default learning_rate (no learning_rate=), not learning_rate=0.5"),
        ({"freeze_embeddings": False}, "freeze_embeddings=True, not freeze_embeddings=False"),
        ({"loss": "mnrl"}, "loss=auto, not loss=mnrl"),
        ({"columns": {"anchor": "answer", "positive": "question"}}, "columns={}, not columns={"),
        ({"mine_hard_negatives": False}, "the default mine_hard_negatives (no mine_hard_negatives=), not "),
        ({"batch_size": 64}, "the default batch_size (no batch_size=), not batch_size=64"),
    ]:
        with pytest.raises(UserError, match=rf"^resume=true but output_dir '.*run' was trained with .*{re.escape(said)}"):
            outdir.check_resume(folder, "text", resolve(text.Config, data="pairs.csv", resume=True, **change))
    assert (folder / outdir.RECORD).read_bytes() == record and sorted(p.name for p in folder.iterdir()) == \
        [outdir.RECORD]


@pytest.mark.parametrize("recipe", ["rerank", "sparse", "image", "image_text"])
def test_resume_refuses_another_batch_size_in_every_recipe_that_has_one(tmp_path, recipe):
    """Another batch size is another step: other rows per step and other steps per epoch. The record keeps the
    batch size as given (a runtime micro-batch of the out-of-memory fallback is never recorded)."""
    import importlib

    from contrastkit.plugins import outdir
    from contrastkit.plugins.config import resolve
    from contrastkit.plugins.errors import UserError

    config = importlib.import_module(f"contrastkit.recipes.{recipe}").Config
    trained = resolve(config, data="pairs.csv")
    outdir.write_record(tmp_path, recipe, trained)
    with pytest.raises(UserError, match=rf"was trained with batch_size={trained.batch_size}, not batch_size=2; "
                                        rf"resume with batch_size={trained.batch_size}, or choose"):
        outdir.check_resume(tmp_path, recipe, resolve(config, data="pairs.csv", batch_size=2, resume=True))


def test_config_yaml_repeats_a_resumed_run_as_a_fresh_one(tmp_path):
    """Fed back with --config, a resumed run's config.yaml must not continue (and rewrite) the newest other run."""
    from contrastkit.plugins.config import dump_yaml, resolve
    from contrastkit.recipes import text

    dump_yaml(resolve(text.Config, data="pairs.csv", resume=True, learning_rate=1e-4), tmp_path / "config.yaml")
    written = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert written["resume"] is False and written["overwrite"] is False and written["learning_rate"] == 1e-4


def test_config_yaml_names_the_files_it_read_so_it_repeats_from_any_folder(tmp_path, monkeypatch):
    """A relative data or model path is read from the folder the run started in; config.yaml writes it absolute, so
    ``--config`` from another folder reads the same files. A name that is no path here (a Hub id) stays as given."""
    from contrastkit.plugins.config import dump_yaml, resolve
    from contrastkit.recipes import text

    (tmp_path / "pairs.csv").write_text("anchor,positive\na,b\n", encoding="utf-8")
    (tmp_path / "my-model").mkdir()
    monkeypatch.chdir(tmp_path)
    dump_yaml(resolve(text.Config, data="pairs.csv", model="my-model", output_dir="out"), tmp_path / "config.yaml")
    written = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert Path(written["data"]).expanduser() == tmp_path.resolve() / "pairs.csv"
    assert Path(written["model"]).expanduser() == tmp_path.resolve() / "my-model"
    assert written["output_dir"] == "out"  # where to write: a repeat elsewhere writes there, as the user chose
    dump_yaml(resolve(text.Config, data="pairs.csv"), tmp_path / "config.yaml")
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["model"] == "all-MiniLM-L6-v2"



def test_metrics_json_names_home_paths_as_tilde(tmp_path, monkeypatch):
    """A push uploads metrics.json: a retriever or base model under the home folder must not name the user."""
    import json

    from contrastkit.plugins.report import write_metrics

    monkeypatch.setenv("HOME", str(tmp_path))
    write_metrics(tmp_path, {"retriever": str(tmp_path / "models" / "mine"), "top_k": 20, "before": {"m": 1.0}})
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written == {"retriever": "~/models/mine", "top_k": 20, "before": {"m": 1.0}}
