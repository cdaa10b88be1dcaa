"""Image data from Python objects and scikit-learn's digits, and the hold-out."""

from __future__ import annotations

import pytest
from PIL import Image


def test_images_from_python_objects_are_rgb_and_1x1_images_are_skipped():
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.vision.data import ImageDataset, load_images, open_rgb

    palette = Image.new("P", (10, 10), 3)
    data = load_images([Image.new("L", (12, 9), 50), palette, Image.new("RGB", (1, 1))])
    assert len(data.items) == 2 and len(data.skipped) == 1 and data.labels is None
    assert all(open_rgb(x).mode == "RGB" for x in data.items)
    assert ImageDataset(data, lambda im: im.size)[0] == ((12, 9), -1)
    with pytest.raises(UserError, match="item 0' is 1x1 px, too small"):
        load_images([Image.new("RGB", (1, 1))], strict=True)


def test_default_data_is_sklearn_digits_with_labels():
    from contrastkit.plugins.vision.data import holdout, load_images

    data = load_images(None)
    assert len(data.items) == 1797 and data.items[0].size == (8, 8) and set(data.labels) == set(range(10))
    train, held = holdout(data, seed=0)
    assert len(held.items) == 179 and len(train.items) == 1797 - 179
