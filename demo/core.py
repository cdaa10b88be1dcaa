"""The demo's models and the plain functions under it: load the two models, embed, score. No Gradio here.

``compare.py`` builds the four comparisons on these and ``corpus.py`` the search; both return ``Scores`` or
``Hits`` values that ``render.py`` turns into HTML. Bad input becomes ``DemoInputError`` with a friendly
sentence, which the app shows in the page instead of an error popup.

A slot holds a bi-encoder (cosine of embeddings), a sparse encoder (its own similarity: a dot product unless its
folder says otherwise), a reranker (a CrossEncoder's relevance score for each pair; search reranks the top-k of
the retriever in ``Slot.retriever``, see ``retriever.py``) or a contrastkit image encoder.
"""

from __future__ import annotations

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
    retriever: Slot | None = None  # a reranker's bi-encoder, whose top ``top_k`` search reranks
    top_k: int = 0
    retriever_note: str = ""  # where the retriever came from, for the page
    retriever_from_run: bool = False  # False: the folder named none, or it failed to load (a fallback)

    @property
    def kind(self) -> str | None:
        """"dense", "sparse" (SparseEncoder), "cross" (CrossEncoder, a reranker) or "image" (contrastkit
        ImageEncoder); None when it failed to load. Read from the class names, so no library is imported."""
        if self.model is None:
            return None
        names = {c.__name__ for c in type(self.model).__mro__}
        if "CrossEncoder" in names:
            return "cross"
        if "SparseEncoder" in names:
            return "sparse"
        return "dense" if hasattr(self.model, "encode") else "image"  # ImageEncoder: .embed(images) only

    @property
    def score_name(self) -> str:
        """What its numbers are: 'cosine similarity', 'dot product' or 'relevance score' (a reranker's)."""
        if self.kind == "cross":
            return "relevance score"
        if self.kind == "sparse":
            fn = str(getattr(self.model, "similarity_fn_name", "dot"))
            return {"dot": "dot product", "cosine": "cosine similarity"}.get(fn, f"{fn} similarity")
        return "cosine similarity"

    @property
    def modalities(self) -> tuple[str, ...]:
        """What it embeds (a reranker: what it scores): ('text',), ('image',) or ('text', 'image'); () when it
        failed to load."""
        if self.model is None:
            return ()
        if self.kind == "image":
            return ("image",)
        supports = getattr(self.model, "supports", None)  # sentence-transformers < 6 embeds text only
        return tuple(m for m in ("text", "image") if (supports(m) if supports else m == "text"))

    def embeds(self, *modalities: str) -> bool:
        """True when the model embeds every one of ``modalities``."""
        return all(m in self.modalities for m in modalities)

    def describe(self) -> str:
        """'text', 'image' or 'image–text' (what the page calls the model)."""
        return {("text",): "text", ("image",): "image", ("text", "image"): "image–text"}.get(self.modalities, "?")

    def describe_kind(self) -> str:
        """'text model', 'sparse text model', 'text reranker', 'image model', ... (the page's status line)."""
        return {"cross": f"{self.describe()} reranker", "sparse": f"sparse {self.describe()} model"}.get(
            self.kind or "", f"{self.describe()} model")


def same_scale(slots: list[Slot]) -> bool:
    """True when two loaded models' scores can be subtracted: the same kind of number (and, for rerankers, the
    same activation), so a 'fine-tuned − base' difference means something."""
    loaded = [s for s in slots if s.model is not None]
    if len(loaded) != 2 or loaded[0].score_name != loaded[1].score_name:
        return False
    activation = [type(getattr(s.model, "activation_fn", None)).__name__ for s in loaded]
    return activation[0] == activation[1]


@dataclass
class Scores:
    """Per-model similarity scores for rows of a comparison, plus notes to show above them."""

    rows: list[str]
    by_model: dict[str, list[float] | None]  # role -> scores per row, None when the model cannot embed this
    notes: list[str] = field(default_factory=list)
    images: list[Any] = field(default_factory=list)  # the uploads as the page shows them (``display_image``)


