"""Loading any output back, from a folder or the Hub: the same model as the local folder, or one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.plugins.hub.conftest import OUTPUT_FILES, python_code, snippet_runs


def test_with_the_hub_unreachable_a_cached_model_loads_from_the_cache_and_a_missing_one_fails_at_once(
        hub_server, text_output):
    """One user's process: both models loaded while the Hub answers, then again after it went away."""
    assert run_cli("push", text_output, "alice/faq-model").returncode == 0
    code = """
import json, sys
from contrastkit.plugins.errors import UserError
from contrastkit.plugins.st.models import load_model
for attempt in ("online", "offline"):
    if attempt == "offline":
        print("the Hub may go", flush=True)
        sys.stdin.readline()  # the test stops the Hub, then says go on
        print("-- offline --", file=sys.stderr, flush=True)
    for name in ("alice/faq-model", "alice/never-pushed"):
        try:
            print(json.dumps(load_model(name).encode(["how do I reset it?"]).tolist()), flush=True)
        except UserError as exc:
            print(json.dumps(str(exc)), flush=True)
"""
    user = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        online = [user.stdout.readline() for _ in range(3)]  # downloads alice/faq-model into the cache
        assert online[-1] == "the Hub may go\n", online
        cached = json.loads(online[0])
        hub_server.stop()  # the Hub refuses connections from now on
        stdout, stderr = user.communicate("go on\n", timeout=600)
    finally:
        user.kill()
    assert user.returncode == 0, stderr[-2000:]
    loaded, missing = (json.loads(line) for line in stdout.strip().splitlines()[-2:])
    assert np.allclose(loaded, cached, atol=1e-6)
    assert missing.startswith("model 'alice/never-pushed' is not a local folder and cannot be downloaded")
    offline = stderr.split("-- offline --", 1)[1]
    notes = [line for line in offline.splitlines() if line.startswith("note: the Hub")]
    assert len(notes) == 1 and "model 'alice/faq-model' was read from the local cache" in notes[0]
    assert "Retrying" not in offline  # huggingface_hub's minute of retries per file is skipped


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
    r = python_code(code)
    assert r.returncode == 0, r.stderr[-2000:]
    kind, remote, local, direct = json.loads(r.stdout.strip().splitlines()[-1])
    assert kind == "ImageEncoder" and np.allclose(remote, local, atol=1e-6)
    assert np.allclose(direct, local, atol=1e-6)



def test_private_repo_on_a_branch_is_invisible_to_others(hub_server, text_output, tmp_path):
    r = run_cli("push", text_output, "alice/secret", "private=true", "revision=dev")
    assert r.returncode == 0, r.stderr
    assert set(hub_server.files("alice/secret", "main")) == {".gitattributes"}  # main untouched
    assert OUTPUT_FILES <= set(hub_server.files("alice/secret", "dev"))
    card = hub_server.files("alice/secret", "dev")["README.md"]  # its snippet loads the branch, not the empty main
    assert b'model = SentenceTransformer("alice/secret", revision="dev")' in card
    assert snippet_runs(card, tmp_path / "elsewhere").returncode == 0
    code = """
from contrastkit.plugins import hub
from contrastkit.plugins.errors import UserError
try:
    hub.load("alice/secret", revision="dev")
    print("LOADED")
except UserError as exc:
    print("ERROR", exc)
"""
    owner = python_code(code)
    assert owner.stdout.strip().splitlines()[-1] == "LOADED", owner.stderr[-2000:]
    # bob, on his own machine (own cache): the private repo does not exist for him
    other = python_code(code, HF_TOKEN=hub_server.other_token, HF_HOME=str(tmp_path / "bob-home"))
    assert "ERROR Hub repo 'alice/secret' was not found (or is private)" in other.stdout, other.stderr[-2000:]



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
    with pytest.raises(UserError, match=r"no folder 'me/x.git' exists, and 'me/x.git' is not a Hub repo id; write"):
        hub.load("me/x.git")  # refused by the Hub's rules before any request, not "check your connection"
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

def test_load_passes_the_model_class_its_own_options_and_names_those_it_lacks(text_output, sparse_output,
                                                                              image_output):
    """``truncate_dim=`` reaches the SentenceTransformer (a Matryoshka user's first question); an option the class
    does not take is one line naming the ones it does, and an image model takes none."""
    from contrastkit.plugins import hub
    from contrastkit.plugins.errors import UserError

    full = hub.load(text_output)
    cut = hub.load(text_output, truncate_dim=8, device="cpu")
    assert cut.truncate_dim == 8 and cut.encode(["a question"]).shape == (1, 8)
    assert np.allclose(cut.encode(["a question"]), full.encode(["a question"])[:, :8], atol=1e-6)
    assert hub.load(sparse_output, max_active_dims=3).encode(["a question"]).coalesce().values().numel() <= 3
    with pytest.raises(UserError, match=r"is a SparseEncoder, which takes no truncate_dim=; its options are "
                                        r".*max_active_dims.*") as err:
        hub.load(sparse_output, truncate_dim=8)
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match=r"is a SentenceTransformer, which takes no truncate_dims=.* Did you mean "
                                        r"'truncate_dim'\?"):
        hub.load(text_output, truncate_dims=8)
    with pytest.raises(UserError, match=r"is an image model, which takes no device; load it without"):
        hub.load(image_output, device="cpu")
