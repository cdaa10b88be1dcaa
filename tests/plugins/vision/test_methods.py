"""The method table: transform options and the memory bank's size."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


def test_transform_options_reach_lightlys_transform_and_unknown_ones_are_named():
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.vision.methods import make_transform

    norm = {"mean": [0.5] * 3, "std": [0.5] * 3}
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    gentle = make_transform("simclr", 16, norm, {"min_scale": 1.0, "cj_prob": 0.0, "random_gray_scale": 0.0,
                                                 "gaussian_blur": 0.0, "hf_prob": 0.0})
    a, b = gentle(image)
    assert a.shape == (3, 16, 16) and np.allclose(a.numpy(), b.numpy())  # no augmentation left: equal views
    a, b = make_transform("simclr", 16, norm)(image)
    assert not np.allclose(a.numpy(), b.numpy())  # lightly's defaults do augment
    with pytest.raises(UserError, match="transform option 'min_sclae'"):
        make_transform("byol", 16, norm, {"min_sclae": 0.2})


def test_the_memory_bank_cap_keeps_an_images_own_older_key_out_most_of_the_time():
    """Replays shuffled epochs through a FIFO bank of the capped size: the share of second-epoch images whose own
    first-epoch key is still in the bank is what own_key_share says (about 3% at a quarter), and what the note
    for the default 4,096 keys states."""
    import random

    from contrastkit.plugins.vision.methods import own_key_share
    from contrastkit.plugins.vision.module import SSLModule

    images, batch = 3_000, 64
    module = SSLModule("moco", "tiny-cnn")
    module.fit_memory_bank(images)
    keys, rng, met, seen = [], random.Random(0), 0, 0
    for epoch in range(2):
        order = rng.sample(range(images), images)[: images // batch * batch]  # shuffled, the last batch dropped
        for start in range(0, len(order), batch):
            step = order[start:start + batch]
            if epoch:
                bank = set(keys[-module.memory_bank_size:])
                met, seen = met + sum(i in bank for i in step), seen + len(step)
            keys.extend(step)
    assert 0.02 < met / seen < 0.05 and abs(met / seen - own_key_share(module.memory_bank_size, images)) < 0.01
    assert abs(own_key_share(4096, 3000) - 0.80) < 0.01 and abs(own_key_share(2936, 3000) - 0.48) < 0.01


def test_an_unknown_method_is_one_line_with_a_hint_and_the_names_are_the_tables_rows():
    import subprocess
    import sys

    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.vision.methods import METHOD_NAMES, _methods, check_method, get_method

    for check in (check_method, get_method):
        with pytest.raises(UserError, match=r"^unknown method 'simclrr'\. Did you mean 'simclr'\? Use one of: simclr, "):
            check("simclrr")
    assert tuple(_methods()) == METHOD_NAMES and all(callable(get_method(n).step) for n in METHOD_NAMES)
    code = "import sys; from contrastkit.plugins.vision.methods import check_method; check_method('dino'); " \
           "print(sorted({'torch', 'lightly'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr  # cheap enough for a config check