@dataclass
class Hits:
    """Per-model search results: role -> [(document, score), ...] best first."""

    query: str
    by_model: dict[str, list[tuple[str, float]] | None]
    corpus_size: int
    notes: list[str] = field(default_factory=list)
    ranks: dict[str, dict[str, int]] = field(default_factory=dict)  # role -> {document: rank over the corpus}
    # reranker role -> {document: its retriever's rank} for the candidates the reranker rescored
    retrieved: dict[str, dict[str, int]] = field(default_factory=dict)


# --------------------------------------------------------------------------- loading
_LOADED: dict[tuple[str, bool, tuple], Slot] = {}
# Files whose size and times change whenever a run writes a model: a few stat calls tell a folder retrained in
# place (or deleted) from the one that was loaded.
MODEL_FILES = ("modules.json", "config.json", "config_sentence_transformers.json", "model.safetensors",
               "model.safetensors.index.json", "tokenizer.json")


def model_key(name: str, trust_remote_code: bool = False) -> tuple[str, bool, tuple]:
    """One key per model however it is named (the packaged MiniLM's id and its folder, or two spellings of a path),
    and per state of a folder's model files, so a folder retrained into another model or deleted is loaded anew."""
    from contrastkit.plugins.st.models import resolve_model_name

    resolved = resolve_model_name(name)[0]
    local = Path(resolved).expanduser()
    if not local.exists():
        return resolved, trust_remote_code, ()
    local = local.resolve()
    state = []
    for file in MODEL_FILES:
        try:
            st = (local / file).stat()
        except OSError:
            continue
        state.append((file, st.st_size, st.st_mtime_ns, st.st_ctime_ns))  # ctime: a copied-in file is new too
    return str(local), trust_remote_code, tuple(state)


def remember(cache: dict, key: tuple, value: Any) -> None:
    """``cache[key] = value``, dropping what was kept for an older state of the same model (a retrained folder)."""
    for old in [k for k in cache if k[:2] == key[:2]]:
        del cache[old]
    cache[key] = value


def unsupported(model: Any) -> str | None:
    """Why the demo cannot compare ``model``, or None: a CrossEncoder with several output labels (an NLI
    classifier, say) gives no single relevance score to rank by."""
    labels = getattr(model, "num_labels", 1) if "CrossEncoder" in {c.__name__ for c in type(model).__mro__} else 1
    if labels == 1:
        return None
    return (f"it is a CrossEncoder with {labels} output labels (a classifier, e.g. NLI); the demo compares rerankers "
            f"that give one relevance score per pair")


def load_slot(role: str, name: str, trust_remote_code: bool = False) -> Slot:
    """Load one model through ``hub.load``; a failure is kept on the slot (shown in the page), never raised.
    A reranker also gets the retriever its run used (``retriever.attach``)."""
    key = model_key(name, trust_remote_code)
    if key not in _LOADED:  # the module-level demo and launch() share loaded models
        from contrastkit.plugins import hub

        try:
            model = hub.load(name, trust_remote_code=trust_remote_code)
        except Exception as exc:  # noqa: BLE001 - the app must keep running whatever the model does
            from .retriever import unfinished_run

            first = unfinished_run(name) or (str(exc).strip().splitlines() or [type(exc).__name__])[0][:400]
            return Slot(role, name, error=first)
        refused = unsupported(model)
        if refused:
            return Slot(role, name, error=refused)
        _fit_seq_length(model)
        remember(_LOADED, key, Slot(role, name, model=model))
    slot = Slot(role, name, model=_LOADED[key].model)
    if slot.kind == "cross":
        from .retriever import attach

        attach(slot, trust_remote_code)
    return slot


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


