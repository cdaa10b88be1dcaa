"""The output folder's model card (``README.md``, from a huggingface_hub template) and the PCA plot."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .. import report

# Jinja2, rendered by ModelCard.from_template; card_data is the YAML header. The sections after "Backbone" are
# there when a training run wrote the card (``training``), not for a bare save_pretrained. Jinja drops a template's
# final newline, hence the empty last line: the file ends in one newline.
TEMPLATE = """---
{{ card_data }}
---

# {{ title }}

{% if training -%}
{{ kind }} **{{ method }}** training with [lightly](https://github.com/lightly-ai/lightly) on
PyTorch Lightning, made with contrastkit.
{%- else -%}
An image encoder saved by contrastkit.
{%- endif %}

- Backbone: `{{ architecture }}`{{ source }}
- Embedding size: {{ embedding_dim }}{% if image_size %}, input {{ image_size }}x{{ image_size }} px{% endif %}, \
normalised with mean
  {{ mean }} and std {{ std }}
{% if centred -%}
- Centred: each embedding has the training images' mean embedding subtracted and is L2-normalised again
  (`center` in config.json; `load_encoder` and `hub.load` apply it, the bare weights alone do not)
{% endif -%}
{% if training -%}
- Data: {{ data_source }}, {{ train_images }} training images
{% if class_key -%}
- Classes (`embeddings_pca.png` shows their numbers, as no installed font draws all of the names):
  {{ class_key }}
{% endif -%}
- Training: {{ steps }} steps, batch size {{ batch_size }}, learning rate {{ learning_rate }}{{ precision }}{{ training_notes }}

## Evaluation

kNN top-1 accuracy (k={{ knn_k }}, cosine, weighted, temperature {{ knn_t }}) {{ measured }}

{{ rows }}{{ reference }}
{% endif %}
## Usage

```python
from PIL import Image
{{ load }}
embeddings = encoder.embed([Image.new("RGB", (64, 64), "white")])  # PIL images or file paths
print(embeddings.shape)  # (1, {{ embedding_dim }}), L2-normalised
```
{% if plain %}
### Without contrastkit

contrastkit is not on PyPI. The weights are a plain safetensors state dict and `config.json` holds the
preprocessing, so PyTorch alone gives the same embeddings (`pip install {{ plain_requires }}`):

```python
{{ plain }}
```

Images are resized straight to {{ image_size }}x{{ image_size }} px; contrastkit first shrinks one whose shorter side is
8 times that or more by a whole factor, so its embedding differs slightly.
{% endif %}
"""

LOCAL_LOAD = ('from contrastkit.plugins.vision.encoder import load_encoder\n\n'
              'encoder = load_encoder(".")  # inside this folder; a Hub copy: contrastkit.plugins.hub.load("user/repo")')
HUB_LOAD = 'from contrastkit.plugins import hub\n\nencoder = hub.load("{repo_id}")'


LOCAL_FILES = 'folder = "."  # inside this folder; a Hub copy: snapshot_download("user/repo", allow_patterns=FILES)'
HUB_FILES = 'folder = snapshot_download("{repo_id}", allow_patterns=FILES)'

# The "Without contrastkit" snippet: backbones.build_architecture in plain code, per architecture, with what to install
_NETS = {
    "tiny-cnn": ("", """from torch import nn

net = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU(),
                    nn.Conv2d(16, 32, 3, 2, 1), nn.BatchNorm2d(32), nn.ReLU(),
                    nn.AdaptiveAvgPool2d(1), nn.Flatten())"""),
    "resnet": ("", """import torchvision
from torch import nn

net = torchvision.models.{arch}(weights=None)
net.fc = nn.Identity(){stem}"""),
    "efficientnet-lite0": (" efficientnet-lite-pytorch", """from efficientnet_lite_pytorch import EfficientNet


class Features(torch.nn.Module):  # EfficientNet's features, average-pooled
    def __init__(self):
        super().__init__()
        self.net = EfficientNet.from_name("efficientnet-lite0", image_size=None)

    def forward(self, x):
        return self.net.extract_features(x).mean(dim=(2, 3))


net = Features()"""),
    "timm": (" timm", """import timm

net = timm.create_model({name!r}, pretrained=False, num_classes=0)"""),
}
_SMALL_STEM = ("\nnet.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)  # small_stem\n"
               "net.maxpool = nn.Identity()")
_PLAIN = """import json

import torch
import torch.nn.functional as F
import torchvision.transforms as T
from huggingface_hub import snapshot_download
from PIL import Image, ImageOps
from safetensors.torch import load_model

FILES = ["config.json", "model.safetensors"]
{files}
config = json.load(open(f"{{folder}}/config.json"))
{net}
load_model(net, f"{{folder}}/model.safetensors")
net.eval()
size, norm = config["image_size"], config["normalize"]
preprocess = T.Compose([T.Resize((size, size)), T.ToTensor(), T.Normalize(norm["mean"], norm["std"])])


