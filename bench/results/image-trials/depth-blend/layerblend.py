"""Throwaway trial (ninth session), kept so its figures can be rerun: WiSE-FT blends whose alpha ramps with depth.

    python bench/results/image-trials/depth-blend/layerblend.py SEED > seedSEED.txt   # one default run, 7 blends

The floating-point weights in state-dict order get alpha = a0 + (a1 - a0) * depth, depth 0 for the first and 1 for
the last; (0.25, 0.25) is the recipe's own blend. kNN top-1 change over the pretrained backbone, 1 torch thread.
Output: seedN.txt beside this file.
"""

import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # bench/, for image_quality's data writer
from contrastkit.plugins.vision.backbones import create_backbone
from contrastkit.plugins.vision.callbacks import KNNCallback
from contrastkit.plugins.vision.data import load_images
from contrastkit.recipes import image
from image_quality import write_folder

RAMPS = [(0.25, 0.25), (0.5, 0.25), (1.0, 0.25), (0.5, 0.1), (1.0, 0.0), (0.25, 0.5), (0.1, 0.5)]


def main(seed: int) -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path("/usr/share/datasets/fashion-mnist")
        train = write_folder(root, "train", 3000, 0, Path(tmp) / "train")
        test = write_folder(root, "t10k", 1000, 1, Path(tmp) / "test")
        result = image.run(data=str(train), eval_data=str(test), method="simclr", output_dir=f"{tmp}/simclr",
                           overwrite=True, accelerator="cpu", seed=seed)
        before = result.metrics["before_after"]["knn_top1"]["before"]
        cfg = result.config
        net, _ = create_backbone(cfg.backbone, False, cfg.weights)
        start = {k: v.clone() for k, v in net.state_dict().items()}
        state = torch.load(result.output_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
        trained = {k[len("backbone."):]: v for k, v in state["state_dict"].items() if k.startswith("backbone.")}
        knn = KNNCallback(load_images(str(train)), load_images(str(test)), result.model.preprocess, cfg.knn_k,
                          cfg.knn_t)
        floats = [k for k, v in start.items() if v.is_floating_point()]
        for a0, a1 in RAMPS:
            net.load_state_dict({k: start[k] + (a0 + (a1 - a0) * floats.index(k) / (len(floats) - 1))
                                 * (trained[k] - start[k]) if k in floats else trained[k] for k in start})
            print(f"seed {seed} ramp {a0:g}->{a1:g}: {knn.evaluate(net)['knn_top1'] - before:+.4f}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
