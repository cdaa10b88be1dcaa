"""Image-text pairs: reading and checking (image, caption) rows, and the held-out split by image.

Any input the recipe takes (a captions file with image paths, a ``datasets`` image column, Python rows) becomes a
``Dataset`` of ``image`` (PIL, RGB) and ``text``; bad rows are one ``UserError`` line or skipped and counted. One
image key (``image_key``: its bytes, else its path) groups an image's rows for the repeat warning, the split and
the evaluator. Usable without a recipe: ``image_text_pairs(dataset)``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data import data_columns, row_names
from ..errors import UserError
from ..images import decoded_sizes, name_list, viewer_encoded
from ..splits import REPEATS_WEIGH_MORE, repeats

#: Recognised column names (lower case) for the image and the caption; ``columns=`` overrides them.
IMAGE_ALIASES = ("image", "images", "img", "image_path", "image_file", "file_name", "filename", "file", "path")
TEXT_ALIASES = ("text", "caption", "captions", "sentence", "description", "title", "alt_text")
#: A value that starts with a URL scheme (http://, https://, s3://, ...): a web address, not a local file
URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")


@dataclass
class PairStats:
    """What loading the pairs found: columns used, rows skipped (with ``skip_missing=true``), each kept row's image
    key and place in the user's data, and the held-out pairs' own stats when they come from eval_data."""

    image_column: str
    text_column: str
    what: str = "data"
    rows: int = 0
    missing_images: list[str] = field(default_factory=list)
    empty_captions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    held_out: PairStats | None = None

    def notes(self) -> list[str]:
        """One line per kind of skipped row, then the warnings, then the held-out data's, each saying whose: "line 3"
        of eval_data is not line 3 of data."""
        out = []
        if self.missing_images:
            out.append(f"skipped {len(self.missing_images)} row(s) whose image file is missing or unreadable: "
                       f"{name_list(self.missing_images)}")
        if self.empty_captions:
            out.append(f"skipped {len(self.empty_captions)} row(s) with an empty caption: "
                       f"{name_list(self.empty_captions)}")
        if self.what != "data":
            out = [f"{self.what}: {line}" for line in out]
            out += [w.replace("warning: ", f"warning: {self.what}: ", 1) for w in self.warnings]
        else:
            out += self.warnings
        return out + (self.held_out.notes() if self.held_out else [])

    def skipped(self) -> dict[str, int]:
        """The skipped rows of data and eval_data together, as metrics.json counts them."""
        inner = self.held_out.skipped() if self.held_out else {}
        return {"skipped_missing_images": len(self.missing_images) + inner.get("skipped_missing_images", 0),
                "skipped_empty_captions": len(self.empty_captions) + inner.get("skipped_empty_captions", 0)}


def _pick(found: list[str], aliases: tuple[str, ...], role: str, given: str | None, what: str) -> str:
    """The column for ``role``: the one ``columns=`` names, else the first alias found, in any case and spacing."""
    if given:
        if given not in found:
            raise UserError(f"columns maps {role} to '{given}', which is not a column of {what} "
                            f"(found: {', '.join(found)})")
        return given
    by_lower = {c.strip().lower(): c for c in found}  # " image": a CSV header written "caption, image"
    hit = next((by_lower[a] for a in aliases if a in by_lower), None)
    if hit is None:
        raise UserError(f"{what} has no {role} column (found: {', '.join(found) or 'none'}); name it one of "
                        f"{', '.join(aliases[:4])} or map it with columns={{{role}: COL}}")
    return hit


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or \
        (isinstance(value, str) and not value.strip())


def _check_captions(captions: list[str], stats: PairStats, images: list[dict]) -> None:
    """Captions that cannot tell images apart teach nothing: an error when every caption is the same, a warning
    when rows repeat an earlier (image, caption) row (images compared by ``image_key``, as the split does)."""
    if len(captions) > 1 and len({c.strip() for c in captions}) == 1:
        raise UserError(f"every caption is {captions[0][:60]!r}; the model learns by telling captions apart, so "
                        f"give each image its own caption")
    again = repeats(list(zip(stats.keys, captions)))
    if again:
        stats.warnings.append(f"warning: {len(again)} row(s) repeat an earlier (image, caption) row (first: "
                              f"{stats.names[again[0][0]]}, same as {stats.names[again[0][1]]}); {REPEATS_WEIGH_MORE}")


def _unreadable(exc: Exception) -> str:
    """Why an image cannot be read, in the user's terms: the fix for a missing file is not the fix for a file that
    holds no image (a text file, an SVG, an empty file) or for a cut-off one."""
    from PIL import UnidentifiedImageError

    if isinstance(exc, FileNotFoundError):
        return "does not exist"
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not an image file"
    if isinstance(exc, PermissionError):
        return "cannot be read (permission denied)"
    if isinstance(exc, UnidentifiedImageError):
        return "is not an image file that Pillow can read"
    detail = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
    return f"cannot be decoded ({detail})"


def _read_images(dataset: Any, column: str) -> tuple[list[Any], dict[int, str]]:
    """A ``datasets.Image`` column's undecoded values, and why each bad one cannot be read, by row. Read undecoded,
    so that a broken or empty image is a row to name or skip, not a crash inside datasets; every image is decoded
    once here, so a cut-off file fails now, not mid-run."""
    import datasets

    values = list(dataset.cast_column(column, datasets.Image(decode=False))[column])
    empty = {i for i, v in enumerate(values) if v is None or (v.get("bytes") is None and not v.get("path"))}
    sizes = decoded_sizes(values)
    return values, {i: "is empty" if i in empty else _unreadable(size) for i, size in enumerate(sizes)
                    if isinstance(size, Exception)}


def _read_paths(paths: list[Any], names: list[str], column: str, base_dir: str | Path | None,
                source: str) -> tuple[list[str], dict[int, str]]:
    """A column of image file paths as absolute paths (read from ``base_dir``; spaces around a path, as in a CSV
    written ``a, b``, are dropped), and why each bad one cannot be read, by row.
    URLs are refused whole: no row of this kind can ever be read, so skipping would hide a column's mistake."""
    wrong = next((i for i, p in enumerate(paths) if not (isinstance(p, str) or _is_empty(p))), None)
    if wrong is not None:
        raise UserError(f"{source}column '{column}' must hold image file paths or images; {names[wrong]} is "
                        f"{type(paths[wrong]).__name__}")
    urls = [i for i, p in enumerate(paths) if isinstance(p, str) and URL.match(p.strip())]
    if urls:
        raise UserError(f"{source}column '{column}' holds URLs, not file paths ({len(urls)} of {len(paths)}, "
                        f"first {names[urls[0]]}: {paths[urls[0]].strip()}); the recipe reads local files only "
                        f"and downloads nothing: download the images and give their file paths in "
                        f"column '{column}'")
    base = (Path(base_dir) if base_dir else Path.cwd()).expanduser().resolve()
    values = [str((base / Path(p.strip()).expanduser()).resolve()) if isinstance(p, str) and p.strip() else ""
              for p in paths]
    named = [i for i, v in enumerate(values) if v]
    errors = {i: "is empty" for i, v in enumerate(values) if not v}
    for i, size in zip(named, decoded_sizes([values[i] for i in named])):
        if isinstance(size, Exception):
            errors[i] = _unreadable(size) + (f" (looked for {values[i]})" if isinstance(size, FileNotFoundError)
                                             else "")
    return values, errors


