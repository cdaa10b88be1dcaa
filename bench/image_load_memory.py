"""Peak memory of loading a saved image Dataset: a git revision (default: the one before images were read row by
row) against the working tree, side by side in one run.

    python bench/image_load_memory.py --images 400 --side 512 [--before 703be9f]

Builds ``--images`` random-noise PNGs (incompressible: ~0.8 MB each at 512 px) into a ``datasets.Dataset`` with an
Image column and two classes, ``save_to_disk``s it, then, in a fresh process per side, ``load_from_disk`` (memory-
mapped) and ``load_images`` (every image decoded once, and the 10% kNN hold-out drawn), as ``contrastkit run image``
loads its data. Training is not run. Each process prints:
- ``peak``: its peak resident memory (VmHWM), file-backed pages of the mapped table included
- ``anon``/``file``: resident memory at the end, private (Python objects: held until exit) and file-backed (the
  mapped table's pages the kernel may drop and re-read)
- ``items``: what a spawned dataloader worker gets, pickled (``ImageDataset`` of the training images)
The "before" side imports the package from ``git archive <rev>`` in a temporary folder.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import pickle, sys
import datasets
from contrastkit.plugins.vision import data as vd
from contrastkit.plugins.vision.splits import holdout

def status():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return {k: int(fields[k].split()[0]) / 1024 for k in ("VmHWM", "RssAnon", "RssFile")}

ds = datasets.load_from_disk(sys.argv[1])
start = status()
data = vd.load_images(ds)
train, held = holdout(data, 42)
end = status()
worker = len(pickle.dumps(vd.ImageDataset(train, None)))
print(f"peak {end['VmHWM']:7.0f} MB (before load_images {start['VmHWM']:.0f})  anon {end['RssAnon']:7.0f} MB  "
      f"file {end['RssFile']:6.0f} MB  items {type(data.items).__name__} {len(data.items)} "
      f"(worker pickle {worker / 1e6:.2f} MB)  module {vd.__file__}")
"""


def build(folder: Path, n: int, side: int) -> int:
    """The saved Dataset; returns the PNG bytes it holds."""
    import datasets
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)

    def rows():
        for i in range(n):
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(buffer, "PNG",
                                                                                         compress_level=1)
            yield {"image": {"bytes": buffer.getvalue(), "path": f"{i}.png"}, "label": i % 2}

    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})
    ds = datasets.Dataset.from_generator(rows, features=features, cache_dir=str(folder / "cache"))
    ds.save_to_disk(str(folder / "saved"))
    return sum(f.stat().st_size for f in (folder / "saved").glob("*.arrow"))


def checkout(rev: str, folder: Path) -> Path:
    """``rev``'s plugins/ and recipes/ as an importable ``contrastkit`` package under ``folder``."""
    root = Path(__file__).resolve().parents[1]
    archive = subprocess.run(["git", "-C", str(root), "archive", rev, "plugins", "recipes"], check=True,
                             capture_output=True).stdout
    (folder / "contrastkit").mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(folder / "contrastkit")], input=archive, check=True)
    return folder


def measure(saved: Path, pythonpath: str | None) -> str:
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    out = subprocess.run([sys.executable, "-c", CHILD, str(saved)], env=env, capture_output=True, text=True)
    return out.stdout.strip() or out.stderr.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--before", default="703be9f", help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        size = build(tmp, args.images, args.side)
        old = checkout(args.before, tmp / "before")
        print(f"{args.images} PNGs of {args.side} px, {size / 1e6:.0f} MB of Arrow on disk")
        for r in range(args.rounds):
            print(f"round {r + 1}")
            print(f"  before ({args.before}): {measure(tmp / 'saved', str(old))}")
            print(f"  after  (working tree): {measure(tmp / 'saved', None)}")


if __name__ == "__main__":
    main()
