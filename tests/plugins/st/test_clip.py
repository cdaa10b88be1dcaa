"""Image-text pairs: images decoded as a viewer shows them, captions that tell nothing apart."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
from PIL import Image

from tests.conftest import save_rotated_jpeg


def _pairs(tmp_path, images, captions):
    from contrastkit.plugins.data import with_row_numbers
    from contrastkit.plugins.st.clip import image_text_pairs

    ds = with_row_numbers(datasets.Dataset.from_dict({"image": images, "text": captions}))
    return image_text_pairs(ds, base_dir=tmp_path)


def test_16_bit_and_exif_rotated_images_reach_training_as_a_viewer_shows_them(tmp_path):
    Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16)).save(tmp_path / "white16.png")
    save_rotated_jpeg(tmp_path / "rotated.jpg")
    Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "plain.png")
    pairs, _ = _pairs(tmp_path, ["white16.png", "rotated.jpg", "plain.png"], ["white", "red over blue", "dark"])
    white, rotated, plain = pairs["image"]
    assert white.mode == "RGB" and np.asarray(white).min() == 255  # not saturated garbage
    assert rotated.size == (10, 20) and np.asarray(rotated)[2, 5, 0] > 200
    assert np.asarray(plain)[0, 0].tolist() == [1, 2, 3]
    assert pairs.column_names == ["image", "text"]


def test_captions_that_are_all_the_same_fail_and_repeated_rows_warn(tmp_path):
    from contrastkit.plugins.errors import UserError

    for i in range(3):
        Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(tmp_path / f"{i}.png")
    with pytest.raises(UserError, match="every caption is 'a photo'"):
        _pairs(tmp_path, ["0.png", "1.png", "2.png"], ["a photo", "a photo", "a photo "])
    _, stats = _pairs(tmp_path, ["0.png", "1.png", "0.png"], ["a", "b", "a"])
    assert any("1 row(s) repeat an earlier (image, caption) row (first: row 3, same as row 1)" in n
               for n in stats.notes())
