"""The demo's four comparisons: text ↔ texts, image ↔ images, image ↔ texts and a similarity matrix.

Each takes the loaded ``Slot`` objects (base first, then fine-tuned) and returns ``Scores`` (or the matrix per
model) for ``render.py``; bad input raises ``DemoInputError``. One model failing leaves the other's result.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .core import (
    DemoInputError,
    Scores,
    Slot,
    _cap,
    _for_each,
    _limit,
    _need,
    embed_images,
    embed_texts,
    pair_token_counts,
    pair_truncation_notes,
    relevance,
    similarities,
    take_rows,
    token_counts,
    truncation_notes,
)
from .inputs import display_image, open_image, split_lines


def compare_texts(slots: list[Slot], text_a: str, others: str) -> Scores:
    """Each model's score of text A with each line of ``others``: cosine similarity, a sparse model's dot product,
    or a reranker's relevance score of the pair (``Slot.score_name``)."""
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
    pairs = [(texts[0], t) for _, _, texts, _ in jobs for t in texts[1:]]
    for s in slots:
        if not (s.embeds("text") and getattr(s.model, "max_seq_length", None)):
            continue
        cross = s.kind == "cross"  # a reranker reads text A and each text together, as one input
        counts, start = (pair_token_counts(s, pairs) if cross else token_counts(s, flat)), 0
        for _, _, texts, notes in jobs:
            n = len(texts) - 1 if cross else len(texts)
            if counts is not None:
                notes += (pair_truncation_notes if cross else truncation_notes)(s, texts, counts[start:start + n])
            start += n
    failed: list[str] = []

    def score(s: Slot) -> list[list[float]]:
        """Each job's scores of text A against its other texts: one encode (or one predict) for the whole batch."""
        per_job, start = [], 0
        if s.kind == "cross":
            flat_scores = relevance(s, pairs)
            for _, _, texts, _ in jobs:
                per_job.append([float(x) for x in flat_scores[start:start + len(texts) - 1]])
                start += len(texts) - 1
            return per_job
        emb = embed_texts(s, flat)
        for _, _, texts, _ in jobs:
            n = len(texts)
            sims = similarities(s, take_rows(emb, start, start + 1), take_rows(emb, start + 1, start + n))[0]
            per_job.append([float(x) for x in sims])
            start += n
        return per_job

    by_model = _for_each(slots, ("text",), score, failed, raw=True)
    for j, (index, rows, _, notes) in enumerate(jobs):
        scores = {role: None if per_job is None else per_job[j] for role, per_job in by_model.items()}
        out[index] = Scores(rows=rows, by_model=scores, notes=notes + failed)
    return out


def compare_images(slots: list[Slot], path_a: str | None, paths_b: str | list[str] | None,
                   max_bytes: int) -> Scores:
    """Cosine similarity of image A with each image B (one path or several), per model."""
    paths_b = [paths_b] if isinstance(paths_b, (str, os.PathLike)) else list(paths_b or [None])
    notes: list[str] = []
    paths_b = _limit(paths_b, "images B", notes)
    one = len(paths_b) == 1
    _need(slots, "image")  # before decoding: without an image model, the uploads are never read
    images = [open_image(path_a, "image A", max_bytes)] + [
        open_image(p, "image B" if one else f"image B{i}", max_bytes) for i, p in enumerate(paths_b, 1)]

    def score(s: Slot):
        emb = embed_images(s, images)
        return [float(x) for x in emb[1:] @ emb[0]]

    rows = ["image A ↔ image B"] if one else [f"image A ↔ {Path(p).name}" for p in paths_b]
    return Scores(rows=rows, by_model=_for_each(slots, ("image",), score, notes), notes=notes,
                  images=[display_image(im) for im in images])


def compare_text_image(slots: list[Slot], image_path: str | None, texts: str, max_bytes: int) -> Scores:
    """Cosine similarity of one image with each line of ``texts``, for models that embed both."""
    lines = split_lines(texts)
    if not lines:
        raise DemoInputError("Type at least one text (one per line) to match against the image.")
    _need(slots, "text", "image")
    image = open_image(image_path, "an image", max_bytes)
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
                  images=[display_image(image)])


def _need_two(items: list) -> None:
    if len(items) < 2:
        raise DemoInputError("Give at least two items: texts one per line, or two or more images.")


def similarity_matrix(slots: list[Slot], texts: str, image_paths: list[str] | None,
                      max_bytes: int) -> tuple[list[str], dict[str, Any], list[str]]:
    """Pairwise scores of a list of texts (or of images, when any are uploaded), per model: cosine similarities,
    a sparse model's dot products, or a reranker's relevance score of each (row, column) pair."""
    notes: list[str] = []
    if image_paths:
        paths = _limit(list(image_paths), "images", notes)
        _need_two(paths)
        _need(slots, "image")  # before decoding: without an image model, the uploads are never read
        items = [open_image(p, f"image {i}", max_bytes) for i, p in enumerate(paths, 1)]
        labels, modality = [Path(p).name for p in paths], "image"
    elif not any(s.embeds("text") for s in slots) and any(s.embeds("image") for s in slots):
        # image models: the page has no text box here, so asking for texts would point at nothing
        raise DemoInputError("Upload two or more images: the loaded models embed images only.")
    else:
        items = _limit(split_lines(texts), "texts", notes)
        items, cut = _cap(items)
        notes += cut
        labels, modality = items, "text"
        _need_two(items)
        _need(slots, modality)
    matrices = {}

    def score(s: Slot):
        if s.kind == "cross":  # row i = the query, column j = the document: every ordered pair, read together
            n = len(items)
            matrices[s.role] = relevance(s, [(q, d) for q in items for d in items]).reshape(n, n)
        elif modality == "image":
            emb = embed_images(s, items)
            matrices[s.role] = emb @ emb.T
        else:
            emb = embed_texts(s, items)
            matrices[s.role] = similarities(s, emb, emb)
        return []

    _for_each(slots, (modality,), score, notes)
    return labels, matrices, notes
