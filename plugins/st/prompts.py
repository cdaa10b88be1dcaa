"""Prompts: the prefixes that E5-, BGE- or nomic-style models read before queries and documents.

One setting reaches every place a text is embedded. Training reads the training arguments' ``prompts`` (column ->
prompt); mining, the evaluators and users of the saved model read the model's own ``prompts`` through
``encode_query``/``encode_document``. A base model that ships prompts would otherwise be trained without them and
evaluated and served with them."""

from __future__ import annotations

from typing import Any

from ..errors import UserError, did_you_mean

#: Formats with a query side (the first column) and a document side (the rest): pairs, triplets, mined negatives.
ASYMMETRIC = ("pair", "triplet")
#: The names ``encode_document`` looks up, in its order; the first two are what users write.
DOCUMENT_NAMES = ("document", "passage", "corpus")
KEYS = ("query", *DOCUMENT_NAMES)
HOW = "prompts=auto, none, one prompt for every text, or {query: 'query: ', document: 'passage: '}"


def normal(setting: Any) -> Any:
    """``auto`` and ``none`` in any case; None, false, off and "" (YAML's spellings of nothing) are ``none``."""
    if setting is None or setting is False or (isinstance(setting, str) and setting.strip().lower() in ("", "none")):
        return "none"
    if isinstance(setting, str) and setting.strip().lower() == "auto":
        return "auto"
    return setting


def check(setting: Any) -> None:
    """``auto``, ``none``, one string, or a mapping of ``query``/``document`` (or ``passage``) to strings."""
    setting = normal(setting)
    if isinstance(setting, str):
        if setting.lstrip().startswith("{"):  # a mapping YAML could not read: the prompts' colons, unquoted
            raise UserError(f"config field 'prompts' got {setting!r}, which is not a valid mapping; quote each "
                            f"prompt, e.g. prompts={{query: 'query: ', document: 'passage: '}}")
        return
    if not isinstance(setting, dict) or not setting:
        raise UserError(f"config field 'prompts' got {setting!r}; use {HOW}")
    for key, value in setting.items():
        if key not in KEYS:
            raise UserError(f"config field 'prompts' has unknown key '{key}'; use query and document"
                            f"{did_you_mean(str(key), KEYS)}")
        if not isinstance(value, str):
            raise UserError(f"config field 'prompts' {key} must be text, got {value!r}; quote it, e.g. "
                            f"{{{key}: '{key}: '}}")
    if len([k for k in setting if k in DOCUMENT_NAMES]) > 1:
        raise UserError(f"config field 'prompts' gives the document prompt twice "
                        f"({', '.join(k for k in setting if k in DOCUMENT_NAMES)}); keep one")


def check_fits(setting: Any, kind: str) -> None:
    """Query and document prompts need data with a query side; checked with the data, before any model loads."""
    if isinstance(normal(setting), dict) and kind not in ASYMMETRIC:
        raise UserError(f"config field 'prompts' gives query and document prompts, but {kind} data has no query "
                        f"side; give one prompt for every text (prompts='...') or none")


def own(model: Any) -> tuple[str, str]:
    """The model's own (query, document) prompts; "" where it has none."""
    saved = getattr(model, "prompts", None) or {}
    return saved.get("query") or "", next((saved[n] for n in DOCUMENT_NAMES if saved.get(n)), "")


def apply(setting: Any, model: Any, kind: str, log: Any = print) -> tuple[str, str] | None:
    """Set ``model.prompts`` for this run and return the (query, document) prompts training reads, or None when
    it reads none. ``kind`` is the data format: one prompt (a string) fits any format, a query and a document
    prompt only data with a query side."""
    base, setting = own(model), normal(setting)
    if setting == "auto":
        if not any(base):
            return None
        if kind not in ASYMMETRIC:
            log(f"prompts: the base model's query and document prompts ({base[0]!r}, {base[1]!r}) are not used: "
                f"{kind} data has no query side; prompts='...' puts one prompt before every text")
            return None
        # sentence-transformers 6.3 loads {query, passage} prompts with an empty "document" one, which
        # encode_document reads first: set it, so evaluation and the saved model use the prompt training used
        _set(model, *base)
        log(f"prompts: the base model's own, query {base[0]!r} and document {base[1]!r} (prompts=none trains "
            f"without them)")
        return base
    if setting == "none":
        if any(base):
            log("prompts: none; the saved model encodes queries and documents without the base model's prompts")
        _set(model, "", "")
        return None
    if isinstance(setting, str):
        _set(model, setting, setting)
        model.default_prompt_name = "query"  # so encode() reads it too, as every text trained with it
        log(f"prompts: {setting!r} before every text, in training, evaluation and the saved model")
        return setting, setting
    check_fits(setting, kind)
    query = setting.get("query", "")
    document = next((setting[k] for k in DOCUMENT_NAMES if k in setting), "")
    _set(model, query, document)
    log(f"prompts: query {query!r}, document {document!r}, in training, evaluation and the saved model")
    return query, document


def for_columns(prompts: tuple[str, str] | None, text_columns: list[str] | Any) -> dict[str, str] | None:
    """The training arguments' ``prompts``: the query prompt for the first text column, the document prompt for
    the rest (for one prompt both are the same). ``text_columns`` may be the training dataset itself: its text
    columns as the loss reads them (SimCSE and TSDAE rename the one text column)."""
    if prompts is None:
        return None
    if not isinstance(text_columns, list):
        text_columns = [c for c, f in text_columns.features.items()
                        if getattr(f, "dtype", None) in ("string", "large_string")]
    query, document = prompts
    return {c: query if i == 0 else document for i, c in enumerate(text_columns) if (query if i == 0 else document)}


def _set(model: Any, query: str, document: str) -> None:
    """The model's query prompt and every document name it knows (``encode_document`` reads the first it finds)."""
    model.prompts = {**(model.prompts or {}), "query": query, "document": document}
    for name in DOCUMENT_NAMES[1:]:
        if name in model.prompts:
            model.prompts[name] = document
    if model.default_prompt_name is not None and not model.prompts.get(model.default_prompt_name):
        model.default_prompt_name = None
