"""The plain functions behind the demo: load the two models, embed, score, search. No Gradio here.

Every function takes the loaded ``Slot`` objects (base first, then fine-tuned) and returns a ``Scores``
or ``Hits`` value; ``render.py`` turns those into HTML. Bad input becomes ``DemoInputError`` with a
friendly sentence, which the app shows in the page instead of an error popup.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASE_MODEL = "all-MiniLM-L6-v2"
MAX_ITEMS = 30  # more rows or matrix cells than this stop being readable in a page
MAX_CHARS = 20_000  # per text; tokenising megabytes would stall the shared CPU


class DemoInputError(ValueError):
    """Input the demo cannot use; the message is shown in the page as-is."""


@dataclass
class Slot:
    """One model of the comparison: its role, the name the user gave, and the model or its load error."""

    role: str  # "base" | "fine-tuned"
    name: str
    model: Any = None
    error: str | None = None
    bf16: bool = False  # encode under bf16 autocast (DemoConfig.precision)

    @property
    def modalities(self) -> tuple[str, ...]:
        """What it embeds: ('text',), ('image',) or ('text', 'image'); () when it failed to load."""
        if self.model is None:
            return ()
        if not hasattr(self.model, "encode"):  # contrastkit ImageEncoder: .embed(images) only
            return ("image",)
        supports = getattr(self.model, "supports", None)  # sentence-transformers < 6 embeds text only
        return tuple(m for m in ("text", "image") if (supports(m) if supports else m == "text"))

    def embeds(self, *modalities: str) -> bool:
        """True when the model embeds every one of ``modalities``."""
        return all(m in self.modalities for m in modalities)

    def describe(self) -> str:
        """'text', 'image' or 'image–text' (what the page calls the model)."""
        return {("text",): "text", ("image",): "image", ("text", "image"): "image–text"}.get(self.modalities, "?")


@dataclass
class Scores:
    """Per-model similarity scores for rows of a comparison, plus notes to show above them."""

    rows: list[str]
    by_model: dict[str, list[float] | None]  # role -> scores per row, None when the model cannot embed this
    notes: list[str] = field(default_factory=list)
    images: list[Any] = field(default_factory=list)  # the decoded uploads, shown as thumbnails


@dataclass
class Hits:
    """Per-model search results: role -> [(document, score), ...] best first."""

    query: str
    by_model: dict[str, list[tuple[str, float]] | None]
    corpus_size: int
    notes: list[str] = field(default_factory=list)
    ranks: dict[str, dict[str, int]] = field(default_factory=dict)  # role -> {document: rank over the corpus}


# --------------------------------------------------------------------------- loading
_LOADED: dict[tuple[str, bool], Slot] = {}


def load_slot(role: str, name: str, trust_remote_code: bool = False) -> Slot:
    """Load one model through ``hub.load``; a failure is kept on the slot (shown in the page), never raised."""
    local = Path(name).expanduser()
    key = (str(local.resolve()) if local.exists() else name, trust_remote_code)
    if key not in _LOADED:  # the module-level demo and launch() share loaded models
        from contrastkit.plugins import hub

        try:
            model = hub.load(name, trust_remote_code=trust_remote_code)
            _fit_seq_length(model)
            _LOADED[key] = Slot(role, name, model=model)
        except Exception as exc:  # noqa: BLE001 - the app must keep running whatever the model does
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            return Slot(role, name, error=first[:300])
    slot = _LOADED[key]
    return Slot(role, name, model=slot.model)


def _fit_seq_length(model: Any) -> None:
    """Cap the text length at the position embeddings: a tokenizer without a model_max_length (common for
    CLIP folders) reports ~1e30, and longer texts then crash the model instead of being truncated."""
    try:
        config = model[0].auto_model.config
    except (AttributeError, IndexError, TypeError):
        return
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    positions = getattr(config, "max_position_embeddings", None)
    if positions and (model.max_seq_length is None or model.max_seq_length > positions):
        model.max_seq_length = positions


# --------------------------------------------------------------------------- input
def split_lines(text: str | None) -> list[str]:
    """Non-empty, stripped lines of a text box."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def open_image(path: str | os.PathLike | None, what: str, max_bytes: int) -> Any:
    """A PIL RGB image from an uploaded file, or DemoInputError that says what is wrong with it."""
    from contrastkit.plugins.images import to_rgb
    from PIL import Image, UnidentifiedImageError

    if not path:
        raise DemoInputError(f"Please upload {what}.")
    path = Path(path)
    if path.stat().st_size > max_bytes:
        raise DemoInputError(f"{what} ({path.name}) is larger than {max_bytes // 2**20} MB; upload a smaller image.")
    try:
        with Image.open(path) as img:
            return to_rgb(img)  # EXIF orientation and bit depth, as the recipes decode
    except (UnidentifiedImageError, OSError):
        raise DemoInputError(f"{what} ({path.name}) is not an image; upload a PNG, JPEG, WebP or GIF file.") from None