def image_text_pairs(dataset: Any, columns: dict[str, str] | None = None, base_dir: str | Path | None = None,
                     skip_missing: bool = False, what: str = "data") -> tuple[Any, PairStats]:
    """Check (image, text) rows and return a Dataset with columns ``image`` (decoded to PIL) and ``text``.

    Image paths are resolved against ``base_dir`` (the CSV's folder). Missing/unreadable images and empty
    captions raise a one-line ``UserError`` naming the first one, or are skipped and counted with ``skip_missing``.
    """
    import datasets

    source = f"{what}: " if what != "data" else ""  # eval_data's errors say so
    columns = dict(columns or {})
    unknown = set(columns) - {"image", "text"}
    if unknown:
        raise UserError(f"columns may map only image and text, got {', '.join(sorted(unknown))}")
    found = data_columns(dataset)
    names = row_names(dataset)
    image_col = _pick(found, IMAGE_ALIASES, "image", columns.get("image"), what)
    if columns.get("text") == image_col:  # else the text column is looked for among the others: "not a column"
        raise UserError(f"columns maps text to '{image_col}', which is also the image column; map image and text to "
                        f"two different columns of {what} (found: {', '.join(found)})")
    text_col = _pick([c for c in found if c != image_col], TEXT_ALIASES, "text", columns.get("text"), what)
    stats = PairStats(image_col, text_col, what)
    dataset = dataset.select_columns([image_col, text_col])

    captions = dataset[text_col]
    bad = next(((i, v) for i, v in enumerate(captions) if not _is_empty(v) and not isinstance(v, str)), None)
    if bad is not None:
        fix = "give each caption a row of its own, with the same image" if isinstance(bad[1], (list, tuple)) else \
            "the caption column must hold text (map another one with columns={text: COL})"
        raise UserError(f"{source}column '{text_col}' {names[bad[0]]} is {type(bad[1]).__name__} ({bad[1]!r}), not text; "
                        f"{fix}")
    keep = list(range(len(dataset)))
    empty = [i for i in keep if _is_empty(captions[i])]
    if empty and not skip_missing:
        raise UserError(f"{source}column '{text_col}' {names[empty[0]]} is an empty caption ({len(empty)} empty in "
                        f"all); fill it in, or pass skip_missing=true to skip such rows")
    stats.empty_captions = [names[i] for i in empty]

    if isinstance(dataset.features[image_col], datasets.Image):
        values, errors = _read_images(dataset, image_col)
        labels = {i: names[i] for i in errors}
        shown = {i: f"image in {names[i]}" for i in errors}
        fix = f"replace or remove it in column '{image_col}'"
    else:
        paths = dataset[image_col]
        values, errors = _read_paths(paths, names, image_col, base_dir, source)
        labels = {i: paths[i] if values[i] else names[i] for i in errors}
        shown = {i: f"image '{paths[i]}'" if values[i] else f"image in {names[i]}" for i in errors}
        fix = f"fix the paths in column '{image_col}'"
    missing = sorted(errors)
    if missing and not skip_missing:
        first = missing[0]
        skip = ", or pass skip_missing=true" if len(missing) < len(values) else ""  # skipping all leaves nothing
        raise UserError(f"{source}{shown[first]} {errors[first]}; {len(missing)} of {len(values)} image(s) in all "
                        f"are missing or unreadable: {fix}{skip}")
    stats.missing_images = [labels[i] for i in missing]
    skipped = set(empty) | set(missing)
    if skipped:
        keep = [i for i in keep if i not in skipped]
        dataset = dataset.select(keep)
    if len(dataset) == 0:
        raise UserError(f"{what} has no usable (image, text) rows left after skipping; check the image paths")
    encoded = [viewer_encoded(values[i]) for i in keep]
    stats.keys, stats.names = [image_key(v) for v in encoded], [names[i] for i in keep]
    _check_captions(dataset[text_col], stats, encoded)
    dataset = dataset.remove_columns(image_col).add_column(image_col, encoded, feature=datasets.Image())
    dataset = dataset.select_columns([image_col, text_col])
    if (image_col, text_col) != ("image", "text"):
        dataset = dataset.rename_columns({image_col: "__image", text_col: "__text"})
        dataset = dataset.rename_columns({"__image": "image", "__text": "text"})
    dataset = dataset.cast_column("image", datasets.Image(mode="RGB"))
    stats.rows = len(dataset)
    return dataset, stats


