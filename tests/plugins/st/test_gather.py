"""Under DDP, MNRL's in-batch negatives come from every process (gather_across_devices), on 2 CPU processes.

One torchrun launch scores both the dense and the sparse loss on each rank; the one-process baseline needs no
launcher (it is the same loss with WORLD_SIZE=1), so it runs in the test process."""

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


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory, tiny_text_model) -> dict[str, list[dict]]:
    """What each of 2 torchrun processes scored, per mode (dense, sparse), from one launch."""
    out = tmp_path_factory.mktemp("gather")
    done = subprocess.run([str(BIN / "torchrun"), "--nproc_per_node=2", str(WORKER), tiny_text_model, str(out)],
                          capture_output=True, text=True, env=ENV, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    from tests.plugins.st.gather_worker import MODES

    return {mode: [json.loads(p.read_text()) for p in sorted(out.glob(f"rank*-{mode}.json"))] for mode in MODES}


@pytest.fixture
def one_process(monkeypatch, tiny_text_model):
    """The same step in a single process (what torchrun --nproc_per_node=1 gives it: WORLD_SIZE=1, no group)."""
    from tests.plugins.st.gather_worker import score

    monkeypatch.setenv("WORLD_SIZE", "1")
    return lambda sparse: score(tiny_text_model, 0, sparse)


@pytest.mark.slow
def test_each_query_sees_every_process_documents(two_processes, one_process):
    two = two_processes["dense"]
    assert sorted(r["rank"] for r in two) == [0, 1]
    for r in two:  # 3 local queries against 3 pairs x 2 processes
        assert r["scored"] == [[3, 6]], r
        assert "negatives gathered across 2 processes" in r["reason"]
    one = one_process(sparse=False)
    assert one["scored"] == [[3, 3]] and "gathered" not in one["reason"]


@pytest.mark.slow
def test_sparse_queries_see_every_process_documents(two_processes, one_process):
    """The sparse recipe's SparseMNRL (inside CSRLoss) gathers too."""
    two = two_processes["sparse"]
    assert sorted(r["rank"] for r in two) == [0, 1]
    for r in two:
        assert [3, 6] in r["scored"], r
        assert "negatives gathered across 2 processes" in r["reason"]
    one = one_process(sparse=True)
    assert [3, 6] not in one["scored"] and "gathered" not in one["reason"]
