"""SSLModule in a user's own Trainer: momentum, frozen BatchNorm, schedules, the memory bank, layout."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


def _noise_images(n: int) -> list:
    """``n`` 16x16 RGB images of uniform noise (seeded)."""
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)) for _ in range(n)]


def _loader(items: list, method: str):
    """Batches of 4 of ``method``'s multi-view transform of ``items`` at 16 px."""
    import torch
    from contrastkit.plugins.vision.data import ImageData, ImageDataset
    from contrastkit.plugins.vision.methods import make_transform

    transform = make_transform(method, 16, {"mean": [0.5] * 3, "std": [0.25] * 3})
    return torch.utils.data.DataLoader(ImageDataset(ImageData(items), transform), batch_size=4, drop_last=True)


def test_ssl_module_and_knn_callback_in_a_users_own_trainer(tmp_path):
    import pytorch_lightning as pl
    import torch
    from contrastkit.plugins.vision.callbacks import KNNCallback
    from contrastkit.plugins.vision.data import ImageData, ImageDataset
    from contrastkit.plugins.vision.encoder import make_preprocess
    from contrastkit.plugins.vision.module import SSLModule
    from lightly.transforms import BYOLTransform, BYOLView1Transform, BYOLView2Transform

    rng = np.random.default_rng(0)
    items = [Image.fromarray(np.full((16, 16, 3), c, np.uint8) + rng.integers(0, 20, (16, 16, 3), dtype=np.uint8))
             for c in (20, 230) for _ in range(8)]
    data = ImageData(items, labels=[0] * 8 + [1] * 8)
    transform = BYOLTransform(BYOLView1Transform(input_size=16), BYOLView2Transform(input_size=16))
    loader = torch.utils.data.DataLoader(ImageDataset(data, transform), batch_size=4, shuffle=True, drop_last=True)

    model = SSLModule(method="byol", backbone="tiny-cnn")
    knn = KNNCallback(data, data, make_preprocess(16, {"mean": [0.5] * 3, "std": [0.25] * 3}), k=5)
    before = [p.detach().clone() for p in model.backbone.parameters()]
    trainer = pl.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, callbacks=[knn], default_root_dir=tmp_path)
    trainer.fit(model, loader)
    assert trainer.global_step == 2 and len(model.loss_history()) == 2
    assert any(not torch.equal(a, b) for a, b in zip(before, model.backbone.parameters()))
    # the momentum (EMA) encoder moved only part of the way towards the online one
    assert any(not torch.equal(a, b) for a, b in zip(model.backbone_momentum.parameters(),
                                                      model.backbone.parameters()))
    assert 0.0 <= knn.before["knn_top1"] <= 1.0 and 0.0 <= knn.after["knn_top1"] <= 1.0
    assert knn.query_embeddings.shape == (16, 32)


def test_frozen_batchnorm_stays_frozen_through_a_lightning_fit_with_knn(tmp_path):
    import pytorch_lightning as pl
    import torch
    from contrastkit.plugins.vision.callbacks import KNNCallback
    from contrastkit.plugins.vision.data import ImageData, ImageDataset
    from contrastkit.plugins.vision.encoder import make_preprocess
    from contrastkit.plugins.vision.methods import get_method
    from contrastkit.plugins.vision.module import SSLModule

    items = _noise_images(16)
    data = ImageData(items, labels=[i % 2 for i in range(16)])
    norm = {"mean": [0.5] * 3, "std": [0.25] * 3}
    loader = torch.utils.data.DataLoader(ImageDataset(data, get_method("simclr").transform(16, norm)), batch_size=8,
                                         drop_last=True)
    model = SSLModule(method="simclr", backbone="tiny-cnn", freeze_bn=True, head_batch_norm=False, warmup_steps=2)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in model.head.modules())
    stats = {k: v.clone() for k, v in model.backbone.state_dict().items() if "running" in k}
    # Lightning never calls train() at fit start and the kNN pass (eval, then restore) runs first: both used to
    # leave BatchNorm in training mode, so the "frozen" statistics moved
    trainer = pl.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, default_root_dir=tmp_path,
                         callbacks=[KNNCallback(data, data, make_preprocess(16, norm), k=5)])
    trainer.fit(model, loader)
    assert trainer.global_step == 2
    assert all(torch.equal(v, model.backbone.state_dict()[k]) for k, v in stats.items())