# --------------------------------------------------------------------------- the recipe's pairs and held-out split
def _base_dir(data: Any) -> Path | None:
    """Relative image paths are read from the data file's folder."""
    from ..data import looks_like_path

    if isinstance(data, (str, Path)) and (isinstance(data, Path) or looks_like_path(str(data))):
        p = Path(data).expanduser()
        return p if p.is_dir() else p.parent
    return None


def load_pairs(cfg: Any, sample: str) -> tuple[Any, Any, PairStats]:
    """The recipe's checked (image, text) pairs and its held-out pairs (``cfg.eval_data`` or a hold-out), with the
    counts of skipped rows of both."""
    from ..data import sample_path, to_dataset, with_row_numbers
    from ..splits import EVAL_IS_TRAIN, same_source, split_train_eval

    source = cfg.data if cfg.data is not None else sample_path(sample)
    pairs, stats = image_text_pairs(with_row_numbers(to_dataset(source, cfg.subset, cfg.split)), cfg.columns,
                                    _base_dir(source), cfg.skip_missing)
    eval_pairs = None
    eval_source = cfg.eval_source()  # eval_data, or a whole DatasetDict's evaluation split
    if eval_source is not None:
        what, fix = _eval_what(cfg)
        eval_set = with_row_numbers(to_dataset(eval_source, *cfg.eval_options(), what="eval_data"))
        eval_pairs, eval_stats = image_text_pairs(eval_set, cfg.columns, _base_dir(eval_source), cfg.skip_missing,
                                                  what=what)
        stats.held_out = eval_stats
        if same_source(source, cfg.eval_data):
            stats.warnings.append(f"warning: eval_data is the training data; {EVAL_IS_TRAIN}")
        elif shared := _trained_images(stats, eval_stats):
            stats.warnings.append(shared)
        images = len(set(image_keys(eval_pairs)))
        if images < 2:  # every text->image query would find the only image: a perfect score, whatever the model
            raise UserError(f"{what} holds {images} image ({len(eval_pairs)} row(s)); image-text retrieval needs "
                            f"2 or more different images: {fix}")
        return (*split_train_eval(pairs, eval_pairs), stats)
    pairs, eval_pairs = _hold_out_images(pairs, cfg.seed)
    return pairs, eval_pairs, stats


