"""kNN accuracy on Fashion-MNIST before and after the image recipe with its DEFAULT settings, on the CPU.

    python bench/image_quality.py                 # 3,000 training / all 10,000 test images, simclr then byol
    python bench/image_quality.py --quick         # 600 / 300 images, 8 steps per method
    python bench/image_quality.py --threads 2 --methods simclr --set learning_rate=1e-4   # one sweep arm
    python bench/image_quality.py --threads 1 --methods simclr --alphas 0.1,0.25,0.5,1   # WiSE-FT blends too
    python bench/image_quality.py --threads 1 --methods supcon --set seed=1             # the supervised arm
    python bench/image_quality.py --threads 1 --methods supcon --val-images 2000        # tuning: no test images

"before" is the pretrained EfficientNet-Lite0's own kNN accuracy (k=20, cosine, weighted, on the backbone's
pooled features); "after" is the same after training. mean_cosine / std are the collapse check on the test
embeddings (mean pairwise cosine -> 1 and per-dimension std -> 0 mean collapse). ``--alphas`` also reports the
kNN accuracy of other WiSE-FT blends of the same run: start + alpha * (trained - start), from the trained weights in
``checkpoints/last.ckpt`` (the recipe keeps them there) and the pretrained start; 1 is the run without the blend.
``--val-images N`` scores on N more images of Fashion-MNIST's training partition instead of its test set, so that
settings can be chosen without looking at the test images (bench/supcon_plan.md). "probe" is a logistic-regression
linear probe on the pretrained features (the recipe's reference line); "train cpu s" is the CPU time of training
alone, which the 5-minute target means (the wall clock also counts other programs on a shared machine).
Needs Debian's dataset-fashion-mnist (apt-get install -y dataset-fashion-mnist) or --data-dir with its idx files.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")


def read_idx(root: Path, name: str) -> np.ndarray:
    """One idx file (gzip or plain) as a numpy array."""
    path = root / name if (root / name).exists() else root / f"{name}.gz"
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def write_folder(root: Path, prefix: str, n: int, seed: int, out: Path, besides: int = 0) -> Path:
    """``n`` random Fashion-MNIST images as PNGs in class subfolders (the recipe's labelled-folder input); with
    ``besides``, ``n`` others instead, drawn from the images the first ``besides`` of that draw left out."""
    from PIL import Image

    images, labels = read_idx(root, f"{prefix}-images-idx3-ubyte"), read_idx(root, f"{prefix}-labels-idx1-ubyte")
    for name in CLASSES:
        (out / name).mkdir(parents=True, exist_ok=True)
    chosen = np.random.default_rng(seed).choice(len(images), besides or n, replace=False)
    if besides:  # a validation split from the same partition, disjoint from the training images
        rest = np.setdiff1d(np.arange(len(images)), chosen)
        chosen = np.random.default_rng(seed + 2).choice(rest, n, replace=False)
    for i in chosen:
        Image.fromarray(images[i]).save(out / CLASSES[labels[i]] / f"{i}.png")
    return out


def trained_backbone(output_dir: Path) -> dict:
    """The backbone's trained (unblended) weights from a run's ``checkpoints/last.ckpt``."""
    import torch

    state = torch.load(Path(output_dir) / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    return {k[len("backbone."):]: v for k, v in state["state_dict"].items() if k.startswith("backbone.")}


def blends(result, train: Path, test: Path, alphas: list[float]) -> dict[float, float]:
    """kNN top-1 of start + alpha * (trained - start) for each alpha, with the recipe's own kNN settings."""
    if not alphas:
        return {}
    from contrastkit.plugins.vision.backbones import create_backbone
    from contrastkit.plugins.vision.callbacks import KNNCallback, blend_weights
    from contrastkit.plugins.vision.data import load_images

    cfg = result.config
    small_stem = cfg.small_stem if cfg.small_stem is not None else cfg.image_size <= 32  # as the recipe decides
    net, _ = create_backbone(cfg.backbone, small_stem, cfg.weights)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    trained = trained_backbone(result.output_dir)
    knn = KNNCallback(load_images(str(train)), load_images(str(test)), result.model.preprocess, cfg.knn_k, cfg.knn_t)
    out = {}
    for alpha in alphas:  # the recipe's own blend and kNN evaluation
        net.load_state_dict(trained)
        blend_weights(net, start, alpha)
        out[alpha] = knn.evaluate(net)["knn_top1"]
    return out


def centred(result, train: Path, test: Path) -> float:
    """kNN top-1 of the saved backbone's embeddings with the training images' mean embedding subtracted (then
    L2-normalised again), with the recipe's own kNN settings."""
    from contrastkit.plugins.vision.data import load_images
    from contrastkit.plugins.vision.encoder import embed_with
    from contrastkit.plugins.vision.knn import knn_accuracy

    bank, query = load_images(str(train)), load_images(str(test))
    net, preprocess = result.model.encoder, result.model.preprocess
    b, q = embed_with(net, bank.items, preprocess), embed_with(net, query.items, preprocess)
    mean = b.mean(axis=0)
    return knn_accuracy(b - mean, bank.labels, q - mean, query.labels, result.config.knn_k, result.config.knn_t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small, fast version (600/300 images, 8 steps)")
    parser.add_argument("--methods", default="simclr,byol")
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a recipe override on top of the defaults (repeatable)")
    parser.add_argument("--train-images", type=int, default=3000, help="training images (also the kNN bank)")
    parser.add_argument("--test-images", type=int, default=10000,
                        help="held-out images for kNN top-1 (10,000: all of Fashion-MNIST's test set)")
    parser.add_argument("--val-images", type=int, default=0,
                        help="score on this many other training-partition images instead of the test set (tuning)")
    parser.add_argument("--alphas", default="", help="also evaluate these WiSE-FT blends of each run, e.g. 0.25,0.5,1")
    parser.add_argument("--centre", action="store_true",
                        help="also report kNN top-1 with the training images' mean embedding subtracted")
    parser.add_argument("--json", help="also write the result rows to this file")
    parser.add_argument("--keep", help="copy each method's output folder (model, checkpoints) into this folder")
    args = parser.parse_args()
    import torch
    from contrastkit.plugins.values import parse_overrides
    from contrastkit.recipes import image

    if args.threads:
        torch.set_num_threads(args.threads)
    n_train, n_test = (600, 300) if args.quick else (args.train_images, args.test_images)
    overrides = {**({"max_steps": 8} if args.quick else {}), **parse_overrides(args.set)}
    print(f"Fashion-MNIST: {n_train} training, {n_test} test images; recipe defaults (EfficientNet-Lite0 pretrained, "
          f"{image.Config.image_size} px, batch {image.Config.batch_size}, the method's epochs) + "
          f"{overrides or 'nothing'}; CPU, {torch.get_num_threads()} torch threads", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.data_dir)
        train = write_folder(root, "train", n_train, 0, Path(tmp) / "train")
        test = write_folder(root, "train", args.val_images, 0, Path(tmp) / "val", besides=n_train) \
            if args.val_images else write_folder(root, "t10k", n_test, 1, Path(tmp) / "test")
        print(f"scored on {'validation images from the training partition' if args.val_images else 'test images'}: "
              f"{args.val_images or n_test}", flush=True)
        for method in args.methods.split(","):
            started, cpu = time.perf_counter(), time.process_time()
            result = image.run(data=str(train), eval_data=str(test), method=method, output_dir=f"{tmp}/{method}",
                               overwrite=True, accelerator="cpu", **overrides)
            m, spread = result.metrics["before_after"]["knn_top1"], result.metrics["embedding_spread"]
            rows.append({"method": method, **m, "steps": result.metrics["steps"],
                         "probe": result.metrics["reference"].get("linear_probe_top1"),
                         "train_s": result.metrics["train_seconds"],
                         "train_cpu_s": result.metrics["train_cpu_seconds"],
                         "knn_s": result.metrics.get("knn_seconds"), "wall_s": round(time.perf_counter() - started),
                         "cpu_s": round(time.process_time() - cpu), "images_per_s": result.metrics["images_per_second"],
                         "cos_before": spread["before"]["mean_cosine"], "cos_after": spread["after"]["mean_cosine"],
                         "std_before": spread["before"]["embedding_std"], "std_after": spread["after"]["embedding_std"],
                         "overrides": overrides,
                         "centred": centred(result, train, test) if args.centre else None,
                         "blends": blends(result, train, test, [float(a) for a in filter(None, args.alphas.split(","))])})
            if args.keep:
                shutil.copytree(result.output_dir, Path(args.keep) / method, dirs_exist_ok=True)
    print(f"\n{'method':<8} {'before':>7} {'after':>7} {'change':>7} {'probe':>7} {'steps':>6} {'train s':>8} "
          f"{'train cpu s':>11} {'cpu s':>6} {'cos before->after':>18} {'std before->after':>18}")
    for r in rows:
        print(f"{r['method']:<8} {r['before']:>7.4f} {r['after']:>7.4f} {r['delta']:>+7.4f} {r['probe'] or 0:>7.4f} "
              f"{r['steps']:>6} {r['train_s']:>8.0f} {r['train_cpu_s']:>11.0f} {r['cpu_s']:>6} "
              f"{r['cos_before']:>8.3f} -> {r['cos_after']:<6.3f} {r['std_before']:>8.4f} -> {r['std_after']:<7.4f}")
    print("train s / train cpu s: wall and CPU seconds of training alone; cpu s: process CPU seconds of the whole run "
          "(incl. kNN and the probe); probe: linear probe on the pretrained features")
    for r in rows:
        if r["centred"] is not None:
            print(f"{r['method']} centred (training images' mean embedding subtracted): kNN top-1 {r['centred']:.4f}")
        if r["blends"]:
            print(f"{r['method']} WiSE-FT blends, kNN top-1 change over before: " + "  ".join(
                f"alpha {a:g}: {acc - r['before']:+.4f}" for a, acc in r["blends"].items()))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
