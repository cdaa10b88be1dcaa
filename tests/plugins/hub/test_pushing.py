"""Pushing an output folder (``contrastkit push``, ``push_to_hub=``): one commit, honest cards, one-line failures."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import assert_no_file_holds, run_cli
from tests.plugins.hub.conftest import OUTPUT_FILES, digest, one_line_error, python_code, snippet_runs


def test_second_push_is_a_new_commit_and_keeps_earlier_files(hub_server, text_output, tmp_path):
    r = run_cli("push", text_output, "alice/evolving")
    assert r.returncode == 0 and r.stdout.startswith(f"pushed {text_output} -> {r.stdout.split(' -> ')[-1]}"), r
    for again in ([], ["create_pr=true"]):  # the same files again: no empty commit, no empty pull request
        r = run_cli("push", text_output, "alice/evolving", *again)
        assert r.returncode == 0 and "pushed" not in r.stdout, (r.stdout, r.stderr)
        assert r.stderr.strip() == "note: 'alice/evolving' (main) already holds these files, so nothing was " \
            "committed" + (" and no pull request was opened" if again else ""), r.stderr
    assert hub_server.commit_count("alice/evolving") == 2
    assert not [b for b in hub_server.repos[("model", "alice/evolving")].branches if b.startswith("refs/pr/")]
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
    before = digest(text_output)
    # no token anywhere
    r = run_cli("push", text_output, "alice/m", env={"HF_TOKEN": ""})
    one_line_error(r, "no Hugging Face token", "HF_TOKEN", "hf auth login")
    # someone else's namespace, and someone else's existing repo
    assert run_cli("push", text_output, "bob/theirs", env={"HF_TOKEN": hub_server.other_token}).returncode == 0
    one_line_error(run_cli("push", text_output, "bob/theirs"), "(403)", "alice/theirs")
    one_line_error(run_cli("push", text_output, "bob/new-one"), "(403)")
    # the Hub goes away: a clear error; then it comes back and the same command succeeds
    hub_server.stop()
    one_line_error(run_cli("push", text_output, "alice/m"), "could not reach the Hub", "run the same push again")
    hub_server.start()
    r = run_cli("push", text_output, "alice/m")
    assert r.returncode == 0, r.stderr
    assert OUTPUT_FILES <= set(hub_server.files("alice/m"))
    # private=true cannot make the existing public repo private: refused, nothing more is published
    other = tmp_path / "other"
    shutil.copytree(text_output, other, ignore=shutil.ignore_patterns("checkpoints"))
    (other / "notes.md").write_text("meant to stay private\n")
    one_line_error(run_cli("push", other, "alice/m", "private=true"), "'alice/m' already exists and is public",
                   "private=true only makes new repos private")
    assert "notes.md" not in hub_server.files("alice/m") and hub_server.commit_count("alice/m") == 2
    assert not hub_server.repos[("model", "alice/m")].private
    # bad inputs, caught before any request
    one_line_error(run_cli("push", tmp_path / "missing", "alice/m"), "does not exist")
    one_line_error(run_cli("push", text_output, "not a repo id"), "is not a Hub repo id")
    one_line_error(run_cli("push", text_output, "https://huggingface.co/alice/m"), "is a URL", "write just 'alice/m'")
    # a wrong token= names token=, not the HF_TOKEN that is fine
    one_line_error(run_cli("push", text_output, "alice/m", "token=hf_not_a_real_one"), "the token given as token= "
                   "(401)", "leave token= out")
    assert digest(text_output) == before



def test_interrupted_push_leaves_no_partial_commit_and_a_retry_succeeds(hub_server, text_output):
    before = digest(text_output)
    hub_server.fail_next_commit()
    one_line_error(run_cli("push", text_output, "alice/flaky"), "was interrupted", "run the same push again")
    assert set(hub_server.files("alice/flaky")) == {".gitattributes"}  # nothing of the half-sent commit
    assert hub_server.commit_count("alice/flaky") == 1
    r = run_cli("push", text_output, "alice/flaky")
    assert r.returncode == 0, r.stderr
    assert OUTPUT_FILES <= set(hub_server.files("alice/flaky"))
    assert hub_server.commit_count("alice/flaky") == 2
    assert digest(text_output) == before



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



def test_push_to_hub_without_a_token_or_with_a_bad_id_is_refused_before_training(hub_server, tmp_path):
    data = tmp_path / "pairs.csv"
    data.write_text("anchor,positive\n" + "".join(f"q{i},a{i}\n" for i in range(20)))
    run = ["run", "text", f"data={data}", "max_steps=1", f"output_dir={tmp_path / 'out'}"]
    one_line_error(run_cli(*run, "push_to_hub=alice/m", env={"HF_TOKEN": ""}), "push_to_hub=alice/m needs a Hugging "
                    "Face token", "HF_TOKEN")
    one_line_error(run_cli(*run, "push_to_hub=true"), "push_to_hub=true names no repo", "push_to_hub=your-name/my-model")
    one_line_error(run_cli(*run, "push_to_hub=me/x.git"), "push_to_hub='me/x.git' is not a Hub repo id", "user/name")
    assert not (tmp_path / "out").exists()  # refused before the output folder, let alone a model



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
    r = snippet_runs(readme, tmp_path / "elsewhere")
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
            line = one_line_error(run_cli("push", out, "alice/busy"), f"output folder '{out}' is in use by a run",
                                   f"PID {run.pid}", "contrastkit run text", "wait for it to finish")
            assert "is not a contrastkit output" not in line
            assert run.poll() is None
        finally:
            run.kill()
            run.wait()
    # killed before saving a model: neither folder is pushed, not even the earlier run's model that overwrite=true
    # left in the second one (its card and weights are not this run's)
    for out, earlier in ((tmp_path / "first", False), (finished, True)):
        assert (out / "model.safetensors").is_file() == earlier
        line = one_line_error(run_cli("push", out, "alice/busy"), f"output folder '{out}' holds a text run that has "
                              "not saved its model yet (it stopped", "then push")
        assert ("the model files there are an earlier run's" in line) == earlier
    assert ("model", "alice/busy") not in hub_server.repos
    from contrastkit.plugins import hub
    from contrastkit.plugins.errors import UserError

    with pytest.raises(UserError, match="holds a text run that has not saved its model yet"):  # not "no modules.json"
        hub.load(str(tmp_path / "first"))


def test_bad_repo_ids_are_refused_before_training_and_a_failed_push_says_how_to_finish(hub_server, tiny_text_model,
                                                                                     tmp_path):
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.hub import check_push_target

    data = tmp_path / "pairs.csv"
    data.write_text("anchor,positive\n" + "".join(f"q{i},a{i}\n" for i in range(20)))
    out = tmp_path / "out"
    run = ["run", "text", f"data={data}", f"model={tiny_text_model}", "max_steps=1", "batch_size=4",
           f"output_dir={out}"]
    one_line_error(run_cli(*run, "push_to_hub=alice/model.git"), "push_to_hub='alice/model.git' is not a Hub repo id")
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

ST_CLASSES = {"text": "SentenceTransformer", "rerank": "CrossEncoder", "sparse": "SparseEncoder"}


def test_pushed_models_load_elsewhere_as_the_local_folder_does_and_each_card_loads_its_own_repo(
        hub_server, text_output, rerank_output, sparse_output, tmp_path):
    """Text, rerank and sparse outputs, each pushed to two repos: the Hub holds the folder's files (no checkpoints,
    one commit) and a card whose usage snippet loads that repo; elsewhere, plain sentence-transformers, hub.load and
    the card's snippet give what the local folder gives. The local folder is left as it was."""
    outputs = {"text": text_output, "rerank": rerank_output, "sparse": sparse_output}
    snippets = {}
    for recipe, output in outputs.items():
        cls, before = ST_CLASSES[recipe], digest(output)
        assert f'model = {cls}("' in (output / "README.md").read_text()  # the local card has ST's placeholder
        for repo in (f"alice/{recipe}-first", f"alice/{recipe}-second"):  # the same folder to two repos
            r = run_cli("push", output, repo)
            assert r.returncode == 0, r.stderr
            assert f"{hub_server.url}/{repo}/commit/" in r.stdout
            files = hub_server.files(repo)
            assert OUTPUT_FILES | {"config_sentence_transformers.json"} <= set(files)
            assert not [p for p in files if p.startswith("checkpoints/") or p.endswith((".pt", ".bin", ".lock"))]
            for path in (p for p in files if p.endswith(".safetensors")):  # the SparseAutoEncoder has its own
                assert files[path] == (output / path).read_bytes(), path
            assert hub_server.commit_count(repo) == 2  # repo creation + exactly one push commit
            assert f'model = {cls}("{repo}")'.encode() in files["README.md"]
        snippets[recipe] = re.findall(r"```python\n(.*?)```", files["README.md"].decode(), re.DOTALL)[0]
        assert digest(output) == before  # the push rewrote the Hub copy of the card only
    # A user elsewhere, with only the repo id: the card's snippet as copied from the Hub page, plain
    # sentence-transformers and hub.load, each against the local folder
    code = """
import json, sys
import sentence_transformers
from contrastkit.plugins import hub

texts = ["how do I reset it?", "answer 3 on topic 3.", "q1 about topic 1?", "answer 4 on topic 4."]

def outputs(model):
    if isinstance(model, sentence_transformers.CrossEncoder):
        return model.predict([(texts[0], texts[1]), (texts[2], texts[3])]).tolist()
    embeddings = model.encode(texts, convert_to_tensor=True)
    return (embeddings.to_dense() if embeddings.is_sparse or embeddings.is_sparse_csr else embeddings).tolist()

found = {}
for recipe, cls, local, snippet in json.loads(sys.argv[1]):
    repo, card = f"alice/{recipe}-second", {}
    exec(snippet, card)
    remote = hub.load(repo)
    found[recipe] = [type(remote).__name__, outputs(remote), outputs(getattr(sentence_transformers, cls)(repo)),
                     outputs(card["model"]), outputs(getattr(sentence_transformers, cls)(local))]
print(json.dumps(found))
"""
    args = json.dumps([(recipe, ST_CLASSES[recipe], str(out), snippets[recipe]) for recipe, out in outputs.items()])
    (tmp_path / "elsewhere").mkdir()
    r = subprocess.run([sys.executable, "-c", code, args], cwd=tmp_path / "elsewhere", capture_output=True, text=True,
                       timeout=600, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    found = json.loads(r.stdout.strip().splitlines()[-1])
    assert sorted(found) == sorted(outputs)
    for recipe, (kind, via_load, plain, via_card, local) in found.items():
        assert kind == ST_CLASSES[recipe], recipe
        for remote in (via_load, plain, via_card):
            assert np.allclose(remote, local, atol=1e-6), recipe
        assert np.count_nonzero(local) > 0, recipe


def _hub_dataset(hub_server, repo: str, **splits: int) -> None:
    """A dataset repo of question/answer pairs on the local Hub, e.g. ``train=30, test=7`` rows per split file."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub_server.url, token=hub_server.token)
    api.create_repo(repo, repo_type="dataset")
    for split, n in splits.items():
        rows = "".join(f"{repo} {split} question {i} about topic {i % 3}?,answer {i} on topic {i % 3}.\n"
                       for i in range(n))
        api.upload_file(path_or_fileobj=f"anchor,positive\n{rows}".encode(), path_in_repo=f"data/{split}.csv",
                        repo_id=repo, repo_type="dataset")


def test_a_text_run_on_a_hub_dataset_evaluates_on_its_test_split_names_it_on_the_card_and_pushes(
        hub_server, tiny_text_model, tmp_path):
    """data= and eval_data= naming one Hub dataset: training reads its train split, evaluation its test split; the
    card names the dataset; ``push_to_hub=`` pushes the finished output, checkpoints staying local."""
    from huggingface_hub import ModelCard

    _hub_dataset(hub_server, "alice/pairs", train=30, test=7)
    out = tmp_path / "out"
    r = run_cli("run", "text", "data=alice/pairs", "eval_data=alice/pairs", f"model={tiny_text_model}", "max_steps=1",
                "batch_size=4", "save_steps=1", f"output_dir={out}", "push_to_hub=alice/text-model")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "held out: the 'test' split of 'alice/pairs' (splits: train, test); eval_split= picks another" in r.stdout
    assert "30 training rows, 7 held out" in r.stdout
    assert "also a training row" not in r.stdout
    assert f"pushed {out} -> {hub_server.url}/alice/text-model/commit/" in r.stdout  # the run says where it went
    card = ModelCard.load(out / "README.md")
    assert card.data.datasets == ["alice/pairs"]
    assert "#### alice/pairs" in card.text and "Unnamed Dataset" not in card.text
    assert "(https://huggingface.co/datasets/alice/pairs)" in card.text
    files = hub_server.files("alice/text-model")
    assert {"README.md", "model.safetensors", "metrics.json", "config.yaml"} <= set(files)
    assert not any(f.startswith("checkpoints/") for f in files) and (out / "checkpoints").is_dir()
    assert b'model = SentenceTransformer("alice/text-model")' in files["README.md"]


def test_rerank_and_sparse_cards_name_the_hub_datasets_they_were_trained_and_evaluated_on(hub_server, tiny_text_model,
                                                                                          tmp_path):
    """Both recipes through the Python API, in one process, on a training and an evaluation dataset from the Hub."""
    from huggingface_hub import HfApi, ModelCard

    _hub_dataset(hub_server, "alice/faq-train", train=24)
    subsets = "---\nconfigs:\n- config_name: faq\n  data_files: data/*.csv\n---\n"  # one subset, named
    HfApi(endpoint=hub_server.url, token=hub_server.token).upload_file(
        path_or_fileobj=subsets.encode(), path_in_repo="README.md", repo_id="alice/faq-train", repo_type="dataset")
    _hub_dataset(hub_server, "alice/faq-eval", train=6)
    code = f"""
from contrastkit.recipes import rerank, sparse
common = dict(data="alice/faq-train", eval_data="alice/faq-eval", model={tiny_text_model!r}, max_steps=1,
              batch_size=4)
rerank.run(**common, retriever={tiny_text_model!r}, output_dir={str(tmp_path / 'rerank')!r})
sparse.run(**common, subset="faq", active_dims=8, output_dir={str(tmp_path / 'sparse')!r})
"""
    r = python_code(code)
    assert r.returncode == 0, r.stderr[-2000:]
    for recipe, heading in (("rerank", "alice/faq-train"), ("sparse", "alice/faq-train (subset faq)")):
        card = ModelCard.load(tmp_path / recipe / "README.md")
        assert card.data.datasets == ["alice/faq-train", "alice/faq-eval"], recipe
        assert f"#### {heading}\n" in card.text and "Unnamed Dataset" not in card.text, recipe
        assert f"[{heading}](https://huggingface.co/datasets/alice/faq-train)" in card.text, recipe


def test_image_text_push_to_hub_after_a_run_has_a_card_whose_snippet_loads_the_repo_and_its_images(hub_server,
                                                                                                   tmp_path):
    """``push_to_hub=REPO_ID`` on the image-text recipe: checkpoints stay local; the card's snippet, copied from the
    Hub, loads this repo and the example images from it."""
    out = tmp_path / "out"
    r = run_cli("run", "image-text", "max_steps=1", "batch_size=8", f"output_dir={out}",
                "push_to_hub=alice/image-text-model")
    assert r.returncode == 0, r.stderr[-2000:]
    files = hub_server.files("alice/image-text-model")
    assert {"README.md", "model.safetensors", "metrics.json", "config.yaml"} <= set(files)
    assert not any(f.startswith("checkpoints/") for f in files) and (out / "checkpoints").is_dir()
    assert b'model = SentenceTransformer("alice/image-text-model")' in files["README.md"]
    assert f"'{hub_server.url}/alice/image-text-model/resolve/main/assets/image_0.jpg'".encode() in files["README.md"]
    r = snippet_runs(files["README.md"], tmp_path / "elsewhere")
    assert r.returncode == 0, r.stderr[-2000:]


def test_a_pull_request_opened_by_one_push_takes_the_next_push_with_revision_refs_pr(hub_server, text_output,
                                                                                     tmp_path):
    """create_pr=true opens refs/pr/1; revision=refs/pr/1 then commits to that pull request, as the Hub allows
    (it is no branch to create); main is left alone, and a pull request that does not exist is one line."""
    assert run_cli("push", text_output, "alice/reviewed").returncode == 0
    second = tmp_path / "second"
    shutil.copytree(text_output, second, ignore=shutil.ignore_patterns("checkpoints"))
    (second / "notes.md").write_text("v2\n")
    r = run_cli("push", second, "alice/reviewed", "create_pr=true")
    assert r.returncode == 0, r.stderr
    assert f"{hub_server.url}/alice/reviewed/discussions/1" in r.stdout
    (second / "notes.md").write_text("v2, after review\n")
    r = run_cli("push", second, "alice/reviewed", "revision=refs/pr/1", "commit_message=after review")
    assert r.returncode == 0, r.stderr
    assert hub_server.files("alice/reviewed", "refs/pr/1")["notes.md"] == b"v2, after review\n"
    assert hub_server.commit_count("alice/reviewed", "refs/pr/1") == 4  # creation, main's push, the PR's two
    assert "notes.md" not in hub_server.files("alice/reviewed")
    one_line_error(run_cli("push", second, "alice/reviewed", "revision=refs/pr/7"),
                   "'alice/reviewed' has no pull request refs/pr/7", "create_pr=true")


def test_a_checkpoint_folder_pushes_its_model_without_its_training_state(text_output):
    from contrastkit.plugins.hub import files_to_push

    checkpoint = max((text_output / "checkpoints").glob("checkpoint-*"))
    assert (checkpoint / "trainer_state.json").is_file() and (checkpoint / "optimizer.pt").is_file()
    files = files_to_push(checkpoint)
    assert {"model.safetensors", "modules.json", "README.md"} <= set(files)
    assert not [f for f in files if f.startswith(("trainer_state", "optimizer", "scheduler", "rng_state"))], files


def test_card_metadata_the_hub_rejects_is_one_line_naming_the_field(hub_server, text_output, tmp_path):
    """The Hub checks a card's YAML before the commit (a base_model that is a local path, as some tools write it):
    its complaint reaches the user, not just huggingface_hub's bare heading, and nothing is committed."""
    folder = tmp_path / "copy"
    shutil.copytree(text_output, folder, ignore=shutil.ignore_patterns("checkpoints"))
    card = (folder / "README.md").read_text()
    (folder / "README.md").write_text(card.replace("---\n", "---\nbase_model: /home/me/models/base\n", 1))
    one_line_error(run_cli("push", folder, "alice/m"), "the Hub rejected the README.md metadata of 'alice/m' "
                   '("base_model" with value "/home/me/models/base" is not valid', "fix the YAML block")
    assert set(hub_server.files("alice/m")) == {".gitattributes"}
