"""The saved encoder: ``ImageEncoder`` (embed images), its preprocessing, and its folder on disk or the Hub.

A folder holds ``model.safetensors`` (the bare backbone's tensors), ``config.json`` (architecture and preprocessing,
with ``"contrastkit_type": "image-encoder"``, by which ``contrastkit.plugins.hub.load`` knows it, and ``"center"``
where the embeddings are centred) and ``README.md``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from huggingface_hub import ModelCard, ModelHubMixin, constants
from torch import nn

from ..errors import UserError
from .backbones import build_architecture, restore_modes, save_modes
from .data import decode_side, open_rgb
from .rows import RowImages

ENCODER_TYPE = "image-encoder"
WEIGHTS = constants.SAFETENSORS_SINGLE_FILE  # model.safetensors


def make_preprocess(image_size: int, normalize: dict) -> Callable:
    """PIL image or path -> normalised tensor: the same resize used for evaluation and by ``ImageEncoder`` (large
    images are decoded shrunk to ``decode_side(image_size)`` first)."""
    import torchvision.transforms as T

    tf = T.Compose([T.Resize((image_size, image_size)), T.ToTensor(), T.Normalize(normalize["mean"],
                                                                                   normalize["std"])])
    side = decode_side(image_size)
    return lambda item: tf(open_rgb(item, side))


@torch.no_grad()
def embed_with(net: nn.Module, items: list, preprocess: Callable, batch_size: int = 64,
               center: Any = None) -> np.ndarray:
    """L2-normalised (n, d) embeddings of PIL images or paths, in eval mode (the mode is restored); with ``center``
    (a mean embedding), that is subtracted from each L2-normalised embedding, which is then L2-normalised again."""
    modes = save_modes(net)
    net.eval()
    device = next(net.parameters()).device
    out = []
    for start in range(0, len(items), batch_size):
        batch = torch.stack([preprocess(x) for x in items[start:start + batch_size]]).to(device)
        out.append(F.normalize(net(batch).float(), dim=1).cpu())
    if not out:  # no images: a blank one's forward pass gives the width, so the (0, d) result stacks with others
        from PIL import Image

        out.append(net(preprocess(Image.new("RGB", (1, 1))).unsqueeze(0).to(device)).float()[:0].cpu())
    restore_modes(modes)
    embeddings = torch.cat(out)
    if center is not None:
        embeddings = F.normalize(embeddings - torch.as_tensor(center, dtype=embeddings.dtype), dim=1)
    return embeddings.numpy()


def mean_embedding(embeddings: np.ndarray) -> list[float]:
    """The mean of L2-normalised embeddings, as ``config.json`` keeps it (``center``)."""
    return [round(float(v), 7) for v in np.asarray(embeddings, dtype=np.float64).mean(axis=0)]


class ImageEncoder(ModelHubMixin):
    """A trained backbone ready to embed images: ``.encoder`` (eval mode), ``.preprocess``, ``.config``.

    ``save_pretrained(folder)`` writes the folder and ``from_pretrained(folder or Hub id)`` reads it back;
    ``config`` is the backbone's spec (architecture, normalisation, image size) that goes into ``config.json``,
    with ``center`` (the training images' mean embedding) when the embeddings are centred.
    """

    # ModelHubMixin, not PyTorchModelHubMixin: that one saves and loads the state dict of the object it is mixed
    # into, so the tensor names would gain a prefix ("encoder.") and existing folders, bench scripts reading
    # model.safetensors and create_backbone(folder) would no longer match; the weights are the bare backbone's.
    def __init__(self, encoder: nn.Module, preprocess: Callable | None, config: dict):
        self.encoder, self.preprocess, self.config = encoder, preprocess, config
        self._hub_mixin_config = {"contrastkit_type": ENCODER_TYPE, **config}  # what save_pretrained writes

    def embed(self, images: Any, batch_size: int = 64) -> np.ndarray:
        """(n, d) L2-normalised numpy embeddings of PIL images or image paths (centred first, where the config has
        a ``center``)."""
        if isinstance(images, RowImages):  # a dataset's rows, read a batch at a time
            return embed_with(self.encoder, images, self.preprocess, batch_size, self.config.get("center"))
        if not isinstance(images, (list, tuple)):
            images = [images]
        return embed_with(self.encoder, list(images), self.preprocess, batch_size, self.config.get("center"))

    def set_center(self, center: list[float]) -> None:
        """Centre the embeddings from now on (and in the saved ``config.json``) on ``center``."""
        self.config["center"] = self._hub_mixin_config["center"] = list(center)

    def _save_pretrained(self, save_directory: Path) -> None:
        from safetensors.torch import save_model

        save_model(self.encoder, str(save_directory / WEIGHTS))

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision: str | None, cache_dir: str | Path | None,
                         force_download: bool, local_files_only: bool, token: str | bool | None,
                         config: dict | None = None, **kwargs: Any) -> ImageEncoder:
        from safetensors.torch import load_model

        if not isinstance(config, dict) or config.get("contrastkit_type") != ENCODER_TYPE:
            raise UserError(f"'{model_id}/config.json' is not a contrastkit image encoder (no contrastkit_type: "
                            f"{ENCODER_TYPE})")
        weights = Path(model_id) / WEIGHTS
        if not Path(model_id).is_dir():  # a Hub id, as from_pretrained decided when it read config.json
            from huggingface_hub import hf_hub_download

            weights = hf_hub_download(model_id, WEIGHTS, revision=revision, cache_dir=cache_dir, token=token,
                                      force_download=force_download, local_files_only=local_files_only)
        net = build_architecture(config["architecture"], config.get("small_stem", False))
        load_model(net, str(weights))
        net.eval()
        return cls(net, make_preprocess(config["image_size"], config["normalize"]), config)

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        """The card ``save_pretrained`` writes when the folder has none: what the encoder is and how to load it."""
        from .card import encoder_card

        return encoder_card(self.config)


def save_encoder(net: nn.Module, spec: dict, folder: Path) -> None:
    """Write ``model.safetensors``, ``config.json`` (architecture and preprocessing) and, if missing, ``README.md``."""
    ImageEncoder(net, None, spec).save_pretrained(folder)


def load_encoder(folder: str | Path) -> ImageEncoder:
    """Load a contrastkit image model folder (``config.json`` + ``model.safetensors``; no pickle)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise UserError(f"model folder '{folder}' does not exist; check the path")
    if not (folder / constants.CONFIG_NAME).is_file() or not (folder / WEIGHTS).is_file():
        raise UserError(f"'{folder}' is not a contrastkit image model; it needs config.json and model.safetensors")
    return ImageEncoder.from_pretrained(folder)


def starting_encoder(trained: ImageEncoder, backbone: str | None = None, weights: str | None = None,
                     small_stem: bool | None = None) -> tuple[ImageEncoder, str]:
    """The encoder a run started from, to set beside what it became, and a few words on what it is.

    ``backbone`` (with ``weights``/``small_stem``) is what the run's ``config.yaml`` names: a backbone name or an
    earlier contrastkit folder. Without it, ``trained``'s own architecture with its default weights (pretrained
    where contrastkit ships them, e.g. EfficientNet-Lite0), as for a model from the Hub. An earlier folder that
    centred its embeddings embeds centred here too, as it does on its own.
    """
    from .backbones import create_backbone

    cfg = trained.config
    name = str(Path(backbone).expanduser()) if backbone else cfg["architecture"]
    stem = cfg.get("small_stem", False) if small_stem is None else small_stem
    net, spec = create_backbone(name, stem, weights)  # a folder's center is left out: a new run measures its own
    net.eval()
    spec = {**spec, "image_size": cfg["image_size"]}
    earlier = Path(name).is_dir()
    what = "an earlier contrastkit model" if earlier else \
        "pretrained weights" if spec.get("pretrained") else "random weights, as the run began"
    encoder = ImageEncoder(net, make_preprocess(cfg["image_size"], spec["normalize"]), spec)
    center = json.loads((Path(name) / constants.CONFIG_NAME).read_text()).get("center") if earlier else None
    if center:
        encoder.set_center(center)
    return encoder, what
