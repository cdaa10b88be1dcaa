"""Text recipe under real launchers (2 CPU processes, gloo) and after a SIGKILL mid-training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sentence_transformers import SentenceTransformer

BIN = Path(sys.executable).parent
ENV = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
#: on 2 CPU processes (--cpu would start only one)
ACCELERATE = [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no"]


def _recipe_args(data, model, out, *extra):
    return ["run", "text", f"data={data}", f"model={model}", f"output_dir={out}", "batch_size=4", "epochs=1",
            "min_steps=0", "logging_steps=1", *extra]  # epochs as given: the step count shows the data split


def _check_ddp_output(out: Path, stdout: str) -> None:
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    # 22 training rows, 4 per process, 2 processes, last partial batch dropped: 2 steps. Alone it would be 6.
    assert metrics["train"]["global_step"] == 2
    assert stdout.count("done: ") == 1  # only rank 0 reports
    assert stdout.count("loss: ") == 1
    assert "negatives gathered across 2 processes" in stdout  # gather_across_devices: MNRL sees both processes
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".contrastkit")]
    assert leftovers == [".contrastkit-run.json"]  # the run record stays; the lock and probes go
    assert SentenceTransformer(str(out), device="cpu").encode(["a"]).shape == (1, 32)
    assert (out / "README.md").is_file() and (out / "config.yaml").is_file()


@pytest.mark.slow
def test_torchrun_two_processes(tmp_path, pairs_csv, tiny_text_model):
    out = tmp_path / "ddp"
    done = subprocess.run([str(BIN / "torchrun"), "--nproc_per_node=2", "-m", "contrastkit.recipes",
                           *_recipe_args(pairs_csv, tiny_text_model, out)],
                          capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    _check_ddp_output(out, done.stdout)


@pytest.mark.slow
def test_accelerate_launch_two_processes(tmp_path, pairs_csv, tiny_text_model):
    out = tmp_path / "acc"
    done = subprocess.run([*ACCELERATE, "-m", "contrastkit.recipes", *_recipe_args(pairs_csv, tiny_text_model, out)],
                          capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    _check_ddp_output(out, done.stdout)


def test_distributed_run_without_output_dir_is_refused(pairs_csv, tiny_text_model, tmp_path):
    env = {**ENV, "WORLD_SIZE": "2", "RANK": "0"}
    done = subprocess.run([sys.executable, "-m", "contrastkit.recipes", "run", "text", f"data={pairs_csv}",
                           f"model={tiny_text_model}"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 2 and "explicit output_dir=" in done.stderr


@pytest.mark.slow
def test_sigkill_then_resume_finishes_with_same_total_steps(tmp_path, tiny_text_model):
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"anchor": f"q {i} " * 8, "positive": f"a {i} " * 8}) + "\n"
                            for i in range(400)))
    out = tmp_path / "run"
    args = [sys.executable, "-m", "contrastkit.recipes", "run", "text", f"data={data}", f"model={tiny_text_model}",
            f"output_dir={out}", "batch_size=8", "max_steps=120", "save_steps=5", "save_total_limit=100"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.time() + 300
    ckpts = out / "checkpoints"
    while time.time() < deadline and not (ckpts / "checkpoint-10" / "trainer_state.json").exists():
        assert proc.poll() is None, "training ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    completed = {p.name for p in ckpts.glob("checkpoint-*") if (p / "trainer_state.json").exists()}
    assert "checkpoint-10" in completed and not (out / "metrics.json").exists()

    done = subprocess.run(args + ["resume=true"], capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train"]["global_step"] == 120
    after = {p.name for p in ckpts.glob("checkpoint-*")}
    assert completed <= after  # no completed checkpoint was lost
    assert "checkpoint-120" in after


@pytest.mark.slow
def test_image_text_under_accelerate_launch_two_processes(tmp_path):
    """The image-text recipe on the same DDP path: bundled shapes, tiny CLIP, 2 CPU processes.

    One launcher is enough: image-text reaches DDP through the text recipe's code (device.world_size and
    is_main_process read the launcher's environment; st.training.training_args sets use_cpu and drop_last), and
    the text tests above run that code under both torchrun and accelerate. accelerate is the launcher the README
    shows for image-text."""
    out = tmp_path / "clip"
    done = subprocess.run([*ACCELERATE, "-m", "contrastkit.recipes", "run",
                           "image-text", f"output_dir={out}", "batch_size=64", "epochs=1", "logging_steps=1"],
                          capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    # 360 training pairs, 64 per process, 2 processes, last partial batch dropped: 2 steps. Alone it would be 6.
    assert metrics["train"]["global_step"] == 2
    assert done.stdout.count("done: ") == 1
    assert done.stdout.count("negatives gathered across 2 processes") == 1  # printed by rank 0 only
    from PIL import Image

    model = SentenceTransformer(str(out), device="cpu")
    assert model.encode([Image.new("RGB", (32, 32), (200, 0, 0))]).shape == model.encode(["a red square"]).shape
