"""The image recipe end to end on tiny real image folders: every method, the outputs, and bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import assert_no_file_holds, run_cli

FAST = {"backbone": "tiny-cnn", "image_size": 16, "batch_size": 8, "max_steps": 2}


def _folder(root, per_class=10, size=20):
    """Two classes of small noisy images (red-ish and blue-ish) in class subfolders."""
    rng = np.random.default_rng(0)
    for c, color in enumerate([(200, 30, 30), (30, 30, 200)]):
        (root / f"class{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.clip(np.array(color) + rng.integers(-40, 40, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / f"class{c}" / f"{i}.png")
    return root


@pytest.fixture
def image_folder(tmp_path):
    return _folder(tmp_path / "images")


@pytest.mark.parametrize("method", ["simclr", "moco", "byol", "simsiam", "dino", "barlowtwins", "vicreg", "swav",
                                    "supcon"])
def test_every_method_trains_two_steps_and_loads_back(method, image_folder, tmp_path):
    from contrastkit.plugins.vision.encoder import load_encoder
    from contrastkit.recipes import image

    out = tmp_path / "out"
    result = image.run(data=str(image_folder), method=method, output_dir=str(out), **FAST)
    assert result.metrics["steps"] == 2 and result.metrics["method"] == method
    assert {"knn_top1"} == set(result.metrics["before_after"])
    for name in ("model.safetensors", "config.json", "README.md", "config.yaml", "metrics.json", "loss.png",
                 "embeddings_pca.png", "before_after.png"):
        assert (out / name).is_file(), name
    assert (out / "checkpoints" / "last.ckpt").is_file()
    encoder = load_encoder(out)
    emb = encoder.embed([Image.new("L", (30, 20), 100), str(image_folder / "class0" / "0.png")])
    assert emb.shape == (2, 32) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    # the saved weights are the trained ones: same embeddings as the in-memory model
    assert np.allclose(emb, result.model.embed([Image.new("L", (30, 20), 100), str(image_folder / "class0" / "0.png")]),
                       atol=1e-5)


def test_auto_picks_supcon_for_a_labelled_folder_and_simclr_for_an_unlabelled_one_and_says_why(image_folder,
                                                                                              tmp_path, capsys):
    import yaml
    from contrastkit.recipes import image

    labelled = image.run(data=str(image_folder), output_dir=str(tmp_path / "labelled"), **FAST)
    said = capsys.readouterr().out
    assert labelled.metrics["method"] == "supcon" and "supcon" in (labelled.output_dir / "README.md").read_text()
    assert "method: supcon (method=auto: 2 labelled classes, 9 or more training images each" in said
    # config.yaml and the run record name the method trained, so a rerun or resume=true trains the same
    assert yaml.safe_load((labelled.output_dir / "config.yaml").read_text())["method"] == "supcon"
    assert json.loads((labelled.output_dir / ".contrastkit-run.json").read_text())["method"] == "supcon"

    flat = tmp_path / "flat"  # the same images without their class subfolders
    flat.mkdir()
    for path in image_folder.rglob("*.png"):
        (flat / f"{path.parent.name}-{path.name}").write_bytes(path.read_bytes())
    unlabelled = image.run(data=str(flat), output_dir=str(tmp_path / "unlabelled"), **FAST)
    assert unlabelled.metrics["method"] == "simclr" and unlabelled.metrics["before_after"] == {}
    assert "method: simclr (method=auto: the images in local folder 'flat' have no labels" in capsys.readouterr().out

    forced = image.run(data=str(image_folder), method="simclr", output_dir=str(tmp_path / "forced"), **FAST)
    assert forced.metrics["method"] == "simclr"  # any named method still trains self-supervised
    assert "method: simclr (asked for; the labels are used only for the kNN evaluation)" in capsys.readouterr().out


def test_supcon_resumes_under_auto_and_refuses_another_method(image_folder, tmp_path):
    from contrastkit.plugins.errors import UserError
    from contrastkit.recipes import image

    out = tmp_path / "out"
    image.run(data=str(image_folder), output_dir=str(out), save_steps=1, **FAST)
    again = image.run(data=str(image_folder), output_dir=str(out), resume=True, **{**FAST, "max_steps": 3})
    assert again.metrics["steps"] == 3 and again.metrics["method"] == "supcon"
    with pytest.raises(UserError, match="trained with method=supcon, not method=simclr"):
        image.run(data=str(image_folder), output_dir=str(out), resume=True, method="simclr",
                  **{**FAST, "max_steps": 4})


def test_the_lowered_knn_warning_suggests_self_supervised_training_only_to_supcon():
    """Every method but supcon already trains self-supervised: telling those runs to do so would be no fix."""
    from contrastkit.plugins.vision.methods import METHOD_NAMES
    from contrastkit.plugins.vision.training import knn_fell

    fell = {"knn_top1": {"before": 0.6, "after": 0.5, "delta": -0.1}}
    for method in METHOD_NAMES:
        line = knn_fell(fell, method, 0.65)
        assert ("train self-supervised (method=simclr)" in line) == (method == "supcon"), (method, line)
        assert line.endswith(" or use the starting backbone as it is")
    # nothing else left to suggest: the one fix, without a dangling "or"
    assert knn_fell(fell, "dino", 0.0).endswith("embeds them better; use the starting backbone as it is")


def test_knn_before_after_and_the_linear_probe_line_are_in_metrics_and_the_card(image_folder, tmp_path):
    from contrastkit.recipes import image

    # 18 training images: a batch of 64 and k=50 are what the user asked; the run uses 18 of each, and says so
    result = image.run(data=str(image_folder), output_dir=str(tmp_path / "out"), **{**FAST, "batch_size": 64},
                       knn_k=50)
    metrics = json.loads((result.output_dir / "metrics.json").read_text())
    assert metrics["train_images"] == metrics["batch_size"] == metrics["knn_k"] == 18
    knn, probe = metrics["before_after"]["knn_top1"], metrics["reference"]["linear_probe_top1"]
    assert set(knn) == {"before", "after", "delta"} and 0 <= probe <= 1
    assert metrics["train_cpu_seconds"] > 0 and metrics["method_reason"].startswith("method=auto")
    card = (result.output_dir / "README.md").read_text()
    assert f"| knn_top1 | {knn['before']:.4f} | {knn['after']:.4f} | {knn['delta']:+.4f} |" in card
    assert f"a logistic-regression linear probe fitted on the starting backbone's features of the training images " \
           f"scores {probe:.4f} top-1" in card
    assert "Supervised contrastive" in card and "- supervised-contrastive" in card
    assert "batch size 18," in card and "kNN top-1 accuracy (k=18, cosine" in card and "k=50" not in card


def test_moco_memory_bank_is_a_quarter_of_the_images_per_epoch(image_folder, tmp_path, capsys):
    from contrastkit.recipes import image

    # 20 images, 2 held out: 18 per epoch -> 4 keys
    result = image.run(data=str(image_folder), method="moco", output_dir=str(tmp_path / "a"), **FAST)
    assert result.metrics["train_images"] == 18 and result.metrics["memory_bank_size"] == 4
    assert "memory bank: 4 keys" in capsys.readouterr().out
    given = image.run(data=str(image_folder), method="moco", memory_bank_size=64, output_dir=str(tmp_path / "b"),
                      **FAST)
    assert given.metrics["memory_bank_size"] == 64  # a given size is kept, with a warning
    assert "warning: memory_bank_size=64 is more than a quarter" in capsys.readouterr().out
    assert "memory_bank_size" not in image.run(data=str(image_folder), output_dir=str(tmp_path / "c"), **FAST).metrics


def test_card_usage_snippet_runs_inside_the_output_folder(image_folder, tmp_path):
    from contrastkit.recipes import image

    out = tmp_path / "out"
    image.run(data=str(image_folder), output_dir=str(out), **FAST)
    card = (out / "README.md").read_text()
    assert "library_name: contrastkit" in card and "pipeline_tag: image-feature-extraction" in card
    assert str(tmp_path) not in card  # no local absolute paths
    snippet = card.split("```python\n", 1)[1].split("```", 1)[0]
    done = subprocess.run([sys.executable, "-c", snippet], check=False, cwd=out, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(1, 32)"
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) >= {"before", "after", "before_after"} and metrics["train_images"] == 18
    assert metrics["knn_seconds"] > 0 and metrics["train_seconds"] > 0  # the kNN passes are timed apart


def _bad(tmp_path, kind):
    root = tmp_path / kind
    root.mkdir()
    if kind == "corrupt":
        _folder(root, per_class=4)
        (root / "class0" / "broken.jpg").write_bytes(b"not really a jpeg")
    elif kind == "non-image":
        (root / "notes.txt").write_text("hello")
    elif kind == "tiny":
        for i in range(6):
            Image.new("RGB", (1, 1), (i, i, i)).save(root / f"{i}.png")
    return root


BAD_ARGS = {
    "empty-folder": (["data={empty}"], "holds no images"),
    "corrupt-strict": (["data={corrupt}", "strict=true"], "broken.jpg' cannot be read"),
    "unknown-method": (["method=simclrr"], "unknown method 'simclrr'"),
    "unknown-backbone": (["backbone=resnet9000"], "unknown backbone 'resnet9000'"),
    "memory-bank-not-moco": (["memory_bank_size=100"], "'memory_bank_size' applies to method=moco"),
    "memory-bank-negative": (["method=moco", "memory_bank_size=-1"], "'memory_bank_size' must be >= 0"),
}


def _bad_cli_args(tmp_path, case):
    paths = {k: _bad(tmp_path, k) for k in ("empty", "corrupt")}
    args, message = BAD_ARGS[case]
    backbone = [] if any(a.startswith("backbone=") for a in args) else ["backbone=tiny-cnn"]  # a key given once
    return ["run", "image", *backbone, *[a.format(**paths) for a in args],
            f"output_dir={tmp_path / 'out'}", "max_steps=1"], message


@pytest.mark.parametrize("case", list(BAD_ARGS))
def test_bad_input_through_the_cli_is_one_line_exit_2(case, tmp_path, capfd):
    from contrastkit.recipes.cli import main

    args, message = _bad_cli_args(tmp_path, case)
    code = main(args)  # in-process: the same code path as the console script, without a new interpreter
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("contrastkit: error:")]
    assert code == 2 and "Traceback" not in err, err[-2000:]
    assert len(lines) == 1 and message in lines[0], err[-2000:]
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_bad_input_in_a_real_process_is_one_line_exit_2(tmp_path):
    args, message = _bad_cli_args(tmp_path, "corrupt-strict")
    done = run_cli(*args, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("contrastkit: error:")]
    assert len(lines) == 1 and message in lines[0], done.stderr[-2000:]


@pytest.mark.parametrize("kind, sub, message", [
    ("non-image", "", "holds no images (found 1 other files)"),
    ("non-image", "notes.txt", "is a file; point data= at a folder of images"),
    ("tiny", "", "all 6 images are smaller than 4x4 px"),
    ("missing", "", "does not exist"),
])
def test_bad_image_data_is_one_line_user_error(kind, sub, message, tmp_path):
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.vision.data import load_images

    root = _bad(tmp_path, kind) if kind != "missing" else tmp_path / "no" / "such"
    with pytest.raises(UserError) as err:
        load_images(str(root / sub) if sub else str(root))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_timm_backbone_without_timm_is_a_clear_error():
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.vision.backbones import create_backbone

    if __import__("importlib").util.find_spec("timm"):
        pytest.skip("timm is installed")
    with pytest.raises(UserError, match="needs timm, which is not installed"):
        create_backbone("timm:resnet18")


def test_corrupt_image_is_skipped_and_counted(tmp_path):
    from contrastkit.recipes import image

    folder = _bad(tmp_path, "corrupt")
    result = image.run(data=str(folder), output_dir=str(tmp_path / "out"), **{**FAST, "max_steps": 1})
    assert result.metrics["skipped_images"] == 1
    assert result.metrics["train_images"] + result.metrics["eval_images"] == 8


def test_bf16_mixed_precision_trains_and_saves_float32_weights(image_folder, tmp_path):
    from contrastkit.plugins.vision.encoder import load_encoder
    from contrastkit.recipes import image

    out = tmp_path / "bf16"
    result = image.run(data=str(image_folder), output_dir=str(out), accelerator="cpu", precision="bf16-mixed",
                       method="byol", **FAST)
    assert result.metrics["steps"] == 2 and np.isfinite([h["loss"] for h in result.metrics["history"]]).all()
    emb = load_encoder(out).embed([str(image_folder / "class1" / "3.png")])
    assert emb.dtype == np.float32 and np.isfinite(emb).all()


def test_ema_decay_saves_the_moving_average_of_the_weights(image_folder, tmp_path):
    """With ema_decay=d, two steps save d * (weights after step 1) + (1 - d) * (weights after step 2)
    (torch's AveragedModel starts from a copy of the first step), through Lightning's EMAWeightAveraging."""
    from contrastkit.recipes import image
    from safetensors.torch import load_file

    def weights(name, **kw):
        image.run(data=str(image_folder), output_dir=str(tmp_path / name), **{**FAST, **kw})
        return load_file(str(tmp_path / name / "model.safetensors"))

    one, two = weights("one", max_steps=1), weights("two")
    ema = weights("ema", ema_decay=0.25)
    assert any(not np.allclose(one[k], two[k]) for k in one)  # the second step moved the weights
    floats = [k for k in one if one[k].is_floating_point()]  # BatchNorm's running statistics are averaged too
    assert len(floats) > 4
    for k in floats:
        assert np.allclose(ema[k], 0.25 * one[k] + 0.75 * two[k], atol=1e-5), k


def test_freeze_fraction_is_recorded_in_metrics_and_the_model_card(image_folder, tmp_path):
    from contrastkit.recipes import image

    result = image.run(data=str(image_folder), output_dir=str(tmp_path / "frozen"), freeze_fraction=0.5, **FAST)
    assert result.metrics["freeze_fraction"] == 0.5 and 0 < result.metrics["frozen_share"] <= 0.5
    card = (result.output_dir / "README.md").read_text()
    assert f"earliest {result.metrics['frozen_share']:.0%} of weights stayed fixed (`freeze_fraction=0.5`)" in card
    plain = image.run(data=str(image_folder), output_dir=str(tmp_path / "plain"), **FAST)  # random init: none fixed
    assert plain.metrics["frozen_share"] == 0 and "stayed fixed" not in (plain.output_dir / "README.md").read_text()


def test_wise_ft_saves_that_share_of_the_change_and_checkpoints_keep_the_trained_weights(image_folder, tmp_path):
    """wise_ft=a saves start + a * (trained - start). The start is a folder an earlier run saved, and the same run
    with wise_ft=1 (off) gives the trained weights; last.ckpt holds those, so resuming trains on from them."""
    import torch
    from contrastkit.recipes import image
    from safetensors.torch import load_file

    first = image.run(data=str(image_folder), output_dir=str(tmp_path / "start"), **FAST)
    assert first.metrics["wise_ft"] == 1.0  # a randomly initialised backbone: off by default

    def run(name, alpha):
        result = image.run(data=str(image_folder), output_dir=str(tmp_path / name),
                           **{**FAST, "backbone": str(first.output_dir), "wise_ft": alpha})
        return result, load_file(str(result.output_dir / "model.safetensors"))

    start = load_file(str(first.output_dir / "model.safetensors"))
    (_, trained), (blended, blend) = run("off", 1.0), run("wise", 0.25)
    assert blended.metrics["wise_ft"] == 0.25 and "WiSE-FT" in (blended.output_dir / "README.md").read_text()
    floats = [k for k in start if start[k].is_floating_point()]
    assert len(floats) > 4 and any(not np.allclose(trained[k], start[k]) for k in floats)  # training moved them
    for k in floats:
        assert np.allclose(blend[k], start[k] + 0.25 * (trained[k] - start[k]), atol=1e-6), k
    state = torch.load(blended.output_dir / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    for k in floats:
        assert np.allclose(state[f"backbone.{k}"], trained[k], atol=1e-6), k


def test_wise_ft_auto_chooses_the_share_on_training_images_it_set_aside(tmp_path, capsys):
    """wise_ft=auto sets 10% of the labelled training images aside (not trained on), scores the blends on them and
    saves the best; the score it records for that share is kNN of the saved encoder on those images."""
    from contrastkit.plugins.vision.callbacks import AUTO_SHARES
    from contrastkit.plugins.vision.data import load_images
    from contrastkit.plugins.vision.encoder import load_encoder
    from contrastkit.plugins.vision.knn import knn_accuracy
    from contrastkit.plugins.vision.splits import holdout
    from contrastkit.plugins.vision.training import set_aside
    from contrastkit.recipes import image

    folder = _folder(tmp_path / "images", per_class=30)
    first = image.run(data=str(folder), output_dir=str(tmp_path / "start"), **FAST)  # a start to blend towards
    result = image.run(data=str(folder), output_dir=str(tmp_path / "auto"), wise_ft="auto",
                       **{**FAST, "backbone": str(first.output_dir)})
    auto = result.metrics["wise_ft_auto"]
    scores = {float(a): v for a, v in auto["knn_top1"].items()}
    assert set(scores) == set(AUTO_SHARES) and auto["validation_images"] == 5  # 10% of 54 training images
    assert result.metrics["wise_ft"] == max(scores, key=lambda a: (scores[a], a))
    assert result.metrics["train_images"] == 49  # the images set aside were not trained on
    out = capsys.readouterr().out
    assert "5 set aside to choose wise_ft" in out and "WiSE-FT (wise_ft=auto)" in out
    assert "`wise_ft=auto`" in (result.output_dir / "README.md").read_text()

    train, _ = holdout(load_images(str(folder)), result.config.seed)
    train, validation = set_aside(result.config, train)
    bank = train.spaced(1000)
    encoder = load_encoder(result.output_dir)
    accuracy = knn_accuracy(encoder.embed(bank.items), bank.labels, encoder.embed(validation.items),
                            validation.labels, result.config.knn_k, result.config.knn_t)
    assert abs(accuracy - scores[result.metrics["wise_ft"]]) < 1e-3


def test_checkpoints_hold_no_home_path_and_a_moved_folder_resumes_with_its_rotation(image_folder, tmp_path,
                                                                                    monkeypatch):
    import shutil

    import torch
    from contrastkit.recipes import image

    monkeypatch.setenv("HOME", str(tmp_path))
    first = image.run(data=str(image_folder), output_dir=str(tmp_path / "out"), save_steps=1, save_total_limit=2,
                      **FAST)
    assert_no_file_holds(first.output_dir, str(tmp_path))  # Lightning's own ModelCheckpoint writes absolute paths
    state = next(v for k, v in torch.load(first.output_dir / "checkpoints" / "last.ckpt", weights_only=False)
                 ["callbacks"].items() if "ModelCheckpoint" in k)
    assert state["dirpath"] == "." and sorted(state["best_k_models"]) == ["epoch=0-step=1.ckpt", "epoch=0-step=2.ckpt"]
    moved = shutil.move(first.output_dir, tmp_path / "moved")
    again = image.run(data=str(image_folder), output_dir=str(moved), resume=True, save_steps=1, save_total_limit=2,
                      **{**FAST, "max_steps": 4})
    assert again.metrics["steps"] == 4
    # the resumed run still knew its kept checkpoints by name, so it deleted the two oldest as save_total_limit says
    kept = sorted(p.name.split("step=")[-1] for p in (tmp_path / "moved" / "checkpoints").iterdir())
    assert kept == ["3.ckpt", "4.ckpt", "last.ckpt"]  # 18 images at batch 8: steps 3 and 4 are epoch 1


def test_the_learning_rate_given_is_the_one_trained_with(image_folder, tmp_path):
    from contrastkit.recipes import image

    # the optimizer's own rate, not only the config's: the value must reach SSLModule
    rates = []
    for name, kwargs in (("given", {"learning_rate": 0.0123}), ("default", {})):
        result = image.run(data=str(image_folder), output_dir=str(tmp_path / name), **{**FAST, **kwargs})
        ckpt = __import__("torch").load(result.output_dir / "checkpoints" / "last.ckpt", weights_only=False)
        rates.append((result.metrics["learning_rate"], ckpt["optimizer_states"][0]["param_groups"][0]["lr"]))
    assert rates == [(0.0123, 0.0123), (1e-3, 1e-3)]  # 1e-3: supcon's own


def test_max_steps_across_epochs_runs_every_step(image_folder, tmp_path):
    from contrastkit.recipes import image

    # 18 training images at batch 8: 2 steps an epoch, so 5 steps need 3 epochs (the recipe sets max_epochs for
    # the progress bar, which must never end the run before max_steps)
    result = image.run(data=str(image_folder), output_dir=str(tmp_path / "out"), **{**FAST, "max_steps": 5})
    assert result.metrics["steps"] == 5


def test_max_steps_0_means_off_and_the_epochs_are_trained(image_folder, tmp_path):
    from contrastkit.recipes import image

    result = image.run(data=str(image_folder), output_dir=str(tmp_path / "out"), **{**FAST, "max_steps": 0},
                       epochs=1)
    assert result.metrics["steps"] == 2 and result.config.max_steps == -1  # 18 images at batch 8: 2 steps


def test_eval_data_with_some_of_the_classes_is_scored_against_the_right_ones(tmp_path, capsys):
    from contrastkit.recipes import image

    _folder(tmp_path / "train", per_class=8)
    _folder(tmp_path / "held", per_class=3)
    shutil.rmtree(tmp_path / "held" / "class0")  # on its own, eval_data would number class1 0, and class9 1
    shutil.copytree(tmp_path / "held" / "class1", tmp_path / "held" / "class9")
    result = image.run(data=str(tmp_path / "train"), eval_data=str(tmp_path / "held"),
                       output_dir=str(tmp_path / "out"), **FAST)
    assert result.metrics["before_after"]["knn_top1"]["before"] == 1.0  # blue images, scored as training's class1
    assert "3 eval_data image(s) of 1 class(es) that data lacks are left out of kNN: class9" in capsys.readouterr().out


def test_center_centres_the_embeddings_on_the_training_images_mean_and_saves_the_mean(image_folder, tmp_path):
    from contrastkit.plugins.vision.data import load_images
    from contrastkit.plugins.vision.encoder import embed_with, load_encoder
    from contrastkit.plugins.vision.knn import knn_accuracy
    from contrastkit.plugins.vision.splits import holdout
    from contrastkit.recipes import image

    result = image.run(data=str(image_folder), center=True, output_dir=str(tmp_path / "sup"), **FAST)
    config = json.loads((result.output_dir / "config.json").read_text())
    assert result.metrics["centered"] is True and len(config["center"]) == 32
    loaded = load_encoder(result.output_dir)
    train, held = holdout(load_images(str(image_folder)), result.config.seed)  # the run's own split
    raw_train = embed_with(loaded.encoder, train.items, loaded.preprocess)
    raw_held = embed_with(loaded.encoder, held.items, loaded.preprocess)
    center = raw_train.mean(axis=0)  # the training images' mean embedding
    assert np.allclose(config["center"], center, atol=1e-5)
    expected = (raw_held - center) / np.linalg.norm(raw_held - center, axis=1, keepdims=True)
    assert np.allclose(loaded.embed(held.items), expected, atol=1e-5)
    assert not np.allclose(raw_held, expected, atol=1e-3)
    # "after" scores the embeddings users get: centred bank and queries
    after = knn_accuracy(raw_train - center, train.labels, expected, held.labels, 20, 0.1)
    assert result.metrics["before_after"]["knn_top1"]["after"] == after
    assert "Centred: each embedding has the training images' mean embedding subtracted" in \
        (result.output_dir / "README.md").read_text()
    # by default (supcon or simclr) the embeddings are the backbone's own
    for name, kwargs in (("simclr", {"method": "simclr"}), ("supcon", {})):
        other = image.run(data=str(image_folder), output_dir=str(tmp_path / name), **{**FAST, **kwargs})
        assert other.metrics["centered"] is False
        assert "center" not in json.loads((other.output_dir / "config.json").read_text())
        assert "Centred:" not in (other.output_dir / "README.md").read_text()


def test_center_without_labels_uses_the_training_images_mean(image_folder, tmp_path):
    from contrastkit.plugins.vision.encoder import embed_with
    from contrastkit.recipes import image

    paths = sorted(str(p) for p in image_folder.rglob("*.png"))  # a plain list: no labels, no kNN evaluation
    result = image.run(data=paths, center=True, output_dir=str(tmp_path / "out"), **FAST)
    saved = json.loads((result.output_dir / "config.json").read_text())["center"]
    raw = embed_with(result.model.encoder, paths, result.model.preprocess)
    assert result.metrics["centered"] is True and np.allclose(saved, raw.mean(axis=0), atol=1e-5)


def test_a_run_continuing_a_centred_folder_measures_its_own_center(image_folder, tmp_path):
    from contrastkit.recipes import image

    first = image.run(data=str(image_folder), center=True, output_dir=str(tmp_path / "a"), **FAST)
    again = image.run(data=str(image_folder), backbone=str(first.output_dir), method="simclr",
                      output_dir=str(tmp_path / "b"), **{k: v for k, v in FAST.items() if k != "backbone"})
    assert "center" not in json.loads((again.output_dir / "config.json").read_text())  # not centred: none


def test_epochs_default_to_the_methods_own(image_folder, tmp_path):
    import yaml
    from contrastkit.recipes import image

    epochs = {}
    for name, kwargs in (("supcon", {}), ("simclr", {"method": "simclr"}), ("given", {"epochs": 3})):
        result = image.run(data=str(image_folder), output_dir=str(tmp_path / name), **{**FAST, **kwargs})
        epochs[name] = (result.config.epochs, yaml.safe_load((result.output_dir / "config.yaml").read_text())["epochs"])
    assert epochs == {"supcon": (12, 12), "simclr": (14, 14), "given": (3, 3)}


def test_a_whole_datasetdict_as_data_holds_out_its_test_split(tmp_path, capsys):
    """As load_dataset("imagefolder", ...) returns it: train on 'train', kNN on 'test', and say so."""
    import datasets
    from contrastkit.recipes import image
    from PIL import Image

    def split(n, offset):
        return datasets.Dataset.from_dict(
            {"image": [Image.new("RGB", (20, 20), (200 * (i % 2), 40 + i + offset, 90)) for i in range(n)],
             "label": [i % 2 for i in range(n)]},
            features=datasets.Features({"image": datasets.Image(),
                                        "label": datasets.ClassLabel(names=["dark", "red"])}))

    datasets.DatasetDict({"train": split(24, 0), "test": split(6, 100)}).save_to_disk(str(tmp_path / "dd"))
    dd = datasets.load_from_disk(str(tmp_path / "dd"))  # memory-mapped, as from the Hub: read row by row
    result = image.run(data=dd, output_dir=str(tmp_path / "out"), **FAST)
    assert (result.metrics["train_images"], result.metrics["eval_images"]) == (24, 6)
    assert sorted(p.name for p in (tmp_path / "out" / "examples").iterdir()) == \
        ["dark-0.png", "dark-1.png", "red-0.png", "red-1.png"]
    assert [Image.open(tmp_path / "out" / "examples" / f"{c}-1.png").getpixel((0, 0))[0] for c in ("dark", "red")] \
        == [0, 200]  # each class's own held-out rows
    assert "held out: the 'test' split of the DatasetDict (splits: train, test)" in capsys.readouterr().out