def test_head_warmup_backbone_lr_scale_cosine_schedule_and_freeze_fraction(tmp_path):
    import pytorch_lightning as pl
    import torch
    from contrastkit.plugins.vision.module import SSLModule

    loader = _loader(_noise_images(16), "simclr")

    def fit(steps, **kw):
        model = SSLModule(method="simclr", backbone="tiny-cnn", learning_rate=1e-2, **kw)
        before = [p.detach().clone() for p in model.backbone.parameters()]
        trainer = pl.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, default_root_dir=tmp_path)
        trainer.fit(model, loader)
        moved = any(not torch.equal(a, b) for a, b in zip(before, model.backbone.parameters()))
        return model, trainer, moved

    assert not fit(2, head_warmup_steps=2)[2]  # only the head trained
    assert fit(3, head_warmup_steps=2)[2]  # then the backbone too
    trainer = fit(4, lr_schedule="cosine", backbone_lr_scale=0.1)[1]
    head_lr, backbone_lr = (g["lr"] for g in trainer.optimizers[0].param_groups)
    assert backbone_lr == pytest.approx(head_lr * 0.1)
    assert head_lr < 1e-2 * 0.2  # decayed towards 0 by the end of the run
    model = fit(2, freeze_fraction=0.5)[0]
    first, last = next(model.backbone.parameters()), list(model.backbone.parameters())[-1]
    assert not first.requires_grad and last.requires_grad  # the earliest layers are the frozen ones


def test_moco_memory_bank_is_capped_at_a_quarter_of_the_images_per_epoch():
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.vision.module import SSLModule

    module = SSLModule("moco", "tiny-cnn")
    assert module.criterion.memory_bank.size == (4096, 128)  # lightly's MoCo default
    assert module.fit_memory_bank(20_000) == ""  # large data: unchanged
    note = module.fit_memory_bank(3_000)
    assert module.criterion.memory_bank.size == (750, 128) and "750 keys" in note and "80%" in note
    given = SSLModule("moco", "tiny-cnn", memory_bank_size=4096)
    assert given.fit_memory_bank(3_000).startswith("warning:") and given.criterion.memory_bank.size[0] == 4096
    with pytest.raises(UserError, match="applies to moco"):
        SSLModule("simclr", "tiny-cnn", memory_bank_size=128)


def test_moco_in_a_users_own_trainer_warns_when_its_bank_outgrows_small_data(tmp_path):
    import warnings

    import pytorch_lightning as pl
    import torch
    from contrastkit.plugins.vision.data import ImageData, ImageDataset
    from contrastkit.plugins.vision.methods import make_transform
    from contrastkit.plugins.vision.module import SSLModule

    items = [Image.fromarray(np.full((16, 16, 3), c, np.uint8)) for c in range(0, 240, 15)]
    transform = make_transform("moco", 16, {"mean": [0.5] * 3, "std": [0.25] * 3})
    loader = torch.utils.data.DataLoader(ImageDataset(ImageData(items), transform), batch_size=4, drop_last=True)

    def fit(model):
        trainer = pl.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, default_root_dir=tmp_path)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer.fit(model, loader)
        return [str(w.message) for w in caught if "memory bank" in str(w.message)]

    said = fit(SSLModule("moco", "tiny-cnn"))  # 4,096 keys for 16 images
    assert len(said) == 1 and "fit_memory_bank(16)" in said[0] and "100%" in said[0]
    fitted = SSLModule("moco", "tiny-cnn")
    fitted.fit_memory_bank(16)
    assert fit(fitted) == [] and fit(SSLModule("moco", "tiny-cnn", memory_bank_size=64)) == []


