"""Static embeddings: a ``StaticEmbedding`` distilled from a dense model with model2vec, trained like any text
model, and its encoding speed and quality beside the dense model it came from.

The text recipe takes this path for ``model=static``. A static model looks each token up in a table and averages:
no attention, so it encodes orders of magnitude faster on a CPU and loses some quality (docs/text.md has figures).
model2vec and skeletoken come with ``contrastkit[static]``; nothing here imports them until a distillation runs.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any

from ..config import default_of
from ..device import on_gpu
from ..errors import UserError
from ..hub import offline_if_unreachable
from .models import DEFAULT_TEXT_MODEL, resolve_model_name

#: the ``model=`` value that asks for static embeddings
STATIC = "static"
#: Defaults for static embeddings (docs/text.md says how they were chosen). sentence-transformers' static
#: training uses large batches and a high rate: a token table has no activations to store, and each step updates
#: only the rows its batch's tokens touch, so it needs far larger steps than a transformer.
LEARNING_RATE, BATCH_SIZE = 3e-2, 128
#: PCA dimensions of the distilled table (sentence-transformers' and model2vec's default)
DIMS = 256
#: at most this many texts time the encoding speed: enough for a steady rate, a few seconds for the dense model
SPEED_TEXTS = 1000
#: losses that cannot train a static model: SimCSE's noise is dropout, which a lookup table lacks (both copies of a
#: text embed the same); TSDAE needs a transformer decoder tied to the encoder; GIST's guide must share the trained
#: model's transformers tokenizer, and a static model's is a bare ``tokenizers`` one (it failed after distilling)
_GIST = "its guide model needs the trained model to have a transformers tokenizer, and a static model has none"
#: GradCache splits each batch's token tensors into mini-batches; a static model's inputs are one flat run of token
#: ids with offsets, which sentence-transformers refuses to split (a ValueError at the first step)
_CACHED = "GradCache cannot split a static model's inputs into mini-batches (and it has no activations to save)"
NO_STATIC_LOSSES = {"simcse": "its noise is dropout, and a static model has none",
                    "tsdae": "it decodes with a transformer tied to the encoder, and a static model has none",
                    "gist": _GIST, "cached_gist": _GIST, "cached_mnrl": _CACHED}


def wanted(model: str | None) -> bool:
    """Whether ``model=`` asks for static embeddings."""
    return str(model).strip().lower() == STATIC


def is_static_model(model: Any) -> bool:
    """Whether a SentenceTransformer is a static one (its first module a ``StaticEmbedding``)."""
    try:
        return type(model[0]).__name__ == "StaticEmbedding"
    except (TypeError, IndexError, KeyError):
        return False


def check_options(cfg: Any) -> None:
    """Options that cannot apply to static embeddings (or need them) fail before any work, with the fix: a length
    cut (the model reads whole texts), losses it cannot learn from or run, GradCache's ``mini_batch_size`` (a
    ValueError from sentence-transformers at the first step), ``length_batching`` (nothing is padded) and
    bf16 on a CPU (nothing to autocast)."""
    static = wanted(cfg.model)
    for name in ("distill_from", "static_dims"):
        if getattr(cfg, name) is not None and not static:
            raise UserError(f"config field '{name}' applies only to static embeddings; add model=static or drop "
                            f"{name}=")
    if not static:
        return
    for name in ("max_seq_length", "max_train_tokens"):  # given, when not the field's default
        value = getattr(cfg, name, None)
        if value is not None and value != default_of(cfg, name):
            raise UserError(f"{name}={value} does not apply to model=static: static embeddings read whole texts "
                            f"at no extra cost; drop {name}")
    from .losses import loss_key

    loss = loss_key(cfg.loss)
    if loss in NO_STATIC_LOSSES:
        raise UserError(f"loss={loss} cannot train model=static: {NO_STATIC_LOSSES[loss]}; use pairs with "
                        f"loss=auto, or a transformer model=")
    if getattr(cfg, "mini_batch_size", None) is not None:
        raise UserError(f"mini_batch_size={cfg.mini_batch_size} does not apply to model=static: {_CACHED}; a large "
                        f"batch_size fits as it is: drop mini_batch_size")
    if getattr(cfg, "precision", "auto") == "bf16" and not on_gpu():
        raise UserError("precision=bf16 changes nothing for model=static on a CPU: its lookup table is not autocast, and "
                        "the trained weights came out bit-identical to fp32; "
                        "drop precision")
    if getattr(cfg, "length_batching", False):
        raise UserError("length_batching=true does not apply to model=static: a static model pads nothing (it "
                        "averages each text's own tokens), so grouping texts by length saves no time; drop "
                        "length_batching")


def check_format(fmt: Any, columns: list[str]) -> None:
    """Single texts would train with SimCSE, which a static model cannot learn from: say so before distilling."""
    if fmt.kind == "single":
        raise UserError(f"model=static cannot learn from single texts (columns: {', '.join(columns)}): their loss, "
                        f"SimCSE, {NO_STATIC_LOSSES['simcse']}; give anchor/positive pairs or use a transformer "
                        f"model=")


@contextlib.contextmanager
def _quiet_leftover_warning():
    # sentence-transformers passes model2vec arguments that model2vec 0.10 dropped and logs a warning for them on
    # every distillation; it changes nothing here, so it is not shown.
    logger = logging.getLogger("sentence_transformers.sentence_transformer.modules.static_embedding")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def distil(name: str | None, dims: int | None = None, trust_remote_code: bool = False, log: Any = print) -> Any:
    """A SentenceTransformer whose only module is a ``StaticEmbedding`` distilled from the dense model ``name`` (a
    folder or Hub id; the default model from its packaged copy) with model2vec, ``dims`` wide after PCA."""
    name = name or DEFAULT_TEXT_MODEL
    dims = dims or DIMS
    path, hub_id = resolve_model_name(name)
    local = Path(path).expanduser()
    if path.startswith((".", "/", "~")) and not local.exists():
        raise UserError(f"distill_from folder '{name}' does not exist; pass distill_from= a folder or a Hub id")
    try:
        import model2vec.distill  # noqa: F401  (imports skeletoken: a missing one fails here, by name)
    except ImportError as exc:
        raise UserError(f"model=static needs model2vec and skeletoken ({exc.name or exc} is missing); install "
                        f"them with: pip install 'contrastkit[static]'") from None
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding

    started = time.perf_counter()
    try:
        hub = contextlib.nullcontext() if local.exists() else offline_if_unreachable(f"distill_from '{path}'")
        with _quiet_leftover_warning(), hub:
            embedding = StaticEmbedding.from_distillation(str(local) if local.exists() else path, pca_dims=dims,
                                                          trust_remote_code=trust_remote_code)
    except Exception as exc:  # noqa: BLE001
        text = f"{type(exc).__name__}: {exc}"
        if any(s in text for s in ("offline", "connect", "Connection", "resolve", "couldn't", "Max retries")):
            raise UserError(f"distill_from '{name}' is not a local folder and cannot be downloaded (offline or "
                            f"unreachable Hub); pass distill_from= a local folder") from None
        raise UserError(f"distill_from '{name}' could not be distilled into static embeddings: "
                        f"{text.splitlines()[0][:200]}") from None
    # model2vec keeps the dense tokenizer's truncation (512 tokens), so words past it were dropped silently while
    # the model reports max_seq_length=inf, its card "inf tokens", and the recipe refuses a length cut
    embedding.tokenizer.no_truncation()
    model = SentenceTransformer(modules=[embedding], device="cpu")
    model.model_card_data.base_model = hub_id or (name if "/" in name and not local.exists() else None)
    model.model_card_data.model_name = f"Static embeddings distilled from {hub_id or Path(name).name or name}"
    width = f" (the dense model's width; static_dims={dims} asks for more)" if embedding.embedding_dim < dims else ""
    log(f"model: static embeddings distilled from {name} with model2vec: {embedding.num_embeddings:,} tokens x "
        f"{embedding.embedding_dim} dimensions{width}, in {time.perf_counter() - started:.0f} s")
    return model


def sample_texts(*datasets: Any, limit: int = SPEED_TEXTS) -> list[str]:
    """Up to ``limit`` distinct texts from the string columns of ``datasets`` (None skipped), in order."""
    seen: dict[str, None] = {}
    for dataset in datasets:
        if dataset is None:
            continue
        head = dataset.select(range(min(len(dataset), limit)))  # no more rows than texts wanted
        for column in head.column_names:
            values = list(head[column])
            if values and isinstance(values[0], str):
                for text in values:
                    seen.setdefault(text, None)
                    if len(seen) >= limit:
                        return list(seen)
    return list(seen)


def sentences_per_second(model: Any, texts: list[str], batch_size: int = 32, min_seconds: float = 0.5) -> float:
    """``model.encode`` throughput on ``texts`` after one warm-up batch, repeated until ``min_seconds`` have
    passed, so that a static model's few milliseconds are not timer noise."""
    model.encode(texts[:batch_size], batch_size=batch_size)
    done, started = 0, time.perf_counter()
    while True:
        model.encode(texts, batch_size=batch_size)
        done += len(texts)
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return done / elapsed