def _trained_images(train: PairStats, held_out: PairStats) -> str | None:
    """A warning when held-out rows show images the model trains on (a copy of the training file, or splits that
    share images): their after-training scores measure fit, not how the model does on new images."""
    trained = set(train.keys)
    inside = [i for i, key in enumerate(held_out.keys) if key in trained]
    if not inside:
        return None
    if len(inside) == len(held_out.keys):
        return (f"warning: every image of {held_out.what} is also a training image; the after-training scores "
                f"show how well training images are fitted, not how the model does on new ones")
    return (f"warning: {len(inside)} of {len(held_out.keys)} rows of {held_out.what} show a training image (first: "
            f"{held_out.names[inside[0]]}); the after-training scores are optimistic")


def _eval_what(cfg: Any) -> tuple[str, str]:
    """What the held-out pairs are, in the user's terms, and how to give two images or more: eval_data, or the
    evaluation split of a DatasetDict given as data (the user never wrote eval_data then)."""
    if cfg.eval_data is not None:
        return "eval_data", "add images to eval_data, or leave it out to hold out 10%"
    split, train = cfg.dict_eval_split(), cfg.split or ("train" if "train" in cfg.data else next(iter(cfg.data)))
    others = [s for s in cfg.data if s not in (split, train)]
    pick = f"pick another with eval_split= ({', '.join(others)}), " if others else ""
    return (f"the '{split}' split of the DatasetDict given as data",
            f"add images to that split, {pick}or give eval_data=")


def _hold_out_images(pairs: Any, seed: int) -> tuple[Any, Any]:
    """The default hold-out, with several captions of one image (COCO-style) on one side of the split, and at least
    two images held out: with one, text->image recall is 1.0 whatever the model."""
    from ..splits import split_groups, split_train_eval

    groups = image_keys(pairs)
    train, held = split_train_eval(pairs, None, seed=seed, groups=groups)
    if held is not None and len(set(image_keys(held))) < 2:  # one image's captions filled the 10%
        train, held = split_groups(pairs, groups, len(held) + 1, seed)  # the same draw, one image more
    return train, held

def image_key(value: dict) -> str:
    """An image (a ``datasets.Image`` value) as a key, equal for the same image: a hash of its bytes, else its file
    path. Bytes come first: Hub datasets give every image's bytes the same path (``image.png``, or the folder's)."""
    import hashlib

    return hashlib.sha1(value["bytes"]).hexdigest() if value.get("bytes") else str(value.get("path"))


def image_keys(pairs: Any) -> list[str]:
    """Each row's ``image_key``: rows with one key are one image, held out and evaluated as one."""
    import datasets

    return [image_key(r) for r in pairs.cast_column("image", datasets.Image(decode=False))["image"]]
