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
