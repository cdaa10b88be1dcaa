"""A real out-of-memory error during training falls back and the run finishes (no mocks).

Each case runs the text recipe in a subprocess whose address space is capped with RLIMIT_AS 1,300 MB
above what it has mapped after loading its libraries, so a batch of 512 long pairs really fails to allocate
(torch's "DefaultCPUAllocator: can't allocate memory") while the fallback fits. The runs pin precision=fp32: with
bf16 autocast on a CPU with native bfloat16, oneDNN's bf16 kernels failed to create under this cap even at
micro-batch 1 ("could not create a primitive"); the recipe then stops with a message that suggests precision=fp32.
They also train on the pairs alone: with mined negatives, the no-duplicates batch sampler keeps a row apart from the
row whose positive is its negative, so the first "batch of 512" over these 512 rows holds about 220 and fits.

The mnrl case runs out of memory at its second step, not its first: 512 short pairs and 512 long ones in
length-grouped batches (length_batching=true), whose first batch (seed 42) is the short one and fits. No
checkpoint was saved by then (save_steps=1000), so that case shows what the retry keeps of the step before.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, resource, sys
import datasets, sentence_transformers, torch, transformers  # map the libraries before the cap
import matplotlib.backends.backend_agg, matplotlib.pyplot  # the plots at the end map Agg's .so too
from contrastkit.recipes import text
vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + int(sys.argv[3]) * 2**20, resource.RLIM_INFINITY))
r = text.run(data=sys.argv[1], model=sys.argv[2], output_dir=sys.argv[4], eval_data=sys.argv[5], loss=sys.argv[6],
             **json.loads(sys.argv[7]))
"""
#: what every case's run passes to text.run (the mnrl case adds LATE_OOM)
RUN = {"batch_size": 512, "max_steps": 1, "max_seq_length": 128, "max_train_tokens": 0, "save_steps": 1000,
       "precision": "fp32", "mine_hard_negatives": False}
LATE_OOM = {"length_batching": True, "max_steps": 3, "logging_steps": 1, "seed": 42}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2", "TOKENIZERS_PARALLELISM": "false"}


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


CASES = {"mnrl": "MultipleNegativesRankingLoss -> CachedMultipleNegativesRankingLoss (batch 512 kept, mini-batches "
                 "of 32); training again from {out}/checkpoints/checkpoint-1",
         "cosent": "micro-batch 512 -> 256 with gradient accumulation x2"}


@pytest.fixture(scope="module")
def oom_runs(tmp_path_factory, tiny_text_model):
    """Both cases' runs, started side by side: each is single-threaded, so on 2 cores they take the time of one."""
    runs = {}
    for loss in CASES:
        tmp = tmp_path_factory.mktemp(f"oom-{loss}")
        score = loss == "cosent"
        rows = [{"anchor": f"q{i} " + "word " * 120, "positive": f"a{i} " + "text " * 120,
                 **({"score": (i % 5) / 4} if score else {})} for i in range(512)]
        if not score:  # the short batch first: the OOM comes at step 2
            rows += [{"anchor": f"short q{i}", "positive": f"short a{i}"} for i in range(512)]
        data = _write(tmp / "train.jsonl", rows)
        held = _write(tmp / "eval.jsonl", [{"anchor": f"held {i}", "positive": f"out {i}",
                                            **({"score": 0.5 * (i % 3)} if score else {})} for i in range(8)])
        # 1,300 MB over the mapped libraries: measured on this machine, batch 512 fits from about 1,800 MB, and batch
        # 256 after a failed 512 needs about 1,100 MB. At the earlier 600 MB even 256 failed, the run went down
        # several halvings, and once a oneDNN kernel failed to create there, every smaller retry failed too (flaky).
        # Output goes to files, not pipes: an unread full pipe would stall one run while the other test waits.
        with (tmp / "stdout").open("w") as out, (tmp / "stderr").open("w") as err:
            kwargs = {**RUN, **({} if score else LATE_OOM)}
            proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(data), tiny_text_model, "1300", str(tmp / "out"),
                                     str(held), loss, json.dumps(kwargs)], stdout=out, stderr=err, text=True, env=ENV)
        runs[loss] = (proc, tmp, {"data": str(data), "model": tiny_text_model, "output_dir": str(tmp / "out"),
                                  "eval_data": str(held), "loss": loss, **kwargs})
    yield runs
    for proc, *_ in runs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("loss", list(CASES))