def against_dense(model: Any, dense_name: str | None, texts: list[str], evaluator: Any = None,
                  headline: Any = None, trust_remote_code: bool = False) -> dict[str, Any]:
    """The static ``model``'s encoding speed beside the dense model it was distilled from, on the same ``texts``
    in this process; with an ``evaluator``, the dense model's held-out metrics too (``headline`` picks them)."""
    import torch

    from .models import load_model

    dense_name = dense_name or DEFAULT_TEXT_MODEL
    dense = load_model(dense_name, trust_remote_code=trust_remote_code, device="cpu", what="distill_from")
    static_rate = sentences_per_second(model, texts)
    dense_rate = sentences_per_second(dense, texts)
    result: dict[str, Any] = {"distilled_from": dense_name, "dimensions": model.get_embedding_dimension(),
                              "speed_texts": len(texts), "torch_threads": torch.get_num_threads(),
                              "static_sentences_per_s": round(static_rate, 1),
                              "dense_sentences_per_s": round(dense_rate, 1),
                              "speedup": round(static_rate / dense_rate, 1)}
    if evaluator is not None:
        scores = {k: float(v) for k, v in evaluator(dense).items() if isinstance(v, (int, float))}
        result["dense_heldout"] = headline(scores) if headline else scores
    return result


def report(out: Path, metrics: dict[str, Any], speed: dict[str, Any], log: Any = print) -> None:
    """Print the comparison, add it to ``metrics.json`` (key ``static``) and to the model card."""
    from .. import report as reports

    metrics["static"] = speed
    reports.write_metrics(out, metrics)
    log(f"speed: {speed['static_sentences_per_s']:,.0f} sentences/s static vs {speed['dense_sentences_per_s']:,.0f} "
        f"dense ({speed['distilled_from']}): {speed['speedup']:g}x, on {speed['speed_texts']} of your texts, "
        f"{speed['torch_threads']} threads")
    after = metrics.get("after", {})
    rows = []
    for key, dense_value in speed.get("dense_heldout", {}).items():
        if key in after:
            rows.append(f"| {key} | {after[key]:.4f} | {dense_value:.4f} |")
            log(f"quality: {key} {after[key]:.4f} static vs {dense_value:.4f} dense")
    card = out / "README.md"
    if card.is_file():
        from .training import with_section

        card.write_text(with_section(card.read_text(encoding="utf-8"), card_section(speed, rows)), encoding="utf-8")


