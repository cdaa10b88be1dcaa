"""An image model as someone without contrastkit uses it (contrastkit is not on PyPI): the card's "Without
contrastkit" code, run where ``import contrastkit`` fails, gives the embeddings contrastkit gives. Reuses the package's
image output; the other backbones are built and saved without training."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import run_cli, save_rotated_jpeg

NO_CONTRASTKIT = "import sys\nsys.modules['contrastkit'] = None  # import contrastkit fails, as for a Hub visitor\n"
# the snippet's example image, replaced by images that test the reading: EXIF-rotated, transparent, palette
IMAGES = ('images = [Image.open(p) for p in ["rotated.jpg", "clear.png", "palette.png"]]'
          '  # PIL images; Image.open(path) for files')


def _images(folder) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    save_rotated_jpeg(folder / "rotated.jpg")
    clear = np.zeros((20, 30, 4), np.uint8)
    clear[:, :15] = (200, 30, 30, 255)  # the right half transparent: contrastkit puts it on white
    Image.fromarray(clear, "RGBA").save(folder / "clear.png")
    Image.new("RGB", (24, 24), (30, 120, 200)).quantize(8).save(folder / "palette.png")
    return [folder / name for name in ("rotated.jpg", "clear.png", "palette.png")]


def _run_plain(card: str, cwd) -> np.ndarray:
    """The card's second Python block (the first uses contrastkit) on the test images, without contrastkit."""
    code = re.findall(r"```python\n(.*?)```", card, re.DOTALL)[1]
    code, found = re.subn(r"^    images = \[.*$", "    " + IMAGES, code, flags=re.MULTILINE)
    assert found == 1
    r = subprocess.run([sys.executable, "-c", NO_CONTRASTKIT + code + "\nprint(json.dumps(embeddings.tolist()))"],
                       cwd=cwd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return np.array(json.loads(r.stdout.strip().splitlines()[-1]))


def test_a_pushed_image_cards_torch_only_code_loads_the_repo_as_contrastkit_does(hub_server, image_output, tmp_path):
    """The card said only ``from contrastkit...`` (and linked a PyPI page contrastkit does not have), so nobody
    without a checkout could use the model. Pushed to a branch (main has no model), both snippets load that branch."""
    from contrastkit.plugins.vision.encoder import load_encoder

    assert run_cli("push", image_output, "alice/shapes-plain", "revision=v2").returncode == 0
    assert set(hub_server.files("alice/shapes-plain")) == {".gitattributes"}
    card = hub_server.files("alice/shapes-plain", "v2")["README.md"].decode()
    assert "### Without contrastkit" in card and "pypi.org/project/contrastkit" not in card
    assert 'folder = snapshot_download("alice/shapes-plain", revision="v2", allow_patterns=FILES)' in card
    assert 'encoder = hub.load("alice/shapes-plain", revision="v2")' in card
    images = _images(tmp_path / "elsewhere")
    plain = _run_plain(card, tmp_path / "elsewhere")
    assert plain.shape == (3, 32)
    assert np.allclose(plain, load_encoder(image_output).embed(images), atol=1e-5)


@pytest.mark.parametrize("backbone", ["resnet18-small-stem-centred", "efficientnet-lite0"])
def test_each_backbones_card_code_builds_it_without_contrastkit(backbone, tmp_path):
    from contrastkit.plugins.vision.backbones import create_backbone
    from contrastkit.plugins.vision.encoder import load_encoder, save_encoder

    net, spec = create_backbone(backbone.split("-small")[0], small_stem="small-stem" in backbone)
    folder = tmp_path / "model"
    save_encoder(net, {**spec, "image_size": 24}, folder)
    encoder = load_encoder(folder)
    if "centred" in backbone:  # config.json's center, applied by the card's code too
        encoder.set_center(np.linspace(-0.05, 0.05, spec["embedding_dim"]).tolist())
        encoder.save_pretrained(folder)
    images = _images(folder)
    plain = _run_plain((folder / "README.md").read_text(encoding="utf-8"), folder)
    assert np.allclose(plain, load_encoder(folder).embed(images), atol=1e-5)
