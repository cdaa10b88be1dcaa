"""The image recipe's config check: transform options are built and applied before any data or model loads."""

from __future__ import annotations

import pytest


def test_a_transform_value_out_of_range_is_a_one_line_error_naming_the_option():
    from contrastkit.plugins.config import resolve
    from contrastkit.plugins.errors import UserError
    from contrastkit.recipes.image import Config

    # lightly builds RandomResizedCrop(scale=(2, 1)) without complaint; applying it fails inside torch
    with pytest.raises(UserError, match=r"^transform option\(s\) min_scale=2 fail on an image with simclr's") as err:
        resolve(Config, transform={"min_scale": 2, "gaussian_blur": 0.0})
    assert "\n" not in str(err.value) and "gaussian_blur" not in str(err.value)
    assert resolve(Config, transform={"min_scale": 0.2, "gaussian_blur": 0.0}).transform["min_scale"] == 0.2


@pytest.mark.parametrize("precision", ["bf16-true", "64-true", "16-true"])
def test_a_precision_that_casts_the_weights_is_refused_before_any_work(precision):
    from contrastkit.plugins.config import resolve
    from contrastkit.plugins.errors import UserError
    from contrastkit.recipes.image import Config

    with pytest.raises(UserError, match=rf"config field 'precision' must be auto, 32-true, .* or 16, got '{precision}'"):
        resolve(Config, precision=precision)
    assert resolve(Config, precision="bf16-mixed").precision == "bf16-mixed"
