"""The image recipe's Lightning helpers: resuming from the newest whole checkpoint."""

from __future__ import annotations


class _OpensAFileWhenUnpickled:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


def test_resume_skips_a_cut_off_checkpoint_without_unpickling_any(tmp_path, capsys):
    """The resume check reads the zip archive torch.save writes; what the pickle inside would run stays unrun."""
    import os

    import torch
    from contrastkit.plugins.vision.training import resume_from

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    whole, cut = folder / "epoch=0-step=5.ckpt", folder / "epoch=0-step=10.ckpt"
    torch.save({"state_dict": {}, "trap": _OpensAFileWhenUnpickled(str(tmp_path / "unpickled"))}, whole)
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # a run killed while writing it
    os.utime(whole, (1, 1))  # the cut-off file is the newest
    assert resume_from(folder) == str(whole)
    assert "skipping the unreadable checkpoint epoch=0-step=10.ckpt" in capsys.readouterr().out
    assert not (tmp_path / "unpickled").exists()


def test_knn_fell_warns_only_when_training_lowered_knn():
    from contrastkit.plugins.vision.training import knn_fell

    fell = {"knn_top1": {"before": 0.5422, "after": 0.4681, "delta": -0.0741}}
    line = knn_fell(fell, "supcon", 1.0)
    assert line.startswith("warning: training lowered kNN top-1 on the held-out images (0.5422 -> 0.4681)")
    assert "wise_ft=0.25" in line and "method=simclr" in line and "\n" not in line
    simclr = knn_fell(fell, "simclr", 0.65)
    assert "method=simclr" not in simclr and "wise_ft=0.25" in simclr
    assert "wise_ft=" not in knn_fell(fell, "simclr", 0.0)  # nothing of the change kept: no blend to lower
    chosen = knn_fell(fell, "supcon", 0.5, auto=True)  # a share wise_ft=auto chose is not second-guessed
    assert "wise_ft=" not in chosen and "method=simclr" in chosen
    assert knn_fell({"knn_top1": {"before": 0.5, "after": 0.5, "delta": 0.0}}, "supcon", 1.0) is None
    assert knn_fell({"knn_top1": {"before": 0.5, "after": 0.6, "delta": 0.1}}, "supcon", 1.0) is None
    assert knn_fell({}, "supcon", 1.0) is None  # no labels, no kNN evaluation


def test_supcon_says_when_a_batch_rarely_holds_two_images_of_a_class(capsys):
    """No sampler groups a class: with 100 classes of 10 images, a batch of 64 holds 0.57 other images of an
    image's class on average, so supcon mostly learns what simclr would; the run says so, and which batch size
    gives one. Two classes in a batch of 8 need no note."""
    import types

    from contrastkit.plugins.vision.data import ImageData
    from contrastkit.plugins.vision.methods import same_class_per_batch
    from contrastkit.plugins.vision.training import settle_method

    many = [c for c in range(100) for _ in range(10)]
    assert round(same_class_per_batch(many, 64), 2) == 0.57
    said = []
    cfg = types.SimpleNamespace(method="supcon", epochs=None, resume=False, batch_size=64)
    settle_method(cfg, None, ImageData(list(range(1000)), many, [str(c) for c in range(100)]), said.append)
    assert said[-1] == ("note: a batch of 64 holds on average 0.57 other images of an image's class (100 classes), "
                        "so most images have only their own other view as a positive, as in simclr; "
                        "batch_size=112 gives about 1")
    said.clear()
    cfg = types.SimpleNamespace(method="supcon", epochs=None, resume=False, batch_size=8)
    settle_method(cfg, None, ImageData(list(range(20)), [0, 1] * 10, ["a", "b"]), said.append)
    assert len(said) == 1 and said[0].startswith("method: supcon")