def test_real_oom_falls_back_and_finishes(oom_runs, loss):
    proc, tmp, _ = oom_runs[loss]
    returncode = proc.wait(timeout=600)
    assert returncode == 0, (tmp / "stderr").read_text()[-3000:]
    assert f"out of memory: {CASES[loss].format(out=tmp / 'out')}" in (tmp / "stdout").read_text()
    metrics = json.loads((tmp / "out" / "metrics.json").read_text())
    assert "after" in metrics
    # the retry goes on from the step the OOM stopped (saved then), so the history and step count are the run's
    steps = 3 if loss == "mnrl" else 1
    assert metrics["train"]["global_step"] == steps
    if loss == "mnrl":
        assert [h["step"] for h in metrics["loss_history"]] == [1, 2, 3]


@pytest.mark.slow
def test_resume_compares_the_batch_size_asked_for_not_the_fallbacks_micro_batch(oom_runs):
    """The cosent run trained micro-batches of 256 with gradient accumulation x2: it still trained batch_size=512."""
    from contrastkit.plugins.errors import UserError
    from contrastkit.recipes import text

    proc, tmp, kwargs = oom_runs["cosent"]
    assert proc.wait(timeout=600) == 0, (tmp / "stderr").read_text()[-3000:]
    with pytest.raises(UserError, match="was trained with batch_size=512, not batch_size=256"):
        text.run(**{**kwargs, "batch_size": 256}, resume=True)
    with pytest.raises(UserError, match="already trained 1 steps, all of this run's max_steps=1"):
        text.run(**kwargs, resume=True)


def test_what_counts_as_out_of_memory():
    """torch's allocator failing and oneDNN failing to create a kernel (its scratchpad allocation) count; a shape
    error does not. CI once hit the oneDNN form in the cosent case above, on a CPU other than this one."""
    import torch
    from contrastkit.plugins.st.training import is_out_of_memory

    with pytest.raises(RuntimeError) as alloc:
        torch.empty(2**45, dtype=torch.uint8)  # 32 TiB: the CPU allocator refuses it for real
    with pytest.raises(RuntimeError) as shape:
        torch.ones(2, 3) @ torch.ones(2, 3)
    assert is_out_of_memory(alloc.value)
    assert is_out_of_memory(RuntimeError("could not create a primitive"))
    assert not is_out_of_memory(shape.value)


def test_a_static_model_out_of_memory_halves_the_micro_batch_not_caches_the_loss(tiny_text_model, tmp_path):
    """MNRL's cached twin refuses a StaticEmbedding model (a ValueError traceback after the OOM); a static model's
    fallback halves the micro-batch instead. The trainer is made, not trained."""
    from contrastkit.plugins.st.training import oom_fallback
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, losses
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_text_model).backend_tokenizer
    model = SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_dim=8)], device="cpu")
    args = SentenceTransformerTrainingArguments(str(tmp_path), per_device_train_batch_size=64, report_to="none")
    trainer = SentenceTransformerTrainer(model=model, args=args, loss=losses.MultipleNegativesRankingLoss(model),
                                         train_dataset=Dataset.from_dict({"anchor": ["q"], "positive": ["a"]}))
    assert oom_fallback(trainer).startswith("micro-batch 64 -> 32 with gradient accumulation x2")
    assert type(trainer.loss).__name__ == "MultipleNegativesRankingLoss"