def pair_token_counts(slot: Slot, pairs: list[tuple[str, str]]) -> list[int] | None:
    """How many tokens each (A, B) pair is as one reranker input (one tokenizer call), or None when it cannot tell."""
    tokenizer = getattr(slot.model, "tokenizer", None)
    if not pairs or tokenizer is None or not callable(tokenizer):
        return None
    firsts, seconds = (list(x) for x in zip(*pairs))
    return [len(ids) for ids in tokenizer(firsts, seconds, truncation=False, verbose=False)["input_ids"]]


def pair_truncation_notes(slot: Slot, texts: list[str], counts: list[int] | None = None) -> list[str]:
    """``truncation_notes`` for a reranker: ``texts`` is [A, B1, B2, ...], and each (A, Bi) pair is one input."""
    limit = getattr(slot.model, "max_seq_length", None)
    pairs = [(texts[0], t) for t in texts[1:]]
    counts = counts if counts is not None else (pair_token_counts(slot, pairs) if limit else None)
    if not limit or counts is None:
        return []
    return [f"Text A with text {i + 1} is {n} tokens long; the {slot.role} reranker reads only the first {limit} "
            f"of a pair, so the rest was truncated." for i, n in enumerate(counts, 1) if n > limit]


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


def embed_texts(slot: Slot, texts: list[str], purpose: str | None = None) -> Any:
    """Text embeddings, shape (n, d): L2-normalised numpy rows for a bi-encoder; for a sparse encoder its own
    float32 sparse torch rows (a SPLADE row spans the vocabulary, so a corpus stays sparse). ``purpose``
    ("query" | "document") picks the model's query or document path (its prompts, a sparse encoder's own
    path), as its retrieval evaluation does."""
    encode = {"query": getattr(slot.model, "encode_query", None),
              "document": getattr(slot.model, "encode_document", None)}.get(purpose) or slot.model.encode
    if slot.kind == "sparse":
        with _precision(slot):
            emb = encode(texts, convert_to_tensor=True, convert_to_sparse_tensor=True, save_to_cpu=True,
                         show_progress_bar=False)
        return emb.float()
    with _precision(slot):
        return encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)


def take_rows(emb: Any, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of ``embed_texts``' result (sparse torch rows cannot be sliced)."""
    if getattr(emb, "is_sparse", False):
        import torch

        return emb.index_select(0, torch.arange(start, stop))
    return emb[start:stop]


def similarities(slot: Slot, a: Any, b: Any) -> Any:
    """The (len(a), len(b)) numpy matrix of scores between two sets of ``embed_texts`` rows: the cosine for a
    bi-encoder (the rows are unit length), the model's own similarity for a sparse encoder (a dot product unless
    its config says otherwise), as its evaluation scored them."""
    if slot.kind == "sparse":
        return slot.model.similarity(a, b).float().cpu().numpy()
    return a @ b.T


def relevance(slot: Slot, pairs: list[tuple[str, str]]) -> Any:
    """A reranker's relevance score for each (query, document) pair: ``CrossEncoder.predict``, its activation
    (a sigmoid for one label) included."""
    import numpy as np

    if not pairs:
        return np.zeros(0, dtype=np.float32)
    with _precision(slot):
        return np.asarray(slot.model.predict(pairs, convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)


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
    kinds = list(dict.fromkeys(s.describe() for s in loaded))
    if len(kinds) == 1:
        roles = ", ".join(s.role for s in loaded)
        have = f"the loaded model{'s' * (len(loaded) > 1)} ({roles}) embed{'s' * (len(loaded) == 1)} {kinds[0]} only"
    else:  # e.g. a text model beside an image model
        have = " and ".join(f"the {s.role} model embeds {s.describe()} only" for s in loaded)
    fix = {("text",): "a text or image–text model", ("image",): "an image or image–text model"}.get(
        modalities, "an image–text model")
    return f"This needs a model that embeds {what}; {have}. Start the demo with {fix} (model=PATH) to use this tab."
