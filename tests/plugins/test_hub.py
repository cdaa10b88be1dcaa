"""Hub sharing against a real local Hub-compatible server (tests/hub_server.py): no mocks of huggingface_hub.

Pushes and loads run in subprocesses with HF_ENDPOINT/HF_TOKEN set, exactly as a user's shell would.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import assert_no_file_holds, run_cli
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


@pytest.fixture(scope="module")
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


@pytest.fixture(scope="module")
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


@pytest.fixture(scope="module")
def rerank_output(tmp_path_factory, tiny_text_model) -> Path:
    """A real rerank-recipe output (a CrossEncoder on the tiny BERT, which is also the retriever)."""
    return _st_output(tmp_path_factory.mktemp("hub-rerank"), "rerank", tiny_text_model,
                      f"retriever={tiny_text_model}")


@pytest.fixture(scope="module")
def sparse_output(tmp_path_factory, tiny_text_model) -> Path:
    """A real sparse-recipe output (a CSR head on the tiny BERT)."""
    return _st_output(tmp_path_factory.mktemp("hub-sparse"), "sparse", tiny_text_model, "active_dims=8")


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **env})


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


def _one_line_error(r: subprocess.CompletedProcess, *needles: str) -> str:
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("contrastkit: error: "), r.stderr
    assert "Traceback" not in r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_text_round_trip_with_plain_sentence_transformers(hub_server, text_output):
    r = run_cli("push", text_output, "alice/faq-model")
    assert r.returncode == 0, r.stderr
    assert f"{hub_server.url}/alice/faq-model/commit/" in r.stdout
    files = hub_server.files("alice/faq-model")
    assert OUTPUT_FILES <= set(files)
    assert not [p for p in files if p.startswith("checkpoints/") or p.endswith((".pt", ".bin", ".lock"))]
    assert files["model.safetensors"] == (text_output / "model.safetensors").read_bytes()
    assert hub_server.commit_count("alice/faq-model") == 2  # repo creation + exactly one push commit

    # A user elsewhere: only sentence-transformers and the repo id; the same embeddings as the local folder.
    code = f"""
import json
from sentence_transformers import SentenceTransformer
from contrastkit.plugins import hub
texts = ["how do I reset it?", "answer 3 on topic 3."]
remote = SentenceTransformer("alice/faq-model").encode(texts).tolist()
via_load = hub.load("alice/faq-model").encode(texts).tolist()
local = SentenceTransformer({str(text_output)!r}).encode(texts).tolist()
print(json.dumps([remote, via_load, local]))
"""
    r = _python(code)
    assert r.returncode == 0, r.stderr[-2000:]
    remote, via_load, local = (np.array(x) for x in json.loads(r.stdout.strip().splitlines()[-1]))
    assert np.allclose(remote, local, atol=1e-6) and np.allclose(via_load, local, atol=1e-6)


def test_with_the_hub_unreachable_a_cached_model_loads_from_the_cache_and_a_missing_one_fails_at_once(
        hub_server, text_output):
    assert run_cli("push", text_output, "alice/faq-model").returncode == 0
    code = """
import json
from contrastkit.plugins.errors import UserError
from contrastkit.plugins.st.models import load_model
for name in ("alice/faq-model", "alice/never-pushed"):
    try:
        print(json.dumps(load_model(name).encode(["how do I reset it?"]).tolist()))
    except UserError as exc:
        print(json.dumps(str(exc)))
"""
    online = _python(code)  # downloads alice/faq-model into the cache
    assert online.returncode == 0, online.stderr[-2000:]
    cached = json.loads(online.stdout.strip().splitlines()[-2])
    hub_server.stop()  # the Hub refuses connections from now on
    offline = _python(code)
    assert offline.returncode == 0, offline.stderr[-2000:]
    loaded, missing = (json.loads(line) for line in offline.stdout.strip().splitlines()[-2:])
    assert np.allclose(loaded, cached, atol=1e-6)
    assert missing.startswith("model 'alice/never-pushed' is not a local folder and cannot be downloaded")
    notes = [line for line in offline.stderr.splitlines() if line.startswith("note: the Hub")]
    assert len(notes) == 1 and "model 'alice/faq-model' was read from the local cache" in notes[0]
    assert "Retrying" not in offline.stderr  # huggingface_hub's minute of retries per file is skipped


def test_image_round_trip_through_hub_load(hub_server, image_output):
    r = run_cli("push", image_output, "alice/shapes-encoder", "commit_message=first image model")
    assert r.returncode == 0, r.stderr
    files = hub_server.files("alice/shapes-encoder")
    assert {"model.safetensors", "config.json", "README.md"} <= set(files)
    assert not [p for p in files if p.startswith("checkpoints/") or p.endswith(".ckpt")]
    assert files["README.md"].startswith(b"---\n")  # the Hub metadata block survived as written
    code = f"""
