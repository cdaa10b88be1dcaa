"""Search for the demo: read a corpus (uploaded .txt/.csv or the bundled FAQ answers), embed it once per
model with progress, and rank it for a query per model, keeping where each model ranked every document.

A sparse model ranks like a bi-encoder, with its own similarity. A reranker rescores its retriever's top-k (the
retriever embeds the corpus), and the result keeps the retriever's rank of every candidate it moved."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
from pathlib import Path
from typing import Any

from .core import (
    MAX_CHARS,
    DemoInputError,
    Hits,
    Slot,
    _cap,
    _for_each,
    _need,
    embed_texts,
    pair_token_counts,
    relevance,
    similarities,
    token_counts,
    truncation_notes,
)
from .inputs import split_lines

CORPUS_COLUMNS = ("answer", "positive", "document", "passage", "text", "content", "body", "sentence")
CORPUS_FORMATS = ".txt (one document per line), .csv, .tsv or .jsonl"
#: data files the recipes (or an office program) write that are not lines of text: refused by name, never searched
#: line by line as if they were
UNREAD = (".json", ".parquet", ".arrow", ".xlsx", ".xls", ".ods", ".docx", ".pdf", ".zip", ".gz")


def read_corpus(path: str | os.PathLike | None, max_bytes: int) -> tuple[list[str], str]:
    """Documents from a .txt (one per line) or .csv (the answer/text column) file, or the bundled FAQ answers."""
    docs, _, label, _ = _read_corpus(path, max_bytes)
    return docs, label


def _read_corpus(path: str | os.PathLike | None, max_bytes: int) -> tuple[list[str], list[int], str, list[str]]:
    """``read_corpus``'s documents, each one's line in the file, the label, and a note on documents cut to
    ``MAX_CHARS`` characters (tokenising megabyte lines would stall the shared CPU)."""
    if not path:
        from contrastkit.plugins.data import sample_path

        path, label, details = sample_path("faq_pairs.csv"), "the bundled FAQ answers", ["no file uploaded"]
        if not Path(path).is_file():
            raise DemoInputError("The bundled sample corpus is missing from this install; upload a .txt or .csv file.")
    else:
        label, details = Path(path).name, []
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in UNREAD:
        raise DemoInputError(f"{path.name} is a {suffix} file, which the search does not read; upload a corpus as "
                             f"{CORPUS_FORMATS}.")
    if path.stat().st_size > max_bytes:
        raise DemoInputError(f"{path.name} is larger than {max_bytes // 2**20} MB; upload a smaller corpus.")
    raw = _decode(path)
    if suffix in (".csv", ".tsv"):
        found, column = _csv_documents(path, raw)
        details.insert(0, f"column '{column}'")
    elif suffix == ".jsonl":
        found, column = _jsonl_documents(path, raw)
        details.insert(0, f"field '{column}'")
    else:
        found = [(line, n) for n, text in enumerate(raw.splitlines(), 1) for line in split_lines(text)]
    cut = [n for doc, n in found if len(doc) > MAX_CHARS]
    lines: dict[str, int] = {}  # document -> its first line: duplicates would fill the top-k with one answer
    for doc, n in found:
        lines.setdefault(doc[:MAX_CHARS], n)
    docs = list(lines)
    if not docs:
        raise DemoInputError(f"{path.name} holds no documents; put one document per line.")
    notes = [(f"{_documents(len(cut))} longer than {MAX_CHARS:,} characters, so only the first {MAX_CHARS:,} of "
              f"{'each' if len(cut) > 1 else 'it'} are used ({_at_lines(cut)}).")] if cut else []
    label += f" ({'; '.join(details)})" if details else ""  # one parenthesis: "(column 'answer'; no file uploaded)"
    return docs, [lines[d] for d in docs], label, notes


def _decode(path: Path) -> str:
    """The file's text; a file that is not UTF-8 is refused with what it is (UTF-16 from Excel's 'Unicode Text',
    or the first byte that is not UTF-8) and how to re-save it, as the recipes refuse it."""
    from contrastkit.plugins.data import RESAVE_UTF8, not_utf8

    data = path.read_bytes()
    why = not_utf8(data)
    if why:
        raise DemoInputError(f"{path.name} is not UTF-8 text ({why}); {RESAVE_UTF8} and upload it again.")
    return data.decode("utf-8-sig")


def _pick(path: Path, names: list[str], what: str) -> int:
    """The index of the first of ``CORPUS_COLUMNS`` among ``names`` (any case), or a DemoInputError naming both."""
    lowered = [n.strip().lower() for n in names]
    col = next((lowered.index(c) for c in CORPUS_COLUMNS if c in lowered), None)
    if col is None:
        raise DemoInputError(f"{path.name} has no {what} the demo searches; its {what}s are {', '.join(names)}. "
                             f"Name the document {what} one of: {', '.join(CORPUS_COLUMNS)}.")
    return col


def _csv_documents(path: Path, raw: str) -> tuple[list[tuple[str, int]], str]:
    """(document, line) of each row of the document column, and that column's name."""
    from contrastkit.plugins.data import detect_delimiter

    # , ; tab or | whatever the extension, as in the recipes
    delimiter = detect_delimiter(path, "\t" if path.suffix.lower() == ".tsv" else ",")
    # a field may be the whole file (a long passage, cut to MAX_CHARS below), not only csv's default 128 KiB
    csv.field_size_limit(max(csv.field_size_limit(), len(raw) + 1))
    reader = csv.reader(io.StringIO(raw), delimiter=delimiter, strict=True)
    try:  # strict: a quote that never closes is an error, not one document swallowing the rest of the file
        rows = [(reader.line_num, r) for r in reader]  # the line each row ends on
    except csv.Error as exc:
        raise DemoInputError(f"{path.name} is not valid CSV ({exc}); check its quotes, e.g. a \" that never "
                             f"closes.") from None
    if len(rows) < 2:
        raise DemoInputError(f"{path.name} has no data rows under its header.")
    col = _pick(path, rows[0][1], "column")
    # a row starts on the line after the one the row before it ended on (a quoted field may span lines)
    return [(r[col].strip(), end + 1) for (end, _), (_, r) in itertools.pairwise(rows)
            if len(r) > col and r[col].strip()], rows[0][1][col]


