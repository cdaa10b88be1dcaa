"""Image-text pairs from a Hub-style image column: one key per image for the repeat warning and the split."""

from __future__ import annotations

import io

import datasets
from PIL import Image


def _png(color) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_hub_images_that_share_a_path_are_told_apart_by_their_bytes():
    """Hub image columns give every image the same ``path`` (``image.png``): repeats and the held-out split go by
    the bytes, one key for both, so different images with one caption are no repeat and one image is one group."""
    from contrastkit.plugins.data import with_row_numbers
    from contrastkit.plugins.st.clip_data import image_keys, image_text_pairs

    colours = [(200, 0, 0), (0, 200, 0), (0, 0, 200), (200, 200, 0), (0, 200, 200), (200, 0, 200)]
    images = [{"bytes": _png(c), "path": "image.png"} for c in colours]
    images.append({"bytes": _png(colours[0]), "path": "copy.png"})  # row 1's image again, under another name
    captions = ["a red square", "a photo", "a blue square", "a photo", "a cyan square", "a photo", "a red square"]
    features = datasets.Features({"image": datasets.Image(), "text": datasets.Value("string")})
    ds = with_row_numbers(datasets.Dataset.from_dict({"image": images, "text": captions}, features=features))
    pairs, stats = image_text_pairs(ds)
    assert [n for n in stats.notes() if "repeat" in n] == [
        ("warning: 1 row(s) repeat an earlier (image, caption) row (first: row 7, same as row 1); repeated rows weigh "
         "more in training and can land in both the training and held-out split")]
    keys = image_keys(pairs)
    assert len(set(keys)) == 6 and keys[6] == keys[0]
