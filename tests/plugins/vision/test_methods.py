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
    with pytest.raises(UserError, match="transform option 'min_sclae'.*Did you mean 'min_scale'"):
        make_transform("byol", 16, norm, {"min_sclae": 0.2})


def test_an_option_of_another_methods_transform_is_refused_with_this_methods_own_options():
    """dino's and swav's lightly transforms name their crop scales differently from simclr's min_scale: the error
    lists the options the method's own transform takes (not min_scale), and says which ones the recipe sets."""
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.vision.methods import make_transform

    norm = {"mean": [0.5] * 3, "std": [0.5] * 3}
    with pytest.raises(UserError, match=r"'min_scale' is not an argument of dino's lightly transform "
                                        r"\(DINOTransform\)\. Its options: global_crop_scale, local_crop_scale") as err:
        make_transform("dino", 16, norm, {"min_scale": 0.3})
    assert "min_scale" not in str(err.value).split("Its options:")[1] and "normalize" not in str(err.value)
    with pytest.raises(UserError, match="Did you mean 'crop_min_scales'"):
        make_transform("swav", 16, norm, {"min_scale": 0.3})
    with pytest.raises(UserError, match="^transform option 'input_size' is set by the recipe .from image_size="):
        make_transform("simclr", 16, norm, {"input_size": 32})
    assert make_transform("dino", 16, norm, {"global_crop_scale": (0.5, 1.0)})  # its own name is taken


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


@pytest.mark.parametrize("labels, names, method, why", [
    ([0] * 6 + [1] * 5, ["cat", "dog"], "supcon", "2 labelled classes, 5 or more training images each"),
    ([0] * 6 + [1] * 4, ["cat", "dog"], "simclr", "class 'dog' has 4 training image(s), under the 5 supcon needs"),
    (None, None, "simclr", "the images in photos have no labels"),
    (None, ["cat"], "simclr", "the images in photos have no labels"),
    ([0] * 6, ["cat"], "simclr", "photos has a single class ('cat')"),
])
def test_auto_chooses_supcon_only_with_two_classes_of_enough_images(labels, names, method, why):
    from contrastkit.plugins.vision.methods import choose_method

    chosen, reason = choose_method("auto", labels, names, "photos")
    assert chosen == method and reason.startswith("method=auto: ") and why in reason


@pytest.mark.parametrize("labels, names, message", [
    (None, None, "method=supcon needs labelled images, but photos has no labels; put every image in a class"),
    (None, ["cat"], "method=supcon needs at least 2 classes, but photos has one ('cat'); add a subfolder per class"),
    ([0] * 4, ["cat"], "method=supcon needs at least 2 classes, but photos has one ('cat')"),
    ([0] * 4 + [1], ["cat", "dog"], "class 'dog' of photos has 1; add images to it or remove it"),
])
def test_supcon_on_data_it_cannot_learn_from_is_one_line_naming_the_data_and_the_fix(labels, names, message):
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.vision.methods import choose_method

    with pytest.raises(UserError) as err:
        choose_method("supcon", labels, names, "photos")
    assert message in str(err.value) and "or use method=simclr" in str(err.value) and "\n" not in str(err.value)
    assert choose_method("supcon", [0, 0, 1, 1], ["cat", "dog"], "photos")[0] == "supcon"
    assert choose_method("byol", labels, names, "photos")[0] == "byol"  # a named method is never second-guessed


def _supcon_rank(rank: int, port: int, views: list, labels, queue) -> None:
    import types

    import torch.distributed as dist
    from contrastkit.plugins.vision.methods import supervised_views
    from pytorch_metric_learning.losses import SupConLoss

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    half = slice(rank * 4, rank * 4 + 4)  # each rank holds half the batch, as DDP's sampler gives it
    losses = []
    for ssl_weight in (0.0, 0.5):  # labels only; then with the self-supervised loss added
        module = types.SimpleNamespace(project=lambda v: v, criterion=SupConLoss(temperature=0.1),
                                       ssl_weight=ssl_weight)
        losses.append(float(supervised_views(module, [v[half] for v in views], labels[half])))
    queue.put((rank, losses))
    dist.destroy_process_group()


def test_supcon_under_ddp_sees_the_other_ranks_images_and_labels():
    """Each rank's loss is the whole batch's (times the world size, which DDP's gradient averaging divides out):
    the positives and negatives of an image include those on the other rank."""
    import socket

    import torch
    import torch.multiprocessing as mp
    from pytorch_metric_learning.losses import SupConLoss

    torch.manual_seed(0)
    views = [torch.nn.functional.normalize(torch.randn(8, 16), dim=1) for _ in range(2)]
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])  # every image's class-mates sit on the other rank
    whole = float(SupConLoss(temperature=0.1)(torch.cat(views), torch.cat([labels, labels])))
    own = torch.arange(8)  # ssl_weight: each image its own label, across both ranks (NT-Xent over the whole batch)
    mixed = whole + 0.5 * float(SupConLoss(temperature=0.1)(torch.cat(views), torch.cat([own, own])))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_supcon_rank, args=(r, port, views, labels, queue)) for r in range(2)]
    for p in procs:
        p.start()
    losses = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs)
    for rank in range(2):
        assert abs(losses[rank][0] / 2 - whole) < 1e-5, (losses, whole)
        assert abs(losses[rank][1] / 2 - mixed) < 1e-5, (losses, mixed)
