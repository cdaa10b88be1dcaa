"""The image recipe on a second labelled set that nothing was tuned on: Debian's Open Clip Art drawings.

    sudo apt-get install openclipart-png                       # 131 MB; /usr/share/openclipart/png/<subject>/...
    python bench/image_clipart.py --seed 0                     # the defaults (method=auto: supcon)
    python bench/image_clipart.py --seed 0 --set method=simclr

Builds a labelled folder (symlinks) from the package, fixed for every run: the top-level subject folders with at least
50 drawings, less `special` and `unsorted`; each drawing once (the package's symlinked copies of a drawing in other
folders are left out); at most 200 drawings a class (numpy seed 0); 70% of each class to training, 30% held out:
13 classes, 1,445 training and 619 held-out drawings. (The runs in bench/results/image-clipart/ counted the copies
too: 14 classes, 1,569 / 675 drawings, 92 of the held-out ones also training images, as their logs warn.) Then runs the recipe (`image.run(data=<train>, eval_data=<held out>, seed=N)`) with one torch
thread and prints its kNN before/after, the linear-probe reference and the training CPU seconds (``--alphas``:
also the kNN top-1 of other WiSE-FT blends of the same run, as bench/image_quality.py does). The plan is
section 6 of bench/supcon_plan.md; raw output in bench/results/image-clipart/.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path("/usr/share/openclipart/png")
SKIP = {"special", "unsorted"}
MIN_CLASS, MAX_CLASS, TRAIN_SHARE = 50, 200, 0.7


def build(dest: Path) -> dict[str, int]:
    """Write train/<subject>/ and held_out/<subject>/ symlinks under dest; the images per class."""
    if not ROOT.is_dir():
        sys.exit(f"{ROOT} not found: install Debian's clip art with `sudo apt-get install openclipart-png`")
    rng = np.random.default_rng(0)
    counts = {}
    for subject in sorted(p.name for p in ROOT.iterdir() if p.is_dir() and p.name not in SKIP):
        # each drawing once: the package links a drawing into other folders too, and a link drawn into held_out
        # beside its file in train (or into another subject) would be a training image scored as held out
        files = sorted(p for p in (ROOT / subject).rglob("*.png") if not p.is_symlink())
        if len(files) < MIN_CLASS:
            continue
        files = [files[i] for i in sorted(rng.choice(len(files), min(len(files), MAX_CLASS), replace=False))]
        order = rng.permutation(len(files))
        n_train = round(TRAIN_SHARE * len(files))
        for split, idx in (("train", order[:n_train]), ("held_out", order[n_train:])):
            folder = dest / split / subject
            folder.mkdir(parents=True)
            for i in idx:  # flat names: a drawing's sub-subject folder is not a label
                (folder / f"{i:04d}_{files[i].name}").symlink_to(files[i])
        counts[subject] = len(files)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], help="more recipe keys, e.g. method=simclr")
    parser.add_argument("--alphas", default="", help="also score these WiSE-FT blends of the run, e.g. 0.25,0.5")
    args = parser.parse_args()
    import torch
    import yaml
    from contrastkit.recipes import image
    from image_quality import blends  # the script's folder is on sys.path

    torch.set_num_threads(1)
    overrides = {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    with tempfile.TemporaryDirectory() as tmp:
        counts = build(Path(tmp))
        train, held_out = Path(tmp) / "train", Path(tmp) / "held_out"
        print(f"data: Open Clip Art (Debian openclipart-png), {len(counts)} classes, {sum(counts.values())} "
              f"drawings: {counts}", flush=True)
        print(f"# image.run(data=train, eval_data=held_out, seed={args.seed}, {overrides}), 1 torch thread",
              flush=True)
        result = image.run(data=str(train), eval_data=str(held_out), seed=args.seed, output_dir=f"{tmp}/run",
                           accelerator="cpu", **overrides)
        m = result.metrics
        keep = {k: m.get(k) for k in ("method", "before_after", "reference", "train_seconds", "train_cpu_seconds",
                                      "steps", "wise_ft", "learning_rate")}
        keep["blends"] = blends(result, train, held_out, [float(a) for a in filter(None, args.alphas.split(","))])
        print("METRICS", json.dumps(keep))


if __name__ == "__main__":
    main()