def token_counts(slot: Slot, texts: list[str]) -> list[int] | None:
    """How many tokens each text is for this model (one tokenizer call), or None when it cannot tell."""
    tokenizer = getattr(slot.model, "tokenizer", None)
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # a CLIP processor wraps its tokenizer
    if not texts or tokenizer is None or not callable(tokenizer):
        return None
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]]


def truncation_notes(slot: Slot, texts: list[str], counts: list[int] | None = None) -> list[str]:
    """One note per text longer than the model reads (the model silently keeps only the first tokens)."""
    limit = getattr(slot.model, "max_seq_length", None)
    counts = counts if counts is not None else (token_counts(slot, texts) if limit else None)
    if not limit or counts is None:
        return []
    return [f"Text {i} is {n} tokens long; the {slot.role} model reads only the first {limit}, so the rest was "
            f"truncated." for i, n in enumerate(counts, 1) if n > limit]


def _cap(texts: list[str]) -> tuple[list[str], list[str]]:
    capped = [t[:MAX_CHARS] for t in texts]
    notes = [f"Text {i} was cut to its first {MAX_CHARS:,} characters." for i, t in enumerate(texts, 1)
             if len(t) > MAX_CHARS]
    return capped, notes


def _limit(items: list, what: str, notes: list[str]) -> list:
    if len(items) > MAX_ITEMS:
        notes.append(f"Only the first {MAX_ITEMS} of {len(items)} {what} are used.")
    return items[:MAX_ITEMS]


# --------------------------------------------------------------------------- embedding
def _precision(slot: Slot) -> Any:
    """bf16 autocast for a slot that asks for it (on the device its model is on), else nothing."""
    import contextlib

    import torch

    if not slot.bf16:
        return contextlib.nullcontext()
    device = getattr(slot.model, "device", None)
    return torch.autocast(getattr(device, "type", "cpu"), dtype=torch.bfloat16)


def embed_texts(slot: Slot, texts: list[str]) -> Any:
    """L2-normalised text embeddings, shape (n, d)."""
    with _precision(slot):
        return slot.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)


def embed_images(slot: Slot, images: list[Any]) -> Any:
    """L2-normalised image embeddings, shape (n, d); images and texts never share a call (ST refuses mixes)."""
    if not hasattr(slot.model, "encode"):
        return slot.model.embed(images)
    with _precision(slot):
        return slot.model.encode(images, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)


def _for_each(slots: list[Slot], needs: tuple[str, ...], score, notes: list[str],
              raw: bool = False) -> dict[str, Any]:
    """Run ``score`` for every model that embeds ``needs``; one model failing leaves the other's result.
    The values are floats, or with ``raw`` whatever ``score`` returned (e.g. an embedding matrix)."""
    out: dict[str, list[float] | None] = {}
    for s in slots:
        out[s.role] = None
        if s.embeds(*needs):
            try:
                out[s.role] = score(s) if raw else [float(x) for x in score(s)]
            except Exception as exc:  # noqa: BLE001 - shown in the page; the app keeps running
                notes.append(f"The {s.role} model failed on this input: {type(exc).__name__}: {exc}"[:300])
    return out


def _need(slots: list[Slot], *modalities: str) -> None:
    if not any(s.embeds(*modalities) for s in slots):
        raise DemoInputError(needs_sentence(slots, *modalities))


def needs_sentence(slots: list[Slot], *modalities: str) -> str:
    """'This needs a model that embeds images; the loaded models embed text only (base, fine-tuned).'"""
    what = {("text",): "texts", ("image",): "images"}.get(modalities, "both texts and images")
    loaded = [s for s in slots if s.model is not None]
    if not loaded:
        return f"This needs a model that embeds {what}, and no model could be loaded (see the top of the page)."
    kinds = " and ".join(dict.fromkeys(s.describe() for s in loaded))
    roles = ", ".join(s.role for s in loaded)
    return (f"This needs a model that embeds {what}; the loaded model{'s' * (len(loaded) > 1)} ({roles}) "
            f"embed{'s' * (len(loaded) == 1)} {kinds} only. Start the demo with an image or image–text model "
            f"(model=PATH) to use this tab.")


# --------------------------------------------------------------------------- the four comparisons
def compare_texts(slots: list[Slot], text_a: str, others: str) -> Scores:
    """Cosine similarity of text A with each line of ``others``, per model."""
    result = compare_texts_many(slots, [(text_a, others)])[0]
    if isinstance(result, DemoInputError):
        raise result
    return result