def rgb(image):  # upright, and transparent parts on white, as contrastkit reads images
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    return image.convert("RGB")


with torch.no_grad():
    images = [Image.new("RGB", (64, 64), "white")]  # PIL images; Image.open(path) for files
    embeddings = F.normalize(net(torch.stack([preprocess(rgb(im)) for im in images])), dim=1)
    if "center" in config:  # centred embeddings: the training images' mean embedding subtracted
        embeddings = F.normalize(embeddings - torch.tensor(config["center"]), dim=1)
print(embeddings.shape)  # (1, {dim}), L2-normalised"""


def _plain_fields(spec: dict, repo_id: str | None = None) -> dict[str, str]:
    """The card's "Without contrastkit" code for this encoder (``plain``) and the packages it needs, both empty for
    an architecture it cannot write out. contrastkit is not on PyPI, so a Hub visitor has no other way to use an image
    model; the code repeats ``backbones.build_architecture`` and ``encoder.make_preprocess``."""
    arch = str(spec.get("architecture", ""))
    key = "resnet" if arch in ("resnet18", "resnet50") else "timm" if arch.startswith("timm:") else arch
    if key not in _NETS or not spec.get("image_size"):
        return {"plain": "", "plain_requires": ""}
    extra, net = _NETS[key]
    net = net.format(arch=arch, name=arch[5:], stem=_SMALL_STEM if spec.get("small_stem") else "")
    files = HUB_FILES.format(repo_id=repo_id) if repo_id else LOCAL_FILES
    return {"plain": _PLAIN.format(files=files, net=net, dim=spec["embedding_dim"]),
            "plain_requires": "torch torchvision safetensors huggingface_hub pillow" + extra}


def for_repo(text: str, repo_id: str, revision: str | None = None) -> str:
    """A card's text with its usage loading ``repo_id`` (at ``revision``, a branch, when given) from the Hub, in place
    of this folder or an earlier repo."""
    at = f', revision="{revision}"' if revision else ""
    text = re.sub(r'^folder = snapshot_download\("[^"\n]*",(?: revision="[^"\n]*",)? allow_patterns=FILES\)',
                  lambda _: f'folder = snapshot_download("{repo_id}"{at}, allow_patterns=FILES)',
                  text.replace(LOCAL_FILES, HUB_FILES.format(repo_id=repo_id)), flags=re.MULTILINE)
    return re.sub(r'^encoder = hub\.load\("[^"\n]*"(?:, revision="[^"\n]*")?\)',
                  lambda _: f'encoder = hub.load("{repo_id}"{at})', text.replace(LOCAL_LOAD, HUB_LOAD.format(
                      repo_id=repo_id)), flags=re.MULTILINE)


def _backbone_fields(spec: dict) -> dict[str, Any]:
    """The template's backbone lines from the encoder's spec."""
    source = spec.get("weights_source") or spec.get("base_model")  # base_model: older folders
    source = f", starting from {source}" if source else (", pretrained weights" if spec.get("pretrained") else
                                                         ", trained from random initialisation")
    norm = spec["normalize"]
    return {"architecture": spec["architecture"], "source": source, "embedding_dim": spec["embedding_dim"],
            "image_size": spec.get("image_size"), "mean": [round(v, 3) for v in norm["mean"]],
            "std": [round(v, 3) for v in norm["std"]], "centred": "center" in spec}


def _render(card_data: ModelCardData, **fields: Any) -> ModelCard:
    """The card from ``TEMPLATE``, refused unless its metadata survives a round trip through the text."""
    card = ModelCard.from_template(card_data, template_str=TEMPLATE, **fields)
    if ModelCard(str(card)).data.to_dict() != card_data.to_dict():
        raise RuntimeError("model card metadata does not round-trip")
    return card


def encoder_card(spec: dict) -> ModelCard:
    """The card of an encoder saved outside a training run: backbone, input and how to load it."""
    card_data = ModelCardData(library_name="contrastkit", pipeline_tag="image-feature-extraction", license=None,
                              tags=["contrastkit", "image-feature-extraction"])
    method = spec.get("method")
    title = f"{method} image embeddings ({spec['architecture']})" if method else \
        f"image embeddings ({spec['architecture']})"
    return _render(card_data, title=title, load=LOCAL_LOAD, **_backbone_fields(spec), **_plain_fields(spec))