def _jsonl_documents(path: Path, raw: str) -> tuple[list[tuple[str, int]], str]:
    """(document, line) of each JSON Lines record's document field (the recipes read the same files), and the
    field's name."""
    records = []
    for n, line in enumerate(raw.splitlines(), 1):
        if line.strip():
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                raise DemoInputError(f"{path.name} line {n} is not a JSON object; fix or remove that line.")
            records.append((n, record))
    names = list(dict.fromkeys(k for _, r in records for k in r))
    name = names[_pick(path, names, "field")]
    return [(r[name].strip(), n) for n, r in records if isinstance(r.get(name), str) and r[name].strip()], name


def _documents(n: int) -> str:
    return f"{n} document{'s are' if n > 1 else ' is'}"


def _at_lines(numbers: list[int]) -> str:
    """'line 4', 'lines 4 and 9' or 'first at lines 4 and 9': where the first one or two of them are."""
    shown = " and ".join(str(n) for n in numbers[:2])
    return f"{'first at ' if len(numbers) > 2 else ''}line{'s' if len(numbers) > 1 else ''} {shown}"


_CORPUS_CACHE: dict[tuple[int, str], tuple[Any, Any, list[int]]] = {}
CORPUS_CACHE_SIZE = 8
CHUNK = 64  # documents per encode call while a corpus is embedded, so progress moves


def corpus_embeddings(slot: Slot, docs: list[str], progress: Any = None) -> Any:
    """Corpus embeddings, computed once per (model, corpus) and kept for later queries.

    ``progress(done, total, what)`` is called after each chunk of documents the first time (the page shows it)."""
    return _embedded(slot, docs, progress)[1]


