"""Re-evaluate kept image_quality.py runs on all 10,000 Fashion-MNIST test images (and, from the same predictions,
on the benchmark's 1,000-image sample), for several WiSE-FT blends, without training again.

    python bench/image_quality.py --threads 1 --methods simclr --set seed=N --keep KEEP/seedN
    python bench/results/image-trials/full-test/reeval.py --alphas 0.25,1 KEEP/seed*/simclr

Per run it prints kNN top-1 before (pretrained) and at each alpha, on the full test set and on the 1,000-image
sample, and the paired standard error of each gain over the test images (sqrt of the variance of the per-image
change, divided by sqrt(n)): how far a gain measured on n test images can sit from the gain on the population.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # bench/
from contrastkit.plugins.vision.backbones import create_backbone
from contrastkit.plugins.vision.callbacks import blend_weights
from contrastkit.plugins.vision.data import load_images
from contrastkit.plugins.vision.encoder import embed_with, load_encoder
from contrastkit.plugins.vision.knn import knn_correct
from image_quality import trained_backbone, write_folder


def correct(net, preprocess, bank, query, k=20, t=0.1) -> np.ndarray:
    """Per query image: 1 if the recipe's weighted kNN gets its label right."""
    b, q = (embed_with(net, d.items, preprocess) for d in (bank, query))
    return knn_correct(b, bank.labels, q, query.labels, k, t).astype(float)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("runs", nargs="+", help="kept output folders (image_quality.py --keep DIR: DIR/simclr)")
    p.add_argument("--alphas", default="0.25,1")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    alphas = [float(x) for x in a.alphas.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(a.data_dir)
        bank = load_images(str(write_folder(root, "train", 3000, 0, Path(tmp) / "train")))
        query = load_images(str(write_folder(root, "t10k", 10000, 1, Path(tmp) / "test")))
        sample = set(np.random.default_rng(1).choice(10000, 1000, replace=False).tolist())  # the bench's 1,000
        in_sample = np.array([int(Path(str(x)).stem) in sample for x in query.items])
        assert in_sample.sum() == 1000
        start_net = None
        for run in a.runs:
            enc = load_encoder(run)
            if start_net is None:
                start_net, _ = create_backbone("efficientnet-lite0", False, None)
                start = {k: v.clone() for k, v in start_net.state_dict().items()}
                before = correct(start_net, enc.preprocess, bank, query)
            trained = trained_backbone(run)
            net = start_net
            cells = []
            for alpha in alphas:
                net.load_state_dict(trained)
                blend_weights(net, start, alpha)
                after = correct(net, enc.preprocess, bank, query)
                d = after - before
                full, samp = d.mean(), d[in_sample].mean()
                se_full, se_samp = d.std() / np.sqrt(len(d)), d[in_sample].std() / np.sqrt(1000)
                cells.append(f"alpha {alpha:g}: full {full:+.4f} (se {se_full:.4f}) sample {samp:+.4f} "
                             f"(se {se_samp:.4f})")
            net.load_state_dict(start)
            print(f"{run}: before full {before.mean():.4f} sample {before[in_sample].mean():.4f} | "
                  + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
