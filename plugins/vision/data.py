"""Image data: a folder, a Hub dataset, a ``datasets.Dataset`` or Python images -> ``ImageData``."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UserError
from ..images import decoded_sizes, name_list
from .rows import pick

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
MIN_SIDE = 4  # images smaller than this carry no usable content for random crops
#: Images are decoded with at least this many times the model's image size on their shorter side; larger ones are
#: shrunk while decoding (a random crop of 8% of the area still has more pixels than the view it is resized to).
DECODE_MARGIN = 4


def decode_side(image_size: int) -> int:
    """The shorter side that images are decoded at, at most, for a model of ``image_size`` pixels."""
    return DECODE_MARGIN * image_size


def open_rgb(item: Any, min_side: int | None = None):
    """A PIL image (or a path to one) as RGB, as a viewer shows it; with ``min_side``, shrunk while decoding as
    long as its shorter side stays at least that (``contrastkit.plugins.images.open_rgb``)."""
    from ..images import open_rgb as _open_rgb

    return _open_rgb(item, min_side)


@dataclass
class ImageData:
    """Images (PIL objects, paths, or a dataset's undecoded rows as ``RowImages``), optional integer labels, and
    what was skipped on the way."""

    items: Sequence
    labels: list[int] | None = None
    label_names: list[str] | None = None
    skipped: list[str] = field(default_factory=list)
    source: str = ""
    hub_id: str | None = None
    notes: list[str] = field(default_factory=list)

    def messages(self) -> list[str]:
        """One line per thing the user should know: skipped files (named), ignored formats, left-out folders."""
        skipped = [f"skipped {len(self.skipped)} unreadable or too-small image(s): {name_list(self.skipped)}"] \
            if self.skipped else []
        return skipped + self.notes

    def subset(self, idx: list[int]) -> ImageData:
        """The images at ``idx`` (labels follow); a dataset's rows stay unread (``RowImages``)."""
        labels = [self.labels[i] for i in idx] if self.labels is not None else None
        return ImageData(pick(self.items, idx), labels, self.label_names, [], self.source, self.hub_id)

    def spaced(self, every: int) -> ImageData:
        """Every k-th image, k = len // ``every`` (at least 1): a spread-out sample of about ``every`` images."""
        return self.subset(list(range(0, len(self.items), max(1, len(self.items) // every))))


#: Images read and decoded per ``decoded_sizes`` call while checking: a dataset's rows are read a chunk at a time,
#: so its compressed images are never all in memory at once.
CHECK_CHUNK = 64


def _sizes(items: Sequence) -> Iterator[tuple[int, Any]]:
    """(index, ``decoded_sizes`` result) for every item, a chunk at a time."""
    for start in range(0, len(items), CHECK_CHUNK):
        yield from enumerate(decoded_sizes(items[start:start + CHECK_CHUNK]), start)


def _check_images(items: Sequence, names: Sequence[str] | Callable[[int], str], strict: bool, what: str
                  ) -> tuple[list[int], list[str], list[str]]:
    """Decode every image once, a few at a time: (kept indices, skipped names, notes). Unreadable or too-small
    images are skipped (or an error with strict=true). Images over Pillow's pixel limit but under twice it are
    kept, with one note instead of Pillow's warning per image. ``names``: a list, or a function of the index (only
    called for the images named in a message)."""
    from PIL import Image

    name = names if callable(names) else names.__getitem__  # a dataset row is read again only when it is named
    keep, skipped, large, small = [], [], [], 0
    for i, size in _sizes(items):
        if isinstance(size, Image.DecompressionBombError):  # a real picture, too large for Pillow to decode safely
            limit = f"{2 * Image.MAX_IMAGE_PIXELS / 1e6:.3g}"
            if strict:
                raise UserError(f"image '{name(i)}' has more pixels than Pillow decodes ({limit} megapixels); shrink "
                                f"it, or drop strict=true to skip it")
            skipped.append(f"{name(i)} (over {limit} megapixels)")
            continue
        if isinstance(size, Exception):
            if strict:
                raise UserError(f"image '{name(i)}' cannot be read ({type(size).__name__}); remove or replace it, "
                                f"or drop strict=true to skip unreadable images")
            skipped.append(name(i))
            continue
        if min(size) < MIN_SIDE:
            if strict:
                raise UserError(f"image '{name(i)}' is {size[0]}x{size[1]} px, too small (min {MIN_SIDE} px a side); "
                                f"remove it, or drop strict=true to skip it")
            skipped.append(name(i))
            small += 1
            continue
        if Image.MAX_IMAGE_PIXELS and size[0] * size[1] > Image.MAX_IMAGE_PIXELS:
            large.append(name(i))
        keep.append(i)
    if not keep:
        why = f"smaller than {MIN_SIDE}x{MIN_SIDE} px" if small == len(items) else "unreadable or too small"
        raise UserError(f"{what}: all {len(items)} images are {why}; give images of at least {MIN_SIDE}x{MIN_SIDE} px")
    notes = [(f"{len(large)} image(s) over {Image.MAX_IMAGE_PIXELS / 1e6:.3g} megapixels, kept (they are slow to "
              f"decode): {name_list(large)}")] if large else []
    return keep, skipped, notes


#: A folder holding one of these is a contrastkit run's output (plots, checkpoints), never training images.
OUTPUT_MARKERS = ("config.yaml", "metrics.json", "checkpoints")
#: The run folder's subfolder of held-out example images (``save_examples``), for the demo
EXAMPLES = "examples"


def is_output_folder(folder: Path) -> bool:
    """True for a contrastkit output folder (finished, running or interrupted)."""
    return any((folder / m).exists() for m in OUTPUT_MARKERS) or \
        any(n.startswith(".contrastkit") for n in os.listdir(folder))


def scan_folder(root: Path) -> tuple[list[Path], list[Path], list[str], list[str], list[str]]:
    """Files under ``root``, following symlinked folders and files (each real folder once, so loops end), and
    leaving out hidden entries and contrastkit output folders: (images, other files, left-out output folders,
    broken links, folders left out as a second name for one already read)."""
    images, others, outputs, broken, again, seen = [], [], [], [], [], set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        real = os.path.realpath(dirpath)
        if real in seen:  # a symlink loop or a second link to a folder already read
            again.append(here.relative_to(root).as_posix())
            dirnames[:] = []
            continue
        seen.add(real)
        keep = []
        for d in sorted(dirnames):
            if d.startswith("."):
                continue
            if is_output_folder(here / d):
                outputs.append((here / d).relative_to(root).as_posix())
                continue
            keep.append(d)
        dirnames[:] = keep
        for f in sorted(filenames):
            if not f.startswith("."):
                path = here / f
                if not path.exists():  # a symlink to nothing (a moved folder or file)
                    broken.append(path.relative_to(root).as_posix())
                else:
                    (images if path.suffix.lower() in IMAGE_EXTS else others).append(path)
    return sorted(images), others, outputs, broken, again


def _folder_notes(root: Path, others: list[Path], outputs: list[str], broken: list[str],
                  classes: list[str], again: list[str]) -> list[str]:
    notes = []
    if again:
        notes.append(f"left out {len(again)} folder link(s) to a folder already read (each folder is read once): "
                     f"{name_list(again)}")
    if outputs:
        notes.append(f"left out {len(outputs)} contrastkit output folder(s) inside the data folder: "
                     f"{name_list(outputs)}")
    if broken:
        notes.append(f"skipped {len(broken)} symbolic link(s) that point to nothing: {name_list(broken)}")
    if others:
        counts = Counter(p.suffix.lower() or "(no extension)" for p in others)
        listed = ", ".join(f"{ext} ({n})" for ext, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        notes.append(f"ignored {len(others)} file(s) that are not {'/'.join(IMAGE_EXTS)} images: {listed}")
    named = set(classes) - {"."}
    if named and "." in classes:
        notes.append(f"warning: {classes.count('.')} image(s) sit directly in '{root}' and the rest in subfolders; "
                     f"images are unlabelled and kNN evaluation is skipped (put every image in a class subfolder)")
    elif len(named) == 1:
        notes.append(f"warning: every image is in one class folder '{next(iter(named))}'; kNN evaluation needs at "
                     f"least 2 class subfolders and is skipped")
    return notes


#: Folder names of a dataset's splits: a folder holding only these, with class subfolders in them, is split/class/
SPLIT_NAMES = ("train", "training", "val", "valid", "validation", "dev", "test", "testing")


def _split_folders(root: Path, relative: list[Path], what: str) -> str | None:
    """``root/train/<class>/``, ``root/val/<class>/``: the top-level folder would be the label (train vs val), so a
    one-line error pointing data= and eval_data= at the splits. Two or more folders named like splits with the
    images directly in them may be classes of those names: read as classes, with the warning returned for the
    data's notes (None otherwise)."""
    tops = sorted({r.parts[0] for r in relative})
    if any(len(r.parts) == 1 for r in relative) or any(t.lower() not in SPLIT_NAMES for t in tops):
        return None
    train = next((t for t in tops if t.lower() in ("train", "training")), tops[0])
    held = next((t for name in SPLIT_NAMES[2:] for t in tops if t.lower() == name and t != train), None)
    fix = f"{what}={root / (held or train)}" if what == "eval_data" else \
        f"data={root / train}" + (f" eval_data={root / held}" if held else "")
    if any(len(r.parts) > 2 for r in relative):
        raise UserError(f"{what} folder '{root}' holds split folders ({', '.join(tops)}) with class subfolders, and "
                        f"the top-level folder is the label, so the splits would be the classes; point at the "
                        f"splits: {fix}")
    if len(tops) < 2:
        return None
    return (f"warning: {what} folder '{root}' holds only folders named like splits ({', '.join(tops)}) with the "
            f"images directly in them, read as classes of those names; if they are splits of unlabelled images, "
            f"point at them: {fix} (or method=simclr to train without their names as labels)")


def _from_folder(root: Path, strict: bool, what: str) -> ImageData:
    images, others, outputs, broken, again = scan_folder(root)
    if not images:
        found = f" (found {len(others)} other files)" if others else ""
        raise UserError(f"{what} folder '{root}' holds no images{found}; "
                        f"add {', '.join(IMAGE_EXTS)} files (subfolder names become labels)")
    split_note = _split_folders(root, [p.relative_to(root) for p in images], what)
    keep, skipped, notes = _check_images(images, [str(p.relative_to(root)) for p in images], strict,
                                         f"{what} folder '{root}'")
    images = [images[i] for i in keep]
    # the top-level subfolder is the class, with every image below it, as in torchvision's ImageFolder
    relative = [p.relative_to(root) for p in images]
    classes = [r.parts[0] if len(r.parts) > 1 else "." for r in relative]
    nested = sorted({r.parent.as_posix() for r in relative if len(r.parts) > 2})
    if nested:
        moves = [f"{folder} -> {folder.split('/')[0]}" for folder in nested]
        notes.append(f"images in {len(nested)} nested folder(s) take their top-level folder's label: "
                     f"{name_list(moves)}")
    labels = names = None
    if all(c != "." for c in classes) and len(set(classes)) >= 2:  # every image sits in a class subfolder
        names = sorted(set(classes))
        labels = [names.index(c) for c in classes]
    elif all(c != "." for c in classes):  # one class folder: no labels, but its name lets method=supcon say so
        names = sorted(set(classes))
    notes += _folder_notes(root, others, outputs, broken, classes, again) + ([split_note] if split_note else [])
    return ImageData(images, labels, names, skipped, source=f"local folder '{root.name}'", notes=notes)


def digits() -> ImageData:
    """scikit-learn's bundled 8x8 hand-written digits (1,797 images, 10 classes): works offline."""
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    items = [Image.fromarray((img * 255 / 16).astype(np.uint8), "L").convert("RGB") for img in d.images]
    return ImageData(items, [int(t) for t in d.target], [str(n) for n in d.target_names],
                     source="scikit-learn digits (8x8 px)")


def load_images(data: Any, subset: str | None = None, split: str | None = None, strict: bool = False,
                what: str = "data") -> ImageData:
    """A folder (recursive), a CSV/TSV/JSON Lines/Parquet table of image paths, a Hub dataset id, a
    ``datasets.Dataset`` or a list of PIL images/paths."""
    if data is None:
        return digits()
    if type(data).__module__.startswith("datasets"):  # checked by module: importing datasets costs seconds
        from ..data import to_dataset
        from .tables import from_dataset

        return from_dataset(to_dataset(data, split=split, what=what), what, strict, None)
    if isinstance(data, (list, tuple)):
        if not data:
            raise UserError(f"{what} is an empty list; give PIL images or image paths")
        names = [str(x) if isinstance(x, (str, Path)) else f"item {i}" for i, x in enumerate(data)]
        keep, skipped, notes = _check_images(list(data), names, strict, what)
        return ImageData([data[i] for i in keep], None, None, skipped, source="a Python list of images", notes=notes)
    if isinstance(data, (str, Path)):
        p = Path(data).expanduser()
        from .tables import from_dataset, from_file

        if p.is_dir() or p.is_file():
            from ..data import unused_hub_options

            read = _from_folder(p, strict, what) if p.is_dir() else from_file(p, what, strict)
            if unused := unused_hub_options(subset, split, what):
                read.notes.append(f"warning: {unused}; {what} {'folder' if p.is_dir() else 'file'} '{data}' is "
                                  f"read whole")
            return read
        from ..data import load_hub, looks_like_path

        if isinstance(data, Path) or looks_like_path(str(data)):
            raise UserError(f"{what} folder '{data}' does not exist; check the path")
        return from_dataset(load_hub(str(data), subset, split, what), f"{what} '{data}'", strict, str(data))
    raise UserError(f"{what} of type {type(data).__name__} is not supported; pass a folder of images, a CSV or "
                    f"Parquet table of image paths, a Hub dataset id, a datasets.Dataset or a list of PIL images/paths")


class ImageDataset(torch.utils.data.Dataset):
    """(transform(image), label) pairs; label -1 when the data has none. With ``min_side``, large images are
    decoded shrunk to it (``open_rgb``)."""

    def __init__(self, data: ImageData, transform: Callable, min_side: int | None = None):
        self.data, self.transform, self.min_side = data, transform, min_side

    def __len__(self) -> int:
        return len(self.data.items)

    def __getitem__(self, i: int):
        label = self.data.labels[i] if self.data.labels is not None else -1
        return self.transform(open_rgb(self.data.items[i], self.min_side)), label


def save_examples(held_out: ImageData | None, folder: Path, min_side: int | None = None, per_class: int = 2,
                  classes: int = 8) -> list[Path]:
    """A few held-out images per class as ``folder/<class>-<n>.png`` (the demo's image examples: the user's own
    classes, never trained on; large ones shrunk to ``min_side``, as the encoder decodes them); ``<class>(<label>)``
    where class names clean to the same file name. Nothing for unlabelled images. The files stay local: ``push``
    leaves them out."""
    if held_out is None or held_out.labels is None:
        return []
    import re

    names = held_out.label_names or []
    chosen = sorted(set(held_out.labels))[:classes]
    stems = {label: re.sub(r"[^\w.-]+", "_", names[label] if label < len(names) else str(label)).strip("._")
             or "class" for label in chosen}
    shared = Counter(stems.values())
    written: list[Path] = []
    folder.mkdir(parents=True, exist_ok=True)
    for label in chosen:
        # C++ and C# both clean to "C": their label index keeps their files apart (the demo pairs images by the
        # name before the last '-'), and "(" is never in a cleaned name, so no other class's name can match
        name = f"{stems[label]}({label})" if shared[stems[label]] > 1 else stems[label]
        picks = [i for i, y in enumerate(held_out.labels) if y == label][:per_class]
        for n, item in enumerate(pick(held_out.items, picks)):  # only these rows are read from a dataset
            written.append(folder / f"{name}-{n}.png")
            open_rgb(item, min_side).save(written[-1])
    return written
