"""Sample data for the image-text recipe: drawn shapes with captions that name shape, size, colour and position."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (240, 220, 40),
           "purple": (140, 60, 180), "orange": (245, 140, 30), "white": (250, 250, 250), "black": (15, 15, 15)}
SHAPES = ("circle", "square", "triangle", "cross")
POSITIONS = {"at the top": (0.5, 0.28), "at the bottom": (0.5, 0.72), "on the left": (0.28, 0.5),
             "on the right": (0.72, 0.5), "in the middle": (0.5, 0.5)}
SIZES = {"small": 0.22, "large": 0.42}


def draw_shape(shape: str, colour: str, background: str, size: str, position: str, px: int = 32) -> Any:
    """One PIL image: a shape of a colour and size at a position on a plain background (drawn 4x, then shrunk)."""
    from PIL import Image, ImageDraw

    big = px * 4
    im = Image.new("RGB", (big, big), COLOURS[background])
    d = ImageDraw.Draw(im)
    cx, cy = (v * big for v in POSITIONS[position])
    r = SIZES[size] * big / 2
    fill = COLOURS[colour]
    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "triangle":
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    else:
        w = r / 3
        d.rectangle([cx - r, cy - w, cx + r, cy + w], fill=fill)
        d.rectangle([cx - w, cy - r, cx + w, cy + r], fill=fill)
    return im.resize((px, px), Image.LANCZOS)


def make_shapes(folder: str | Path, n: int = 400, seed: int = 0, px: int = 32,
                csv_name: str = "shapes.csv") -> Path:
    """Write ``n`` shape images to ``folder/shapes/`` and ``folder/<csv_name>`` (image path, caption); returns the CSV."""
    import csv

    rng = random.Random(seed)
    folder = Path(folder)
    (folder / "shapes").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        shape, size, position = rng.choice(SHAPES), rng.choice(list(SIZES)), rng.choice(list(POSITIONS))
        colour, background = rng.sample(list(COLOURS), 2)
        name = f"shapes/{i:04d}.png"
        draw_shape(shape, colour, background, size, position, px).save(folder / name, optimize=True)
        rows.append((name, f"a {size} {colour} {shape} {position} on a {background} background"))
    path = folder / csv_name
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "caption"])
        writer.writerows(rows)
    return path