import json
from PIL import Image
from contrastkit.plugins import hub
from contrastkit.plugins.vision.encoder import ImageEncoder, load_encoder
imgs = [Image.new("RGB", (20, 20), (200, 30, 30)), Image.new("RGB", (24, 18), (30, 30, 200))]
remote = hub.load("alice/shapes-encoder")
direct = ImageEncoder.from_pretrained("alice/shapes-encoder")  # huggingface_hub's own download of the two files
print(json.dumps([type(remote).__name__, remote.embed(imgs).tolist(),
                  load_encoder({str(image_output)!r}).embed(imgs).tolist(), direct.embed(imgs).tolist()]))
"""
    r = _python(code)
    assert r.returncode == 0, r.stderr[-2000:]
    kind, remote, local, direct = json.loads(r.stdout.strip().splitlines()[-1])
    assert kind == "ImageEncoder" and np.allclose(remote, local, atol=1e-6)
    assert np.allclose(direct, local, atol=1e-6)


@pytest.mark.parametrize("recipe,cls", [("rerank", "CrossEncoder"), ("sparse", "SparseEncoder")])
def test_rerank_and_sparse_round_trip_through_hub_load(recipe, cls, hub_server, request):
    output = request.getfixturevalue(f"{recipe}_output")
    repo = f"alice/faq-{recipe}"
    r = run_cli("push", output, repo)
    assert r.returncode == 0, r.stderr
    files = hub_server.files(repo)
    assert OUTPUT_FILES | {"config_sentence_transformers.json"} <= set(files)
    assert not [p for p in files if p.startswith("checkpoints/") or p.endswith((".pt", ".bin", ".lock"))]
    for path in (p for p in files if p.endswith(".safetensors")):  # the SparseAutoEncoder has its own weights
        assert files[path] == (output / path).read_bytes(), path
    # Elsewhere: hub.load(repo_id) gives the class that saved the folder, scoring as the local folder does
    code = f"""
import json
import sentence_transformers
from contrastkit.plugins import hub
cls = sentence_transformers.{cls}
pairs = [("how do I reset it?", "answer 3 on topic 3."), ("q1 about topic 1?", "answer 4 on topic 4.")]

def outputs(model):
    if cls is sentence_transformers.CrossEncoder:
        return model.predict(pairs).tolist()
    return model.encode([t for p in pairs for t in p], convert_to_tensor=True).to_dense().tolist()

remote = hub.load({repo!r})
print(json.dumps([type(remote).__name__, outputs(remote), outputs(cls({repo!r})), outputs(cls({str(output)!r}))]))
"""
    r = _python(code)
    assert r.returncode == 0, r.stderr[-2000:]
    kind, via_load, plain, local = json.loads(r.stdout.strip().splitlines()[-1])
    assert kind == cls
    assert np.allclose(via_load, local, atol=1e-6) and np.allclose(plain, local, atol=1e-6)
    assert np.count_nonzero(local) > 0


def test_private_repo_on_a_branch_is_invisible_to_others(hub_server, text_output, tmp_path):
    r = run_cli("push", text_output, "alice/secret", "private=true", "revision=dev")
    assert r.returncode == 0, r.stderr
    assert set(hub_server.files("alice/secret", "main")) == {".gitattributes"}  # main untouched
    assert OUTPUT_FILES <= set(hub_server.files("alice/secret", "dev"))
    code = """
from contrastkit.plugins import hub
from contrastkit.plugins.errors import UserError
try:
    hub.load("alice/secret", revision="dev")
    print("LOADED")
