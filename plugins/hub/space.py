"""``contrastkit push-demo``: a Gradio Space that runs the contrastkit demo for models on the Hub.

No package index serves contrastkit, so a Space cannot ``pip install contrastkit``. The Space ships the
contrastkit wheel among its own files, and its ``requirements.txt`` installs that wheel from the Space's
own URL (a Space build sees only ``requirements.txt`` while it installs, not the other files). A private
Space cannot download its own files while it builds: give it ``package=`` (a git or index requirement).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import field
from ..errors import UserError
from .connection import api_for, check_repo_id, hub_errors, is_space_model_id, timeouts

EXTRAS = "demo,image"
SOURCE_PARTS = ("pyproject.toml", "README.md", "LICENSE", "recipes", "plugins", "demo")


@dataclass
class PushDemoConfig:
    """Options of ``contrastkit push-demo``: which Hub models the Space compares."""

    model: str | None = field(None, "Hub id of the fine-tuned model the Space shows (required)")
    compare_to: str | None = field(None, "Hub id of a second model to compare with, e.g. the base model")
    private: bool = field(False, "create the Space as private (then pass package=, see below)")
    out_dir: str | None = field(None, "with --dry-run: folder to write the Space to (default: space-<name>)")
    title: str | None = field(None, "Space title (default: the Space name)")
    wheel: str | None = field(None, "contrastkit wheel to ship with the Space (default: built from this checkout)")
    package: str | None = field(None, "pip requirement for contrastkit instead of a shipped wheel, e.g. "
                                      "'contrastkit[demo,image] @ git+https://github.com/you/contrastkit@v0.1.0'")

    def validate(self) -> None:
        """A Space needs a model that lives on the Hub (it cannot see local folders) and a way to install us."""
        if not self.model:
            raise UserError("push-demo needs model=REPO_ID, e.g. model=user/my-model (push it first with "
                            "'contrastkit push OUTPUT_DIR user/my-model')")
        for name in ("model", "compare_to"):
            value = getattr(self, name)
            if value and not is_space_model_id(value):
                raise UserError(f"{name}='{value}' is not a Hub model id; a Space cannot read local folders, "
                                f"so push it first ('contrastkit push {value} user/NAME') and pass {name}=user/NAME")
        if self.wheel and self.package:
            raise UserError("pass either wheel= (shipped with the Space) or package= (installed from elsewhere), "
                            "not both")
        if self.wheel and not (Path(self.wheel).is_file() and self.wheel.endswith(".whl")):
            raise UserError(f"wheel='{self.wheel}' is not a .whl file; build one with 'pip wheel --no-deps .' or "
                            f"leave wheel= out to build it from this checkout")
        if self.private and not self.package:
            raise UserError("a private Space cannot download its own files while it builds, so it cannot install "
                            "the shipped contrastkit wheel; pass package='contrastkit[demo,image] @ git+https://...' "
                            "(a repository or index the Space can reach), or make the Space public")


def push_demo(space_id: str, cfg: PushDemoConfig, dry_run: bool = False) -> str:
    """Create (or update) a Gradio Space that runs the contrastkit demo; with dry_run, write it locally."""
    check_repo_id(space_id)
    cfg.validate()
    if dry_run:
        out = Path(cfg.out_dir or f"space-{space_id.split('/')[-1]}").expanduser()
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise UserError(f"'{out}' already exists and is not empty; pass out_dir= to write somewhere else")
        files = space_files(space_id, cfg)
        out.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (out / name).write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        return str(out)
    from huggingface_hub import CommitOperationAdd, constants

    who: dict[str, str] = {}
    with hub_errors(space_id, "push-demo", "Space", who), timeouts():
        api = api_for(None, who)
        _check_models(api, cfg)  # before the wheel is built and the Space created
        files = space_files(space_id, cfg)
        api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=cfg.private, exist_ok=True)
        ops = [CommitOperationAdd(name, data if isinstance(data, bytes) else data.encode("utf-8"))
               for name, data in files.items()]
        api.create_commit(space_id, ops, repo_type="space", commit_message=f"contrastkit demo for {cfg.model}")
    return f"{constants.ENDPOINT}/spaces/{space_id}"


def _check_models(api: Any, cfg: PushDemoConfig) -> None:
    """The Space loads its models from the Hub when it starts: a model that is not there would only show as a
    crashed Space, and a private one needs a token the Space does not have unless the user adds it."""
    from huggingface_hub.errors import RepositoryNotFoundError

    for name in ("model", "compare_to"):
        value = getattr(cfg, name)
        if not value or "/" not in value:  # the default model, resolved by the demo itself
            continue
        try:
            private = api.model_info(value).private
        except RepositoryNotFoundError:
            raise UserError(f"{name}='{value}' is not on the Hub (or your token cannot read it), so the Space could "
                            f"not load it; push it first ('contrastkit push OUTPUT_DIR {value}'), then run push-demo "
                            f"again") from None
        if private:
            print(f"note: {name}='{value}' is private: the Space loads it only with a token that can read it, saved "
                  f"as the Space secret HF_TOKEN (Space settings, 'Variables and secrets')", file=sys.stderr,
                  flush=True)


def source_root() -> Path | None:
    """The checkout contrastkit runs from (its pyproject.toml), or None for an install from a wheel."""
    import contrastkit.recipes

    root = Path(contrastkit.recipes.__file__).resolve().parents[1]
    project = root / "pyproject.toml"
    return root if project.is_file() and 'name = "contrastkit"' in project.read_text(encoding="utf-8") else None


def build_wheel(out_dir: Path) -> Path:
    """Build contrastkit's wheel from this checkout into ``out_dir`` (a copy is built, the checkout is untouched)."""
    root = source_root()
    if root is None:
        raise UserError("this contrastkit was not installed from a source checkout, so push-demo cannot build its "
                        "wheel; pass wheel=PATH.whl or package='contrastkit[demo,image] @ git+https://...'")
    with tempfile.TemporaryDirectory(prefix="contrastkit-src-") as tmp:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for part in SOURCE_PARTS:
            src = root / part
            if src.is_dir():
                shutil.copytree(src, Path(tmp) / part, ignore=ignore)
            elif src.is_file():
                shutil.copy2(src, Path(tmp) / part)
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out_dir),
               tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(out_dir.glob("contrastkit-*.whl"))
    if proc.returncode or not wheels:
        last = (proc.stderr.strip().splitlines() or ["no wheel was written"])[-1]
        raise UserError(f"building the contrastkit wheel for the Space failed ({last[:200]}); pass wheel=PATH.whl "
                        f"or package=REQUIREMENT")
    return wheels[-1]


