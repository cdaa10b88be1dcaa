"""An image run in the demo: what it is compared with, and the images it is compared on.

With ``model=`` an image output and no ``compare_to=``, the base is the encoder the run started from (the backbone
its ``config.yaml`` names, pretrained where contrastkit ships weights), not the packaged text model, which cannot
embed images. The run folder's ``examples/`` (a few held-out images per class, written by the image recipe) become
the image tabs' examples, so the page opens on the user's own classes.
"""

from __future__ import annotations

from pathlib import Path

from .core import Slot
from .retriever import run_folder


def starting_slot(tuned: Slot) -> Slot:
    """The base slot for an image model: its run's starting encoder; the load error on the slot if it fails."""
    import yaml
    from contrastkit.plugins.vision.encoder import starting_encoder

    folder = run_folder(tuned.name)
    config = {}
    if folder and (folder / "config.yaml").is_file():
        config = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8")) or {}
    backbone = config.get("backbone") or tuned.model.config["architecture"]
    try:
        encoder, what = starting_encoder(tuned.model, config.get("backbone"), config.get("weights"),
                                         config.get("small_stem"))
    except Exception as exc:  # noqa: BLE001 - the page shows why, and the fine-tuned model still works
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return Slot("base", f"{backbone} (the run's starting point)", error=first[:300])
    return Slot("base", f"{backbone} (the run's starting point: {what})", model=encoder)


def run_examples(slot: Slot | None) -> list[str]:
    """The image files in a run folder's ``examples/`` (``<class>-<n>.png``), sorted; [] when it has none."""
    from contrastkit.plugins.vision.data import EXAMPLES

    folder = run_folder(slot.name) if slot is not None and slot.model is not None else None
    return sorted(str(p) for p in (folder / EXAMPLES).glob("*.png")) if folder else []


def example_pairs(files: list[str]) -> list[list[str]]:
    """[same class, another class] pairs of example files: the first class's two images, then its first image with
    the next class's first. Class names are the file names before the last '-'."""
    by_class: dict[str, list[str]] = {}
    for f in files:
        by_class.setdefault(Path(f).stem.rsplit("-", 1)[0], []).append(f)
    firsts = [group[0] for group in by_class.values()]
    same = [group[:2] for group in by_class.values() if len(group) >= 2][:1]
    return same + [[firsts[0], other] for other in firsts[1:2]]