except UserError as exc:
    print("ERROR", exc)
"""
    owner = _python(code)
    assert owner.stdout.strip().splitlines()[-1] == "LOADED", owner.stderr[-2000:]
    # bob, on his own machine (own cache): the private repo does not exist for him
    other = _python(code, HF_TOKEN=hub_server.other_token, HF_HOME=str(tmp_path / "bob-home"))
    assert "ERROR Hub repo 'alice/secret' was not found (or is private)" in other.stdout, other.stderr[-2000:]


def test_second_push_is_a_new_commit_and_keeps_earlier_files(hub_server, text_output, tmp_path):
    assert run_cli("push", text_output, "alice/evolving").returncode == 0
    second = tmp_path / "second"
    shutil.copytree(text_output, second)
    (second / "loss.png").unlink(missing_ok=True)
    (second / "notes.md").write_text("round two\n")
    r = run_cli("push", second, "alice/evolving", "commit_message=round two")
    assert r.returncode == 0, r.stderr
    files = hub_server.files("alice/evolving")
    assert files["notes.md"] == b"round two\n"
    assert "loss.png" in files or not (text_output / "loss.png").exists()  # push adds, it never deletes
    assert hub_server.commit_count("alice/evolving") == 3
    repo = hub_server.repos[("model", "alice/evolving")]
    assert repo.commits[repo.branches["main"]]["message"] == "round two"


def test_failures_are_one_line_and_never_touch_the_output(hub_server, text_output, tmp_path):
    before = _digest(text_output)
    # no token anywhere
    r = run_cli("push", text_output, "alice/m", env={"HF_TOKEN": ""})
    _one_line_error(r, "no Hugging Face token", "HF_TOKEN", "hf auth login")
    # someone else's namespace, and someone else's existing repo
    assert run_cli("push", text_output, "bob/theirs", env={"HF_TOKEN": hub_server.other_token}).returncode == 0
    _one_line_error(run_cli("push", text_output, "bob/theirs"), "(403)", "alice/theirs")
    _one_line_error(run_cli("push", text_output, "bob/new-one"), "(403)")
    # the Hub goes away: a clear error; then it comes back and the same command succeeds
    hub_server.stop()
    _one_line_error(run_cli("push", text_output, "alice/m"), "could not reach the Hub", "run the same push again")
    hub_server.start()
    r = run_cli("push", text_output, "alice/m")
    assert r.returncode == 0, r.stderr
    assert OUTPUT_FILES <= set(hub_server.files("alice/m"))
    # bad inputs, caught before any request
    _one_line_error(run_cli("push", tmp_path / "missing", "alice/m"), "does not exist")
    _one_line_error(run_cli("push", text_output, "not a repo id"), "is not a Hub repo id")
    assert _digest(text_output) == before


def test_interrupted_push_leaves_no_partial_commit_and_a_retry_succeeds(hub_server, text_output):
    before = _digest(text_output)
    hub_server.fail_next_commit()
    _one_line_error(run_cli("push", text_output, "alice/flaky"), "was interrupted", "run the same push again")
    assert set(hub_server.files("alice/flaky")) == {".gitattributes"}  # nothing of the half-sent commit
    assert hub_server.commit_count("alice/flaky") == 1
    r = run_cli("push", text_output, "alice/flaky")
    assert r.returncode == 0, r.stderr
    assert OUTPUT_FILES <= set(hub_server.files("alice/flaky"))
    assert hub_server.commit_count("alice/flaky") == 2
    assert _digest(text_output) == before


@pytest.mark.parametrize("damage", ["cut-weights", "config-not-json", "config-without-keys"])
@pytest.mark.parametrize("kind", ["text", "image"])
def test_a_damaged_output_folder_loads_as_one_line_error(kind, damage, text_output, image_output, tmp_path):
    from contrastkit.plugins import hub
    from contrastkit.plugins.errors import UserError

    folder = tmp_path / "copy"
    shutil.copytree(text_output if kind == "text" else image_output, folder,
                    ignore=shutil.ignore_patterns("checkpoints"))
    if damage == "cut-weights":
        weights = folder / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:1000])
        message = r"could not load .* its files look damaged"
    elif damage == "config-not-json":
        (folder / "config.json").write_text("{not json")
        message = r"could not load|config.json that is not a JSON object"
    else:
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({k: v for k, v in config.items()
                                                        if k in ("contrastkit_type", "model_type")}))
        message = r"could not load .*(damaged|contrastkit output)"
    with pytest.raises(UserError, match=message) as err:
        hub.load(folder)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("recipe", ["text", "rerank", "sparse"])
def test_a_folder_without_its_tokenizer_files_loads_as_one_line_error(recipe, request, tmp_path):
    from contrastkit.plugins import hub
    from contrastkit.plugins.errors import UserError

    folder = tmp_path / "copy"  # a half-written folder: transformers would build an empty tokenizer from the rest
    shutil.copytree(request.getfixturevalue(f"{recipe}_output"), folder, ignore=shutil.ignore_patterns("checkpoints"))
    removed = [p.unlink() or p.name for p in folder.glob("tokenizer*.json")]
    assert "tokenizer.json" in removed
    with pytest.raises(UserError, match=r"could not load .*no tokenizer files.* its files look damaged") as err:
        hub.load(folder)
    assert "\n" not in str(err.value)


def test_empty_names_and_files_are_named_as_such(text_output, tmp_path):
    from contrastkit.plugins import hub
    from contrastkit.plugins.errors import UserError

    with pytest.raises(UserError, match="no model given"):
        hub.load("  ")
    note = tmp_path / "notes.txt"
    note.write_text("hello")
    with pytest.raises(UserError, match="notes.txt' is a file; pass the output folder"):
        hub.push(note, "alice/x")


def test_invalid_card_or_pickle_only_weights_are_refused(hub_server, image_output, tmp_path):
    from contrastkit.plugins import hub
    from contrastkit.plugins.errors import UserError

    broken = tmp_path / "broken"
    shutil.copytree(image_output, broken, ignore=shutil.ignore_patterns("checkpoints"))
    (broken / "README.md").write_text("---\ntags: [unclosed\n---\n# card\n")
    with pytest.raises(UserError, match="invalid YAML metadata"):
        hub.push(broken, "alice/broken")
    assert ("model", "alice/broken") not in hub_server.repos  # refused before creating anything

    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text('{"model_type": "bert"}')
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(UserError, match="only pickle weights"):
        hub.load(pickled)


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
    r = _python(code)
    assert r.stdout.strip().splitlines()[-1] == "Blocks True", r.stderr[-2000:]
    assert any("/alice/faq-model/resolve/" in q for q in hub_server.requests)

    r = run_cli("push-demo", "alice/faq-demo", "model=alice/faq-model")
    assert r.returncode == 0, r.stderr
    assert f"{hub_server.url}/spaces/alice/faq-demo" in r.stdout
    repo = hub_server.repos[("space", "alice/faq-demo")]
    assert repo.sdk == "gradio"
    assert {"app.py", "requirements.txt", "README.md", wheel} <= set(hub_server.files("alice/faq-demo",
                                                                                     repo_type="space"))
    _one_line_error(run_cli("push-demo", "alice/x", "--dry-run", f"out_dir={tmp_path / 'x'}"), "model=REPO_ID")
    _one_line_error(run_cli("push-demo", "alice/x", f"model={text_output}", "--dry-run"), "push it first")


def test_the_token_appears_in_no_output_and_no_written_file(hub_server, text_output, tmp_path):
    outputs = []
    for args, env in [
        (("push", text_output, "alice/t"), {}),
        (("push", text_output, "bob/t"), {}),  # the 403 path
        (("push", text_output, "alice/t2", f"token={hub_server.token}"), {"HF_TOKEN": ""}),  # token on the CLI
        (("push-demo", "alice/t-demo", "model=alice/t", f"out_dir={tmp_path / 'space'}", "--dry-run"), {}),
    ]:
        r = run_cli(*args, env=env)
        outputs += [r.stdout, r.stderr]
    assert OUTPUT_FILES <= set(hub_server.files("alice/t2"))
    hub_server.stop()
    r = run_cli("push", text_output, "alice/t")
    outputs += [r.stdout, r.stderr]
    assert all(hub_server.token not in text for text in outputs)
    for folder in (text_output, tmp_path / "space", tmp_path / "hf-home"):
        assert_no_file_holds(folder, hub_server.token)


@pytest.mark.parametrize("recipe", ["text", "image-text"])
def test_push_to_hub_after_a_recipe_run(recipe, hub_server, tiny_text_model, tmp_path):
    """``push_to_hub=REPO_ID`` pushes the finished output; checkpoints stay local."""
    out = tmp_path / "out"
    args = ["run", recipe, "max_steps=1", "batch_size=8", f"output_dir={out}", f"push_to_hub=alice/{recipe}-model"]
    if recipe == "text":
        data = tmp_path / "pairs.csv"
        data.write_text("anchor,positive\n" + "".join(f"q{i},a{i}\n" for i in range(20)))
        args += [f"data={data}", f"model={tiny_text_model}"]
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr[-2000:]
    files = hub_server.files(f"alice/{recipe}-model")
    assert {"README.md", "model.safetensors", "metrics.json", "config.yaml"} <= set(files)
    assert not any(f.startswith("checkpoints/") for f in files) and (out / "checkpoints").is_dir()
    # the card's snippet, copied from the Hub, loads this repo (and the image-text example images from it)
    assert f'model = SentenceTransformer("alice/{recipe}-model")'.encode() in files["README.md"]
    if recipe == "image-text":
        assert f"'{hub_server.url}/alice/{recipe}-model/resolve/main/assets/image_0.jpg'".encode() in files["README.md"]
    r = _snippet_runs(files["README.md"], tmp_path / "elsewhere")
    assert r.returncode == 0, r.stderr[-2000:]


def test_push_to_hub_without_a_token_or_with_a_bad_id_is_refused_before_training(hub_server, tmp_path):
    data = tmp_path / "pairs.csv"
    data.write_text("anchor,positive\n" + "".join(f"q{i},a{i}\n" for i in range(20)))
    run = ["run", "text", f"data={data}", "max_steps=1", f"output_dir={tmp_path / 'out'}"]
    _one_line_error(run_cli(*run, "push_to_hub=alice/m", env={"HF_TOKEN": ""}), "push_to_hub=alice/m needs a Hugging "
                    "Face token", "HF_TOKEN")
    _one_line_error(run_cli(*run, "push_to_hub=true"), "push_to_hub='True' is not a Hub repo id", "user/name")
    assert not (tmp_path / "out").exists()  # refused before the output folder, let alone a model


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

    _one_line_error(run_cli("push-demo", "alice/demo", "model=alice/m", "private=true", "--dry-run",
                            f"out_dir={tmp_path / 'p'}"), "private Space", "package=")
    _one_line_error(run_cli("push-demo", "alice/demo", "model=alice/m", f"wheel={tmp_path / 'x.zip'}", "--dry-run",
                            f"out_dir={tmp_path / 'w'}"), "x.zip", "not a .whl file")
    _one_line_error(run_cli("push-demo", "alice/demo", "model=alice/m", f"wheel={wheel}", f"package={git}",
                            "--dry-run", f"out_dir={tmp_path / 'b'}"), "either wheel=", "not both")
    assert not (tmp_path / "p").exists() and not (tmp_path / "w").exists() and not (tmp_path / "b").exists()


def test_eval_data_from_the_hub_takes_its_evaluation_split(hub_server, tiny_text_model, tmp_path):
    """data= and eval_data= naming one Hub dataset: training reads its train split, evaluation its test split."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub_server.url, token=hub_server.token)
    api.create_repo("alice/pairs", repo_type="dataset")
    for split, n in (("train", 30), ("test", 7)):
        rows = "".join(f"{split} question {i}?,{split} answer {i}.\n" for i in range(n))
        api.upload_file(path_or_fileobj=f"anchor,positive\n{rows}".encode(), path_in_repo=f"data/{split}.csv",
                        repo_id="alice/pairs", repo_type="dataset")
    out = tmp_path / "out"
    r = run_cli("run", "text", "data=alice/pairs", "eval_data=alice/pairs", f"model={tiny_text_model}", "max_steps=1",
                "batch_size=4", f"output_dir={out}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "held out: the 'test' split of 'alice/pairs' (splits: train, test); eval_split= picks another" in r.stdout
    assert "30 training rows, 7 held out" in r.stdout
    assert "also a training row" not in r.stdout


def _snippet_runs(readme: bytes, cwd: Path) -> subprocess.CompletedProcess:
    """The card's first Python snippet, run as a user who copied it from the Hub page would: elsewhere."""
    import re

    code = re.findall(r"```python\n(.*?)```", readme.decode(), re.DOTALL)[0]
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=600,
                          cwd=cwd)