def _embedded(slot: Slot, docs: list[str], progress: Any = None) -> tuple[Any, Any, list[int]]:
    """The cache entry of (model, corpus): the model, the embeddings and the indices of the documents longer than
    the model reads (counted while embedding, so a query does not tokenise the corpus again)."""
    key = (id(slot.model), hashlib.sha1("\n".join(docs).encode()).hexdigest())
    if key not in _CORPUS_CACHE:
        limit = getattr(slot.model, "max_seq_length", None)
        parts, long = [], []
        for start in range(0, len(docs), CHUNK):
            if progress:
                progress(start, len(docs), f"{slot.role} model: embedding the corpus")
            chunk = docs[start:start + CHUNK]
            parts.append(embed_texts(slot, chunk, "document"))
            long += [start + i for i, n in enumerate((token_counts(slot, chunk) if limit else None) or [])
                     if n > limit]
        if progress:
            progress(len(docs), len(docs), f"{slot.role} model: embedding the corpus")
        if len(_CORPUS_CACHE) >= CORPUS_CACHE_SIZE:  # uploads must not grow memory without bound
            _CORPUS_CACHE.pop(next(iter(_CORPUS_CACHE)))
        # Keeping the model in the value pins its id(), so a freed model's id is never reused as a key.
        _CORPUS_CACHE[key] = (slot.model, _concatenate(parts), long)
    return _CORPUS_CACHE[key]


def long_documents_note(slot: Slot, long: list[int], lines: list[int], what: str = "model") -> list[str]:
    """One note for the documents (indices ``long`` into the corpus) longer than the model reads: how many, and
    the lines of the first one or two (the model silently keeps only their first tokens)."""
    if not long:
        return []
    return [(f"{_documents(len(long))} longer than the {slot.role} {what} reads ({slot.model.max_seq_length} "
             f"tokens{' with the query' if what == 'reranker' else ''}), so only {'their' if len(long) > 1 else 'its'}"
             f" beginning counts ({_at_lines([lines[i] for i in long])}).")]


def _concatenate(parts: list[Any]) -> Any:
    if getattr(parts[0], "is_sparse", False):  # a sparse encoder's rows stay sparse (SPLADE: vocabulary-wide)
        import torch

        return torch.cat(parts).coalesce()
    import numpy as np

    return np.concatenate(parts)


def _rank(slot: Slot, query: list[str], docs: list[str], progress: Any) -> Any:
    """Document indices best first, the scores, and the documents longer than the model reads, by a bi-encoder or
    sparse encoder."""
    import numpy as np

    _, emb, long = _embedded(slot, docs, progress)
    scores = similarities(slot, embed_texts(slot, query, "query"), emb)[0]
    return np.argsort(-scores, kind="stable"), scores, long


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
    docs, lines, label, cut_docs = _read_corpus(corpus_path, max_bytes)
    _need(slots, "text")
    query, cut = _cap([query])
    notes = [f"Searching {len(docs)} documents from {label}.", *cut_docs, *cut]
    by_model: dict[str, list[tuple[str, float]] | None] = {}
    ranks: dict[str, dict[str, int]] = {}
    retrieved: dict[str, dict[str, int]] = {}

    def score(s: Slot):
        if s.kind != "cross":
            notes.extend(truncation_notes(s, query))
            order, scores, long = _rank(s, query, docs, progress)
            notes.extend(long_documents_note(s, long, lines))
            ranks[s.role] = {docs[i]: r for r, i in enumerate(order, 1)}
            by_model[s.role] = [(docs[i], float(scores[i])) for i in order[:top_k]]
            return []
        if s.retriever is None:
            notes.append(f"The {s.role} reranker has no retriever to take candidates from ({s.retriever_note}).")
            return []
        retriever = dataclasses.replace(s.retriever, bf16=s.bf16)
        notes.extend(truncation_notes(retriever, query) + truncation_notes(s, query))
        order, _, long = _rank(retriever, query, docs, progress)
        candidates = order[:max(s.top_k, top_k)]
        pairs = [(query[0], docs[i]) for i in candidates]
        limit, counts = getattr(s.model, "max_seq_length", None), pair_token_counts(s, pairs)
        long_pairs = sorted(int(i) for i, n in zip(candidates, counts or []) if limit and n > limit)
        notes.extend(long_documents_note(retriever, long, lines) + long_documents_note(s, long_pairs, lines, "reranker"))
        scores = relevance(s, pairs)
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
