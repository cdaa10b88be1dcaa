"""The recipe's Lightning callbacks: WiSE-FT."""

from __future__ import annotations

import pytest


def test_wise_ft_is_on_by_default_only_for_a_pretrained_backbone():
    """WiSEFT() blends towards the start only when the start is pretrained: a random start is noise."""
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.vision.callbacks import WISE_FT_PRETRAINED, WiSEFT
    from contrastkit.plugins.vision.module import SSLModule

    pretrained, random_init = WiSEFT(), WiSEFT()
    pretrained.setup(None, SSLModule(method="simclr"), "fit")  # EfficientNet-Lite0, ImageNet weights
    random_init.setup(None, SSLModule(method="simclr", backbone="tiny-cnn"), "fit")
    assert pretrained.alpha == WISE_FT_PRETRAINED < 1 and pretrained.start  # the start is kept for the blend
    assert random_init.alpha == 1.0 and random_init.start is None
    with pytest.raises(UserError, match="wise_ft"):
        WiSEFT(1.5)