@pytest.mark.parametrize("recipe,cls", [("text", "SentenceTransformer"), ("rerank", "CrossEncoder"),
                                        ("sparse", "SparseEncoder")])
def test_a_pushed_card_loads_the_repo_it_was_pushed_to(recipe, cls, hub_server, request, tmp_path):
    output = request.getfixturevalue(f"{recipe}_output")
    before = _digest(output)
    assert f'model = {cls}("' in (output / "README.md").read_text()  # the local card has ST's placeholder
    for repo in (f"alice/{recipe}-first", f"alice/{recipe}-second"):  # the same folder to two repos
        assert run_cli("push", output, repo).returncode == 0
        readme = hub_server.files(repo)["README.md"]
        assert f'model = {cls}("{repo}")'.encode() in readme
        r = _snippet_runs(readme, tmp_path / "elsewhere")
        assert r.returncode == 0, r.stderr[-2000:]
    assert _digest(output) == before  # the push rewrote the Hub copy only


def test_an_image_card_loads_the_repo_it_was_last_pushed_to_and_names_its_knn_k(hub_server, image_output, tmp_path):
    from huggingface_hub import ModelCard

    rng = np.random.default_rng(1)
    for c, color in enumerate([(200, 30, 30), (30, 30, 200)]):  # enough images that some are held out for kNN
        (tmp_path / "images" / f"class{c}").mkdir(parents=True)
        for i in range(12):
            pixels = np.clip(np.array(color) + rng.integers(-40, 40, (20, 20, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images" / f"class{c}" / f"{i}.png")
    out = tmp_path / "out"
    r = run_cli("run", "image", f"data={tmp_path / 'images'}", "backbone=tiny-cnn", "image_size=16",
                "batch_size=8", "max_steps=1", "knn_k=3", f"output_dir={out}", "push_to_hub=alice/shapes-first")
    assert r.returncode == 0, r.stderr[-2000:]
    metric = ModelCard.load(out / "README.md").data.eval_results[0].metric_name
    assert metric == "kNN top-1 accuracy (k=3)"
    assert b'hub.load("alice/shapes-first")' in hub_server.files("alice/shapes-first")["README.md"]
    local = (out / "README.md").read_bytes()
    # the folder pushed again, elsewhere: that repo's card loads that repo, not the first one
    assert run_cli("push", out, "alice/shapes-second").returncode == 0
    readme = hub_server.files("alice/shapes-second")["README.md"]
    assert b'hub.load("alice/shapes-second")' in readme and b"alice/shapes-first" not in readme
    r = _snippet_runs(readme, tmp_path / "elsewhere")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "(1, " in r.stdout
    assert (out / "README.md").read_bytes() == local
    # a card that loads the folder itself (no push_to_hub) gets the repo on the Hub
    assert b'load_encoder(".")' in (image_output / "README.md").read_bytes()
    assert run_cli("push", image_output, "alice/shapes-third").returncode == 0
    readme = hub_server.files("alice/shapes-third")["README.md"]
    assert b'hub.load("alice/shapes-third")' in readme and b'load_encoder(".")' not in readme


def test_push_refuses_a_folder_a_run_is_still_writing(hub_server, tiny_text_model, text_output, tmp_path):
    import time

    from tests.conftest import CLI

    data = tmp_path / "pairs.csv"
    data.write_text("anchor,positive\n" + "".join(f"question {i}?,answer {i}.\n" for i in range(40)))
    finished = tmp_path / "finished"
    shutil.copytree(text_output, finished)
    # a first run (no model in the folder yet) and a run training a finished folder again
    for out, extra in ((tmp_path / "first", []), (finished, ["overwrite=true"])):
        run = subprocess.Popen([*CLI, "run", "text", f"data={data}", f"model={tiny_text_model}", "max_steps=100000",
                                "batch_size=4", "save_steps=100000", f"output_dir={out}", *extra],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            lock, deadline = out / ".contrastkit-lock", time.time() + 120
            while not (lock.is_file() and lock.read_text()) and time.time() < deadline and run.poll() is None:
                time.sleep(0.2)
            assert run.poll() is None, "the run ended before the push could meet it"
            line = _one_line_error(run_cli("push", out, "alice/busy"), f"output folder '{out}' is in use by a run",
                                   f"PID {run.pid}", "contrastkit run text", "wait for it to finish")
            assert "is not a contrastkit output" not in line
            assert run.poll() is None
        finally:
            run.kill()
            run.wait()
    assert ("model", "alice/busy") not in hub_server.repos


def test_bad_repo_ids_are_refused_before_training_and_a_failed_push_says_how_to_finish(hub_server, tiny_text_model,
                                                                                     tmp_path):
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.hub import check_push_target

    data = tmp_path / "pairs.csv"
    data.write_text("anchor,positive\n" + "".join(f"q{i},a{i}\n" for i in range(20)))
    out = tmp_path / "out"
    run = ["run", "text", f"data={data}", f"model={tiny_text_model}", "max_steps=1", "batch_size=4",
           f"output_dir={out}"]
    _one_line_error(run_cli(*run, "push_to_hub=alice/model.git"), "push_to_hub='alice/model.git' is not a Hub repo id")
    assert not out.exists()  # refused before the output folder, let alone a model
    for bad in ("alice/-model", "alice/model.", "alice/.hidden", "alice/" + "m" * 97, "alice/a--b"):
        with pytest.raises(UserError, match="is not a Hub repo id"):
            check_push_target(bad)
    check_push_target("alice/" + "m" * 96)
    # a push that fails after training (bob's namespace): the model is kept and one command finishes the job
    r = run_cli(*run, "push_to_hub=bob/model")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    line = r.stderr.strip().splitlines()[-1]  # after the run's progress lines
    assert line.startswith(f"contrastkit: error: the model was trained and saved in '{out}', but "
                           f"push_to_hub=bob/model failed: you cannot write to 'bob/model' (403)"), line
    assert f"'contrastkit push {out} bob/model' pushes it" in line
    assert (out / "model.safetensors").is_file() and not (out / ".contrastkit-lock").exists()
    assert run_cli("push", out, "alice/model").returncode == 0, line
    assert ("model", "bob/model") not in hub_server.repos


@pytest.mark.parametrize("recipe", ["text", "rerank", "sparse"])
def test_a_card_names_the_hub_datasets_it_was_trained_and_evaluated_on(recipe, hub_server, tiny_text_model, tmp_path):
    from huggingface_hub import HfApi, ModelCard

    api = HfApi(endpoint=hub_server.url, token=hub_server.token)
    for repo, n in (("alice/faq-train", 24), ("alice/faq-eval", 6)):
        api.create_repo(repo, repo_type="dataset")
        rows = "".join(f"{repo} question {i} about topic {i % 3}?,answer {i} on topic {i % 3}.\n" for i in range(n))
        api.upload_file(path_or_fileobj=f"anchor,positive\n{rows}".encode(), path_in_repo="data/train.csv",
                        repo_id=repo, repo_type="dataset")
    out = tmp_path / "out"
    extra = {"text": [], "rerank": [f"retriever={tiny_text_model}"], "sparse": ["active_dims=8"]}[recipe]
    r = run_cli("run", recipe, "data=alice/faq-train", "eval_data=alice/faq-eval", f"model={tiny_text_model}",
                "max_steps=1", "batch_size=4", f"output_dir={out}", *extra)
    assert r.returncode == 0, r.stderr[-2000:]
    card = ModelCard.load(out / "README.md")
    assert card.data.datasets == ["alice/faq-train", "alice/faq-eval"]
    assert "#### alice/faq-train" in card.text and "Unnamed Dataset" not in card.text
    assert "(https://huggingface.co/datasets/alice/faq-train)" in card.text
