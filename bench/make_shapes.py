"""Regenerate the bundled image-text sample: recipes/sample_data/shapes.csv + shapes/*.png (deterministic).

    python bench/make_shapes.py            # 400 images, 32 px, seed 0
"""

from __future__ import annotations

import argparse
from pathlib import Path

from contrastkit.plugins.st.shapes import make_shapes

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Regenerate the bundled image-text sample (overwrites it).")
    parser.add_argument("n", type=int, nargs="?", default=400, help="number of images (default 400)")
    n = parser.parse_args().n
    folder = Path(__file__).resolve().parent.parent / "recipes" / "sample_data"
    csv_path = make_shapes(folder, n=n, seed=0, px=32)
    size = sum(p.stat().st_size for p in (folder / "shapes").glob("*.png")) + csv_path.stat().st_size
    print(f"wrote {csv_path} and {n} images ({size / 1024:.0f} KiB)")
