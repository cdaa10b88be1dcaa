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


def test_wise_ft_auto_keeps_the_best_scored_share_and_the_larger_of_a_tie():
    """wise_ft=auto scores each of AUTO_SHARES on the blended weights and keeps the best; a tie goes to the larger
    share. The score here rates how close a real layer's weights are to a chosen point between start and trained."""
    import torch
    from contrastkit.plugins.vision.callbacks import AUTO_SHARES, WiSEFT
    from torch import nn

    class Module(nn.Module):  # what WiSEFT reads of a LightningModule: backbone and print
        def __init__(self):
            super().__init__()
            self.backbone = nn.Linear(3, 2)

        def print(self, *args):
            self.printed = " ".join(map(str, args))

    def run(target_share: float, score_of=None) -> WiSEFT:
        module = Module()
        start = {k: v.clone() for k, v in module.backbone.state_dict().items()}
        with torch.no_grad():
            trained = {k: v + 1.0 for k, v in start.items()}
        target = {k: start[k] + target_share * (trained[k] - start[k]) for k in start}

        def closeness(net):
            return -sum(float((v - target[k]).abs().sum()) for k, v in net.state_dict().items())

        wise = WiSEFT("auto", score_of(closeness) if score_of else closeness)
        wise.setup(None, module, "fit")
        module.backbone.load_state_dict(trained)  # training moved every weight by 1
        wise.on_train_end(None, module)
        assert set(wise.scores) == set(AUTO_SHARES)
        for k, v in module.backbone.state_dict().items():  # the backbone holds the chosen blend
            assert torch.allclose(v, start[k] + wise.alpha * (trained[k] - start[k]), atol=1e-6)
        assert wise.trained is not None and all(torch.equal(wise.trained[k], trained[k]) for k in trained)
        return wise

    assert run(0.5).alpha == 0.5
    assert run(0.0).alpha == 0.0
    assert run(0.7).alpha == 0.75
    flat = run(0.5, lambda score: lambda net: round(score(net)) * 0)  # every share scores the same
    assert flat.alpha == 1.0
    with pytest.raises(ValueError, match="score"):
        WiSEFT("auto")


class _Printing:
    """What WiSEFT reads of a LightningModule, on a real layer: ``backbone`` and ``print`` (kept as lines)."""

    def __init__(self):
        from torch import nn

        self.backbone, self.lines = nn.Linear(3, 2), []

    def print(self, *args):
        self.lines.append(" ".join(map(str, args)))


def _blend_line(wise) -> str:
    import torch

    module = _Printing()
    wise.setup(None, module, "fit")
    with torch.no_grad():
        for v in module.backbone.parameters():
            v.add_(1.0)  # training moved every weight
    wise.on_train_end(None, module)
    (line,) = [line for line in module.lines if line.startswith("WiSE-FT: the backbone keeps")]
    return line


def test_wise_ft_line_names_the_share_once_and_what_keeps_all_only_when_some_is_dropped():
    from contrastkit.plugins.vision.callbacks import WiSEFT

    best_is_all = WiSEFT("auto", lambda net: float(next(net.parameters()).sum()))  # the most moved scores best
    assert _blend_line(best_is_all) == "WiSE-FT: the backbone keeps 100% of its change from training (wise_ft=1)"
    assert best_is_all.alpha == 1.0
    assert _blend_line(WiSEFT(0.65)) == ("WiSE-FT: the backbone keeps 65% of its change from training (wise_ft=0.65; "
                                         "wise_ft=1 keeps all of it)")