def space_files(space_id: str, cfg: PushDemoConfig) -> dict[str, str | bytes]:
    """The Space's files (name -> text or bytes): app.py, requirements.txt, README.md with Space front matter,
    and, unless ``cfg.package`` names another source, the contrastkit wheel that requirements.txt installs."""
    from importlib.metadata import version

    import yaml
    from huggingface_hub import constants

    ck_version = version("contrastkit")
    try:
        gradio_version = version("gradio")
    except Exception:  # noqa: BLE001 - gradio is optional locally; the Space installs its own
        gradio_version = None
    files: dict[str, str | bytes] = {}
    if cfg.package:
        requirement = cfg.package
    else:
        with tempfile.TemporaryDirectory(prefix="contrastkit-wheel-") as tmp:
            wheel = Path(cfg.wheel) if cfg.wheel else build_wheel(Path(tmp))
            files[wheel.name] = wheel.read_bytes()
        requirement = f"contrastkit[{EXTRAS}] @ {constants.ENDPOINT}/spaces/{space_id}/resolve/main/{wheel.name}"
    title = cfg.title or space_id.split("/")[-1]
    files["app.py"] = (
        f'"""Gradio Space: the contrastkit similarity demo for {cfg.model}."""\n\n'
        "from contrastkit.demo.app import DemoConfig, build_demo\n\n"
        f"demo = build_demo(DemoConfig(model={cfg.model!r}, compare_to={cfg.compare_to!r}))\n\n"
        'if __name__ == "__main__":\n'
        "    demo.launch()\n"
    )
    pins = f"gradio=={gradio_version}\n" if gradio_version else ""
    files["requirements.txt"] = f"{requirement}\n{pins}"
    meta: dict[str, Any] = {"title": title[:60], "emoji": "🔎", "colorFrom": "indigo", "colorTo": "blue",
                            "sdk": "gradio", "app_file": "app.py", "pinned": False, "license": "apache-2.0",
                            "short_description": "Compare text or image similarity with contrastkit models"[:60],
                            "models": [m for m in (cfg.model, cfg.compare_to) if m and "/" in m],
                            "tags": ["contrastkit", "sentence-similarity", "embeddings"]}
    if gradio_version:
        meta["sdk_version"] = gradio_version
    files["README.md"] = (
        f"---\n{yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)}---\n\n# {title}\n\n"
        f"Similarity demo for [{cfg.model}]({constants.ENDPOINT}/{cfg.model})"
        + (f", compared with [{cfg.compare_to}]({constants.ENDPOINT}/{cfg.compare_to})" if cfg.compare_to else "")
        + f".\n\nCreated with `contrastkit push-demo` (contrastkit {ck_version}).\n")
    return files