def write_card(folder: Path, cfg: Any, spec: dict, metrics: dict, data: Any, repo_id: str | None) -> ModelCard:
    """The model card ``README.md`` (Hub metadata + usage), built with huggingface_hub and checked by re-parsing."""
    after = metrics.get("after", {})
    supervised = cfg.method == "supcon"
    results = [EvalResult(task_type="image-classification", dataset_type=data.hub_id or "custom",
                          dataset_name=data.source, metric_type="accuracy",
                          metric_name=f"kNN top-1 accuracy (k={metrics.get('knn_k', cfg.knn_k)})",
                          metric_value=round(after["knn_top1"], 4))] if "knn_top1" in after else None
    card_data = ModelCardData(
        library_name="contrastkit", pipeline_tag="image-feature-extraction", license=None,
        tags=["contrastkit", cfg.method, "supervised-contrastive" if supervised else "self-supervised",
              "image-feature-extraction"],
        datasets=[data.hub_id] if data.hub_id else None,
        model_name=f"{cfg.method}-{spec['architecture']}" if results else None, eval_results=results)
    load = HUB_LOAD.format(repo_id=repo_id) if repo_id else LOCAL_LOAD
    rows, measured = _evaluation(metrics)
    names = data.label_names or []
    class_key = ", ".join(f"{i}: {n}" for i, n in enumerate(names)) if report.label_font(names) is None else ""
    probe = metrics.get("reference", {}).get("linear_probe_top1")
    # Jinja would drop a newline before an empty line, so the line brings its own
    reference = (f"\n\nFor reference, a logistic-regression linear probe fitted on the starting backbone's features "
                 f"of the training images scores {probe:.4f} top-1 on the same held-out images: what a plain "
                 f"classifier gives without training the backbone.") if probe is not None else ""
    alpha = metrics.get("wise_ft", 1.0)
    frozen = metrics.get("frozen_share") or 0
    auto = metrics.get("wise_ft_auto")
    chosen = (f", the share that scored best by kNN top-1 on {auto['validation_images']} training images set aside "
              f"(`wise_ft=auto`)" if auto else f", `wise_ft={alpha:g}`")
    training_notes = (f"; the saved weights keep {alpha:g} of training's change to the starting backbone (WiSE-FT"
                      f"{chosen})" if alpha < 1 or auto else "") + (
        f"; the backbone's earliest {frozen:.0%} of weights stayed fixed (`freeze_fraction="
        f"{metrics.get('freeze_fraction'):g}`)" if frozen else "")
    card = _render(card_data, training=True, title=f"{cfg.method} image embeddings ({spec['architecture']})",
                   method=cfg.method, load=load, data_source=data.source, reference=reference,
                   kind="Supervised contrastive (labels as positives)" if supervised else "Self-supervised",
                   train_images=metrics.get("train_images", "?"), steps=metrics.get("steps", "?"),
                   batch_size=metrics.get("batch_size", cfg.batch_size), learning_rate=metrics.get("learning_rate"),
                   precision=f", precision {metrics['precision']}" if metrics.get("precision") else "",
                   training_notes=training_notes, class_key=class_key, knn_k=metrics.get("knn_k", cfg.knn_k),
                   knn_t=cfg.knn_t, rows=rows, measured=measured,
                   **_backbone_fields(spec), **_plain_fields(spec, repo_id))
    card.save(folder / "README.md")
    return card


def _evaluation(metrics: dict) -> tuple[str, str]:
    """The before/after table and the sentence above it, which says what was measured on how many images and what
    "before" and "after" are (the table alone did not say)."""
    rows = metrics.get("before_after", {})
    table = report.markdown_table(rows, "before training", "after training")
    if not rows:
        # labelled data too small to hold images out has labels: "no labels" was untrue there
        return (table + "\n| (not evaluated: no held-out labelled images) | | | |",
                "on held-out labelled images: this run had none, so nothing was measured.")
    return table, (f"of the {metrics.get('eval_images', '?')} held-out labelled images, with their neighbours "
                   f"among the {metrics.get('train_images', '?')} training images (about 10,000 of them, evenly "
                   f"spaced, when there are more): \"before\" is the starting backbone, \"after\" this model.")


def plot_pca(embeddings: np.ndarray, labels: list[int] | None, names: list[str] | None, path: Path) -> Path:
    """A 2-D PCA projection of the embeddings, coloured by label."""
    from matplotlib.figure import Figure  # not pyplot: a notebook's backend stays as the user set it
    from matplotlib.font_manager import FontProperties
    from sklearn.decomposition import PCA

    xy = PCA(n_components=2).fit_transform(embeddings) if len(embeddings) > 2 else np.zeros((len(embeddings), 2))
    fig = Figure(figsize=(5.5, 5), dpi=100)
    ax = fig.subplots()
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=6)
    else:
        lab = np.asarray(labels)
        font = report.label_font(names or [])
        for c in np.unique(lab):  # class numbers where no font draws the names: the card lists "0: name"
            name = names[c] if names and c < len(names) and font is not None else str(c)
            ax.scatter(xy[lab == c, 0], xy[lab == c, 1], s=6, label=name)
        if len(np.unique(lab)) <= 20:
            prop = font or FontProperties()
            prop.set_size(7)
            ax.legend(prop=prop, markerscale=2, loc="best")
    ax.set_title("embeddings, 2-D PCA")
    fig.tight_layout()
    fig.savefig(path)
    return path


