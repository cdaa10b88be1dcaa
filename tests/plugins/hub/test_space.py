"""``contrastkit push-demo``: a Gradio Space that installs as the Hub builds it and serves the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.plugins.hub.conftest import one_line_error, python_code


def test_push_demo_dry_run_builds_the_demo_and_push_creates_a_gradio_space(hub_server, text_output, tmp_path):
    assert run_cli("push", text_output, "alice/faq-model").returncode == 0
    space = tmp_path / "space"
    r = run_cli("push-demo", "alice/faq-demo", "model=alice/faq-model", "compare_to=alice/faq-model",
                f"out_dir={space}", "--dry-run")
    assert r.returncode == 0, r.stderr
    from importlib.metadata import version

    wheel = f"contrastkit-{version('contrastkit')}-py3-none-any.whl"
    assert sorted(p.name for p in space.iterdir()) == ["README.md", "app.py", wheel, "requirements.txt"]

    from huggingface_hub import SpaceCard

    card = SpaceCard.load(space / "README.md")
    assert card.data.sdk == "gradio" and card.data.app_file == "app.py"
    # A Space build sees only requirements.txt, so the wheel is installed from the Space's own URL.
    assert (space / "requirements.txt").read_text().startswith(
        f"contrastkit[demo,image] @ {hub_server.url}/spaces/alice/faq-demo/resolve/main/{wheel}\n")
    # The Space's app.py, run as the Space would: it loads the pushed model from the Hub and builds `demo`.
    code = f"""
