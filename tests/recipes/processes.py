"""Helpers for tests that run recipes as users have them: real processes, real signals, folders compared byte
for byte."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import CLI

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
IMAGE = ["backbone=tiny-cnn", "image_size=16", "batch_size=8"]


def pairs(tmp_path: Path, rows: int = 24, name: str = "pairs.csv") -> str:
    path = tmp_path / name
    path.write_text("anchor,positive\n" + "".join(f"question {i} on topic {i % 5},answer {i} for topic {i % 5}\n"
                                                  for i in range(rows)), encoding="utf-8")
    return str(path)


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    # Ctrl-C must reach the run as a user's would: a suite started in the background (`make test &`) ignores
    # SIGINT, a child inherits an ignored signal, and Python then installs no KeyboardInterrupt handler. A handled
    # signal is reset to the default at exec, so the child starts while this process handles SIGINT.
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen([*CLI, *args], cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def wait_for(check, proc: subprocess.Popen, seconds: float = 120, every: float = 0.2) -> None:
    deadline = time.time() + seconds
    while not check():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "timed out"
        time.sleep(every)


def interrupt(proc: subprocess.Popen) -> tuple[int, str]:
    """Ctrl-C; the exit is 130, or death by SIGINT itself (a shell shows both as 130) when the signal meets the
    interpreter's own shutdown."""
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # a library swallowed it mid-import: press Ctrl-C again, as a user would
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    return (130 if proc.returncode == -signal.SIGINT else proc.returncode), err


def errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("contrastkit:")]


def hashes(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` by its path there, with the SHA-256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}
