"""kNN accuracy on Fashion-MNIST before and after the image recipe (SimCLR and BYOL), on the CPU.

    python bench/image_quality.py            # 3,000 training / 1,000 test images, 2 epochs per method
    python bench/image_quality.py --quick    # 600 / 300 images, 8 steps per method

"before" is the pretrained EfficientNet-Lite0's own kNN accuracy (k=20, cosine, weighted);
needs Debian's dataset-fashion-mnist (apt-get install -y dataset-fashion-mnist).
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path("/usr/share/datasets/fashion-mnist")


def read_idx(name: str) -> np.ndarray:
    """One idx file (gzip or plain) as a numpy array."""
    path = ROOT / name if (ROOT / name).exists() else ROOT / f"{name}.gz"
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def subset(prefix: str, n: int, seed: int):
    """A labelled ``datasets.Dataset`` of ``n`` random Fashion-MNIST images."""
    import datasets
    from PIL import Image

    images, labels = read_idx(f"{prefix}-images-idx3-ubyte"), read_idx(f"{prefix}-labels-idx1-ubyte")
    idx = np.random.default_rng(seed).choice(len(images), n, replace=False)
    return datasets.Dataset.from_dict({"image": [Image.fromarray(images[i]) for i in idx],
                                       "label": [int(labels[i]) for i in idx]},
                                      features=datasets.Features({"image": datasets.Image(),
                                                                  "label": datasets.Value("int64")}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small, fast version")
    parser.add_argument("--methods", default="simclr,byol")
    args = parser.parse_args()
    from contrastkit.recipes import image

    n_train, n_test = (600, 300) if args.quick else (3000, 1000)
    train, test = subset("train", n_train, 0), subset("t10k", n_test, 1)
    budget = {"max_steps": 8} if args.quick else {"epochs": 2}
    print(f"Fashion-MNIST: {n_train} training, {n_test} test images; EfficientNet-Lite0 (pretrained) at 64 px, "
          f"batch 64, {budget}; CPU cores shared with other jobs, so times are noisy")
    rows = []
    for method in args.methods.split(","):
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            result = image.run(data=train, eval_data=test, method=method, output_dir=out, overwrite=True,
                               batch_size=64, **budget)
        m = result.metrics["before_after"]["knn_top1"]
        rows.append((method, m["before"], m["after"], m["delta"], result.metrics["steps"],
                     time.perf_counter() - started))
    print(f"\n{'method':<8} {'before':>7} {'after':>7} {'change':>7} {'steps':>6} {'wall s':>7}")
    for r in rows:
        print(f"{r[0]:<8} {r[1]:>7.4f} {r[2]:>7.4f} {r[3]:>+7.4f} {r[4]:>6} {r[5]:>7.0f}")


if __name__ == "__main__":
    main()
