"""Under DDP, MNRL's in-batch negatives come from every process (gather_across_devices), on 2 CPU processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
WORKER = Path(__file__).with_name("gather_worker.py")
ENV = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def _launch(out: Path, processes: int, model: str, *mode: str) -> list[dict]:
    out = out / f"{processes}{''.join(mode)}"
    out.mkdir()
    done = subprocess.run([str(BIN / "torchrun"), f"--nproc_per_node={processes}", str(WORKER), model, str(out),
                           *mode], capture_output=True, text=True, env=ENV, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(p.read_text()) for p in sorted(out.glob("rank*.json"))]


@pytest.mark.slow
def test_each_query_sees_every_process_documents(tmp_path, tiny_text_model):
    two = _launch(tmp_path, 2, tiny_text_model)
    assert sorted(r["rank"] for r in two) == [0, 1]
    for r in two:  # 3 local queries against 3 pairs x 2 processes
        assert r["scored"] == [[3, 6]], r
        assert "negatives gathered across 2 processes" in r["reason"]
    one = _launch(tmp_path, 1, tiny_text_model)
    assert one[0]["scored"] == [[3, 3]] and "gathered" not in one[0]["reason"]


@pytest.mark.slow
def test_sparse_queries_see_every_process_documents(tmp_path, tiny_text_model):
    """The sparse recipe's SparseMNRL (inside CSRLoss) gathers too."""
    two = _launch(tmp_path, 2, tiny_text_model, "sparse")
    assert sorted(r["rank"] for r in two) == [0, 1]
    for r in two:
        assert [3, 6] in r["scored"], r
        assert "negatives gathered across 2 processes" in r["reason"]
    one = _launch(tmp_path, 1, tiny_text_model, "sparse")
    assert [3, 6] not in one[0]["scored"] and "gathered" not in one[0]["reason"]
