"""Decoding large images shrunk: training views per second with and without it, side by side in one run.

    sudo apt-get install openclipart-png mate-backgrounds     # drawings (PNG) and photos (JPEG), from Debian
    python bench/image_decode.py --rounds 3

The image recipe decodes each image shrunk to ``decode_side(image_size)`` on its shorter side (JPEGs at a reduced
DCT scale, others by an integer box filter) before its views are cut. This times one pass of the recipe's
supcon training views (64 px, lightly's SimCLR transform as the recipe sets it) over a set, as the recipe's
DataLoader reads it (``ImageDataset``, no workers, one torch thread), decoded in full (as before) and shrunk,
alternating, and prints views/s and the ratio for each set:
- ``clipart``: the 1,445 training drawings of bench/image_clipart.py (Open Clip Art PNGs, median 0.05 Mpx, a few
  over 100 Mpx), as the recipe loads them (it skips those over Pillow's pixel limit)
- ``photos``: the 16 JPEG photos of Debian's mate-backgrounds (1.3 to 18 Mpx), each read 4 times
"""

from __future__ import annotations

import argparse
import glob
import tempfile
import time
from pathlib import Path

import torch

PHOTOS = "/usr/share/backgrounds/mate/**/*.jpg"


def one_pass(items: list, min_side: int | None, transform) -> float:
    """Views per second of one pass over ``items``."""
    from contrastkit.plugins.vision.data import ImageData, ImageDataset

    data = ImageDataset(ImageData(items), transform, min_side)
    start = time.perf_counter()
    for i in range(len(data)):
        data[i]
    return len(data) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sets", default="photos,clipart")
    args = parser.parse_args()
    torch.set_num_threads(1)
    import warnings

    from contrastkit.plugins.vision.backbones import LITE_NORMALIZE
    from contrastkit.plugins.vision.data import decode_side, load_images
    from contrastkit.plugins.vision.methods import make_transform
    from image_clipart import build  # the script's folder is on sys.path

    warnings.filterwarnings("ignore", message="Image size")  # Pillow's DecompressionBombWarning on huge drawings
    transform = make_transform("supcon", 64, LITE_NORMALIZE)  # the default backbone's normalisation
    with tempfile.TemporaryDirectory() as tmp:
        sets = {}
        if "photos" in args.sets:
            photos = sorted(glob.glob(PHOTOS, recursive=True))
            if not photos:
                raise SystemExit(f"no photos at {PHOTOS}: `sudo apt-get install mate-backgrounds`")
            sets["photos"] = photos * 4
        if "clipart" in args.sets:
            build(Path(tmp))
            drawings = load_images(Path(tmp) / "train")  # as the recipe loads them: skips those over Pillow's limit
            print(f"clipart: {len(drawings.items)} drawings kept, skipped: {', '.join(drawings.skipped) or 'none'}")
            sets["clipart"] = list(drawings.items)
        for name, items in sets.items():
            full, shrunk = [], []
            for r in range(args.rounds):
                full.append(one_pass(items, None, transform))
                shrunk.append(one_pass(items, decode_side(64), transform))
                print(f"{name} round {r}: in full {full[-1]:.1f} views/s, shrunk {shrunk[-1]:.1f} views/s",
                      flush=True)
            ratios = sorted(s / f for s, f in zip(shrunk, full))
            print(f"RESULT {name}: {len(items)} images, in full {min(full):.1f}-{max(full):.1f} views/s, shrunk "
                  f"{min(shrunk):.1f}-{max(shrunk):.1f}; shrunk / in full x{ratios[0]:.2f}-x{ratios[-1]:.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
