"""Search for the demo: read a corpus (uploaded .txt/.csv or the bundled FAQ answers), embed it once per
model with progress, and rank it for a query per model, keeping where each model ranked every document.

A sparse model ranks like a bi-encoder, with its own similarity. A reranker rescores its retriever's top-k (the
retriever embeds the corpus), and the result keeps the retriever's rank of every candidate it moved."""

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
    relevance,
    similarities,
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
        try:  # strict: a quote that never closes is an error, not one document swallowing the rest of the file
            rows = list(csv.reader(io.StringIO(raw), delimiter=delimiter, strict=True))
        except csv.Error as exc:
            raise DemoInputError(f"{path.name} is not valid CSV ({exc}); check its quotes, e.g. a \" that never "
                                 f"closes.") from None
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
    key = (id(slot.model), hashlib.sha1("\n".join(docs).encode()).hexdigest())
    if key not in _CORPUS_CACHE:
        parts = []
        for start in range(0, len(docs), CHUNK):
            if progress:
                progress(start, len(docs), f"{slot.role} model: embedding the corpus")
            parts.append(embed_texts(slot, docs[start:start + CHUNK], "document"))
        if progress:
            progress(len(docs), len(docs), f"{slot.role} model: embedding the corpus")
        if len(_CORPUS_CACHE) >= CORPUS_CACHE_SIZE:  # uploads must not grow memory without bound
            _CORPUS_CACHE.pop(next(iter(_CORPUS_CACHE)))
        # Keeping the model in the value pins its id(), so a freed model's id is never reused as a key.
        _CORPUS_CACHE[key] = (slot.model, _concatenate(parts))
    return _CORPUS_CACHE[key][1]


def _concatenate(parts: list[Any]) -> Any:
    if getattr(parts[0], "is_sparse", False):  # a sparse encoder's rows stay sparse (SPLADE: vocabulary-wide)
        import torch

        return torch.cat(parts).coalesce()
    import numpy as np

    return np.concatenate(parts)


def _rank(slot: Slot, query: list[str], docs: list[str], progress: Any) -> Any:
    """Document indices best first, and the scores, by a bi-encoder or sparse encoder."""
    import numpy as np

    scores = similarities(slot, embed_texts(slot, query, "query"), corpus_embeddings(slot, docs, progress))[0]
    return np.argsort(-scores, kind="stable"), scores


def search(slots: list[Slot], query: str, corpus_path: str | None, top_k: int, max_bytes: int,
           progress: Any = None) -> Hits:
    """The top-k documents of the corpus for the query, per model, and where the base model ranked each one.
    A reranker rescores the top ``max(slot.top_k, top_k)`` of its retriever."""
    import dataclasses

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
    retrieved: dict[str, dict[str, int]] = {}

    def score(s: Slot):
        if s.kind != "cross":
            notes.extend(truncation_notes(s, query))
            order, scores = _rank(s, query, docs, progress)
            ranks[s.role] = {docs[i]: r for r, i in enumerate(order, 1)}
            by_model[s.role] = [(docs[i], float(scores[i])) for i in order[:top_k]]
            return []
        if s.retriever is None:
            notes.append(f"The {s.role} reranker has no retriever to take candidates from ({s.retriever_note}).")
            return []
        retriever = dataclasses.replace(s.retriever, bf16=s.bf16)
        notes.extend(truncation_notes(retriever, query) + truncation_notes(s, query))
        order, _ = _rank(retriever, query, docs, progress)
        candidates = order[:max(s.top_k, top_k)]
        scores = relevance(s, [(query[0], docs[i]) for i in candidates])
        reranked = candidates[np.argsort(-scores, kind="stable")]
        retrieved[s.role] = {docs[i]: r for r, i in enumerate(candidates, 1)}
        ranks[s.role] = {docs[i]: r for r, i in enumerate(reranked, 1)}
        by_score = dict(zip(candidates.tolist(), scores.tolist()))
        by_model[s.role] = [(docs[i], float(by_score[i])) for i in reranked[:top_k]]
        notes.append(f"The {s.role} reranker rescored the top {len(candidates)} of {len(docs)} documents that its "
                     f"retriever {s.retriever.name} found; the badge beside each hit shows how far the reranker "
                     f"moved it.")
        if not s.retriever_from_run:
            notes.append(f"The {s.role} reranker: {s.retriever_note}.")
        return []

    for role in _for_each(slots, ("text",), score, notes):
        by_model.setdefault(role, None)
    return Hits(query=query[0], by_model=by_model, corpus_size=len(docs), notes=notes, ranks=ranks,
                retrieved=retrieved)
