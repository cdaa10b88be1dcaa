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