def card_section(speed: dict[str, Any], rows: list[str]) -> str:
    """The card's "Static embeddings" section: what the model is (sentence-transformers' card calls it "finetuned
    from" the dense model, with a "Maximum Sequence Length" of inf), its speed, and its quality beside the dense
    model. It goes before "Training Details", beside the evaluation, not after the hyperparameter list."""
    table = "\n".join(["", "| held-out metric | this static model | dense model |", "|---|---|---|", *rows]) \
        if rows else ""
    source = speed["distilled_from"]
    source = Path(source).name if Path(source).expanduser().exists() else source  # a folder: no home path in a card
    return f"""## Static embeddings

This model is a `StaticEmbedding`: one vector per token, averaged over a text's tokens, with no attention. It was
distilled from `{source}` with model2vec ({speed['dimensions']} dimensions), then fine-tuned by
contrastkit; "before training" above is the distilled table. It reads every token of a text, whatever its length
(hence "Maximum Sequence Length: inf"). Encoding speed at the end of training, on {speed['speed_texts']} of the
texts it was evaluated and trained on, same machine and {speed['torch_threads']} threads: {speed['static_sentences_per_s']:,.0f}
sentences/s against {speed['dense_sentences_per_s']:,.0f} for the dense model ({speed['speedup']:g}x).
{table}
"""
