"""Training speed of the image recipe against a hand-written lightly loop, side by side in one run.

    python bench/image_overhead.py            # 24 steps per run, 6 alternating rounds (--rounds N to change)
    python bench/image_overhead.py --quick    # 6 steps, 1 round

Both train the same pretrained EfficientNet-Lite0 (BatchNorm frozen) with SimCLR (lightly's head, NTXentLoss and
SimCLRTransform), AdamW, the same batch size, image size and in-memory images, on the CPU with no data-loader
workers. images/s = images between the first and the last step start / seconds (the first step's warm-up is
excluded the same way in both). The ratio recipe / hand-written with ``channels_last=false freeze_fraction=0`` (the
loop's memory layout, every weight trained: the loop's work) is the overhead figure (1.0 = none); the recipe with
its defaults (channels-last layout, the backbone's earliest weights fixed) is timed beside them.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch
from PIL import Image


def images(n: int, size: int = 28) -> list:
    """``n`` random grey-level images (speed does not depend on content)."""
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8)) for _ in range(n)]


def hand_written(items: list, steps: int, batch_size: int, image_size: int) -> float:
    """lightly's SimCLR example loop on our backbone: returns images/s."""
    from contrastkit.plugins.vision.backbones import create_backbone
    from contrastkit.plugins.vision.data import ImageData, ImageDataset
    from contrastkit.plugins.vision.methods import get_method
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead
    from lightly.transforms import SimCLRTransform

    torch.manual_seed(0)
    backbone, spec = create_backbone("efficientnet-lite0")
    head = SimCLRProjectionHead(spec["embedding_dim"], 512, 128)
    transform = SimCLRTransform(input_size=image_size, normalize=spec["normalize"])
    data = ImageDataset(ImageData(items), transform)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True, drop_last=True)
    simclr = get_method("simclr")  # the recipe's SimCLR defaults, from the method table
    criterion = NTXentLoss(temperature=simclr.temperature)
    optimizer = torch.optim.AdamW(list(backbone.parameters()) + list(head.parameters()), lr=simclr.lr,
                                  weight_decay=1e-4)
    backbone.train()
    for m in backbone.modules():  # frozen BatchNorm statistics, as the recipe does for a pretrained backbone
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
    starts = []
    while len(starts) < steps:
        for (x0, x1), _ in loader:
            starts.append(time.perf_counter())
            loss = criterion(head(backbone(x0)), head(backbone(x1)))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            if len(starts) == steps:
                break
    return (len(starts) - 1) * batch_size / (starts[-1] - starts[0])


def recipe(items: list, steps: int, batch_size: int, image_size: int, **options) -> float:
    """The image recipe (SimCLR, defaults but ``options``) on the same images: its own images/s figure."""
    from contrastkit.recipes import image

    with tempfile.TemporaryDirectory() as out:
        result = image.run(data=items, method="simclr", output_dir=out, overwrite=True, max_steps=steps,
                           batch_size=batch_size, image_size=image_size, accelerator="cpu", num_workers=0,
                           save_steps=10_000, **options)
    return result.metrics["images_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="6 steps, one round")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=6,
                        help="alternating rounds (medians over them are compared; single rounds vary by 10-15%%)")
    args = parser.parse_args()
    steps, rounds = (6, 1) if args.quick else (24, args.rounds)
    items = images(args.batch_size * steps)
    print(f"SimCLR, EfficientNet-Lite0 (pretrained, BatchNorm frozen), batch {args.batch_size}, "
          f"{args.image_size} px, {steps} steps x {rounds} round(s), CPU, {torch.get_num_threads()} threads; "
          f"other jobs may share the cores, so runs alternate")
    hand, ours, fast = [], [], []
    for _ in range(rounds):
        hand.append(hand_written(items, steps, args.batch_size, args.image_size))
        # the loop's work: its memory layout, and every backbone weight trained
        ours.append(recipe(items, steps, args.batch_size, args.image_size, channels_last=False, freeze_fraction=0))
        fast.append(recipe(items, steps, args.batch_size, args.image_size))
    h, r, f = statistics.median(hand), statistics.median(ours), statistics.median(fast)
    print(f"hand-written lightly loop:                    {h:7.1f} images/s  (runs: {', '.join(f'{v:.1f}' for v in hand)})")
    print(f"contrastkit image recipe, the loop's work:     {r:7.1f} images/s  (runs: {', '.join(f'{v:.1f}' for v in ours)})")
    print(f"contrastkit image recipe, defaults:            {f:7.1f} images/s  (runs: {', '.join(f'{v:.1f}' for v in fast)})")
    print(f"ratio recipe (same layout, all weights trained) / hand-written: {r / h:.3f}  (target >= 0.97)")
    print(f"ratio recipe (defaults: channels-last, earliest weights fixed) / hand-written: {f / h:.3f}")


if __name__ == "__main__":
    main()
