"""Image recipe under Lightning DDP (2 CPU processes, gloo) and after a SIGKILL mid-training, through the CLI.

One DDP run without output_dir= serves both DDP tests: the folder rank 0 claims is the one rank 1 must find, and
what lands there shows that only rank 0 writes.

The CLI (``python -m contrastkit.recipes``) is a ``__main__`` module, which Lightning's DDP launcher re-runs
for rank 1, so no extra guard is needed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
TINY = ["backbone=tiny-cnn", "image_size=16", "accelerator=cpu"]  # default data: scikit-learn digits (labelled)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "contrastkit.recipes", "run", "image", *TINY, *args]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """One Lightning DDP run on 2 CPU processes, without output_dir=, from an empty working folder."""
    cwd = tmp_path_factory.mktemp("image-ddp")
    env = {k: v for k, v in ENV.items() if k not in ("CONTRASTKIT_RUN_DIR", "CONTRASTKIT_RUN_STAMP")}
    done = subprocess.run(_cli("devices=2", "strategy=ddp", "batch_size=8", "max_steps=3", "wise_ft=auto"),
                          check=False, capture_output=True, text=True, env=env, timeout=600, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return cwd, done


@pytest.mark.slow
def test_ddp_without_output_dir_writes_one_timestamped_folder_for_both_processes(ddp_run):
    cwd, done = ddp_run
    assert "contrastkit: error" not in done.stderr
    runs = list((cwd / "outputs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("image-")  # Lightning's second process wrote there too
    assert sorted(p.name for p in cwd.iterdir()) == ["outputs"]  # and nothing else in the working folder
    assert json.loads((runs[0] / "metrics.json").read_text())["world_size"] == 2
    assert done.stdout.count("done: ") == 1


@pytest.mark.slow
def test_ddp_two_cpu_processes_rank_zero_writes(ddp_run):
    from contrastkit.plugins.vision.encoder import load_encoder

    cwd, done = ddp_run
    (out,) = (cwd / "outputs").iterdir()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["steps"] == 3
    # digits carry labels, so method=auto trains supcon: its loss gathers embeddings and labels from both ranks
    assert metrics["method"] == "supcon" and done.stdout.count("method: supcon") == 1
    assert done.stdout.count("done: ") == 1  # only rank 0 reports
    assert done.stdout.count("kNN evaluation on the held-out images") == 1
    # wise_ft=auto: every rank sets the same images aside and scores the blends; rank 0 says which share it kept
    assert done.stdout.count("WiSE-FT (wise_ft=auto)") == 1 and metrics["wise_ft_auto"]["validation_images"] == 161
    assert metrics["train_images"] == 1457 and metrics["wise_ft"] in (0, 0.25, 0.5, 0.75, 1)
    # the run record stays; the lock and write probes go
    assert [p.name for p in out.iterdir() if p.name.startswith(".contrastkit")] == [".contrastkit-run.json"]
    assert (out / "README.md").is_file() and (out / "config.yaml").is_file()
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert load_encoder(out).embed([str(p) for p in [out / "loss.png"]]).shape == (1, 32)


def _loadable(folder: Path) -> set[str]:
    ok = set()
    for p in folder.glob("*.ckpt"):
        try:
            torch.load(p, map_location="cpu", weights_only=False)
        except Exception:  # noqa: BLE001, S112 - a file cut off by the kill
            continue
        ok.add(p.name)
    return ok


@pytest.mark.slow
def test_sigkill_then_resume_finishes_with_same_total_steps(tmp_path):
    out = tmp_path / "run"
    ckpts = out / "checkpoints"
    args = _cli(f"output_dir={out}", "batch_size=8", "max_steps=80", "save_steps=5", "save_total_limit=-1")
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.time() + 300
    while time.time() < deadline and not list(ckpts.glob("epoch=0-step=1[05].ckpt")):
        assert proc.poll() is None, "training ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    completed = _loadable(ckpts)
    assert any(name.startswith("epoch=0-step=1") for name in completed), completed
    assert not (out / "metrics.json").exists()

    done = subprocess.run(args + ["resume=true"], check=False, capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((out / "metrics.json").read_text())["steps"] == 80
    after = {p.name for p in ckpts.glob("*.ckpt")}
    assert completed <= after  # no completed checkpoint was lost
    assert "epoch=0-step=80.ckpt" in after


@pytest.mark.slow
def test_torchrun_with_devices_auto_is_one_ddp_run(tmp_path):
    """torchrun starts 2 processes; with devices=auto, Lightning alone would run 1 per process: two separate
    trainings on all the data, both writing the folder (last.ckpt and last-v1.ckpt). devices=auto takes the
    launcher's count, so the two processes are one DDP run."""
    out = tmp_path / "torchrun"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", *_cli()[1:],
                           f"output_dir={out}", "batch_size=8", "max_steps=2"],
                          check=False, capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["steps"] == 2
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["last.ckpt"]  # written once
    assert done.stdout.count("devices: 2 per machine") == 1 and done.stdout.count("done: ") == 1
    assert done.stdout.count("kNN top-1 before training") == 1


def test_a_launchers_processes_that_lightning_would_not_join_are_refused(tmp_path, monkeypatch):
    """What torchrun sets for rank 0 of 2; devices=1 would make each process its own run. Refused before any
    work: no folder."""
    from contrastkit.plugins.errors import UserError
    from contrastkit.recipes import image

    for key, value in {"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(UserError, match=r"the launcher started 2 processes \(2 per machine\), but devices=1 "
                                        r"num_nodes=1 makes Lightning run 1, .* give devices=2 num_nodes=1"):
        image.run(backbone="tiny-cnn", image_size=16, accelerator="cpu", devices=1, output_dir=str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()
