"""Decode images as a viewer shows them: EXIF orientation applied, every bit depth scaled to 8-bit RGB,
transparency laid over white. Shared by the image recipe (``vision.data``) and the image-text recipe
(``st.clip_data``).

Scaling: 16-bit integer images (``I;16*``, and ``I`` within 0..65535) map 65535 to 255; other 32-bit integer
and float images map 0..1 (float) or their own min..max to 0..255. Palette, 1-bit, CMYK, ``LA``/``RGBA`` go
through Pillow's own conversions; alpha is composited over a white background.

Large images: ``open_rgb(item, min_side)`` decodes a picture that is only going to be resized far down (a training
view, an embedding) at a fraction of its pixels: JPEGs at a reduced DCT scale, everything else shrunk by an integer
box filter, as long as the shorter side stays at least ``min_side``. Converting and compositing then touch a few
hundred thousand pixels instead of tens of millions.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Iterator
from typing import Any

#: Modes that ``Image.reduce`` averages correctly (palette indices and 1-bit or 16-bit pixels are converted first)
REDUCIBLE = ("RGB", "RGBA", "L", "LA", "CMYK", "I", "F")
#: Modes that ``convert("RGB")`` turns into what a viewer shows, when no EXIF rotation is needed.
PLAIN_MODES = ("RGB", "L")
ORIENTATION_TAG = 0x0112


def _scaled_to_l(im: Any) -> Any:
    """A one-channel high bit-depth image (I;16*, I, F) as 8-bit ``L``, scaled by its bit depth."""
    import numpy as np
    from PIL import Image

    a = np.asarray(im).astype(np.float64)
    if im.mode.startswith("I;16"):
        a = a / 65535.0
    elif im.mode == "I" and a.size and a.min() >= 0 and a.max() <= 65535:
        a = a / 65535.0  # 16-bit PNG/TIFF opened as 32-bit int
    elif im.mode == "F" and a.size and a.min() >= 0 and a.max() <= 1:
        pass
    else:
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 1.0)
        a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    return Image.fromarray(np.clip(np.rint(a * 255), 0, 255).astype(np.uint8))


def to_rgb(im: Any) -> Any:
    """``im`` as an 8-bit RGB PIL image, as a viewer shows it (a new image; ``im`` is not changed)."""
    from PIL import Image, ImageOps

    im = ImageOps.exif_transpose(im) or im
    if im.mode == "RGB":
        return im
    if im.mode.startswith("I") or im.mode == "F":
        return _scaled_to_l(im).convert("RGB")
    if im.mode == "P" and "transparency" in im.info or im.mode == "PA":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")


def shrink(im: Any, min_side: int | None) -> Any:
    """``im`` reduced by the largest integer factor that keeps its shorter side at least ``min_side`` (box filter,
    alpha premultiplied by Pillow); ``im`` itself when it is less than twice that, or without ``min_side``. EXIF
    data travels along."""
    factor = min(im.size) // min_side if min_side else 1
    if factor < 2:
        return im
    if im.mode in ("P", "PA"):
        im = im.convert("RGBA")
    elif im.mode == "1":
        im = im.convert("L")
    elif im.mode not in REDUCIBLE:
        im = to_rgb(im)
    return im.reduce(factor)


#: one ``quiet_size_warning`` block at a time (see there)
_QUIET = threading.Lock()


@contextlib.contextmanager
def quiet_size_warning() -> Iterator[None]:
    """Pillow's DecompressionBombWarning (89 to 179 megapixels) off inside the block. ``catch_warnings`` swaps the
    process-wide filter list, so two threads' blocks overlapping (the demo's workers) would leave the filter
    installed for good; the lock keeps them one after the other."""
    from PIL import Image

    with _QUIET, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def image_source(item: Any) -> Any:
    """What ``Image.open`` reads for a path or an undecoded ``datasets.Image`` value (``{"bytes", "path"}``: its
    bytes when it has them, as ``datasets`` decodes it); ValueError for an empty value (None, no bytes and no path)."""
    import io

    if isinstance(item, dict):
        item = io.BytesIO(item["bytes"]) if item.get("bytes") is not None else item.get("path")
    if item is None or item == "":
        raise ValueError("no image (an empty value)")
    return item


def open_rgb(item: Any, min_side: int | None = None) -> Any:
    """A PIL image, a path to one or a ``datasets.Image`` value (``image_source``), decoded by ``to_rgb``; with
    ``min_side``, a larger image comes out shrunk so that its shorter side is still at least ``min_side`` (JPEGs are
    decoded at that scale in the first place). Pillow's DecompressionBombWarning (over 89 megapixels) is not
    repeated here: loading the data named them."""
    from PIL import Image

    if isinstance(item, Image.Image):
        return to_rgb(shrink(item, min_side))
    with quiet_size_warning():  # the data's load named such images once; not again for every view
        im = Image.open(image_source(item))
    with im:
        if min_side and im.format == "JPEG" and min(im.size) >= 2 * min_side:
            scale = min_side / min(im.size)
            im.draft(im.mode, (max(min_side, round(im.size[0] * scale)), max(min_side, round(im.size[1] * scale))))
        im.load()
        return to_rgb(shrink(im, min_side))


#: At most this many threads decode images at load (Pillow decodes outside the GIL); each holds one image in memory.
CHECK_THREADS = 4


def _decoded_size(item: Any) -> tuple[int, int] | Exception:
    """The size of ``item`` once decoded in full, or the exception Pillow raised on the way."""
    from PIL import Image

    try:
        if isinstance(item, Image.Image):
            return item.size
        with Image.open(image_source(item)) as im:
            im.load()
            return im.size
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for broken files
        return exc


def decoded_sizes(items: list) -> list[tuple[int, int] | Exception]:
    """Each image (a path, a PIL image or a ``datasets.Image`` value) decoded in full once, a few at a time, so
    that a broken or cut-off file is found before training: its (width, height), or the exception Pillow raised.
    Pillow's warning for images over its pixel limit is left to the caller to report once. ``pool.map`` takes in
    every item at once: a caller with many dataset rows passes them in chunks (``vision.data`` does)."""
    from concurrent.futures import ThreadPoolExecutor

    threads = max(1, min(CHECK_THREADS, len(os.sched_getaffinity(0)), len(items)))
    with quiet_size_warning(), ThreadPoolExecutor(threads) as pool:
        return list(pool.map(_decoded_size, items))


def name_list(names: list[str], first: int = 3) -> str:
    """``a.png, b.png, c.png and 4 more``: the first few names of a list, for a one-line message."""
    shown = ", ".join(names[:first])
    return shown + (f" and {len(names) - first} more" if len(names) > first else "")


def viewer_encoded(item: str | dict) -> dict:
    """A ``datasets.Image`` value (a path, or ``{"bytes", "path"}``) that decodes as a viewer shows the image:
    plain files are kept as they are; others (EXIF-rotated, 16-bit, alpha, CMYK, ...) are decoded by ``to_rgb``
    and stored as PNG bytes."""
    import io

    from PIL import Image

    value = {"path": item, "bytes": None} if isinstance(item, str) else dict(item)
    with Image.open(image_source(value)) as im:
        if im.mode in PLAIN_MODES and im.getexif().get(ORIENTATION_TAG, 1) in (1, None):
            return value
        im.load()
        buffer = io.BytesIO()
        to_rgb(im).save(buffer, format="PNG")
    return {"path": None, "bytes": buffer.getvalue()}
