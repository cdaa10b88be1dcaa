"""lightly + Lightning adapter for self-supervised image embeddings. Import from the module that holds a name:

- ``backbones``: ``create_backbone``, ``build_architecture``, weights files, ``feature_dim``
- ``data``: ``load_images`` -> ``ImageData``, ``ImageDataset``, ``open_rgb``, ``digits``
- ``splits``: ``holdout`` (every class keeps training images), ``split_off``, eval_data matched to the classes
- ``methods``: the method table (head, loss, transform, momentum, memory bank, training step), ``get_method``
- ``module``: ``SSLModule``, the LightningModule for every method
- ``encoder``: ``ImageEncoder`` (embed; ``save_pretrained``/``from_pretrained``), ``save_encoder``, ``load_encoder``
- ``knn``: ``knn_accuracy``, ``knn_correct``, ``embedding_spread``
- ``callbacks``: ``KNNCallback``, ``WiSEFT``, ``FolderCheckpoint``
- ``card``: the model card and the PCA plot
"""

from __future__ import annotations

from typing import Any

# Published model cards and the README's quick start say ``from contrastkit.plugins.vision import load_encoder``
# (or SSLModule, ...): those names resolve here on first use, so importing the package stays free of torch.
_MOVED = {"load_encoder": "encoder", "ImageEncoder": "encoder", "SSLModule": "module", "KNNCallback": "callbacks",
          "WiSEFT": "callbacks"}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
