"""What the page's inputs become before any model sees them: the lines of a text box, an uploaded image decoded
as the models take it (or ``DemoInputError`` saying what is wrong with it), and a copy small enough to show."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .core import DemoInputError

DISPLAY_SIDE = 512  # pixels: uploads are kept at most this large for the page; the models get the full decode

#: Characters that print as nothing but that ``str.strip`` keeps (zero-width spaces and joiners, a BOM)
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"


def split_lines(text: str | None) -> list[str]:
    """Non-empty, stripped lines of a text box (a line of only invisible characters counts as empty)."""
    lines = [line.strip().strip(INVISIBLE).strip() for line in (text or "").splitlines()]
    return [line for line in lines if line]


def open_image(path: str | os.PathLike | None, what: str, max_bytes: int) -> Any:
    """A PIL RGB image from an uploaded file, decoded in full as the models take it, or DemoInputError that says
    what is wrong with it."""
    from contrastkit.plugins.images import open_rgb
    from PIL import Image, UnidentifiedImageError

    if not path:
        raise DemoInputError(f"Please upload {what}.")
    path = Path(path)
    if path.stat().st_size > max_bytes:
        raise DemoInputError(f"{what} ({path.name}) is larger than {max_bytes // 2**20} MB; upload a smaller image.")
    try:
        # the recipes' decoder (EXIF orientation, bit depth); it keeps Pillow's warning for images over its
        # pixel limit, which are decoded all the same, from reaching the user
        return open_rgb(path)
    except Image.DecompressionBombError:
        raise DemoInputError(f"{what} ({path.name}) has more than {2 * Image.MAX_IMAGE_PIXELS / 1e6:.3g} megapixels, "
                             f"more than Pillow decodes safely; upload a smaller image.") from None
    except (UnidentifiedImageError, OSError):
        raise DemoInputError(f"{what} ({path.name}) is not an image; upload a PNG, JPEG, WebP or GIF file.") from None


def display_image(image: Any) -> Any:
    """A decoded image fitted into ``DISPLAY_SIDE`` pixels, to show in the page (``image`` itself when it fits);
    the models still get ``image``, so the full-size one is freed once they have embedded it."""
    if max(image.size) <= DISPLAY_SIDE:
        return image
    # a box filter over whole pixels first (a new image, no full-size copy), then thumbnail's own resampling
    shown = image.reduce(max(image.size) // DISPLAY_SIDE)
    shown.thumbnail((DISPLAY_SIDE, DISPLAY_SIDE))
    return shown
