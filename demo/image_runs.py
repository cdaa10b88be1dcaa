"""An image run in the demo: what it is compared with, and the images it is compared on.

With ``model=`` an image output and no ``compare_to=``, the base is the encoder the run started from (the backbone
its ``config.yaml`` names, pretrained where contrastkit ships weights), not the packaged text model, which cannot
embed images. The run folder's ``examples/`` (a few held-out images per class, written by the image recipe) become
the image tabs' examples, so the page opens on the user's own classes: image A against its class-mate and one
image of every other class, ranked by each model.
"""

from __future__ import annotations

from pathlib import Path

from .core import Slot, embed_images
from .inputs import open_image
from .retriever import read_yaml, run_folder


def starting_slot(tuned: Slot) -> Slot:
    """The base slot for an image model: its run's starting encoder; the load error on the slot if it fails."""
    from contrastkit.plugins.vision.encoder import starting_encoder

    folder = run_folder(tuned.name)
    config = read_yaml(folder / "config.yaml") if folder else {}
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


def example_sets(files: list[str]) -> list[list]:
    """[image A, [images B]] examples: A is the first image of a class, and B its class-mate followed by the first
    image of every other class, so the model that learned the classes ranks the class-mate #1. One example per
    class that has a class-mate. Class names are the file names before the last '-'."""
    by_class: dict[str, list[str]] = {}
    for f in files:
        by_class.setdefault(Path(f).stem.rsplit("-", 1)[0], []).append(f)
    firsts = {name: group[0] for name, group in by_class.items()}
    return [[group[0], [group[1]] + [first for other, first in firsts.items() if other != name]]
            for name, group in by_class.items() if len(group) >= 2 and len(firsts) >= 2]


#: above this mean cosine between held-out embeddings, every score is high and only the order tells
CROWDED = 0.9


def crowding_note(metrics: dict | None) -> str:
    """One line for the page when a run's embeddings sit close together (metrics.json ``embedding_spread``), so
    that its cosines are all high: read the order, not the size. "" otherwise."""
    after = ((metrics or {}).get("embedding_spread") or {}).get("after") or {}
    before = ((metrics or {}).get("embedding_spread") or {}).get("before") or {}
    if after.get("mean_cosine") is None or after["mean_cosine"] < CROWDED:
        return ""
    was = f", {before['mean_cosine']:.2f} before training" if before.get("mean_cosine") is not None else ""
    return (f"ℹ️ This model's embeddings sit close together (mean cosine {after['mean_cosine']:.2f} between held-out "
            f"images{was}), so all its scores are high: read the order (#1, #2, ...), not the size of the numbers. "
            f"Training with center=true spreads them.")


def order_by_disagreement(sets: list[list], slots: list[Slot]) -> list[list]:
    """The example sets, those where exactly one model ranks A's class-mate first put first (the fine-tuned
    model's wins before its losses); the order is otherwise kept. Unchanged unless both models embed images."""
    if len(sets) < 2 or len(slots) != 2 or not all(s.embeds("image") for s in slots):
        return sets
    files = list(dict.fromkeys(p for a, b in sets for p in (a, *b)))  # each example is opened and embedded once
    row = {p: i for i, p in enumerate(files)}
    images = [open_image(p, "an example", 2**30) for p in files]
    embedded = [embed_images(s, images) for s in slots]

    def mate_first(emb, a: str, b: list[str]) -> bool:
        return int((emb[[row[p] for p in b]] @ emb[row[a]]).argmax()) == 0

    def key(example: list) -> int:
        base, tuned = (mate_first(emb, *example) for emb in embedded)
        return 0 if tuned and not base else 1 if base and not tuned else 2

    return sorted(sets, key=key)