def test_freeze_fraction_default_fixes_the_early_weights_of_a_pretrained_backbone_only():
    from contrastkit.plugins.vision.module import FREEZE_FRACTION_PRETRAINED, SSLModule

    def frozen_share(module):
        params = list(module.backbone.parameters())
        return sum(p.numel() for p in params if not p.requires_grad) / sum(p.numel() for p in params)

    pretrained = SSLModule(method="simclr")  # EfficientNet-Lite0, ImageNet weights
    assert pretrained.freeze_fraction == FREEZE_FRACTION_PRETRAINED > 0
    assert 0.2 < frozen_share(pretrained) == pretrained.frozen_share <= FREEZE_FRACTION_PRETRAINED  # whole tensors
    params = list(pretrained.backbone.parameters())
    assert not params[0].requires_grad and params[-1].requires_grad  # the stem fixed, the last layer trained
    random_init = SSLModule(method="simclr", backbone="tiny-cnn")
    assert random_init.freeze_fraction == 0 and frozen_share(random_init) == random_init.frozen_share == 0
    assert frozen_share(SSLModule(method="simclr", freeze_fraction=0)) == 0  # given: kept


def test_channels_last_during_fit_and_contiguous_weights_after(tmp_path):
    import pytorch_lightning as pl
    import torch
    from contrastkit.plugins.vision.encoder import load_encoder, save_encoder
    from contrastkit.plugins.vision.module import SSLModule

    items = _noise_images(8)
    loader = _loader(items, "byol")
    seen = []

    class Layout(pl.Callback):
        def on_train_batch_end(self, trainer, module, *args):
            seen.append([p.is_contiguous(memory_format=torch.channels_last)
                         for net in (module.backbone, module.backbone_momentum)
                         for p in net.parameters() if p.dim() == 4])

    for channels_last in (True, False):
        seen.clear()
        model = SSLModule(method="byol", backbone="tiny-cnn", channels_last=channels_last)  # with a momentum copy
        pl.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   callbacks=[Layout()], default_root_dir=tmp_path).fit(model, loader)
        assert len(seen) == 2 and all(all(step) == channels_last for step in seen)  # conv weights, both nets
        assert all(p.is_contiguous() for p in model.backbone.parameters())  # put back when fit ends
    model.backbone.to(memory_format=torch.channels_last)  # e.g. a user's fit that stopped half-way: saves and loads
    save_encoder(model.backbone, {**model.spec, "image_size": 16, "normalize": {"mean": [0.5] * 3, "std": [0.25] * 3}},
                 tmp_path)
    assert load_encoder(tmp_path).embed(items[:2]).shape[0] == 2


def test_ssl_weight_adds_simclrs_nt_xent_to_supcon_on_the_same_views():
    import torch
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.vision.methods import supervised_views
    from contrastkit.plugins.vision.module import SSLModule
    from lightly.loss import NTXentLoss

    torch.manual_seed(0)
    mixed = SSLModule("supcon", "tiny-cnn", ssl_weight=0.5)
    plain = SSLModule("supcon", "tiny-cnn")
    plain.load_state_dict(mixed.state_dict())
    for m in (mixed, plain):
        m.eval()  # BatchNorm with fixed statistics: both modules see the same projections
    views = [torch.randn(6, 3, 16, 16), torch.randn(6, 3, 16, 16)]
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    with torch.no_grad():
        added = supervised_views(mixed, views, labels) - supervised_views(plain, views, labels)
        nt_xent = NTXentLoss(temperature=mixed.temperature)(mixed.project(views[0]), mixed.project(views[1]))
    assert added.item() == pytest.approx(0.5 * nt_xent.item(), rel=1e-4)
    with pytest.raises(UserError, match="ssl_weight applies to method=supcon"):
        SSLModule("simclr", "tiny-cnn", ssl_weight=0.5)
