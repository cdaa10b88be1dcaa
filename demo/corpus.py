"""Search for the demo: read a corpus (uploaded .txt/.csv or the bundled FAQ answers), embed it once per
model with progress, and rank it for a query per model, keeping where each model ranked every document."""

from __future__ import annotations

import csv
import hashlib
import io
import os
from pathlib import Path
from typing import Any

from .core import (
    DemoInputError,
    Hits,
    Slot,
    _cap,
    _for_each,
    _need,
    embed_texts,
    split_lines,
    truncation_notes,
)

CORPUS_COLUMNS = ("answer", "positive", "document", "passage", "text", "content", "body", "sentence")


def read_corpus(path: str | os.PathLike | None, max_bytes: int) -> tuple[list[str], str]:
    """Documents from a .txt (one per line) or .csv (the answer/text column) file, or the bundled FAQ answers."""
    if not path:
        from contrastkit.plugins.data import sample_path

        path, label = sample_path("faq_pairs.csv"), "the bundled FAQ answers (no file uploaded)"
        if not Path(path).is_file():
            raise DemoInputError("The bundled sample corpus is missing from this install; upload a .txt or .csv file.")
    else:
        label = Path(path).name
    path = Path(path)
    if path.stat().st_size > max_bytes:
        raise DemoInputError(f"{path.name} is larger than {max_bytes // 2**20} MB; upload a smaller corpus.")
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DemoInputError(f"{path.name} is not a UTF-8 text file; upload a .txt (one document per line) "
                             f"or a .csv file.") from None
    if path.suffix.lower() in (".csv", ".tsv"):
        from contrastkit.plugins.data import detect_delimiter

        # , ; tab or | whatever the extension, as in the recipes
        delimiter = detect_delimiter(path, "\t" if path.suffix.lower() == ".tsv" else ",")
        rows = list(csv.reader(io.StringIO(raw), delimiter=delimiter))
        if len(rows) < 2:
            raise DemoInputError(f"{path.name} has no data rows under its header.")
        header = [h.strip().lower() for h in rows[0]]
        col = next((header.index(c) for c in CORPUS_COLUMNS if c in header), None)
        if col is None:
            raise DemoInputError(f"{path.name} has no column the demo searches; its columns are "
                                 f"{', '.join(rows[0])}. Name the document column one of: "
                                 f"{', '.join(CORPUS_COLUMNS)}.")
        docs = [r[col].strip() for r in rows[1:] if len(r) > col and r[col].strip()]
        label += f" (column '{rows[0][col]}')"
    else:
        docs = split_lines(raw)
    docs = list(dict.fromkeys(docs))  # duplicates would fill the top-k with one answer
    if not docs:
        raise DemoInputError(f"{path.name} holds no documents; put one document per line.")
    return docs, label


_CORPUS_CACHE: dict[tuple[int, str], tuple[Any, Any]] = {}
CORPUS_CACHE_SIZE = 8
CHUNK = 64  # documents per encode call while a corpus is embedded, so progress moves


def corpus_embeddings(slot: Slot, docs: list[str], progress: Any = None) -> Any:
    """Corpus embeddings, computed once per (model, corpus) and kept for later queries.

    ``progress(done, total, what)`` is called after each chunk of documents the first time (the page shows it)."""
    import numpy as np

    key = (id(slot.model), hashlib.sha1("\n".join(docs).encode()).hexdigest())
    if key not in _CORPUS_CACHE:
        parts = []
        for start in range(0, len(docs), CHUNK):
            if progress:
                progress(start, len(docs), f"{slot.role} model: embedding the corpus")
            parts.append(embed_texts(slot, docs[start:start + CHUNK]))
        if progress:
            progress(len(docs), len(docs), f"{slot.role} model: embedding the corpus")
        if len(_CORPUS_CACHE) >= CORPUS_CACHE_SIZE:  # uploads must not grow memory without bound
            _CORPUS_CACHE.pop(next(iter(_CORPUS_CACHE)))
        # Keeping the model in the value pins its id(), so a freed model's id is never reused as a key.
        _CORPUS_CACHE[key] = (slot.model, np.concatenate(parts))
    return _CORPUS_CACHE[key][1]


def search(slots: list[Slot], query: str, corpus_path: str | None, top_k: int, max_bytes: int,
           progress: Any = None) -> Hits:
    """The top-k documents of the corpus for the query, per model, and where the base model ranked each one."""
    import numpy as np

    query = (query or "").strip()
    if not query:
        raise DemoInputError("Type a query to search the corpus with.")
    top_k = min(max(int(top_k or 5), 1), 50)
    docs, label = read_corpus(corpus_path, max_bytes)
    _need(slots, "text")
    query, cut = _cap([query])
    notes = [f"Searching {len(docs)} documents from {label}.", *cut]
    by_model: dict[str, list[tuple[str, float]] | None] = {}
    ranks: dict[str, dict[str, int]] = {}

    def score(s: Slot):
        notes.extend(truncation_notes(s, query))
        scores = corpus_embeddings(s, docs, progress) @ embed_texts(s, query)[0]
        order = np.argsort(-scores, kind="stable")
        ranks[s.role] = {docs[i]: r for r, i in enumerate(order, 1)}
        by_model[s.role] = [(docs[i], float(scores[i])) for i in order[:top_k]]
        return []

    for role in _for_each(slots, ("text",), score, notes):
        by_model.setdefault(role, None)
    return Hits(query=query[0], by_model=by_model, corpus_size=len(docs), notes=notes, ranks=ranks)
