"""Loading an image folder: one decoding thread against the default (``CHECK_THREADS``), side by side in one run.

    sudo apt-get install openclipart-png mate-backgrounds     # drawings (PNG) and photos (JPEG), from Debian
    python bench/image_load.py --rounds 3

``load_images`` decodes every image once, to skip (or refuse) the broken ones before training starts. This times
``load_images(folder)`` on two folders, with ``contrastkit.plugins.images.CHECK_THREADS`` set to 1 and left at its
default, alternating, and prints seconds per load and the ratio for each round:
- ``clipart``: the first 2,000 Open Clip Art PNGs under /usr/share/openclipart/png (sorted by path), as symlinks
- ``photos``: the 16 JPEG photos of Debian's mate-backgrounds (1.3 to 18 Mpx), 4 symlinks each

The threads decode at once only on free cores: the printout names the cores this process may use.
"""

from __future__ import annotations

import argparse
import glob
import os
import tempfile
import time
from pathlib import Path

SETS = {"clipart": ("/usr/share/openclipart/png/**/*.png", 2000, 1),
        "photos": ("/usr/share/backgrounds/mate/**/*.jpg", None, 4)}


def build(dest: Path, pattern: str, first: int | None, copies: int) -> int:
    """A folder of symlinks to the set's files (two class subfolders, by position); returns how many."""
    files = sorted(glob.glob(pattern, recursive=True))[:first]
    n = 0
    for copy in range(copies):
        for i, f in enumerate(files):
            target = dest / f"c{n % 2}" / f"{copy}-{i}{Path(f).suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(f)
            n += 1
    return n


def seconds(folder: Path) -> float:
    from contrastkit.plugins.vision.data import load_images

    start = time.perf_counter()
    load_images(str(folder))
    return time.perf_counter() - start


def main() -> None:
    from contrastkit.plugins import images

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    default = images.CHECK_THREADS
    print(f"cores this process may use: {len(os.sched_getaffinity(0))}; CHECK_THREADS default: {default}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (pattern, first, copies) in SETS.items():
            folder = Path(tmp) / name
            n = build(folder, pattern, first, copies)
            if not n:
                print(f"{name}: no files (install the package named at the top)")
                continue
            seconds(folder)  # warm the page cache
            for r in range(args.rounds):
                images.CHECK_THREADS = 1
                one = seconds(folder)
                images.CHECK_THREADS = default
                many = seconds(folder)
                print(f"{name} ({n} images) round {r}: 1 thread {one:.2f} s, default {many:.2f} s, "
                      f"ratio {many / one:.2f}")


if __name__ == "__main__":
    main()
