"""The Hub tests' shared parts: a real local Hub-compatible server (tests/hub_server.py), real recipe outputs
trained once for the whole package, and helpers. No mocks of huggingface_hub: pushes and loads run in
subprocesses with HF_ENDPOINT/HF_TOKEN set, exactly as a user's shell would."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import run_cli
from tests.hub_server import HubServer, new_token

OUTPUT_FILES = {"README.md", "config.yaml", "metrics.json", "model.safetensors", "config.json", "modules.json"}


@pytest.fixture
def hub_server(tmp_path, monkeypatch):
    """A fresh local Hub with users alice (HF_TOKEN) and bob (``.other_token``); HF_HOME is a temp folder."""
    alice, bob = new_token("alice"), new_token("bob")
    server = HubServer({alice: "alice", bob: "bob"}).start()
    server.token, server.other_token = alice, bob
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_TOKEN", alice)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # own cache, no stored login
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):  # the shell's, if set
        monkeypatch.delenv(name, raising=False)
    yield server
    server.stop()



@pytest.fixture(scope="package")
def text_output(tmp_path_factory, tiny_text_model) -> Path:
    """A real text-recipe output (tiny BERT, 2 steps), trained once for this module."""
    root = tmp_path_factory.mktemp("hub-text")
    data = root / "pairs.csv"
    data.write_text("question,answer\n" + "".join(f"q{i} about topic {i % 5}?,answer {i} on topic {i % 5}.\n"
                                                   for i in range(24)))
    out = root / "out"
    r = run_cli("run", "text", f"data={data}", f"model={tiny_text_model}", "max_steps=2", "batch_size=8",
                "save_steps=1", f"output_dir={out}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "checkpoints").is_dir()  # so the test shows checkpoints are left out
    return out



@pytest.fixture(scope="package")
def image_output(tmp_path_factory) -> Path:
    """A real image-recipe output (tiny CNN, 16 px, 2 steps)."""
    root = tmp_path_factory.mktemp("hub-image")
    rng = np.random.default_rng(0)
    for c, color in enumerate([(200, 30, 30), (30, 30, 200)]):
        (root / "images" / f"class{c}").mkdir(parents=True)
        for i in range(8):
            pixels = np.clip(np.array(color) + rng.integers(-40, 40, (20, 20, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / "images" / f"class{c}" / f"{i}.png")
    out = root / "out"
    r = run_cli("run", "image", f"data={root / 'images'}", "backbone=tiny-cnn", "image_size=16", "batch_size=8",
                "max_steps=2", f"output_dir={out}")
    assert r.returncode == 0, r.stderr[-2000:]
    return out



def _st_output(root: Path, recipe: str, model: str, *extra: str) -> Path:
    """A real output of a sentence-transformers recipe other than text: tiny BERT, 2 steps on 24 pairs."""
    data = root / "pairs.csv"
    data.write_text("question,answer\n" + "".join(f"q{i} about topic {i % 5}?,answer {i} on topic {i % 5}.\n"
                                                   for i in range(24)))
    out = root / "out"
    r = run_cli("run", recipe, f"data={data}", f"model={model}", "max_steps=2", "batch_size=4", "save_steps=1",
                f"output_dir={out}", *extra, env={"HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "checkpoints").is_dir()
    return out



@pytest.fixture(scope="package")
def rerank_output(tmp_path_factory, tiny_text_model) -> Path:
    """A real rerank-recipe output (a CrossEncoder on the tiny BERT, which is also the retriever)."""
    return _st_output(tmp_path_factory.mktemp("hub-rerank"), "rerank", tiny_text_model,
                      f"retriever={tiny_text_model}")



@pytest.fixture(scope="package")
def sparse_output(tmp_path_factory, tiny_text_model) -> Path:
    """A real sparse-recipe output (a CSR head on the tiny BERT)."""
    return _st_output(tmp_path_factory.mktemp("hub-sparse"), "sparse", tiny_text_model, "active_dims=8")



def python_code(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **env})



def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()



def one_line_error(r: subprocess.CompletedProcess, *needles: str) -> str:
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("contrastkit: error: "), r.stderr
    assert "Traceback" not in r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]



def snippet_runs(readme: bytes, cwd: Path) -> subprocess.CompletedProcess:
    """The card's first Python snippet, run as a user who copied it from the Hub page would: elsewhere."""

    code = re.findall(r"```python\n(.*?)```", readme.decode(), re.DOTALL)[0]
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=600,
                          cwd=cwd)