def compare_texts_many(slots: list[Slot], requests: list[tuple[str, str]]) -> list[Scores | DemoInputError]:
    """``compare_texts`` for many requests at once: one encode per model for all their texts (the served app
    batches concurrent requests this way). A bad request gets its DemoInputError; the others still get scores."""
    out: list[Scores | DemoInputError] = []
    jobs: list[tuple[int, list[str], list[str], list[str]]] = []  # (index in out, rows, texts, notes)
    for text_a, others in requests:
        a = (text_a or "").strip()
        rest = split_lines(others)
        if not a or not rest:
            out.append(DemoInputError("Type a text in 'Text A' and at least one text (one per line) to compare it "
                                      "with."))
            continue
        try:
            _need(slots, "text")
        except DemoInputError as exc:
            out.append(exc)
            continue
        notes: list[str] = []
        rest = _limit(rest, "texts", notes)
        texts, cut = _cap([a, *rest])
        jobs.append((len(out), rest, texts, notes + cut))
        out.append(DemoInputError("not scored"))  # replaced below
    if not jobs:
        return out
    flat = [t for _, _, texts, _ in jobs for t in texts]
    for s in slots:
        if s.embeds("text") and getattr(s.model, "max_seq_length", None):
            counts, start = token_counts(s, flat), 0
            for _, _, texts, notes in jobs:
                if counts is not None:
                    notes += truncation_notes(s, texts, counts[start:start + len(texts)])
                start += len(texts)
    failed: list[str] = []
    by_model = _for_each(slots, ("text",), lambda s: embed_texts(s, flat), failed, raw=True)
    start = 0
    for index, rows, texts, notes in jobs:
        n = len(texts)
        scores = {}
        for role, emb in by_model.items():
            scores[role] = None if emb is None else [float(x) for x in emb[start + 1:start + n] @ emb[start]]
        out[index] = Scores(rows=rows, by_model=scores, notes=notes + failed)
        start += n
    return out


def compare_images(slots: list[Slot], path_a: str | None, path_b: str | None, max_bytes: int) -> Scores:
    """Cosine similarity of two uploaded images, per model."""
    images = [open_image(path_a, "image A", max_bytes), open_image(path_b, "image B", max_bytes)]
    _need(slots, "image")

    def score(s: Slot):
        emb = embed_images(s, images)
        return [emb[0] @ emb[1]]

    notes: list[str] = []
    return Scores(rows=["image A ↔ image B"], by_model=_for_each(slots, ("image",), score, notes), notes=notes,
                  images=images)


def compare_text_image(slots: list[Slot], image_path: str | None, texts: str, max_bytes: int) -> Scores:
    """Cosine similarity of one image with each line of ``texts``, for models that embed both."""
    lines = split_lines(texts)
    if not lines:
        raise DemoInputError("Type at least one text (one per line) to match against the image.")
    image = open_image(image_path, "an image", max_bytes)
    _need(slots, "text", "image")
    notes: list[str] = []
    lines = _limit(lines, "texts", notes)
    capped, cut = _cap(lines)
    notes += cut
    for s in slots:
        if s.embeds("text", "image"):
            notes += truncation_notes(s, capped)

    def score(s: Slot):
        return embed_texts(s, capped) @ embed_images(s, [image])[0]

    return Scores(rows=lines, by_model=_for_each(slots, ("text", "image"), score, notes), notes=notes,
                  images=[image])


def similarity_matrix(slots: list[Slot], texts: str, image_paths: list[str] | None,
                      max_bytes: int) -> tuple[list[str], dict[str, Any], list[str]]:
    """Pairwise cosine similarities of a list of texts (or of images, when any are uploaded), per model."""
    notes: list[str] = []
    if image_paths:
        paths = _limit(list(image_paths), "images", notes)
        items = [open_image(p, f"image {i}", max_bytes) for i, p in enumerate(paths, 1)]
        labels, modality = [Path(p).name for p in paths], "image"
    else:
        items = _limit(split_lines(texts), "texts", notes)
        items, cut = _cap(items)
        notes += cut
        labels, modality = items, "text"
    if len(items) < 2:
        raise DemoInputError("Give at least two items: texts one per line, or two or more images.")
    _need(slots, modality)
    embed = embed_images if modality == "image" else embed_texts
    matrices = {}
    def score(s: Slot):
        emb = embed(s, items)
        matrices[s.role] = emb @ emb.T
        return []

    _for_each(slots, (modality,), score, notes)
    return labels, matrices, notes