import runpy, gradio as gr
ns = runpy.run_path({str(space / 'app.py')!r})
print(type(ns["demo"]).__name__, isinstance(ns["demo"], gr.Blocks))
"""
    r = python_code(code)
    assert r.stdout.strip().splitlines()[-1] == "Blocks True", r.stderr[-2000:]
    assert any("/alice/faq-model/resolve/" in q for q in hub_server.requests)

    r = run_cli("push-demo", "alice/faq-demo", "model=alice/faq-model")
    assert r.returncode == 0, r.stderr
    assert f"{hub_server.url}/spaces/alice/faq-demo" in r.stdout
    repo = hub_server.repos[("space", "alice/faq-demo")]
    assert repo.sdk == "gradio"
    assert {"app.py", "requirements.txt", "README.md", wheel} <= set(hub_server.files("alice/faq-demo",
                                                                                     repo_type="space"))
    # a model the Space could not load when it starts: refused before the wheel is built or the Space created
    one_line_error(run_cli("push-demo", "alice/x", "model=alice/faq-model", "compare_to=alice/never-pushed"),
                   "compare_to='alice/never-pushed' is not on the Hub", "push it first")
    assert ("space", "alice/x") not in hub_server.repos
    one_line_error(run_cli("push-demo", "alice/x", "--dry-run", f"out_dir={tmp_path / 'x'}"), "model=REPO_ID")
    one_line_error(run_cli("push-demo", "alice/x", f"model={text_output}", "--dry-run"), "push it first")



def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



@pytest.mark.slow
def test_a_pushed_space_installs_in_a_fresh_venv_and_serves(hub_server, text_output, tmp_path):
    """The Space as the Hub builds it: only requirements.txt, installed with pip into a new virtualenv, then
    app.py started. Covered for real: the wheel shipped with the Space and fetched from the Space's own URL,
    contrastkit's light dependencies from the registries, and app.py serving over HTTP. To keep the test fast,
    the heavy libraries (torch, gradio, sentence-transformers, ...) come from this environment through a .pth
    path (pip sees them as installed); a second fresh venv checks that pip resolves all of them from the
    registries (``--dry-run``), without downloading and installing them."""
    import time

    import httpx
    import torch

    assert run_cli("push", text_output, "alice/faq-model").returncode == 0
    r = run_cli("push-demo", "alice/faq-demo", "model=alice/faq-model")
    assert r.returncode == 0, r.stderr
    space = tmp_path / "space"
    space.mkdir()
    for name, data in hub_server.files("alice/faq-demo", repo_type="space").items():
        (space / name).write_bytes(data)

    venv = tmp_path / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True,
                          capture_output=True, text=True).stdout.strip()
    (Path(site) / "heavy_deps.pth").write_text(str(Path(torch.__file__).parents[1]) + "\n")
    pip = subprocess.run([py, "-m", "pip", "install", "-r", "requirements.txt"], cwd=space, capture_output=True,
                         text=True, timeout=900)
    assert pip.returncode == 0, pip.stdout[-2000:] + pip.stderr[-2000:]
    assert "/spaces/alice/faq-demo/resolve/main/contrastkit-" in " ".join(hub_server.requests)
    # what the .pth lent: in a second fresh venv, pip resolves every requirement of the Space from the registries
    # (torch, gradio, sentence-transformers, ... included) without installing them
    bare = tmp_path / "bare"
    subprocess.run([sys._base_executable, "-m", "venv", str(bare)], check=True, timeout=300)
    report = tmp_path / "report.json"
    dry = subprocess.run([bare / "bin" / "python", "-m", "pip", "install", "--dry-run", "--report", str(report), "-r",
                          "requirements.txt"], cwd=space, capture_output=True, text=True, timeout=900)
    assert dry.returncode == 0, dry.stdout[-2000:] + dry.stderr[-2000:]
    resolved = {i["metadata"]["name"].lower() for i in json.loads(report.read_text())["install"]}
    assert {"contrastkit", "torch", "gradio", "sentence-transformers", "lightly"} <= resolved, sorted(resolved)
    where = subprocess.run([py, "-c", "import contrastkit.demo.app as a; print(a.__file__)"], cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(site), where  # the Space's wheel, not this checkout

    port = _free_port()
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False"}
    app = subprocess.Popen([py, "app.py"], cwd=space, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            deadline = time.time() + 300
            while True:
                assert app.poll() is None, app.stderr.read()[-2000:]
                try:
                    if http.get("/").status_code == 200:
                        break
                except httpx.TransportError:
                    assert time.time() < deadline, "the Space's app.py did not start serving"
                    time.sleep(1)
            event = http.post("/gradio_api/call/compare_texts", json={"data": ["boil pasta", "cook noodles"]})
            stream = http.get(f"/gradio_api/call/compare_texts/{event.json()['event_id']}").text
    finally:
        app.terminate()
        app.wait(timeout=30)
    assert "event: complete" in stream and 'data-model=\\"fine-tuned\\"' in stream, stream[-1000:]



def test_push_demo_ships_a_given_wheel_or_uses_a_given_requirement_and_refuses_bad_ones(tmp_path):
    wheel = tmp_path / "dist" / "contrastkit-0.1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(b"PK-not-really-a-wheel-but-shipped-as-is")
    out = tmp_path / "with-wheel"
    r = run_cli("push-demo", "alice/demo", "model=alice/m", f"wheel={wheel}", f"out_dir={out}", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert (out / wheel.name).read_bytes() == wheel.read_bytes()
    assert f"/spaces/alice/demo/resolve/main/{wheel.name}" in (out / "requirements.txt").read_text()

    out = tmp_path / "with-package"
    git = "contrastkit[demo,image] @ git+https://example.org/you/contrastkit@v0.1.0"
    r = run_cli("push-demo", "alice/demo", "model=alice/m", f"package={git}", "private=true", f"out_dir={out}",
                "--dry-run")
    assert r.returncode == 0, r.stderr
    assert (out / "requirements.txt").read_text().splitlines()[0] == git
    assert not list(out.glob("*.whl"))

    one_line_error(run_cli("push-demo", "alice/demo", "model=alice/m", "private=true", "--dry-run",
                            f"out_dir={tmp_path / 'p'}"), "private Space", "package=")
    one_line_error(run_cli("push-demo", "alice/demo", "model=alice/m", f"wheel={tmp_path / 'x.zip'}", "--dry-run",
                            f"out_dir={tmp_path / 'w'}"), "x.zip", "not a .whl file")
    one_line_error(run_cli("push-demo", "alice/demo", "model=alice/m", f"wheel={wheel}", f"package={git}",
                            "--dry-run", f"out_dir={tmp_path / 'b'}"), "either wheel=", "not both")
    assert not (tmp_path / "p").exists() and not (tmp_path / "w").exists() and not (tmp_path / "b").exists()
