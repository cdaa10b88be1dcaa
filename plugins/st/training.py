"""Training: trainer arguments, precision, the trainer, resuming, and the out-of-memory fallback.

Shared by the text and image-text recipes: both train a SentenceTransformer with sentence-transformers' own
``SentenceTransformerTrainer``.
"""

from __future__ import annotations

import os
from typing import Any

from ..device import auto_bf16, is_main_process, world_size
from ..errors import UserError
from .resume import evaluate_checkpoint, holds_all_steps, newest_checkpoint


def epochs_for_min_steps(epochs: float, min_steps: int, rows: int, batch_size: int, world_size: int = 1) -> float:
    """``epochs``, raised to the whole number of epochs that makes at least ``min_steps`` optimizer steps.

    On small data one epoch is only a few steps (128 pairs at batch 16 are 8), too few to move the model much:
    there, 32 steps raised held-out MRR@10 about twice as much as one epoch did.
    """
    per_batch = batch_size * max(1, world_size)
    per_epoch = max(1, rows // per_batch if world_size > 1 else -(-rows // per_batch))  # DDP drops the last batch
    if min_steps <= 0 or per_epoch * epochs >= min_steps:
        return epochs
    return float(-(-min_steps // per_epoch))


def recipe_epochs(cfg: Any, rows: int, log: Any) -> float:
    """The epochs a recipe trains: ``cfg.epochs`` raised to reach ``cfg.min_steps`` (unless max_steps is set),
    with a printed line when it was raised."""
    if cfg.max_steps > 0:
        return cfg.epochs
    epochs = epochs_for_min_steps(cfg.epochs, cfg.min_steps, rows, cfg.batch_size, world_size())
    if epochs != cfg.epochs:
        log(f"epochs: {cfg.epochs:g} -> {epochs:g}, so that training takes at least min_steps={cfg.min_steps} "
            f"steps on {rows} rows (min_steps=0 keeps epochs as given)")
    return epochs


def resolve_precision(precision: str, cpu_bf16: bool = False) -> str:
    """``auto`` -> bf16 on a GPU that supports it; with ``cpu_bf16``, also on a CPU with native bfloat16; else fp32.

    The text recipe sets ``cpu_bf16``: bf16 autocast trained all-MiniLM-L6-v2 1.2-1.6x faster on a CPU with AMX
    at the same held-out MRR@10. The weights stay float32."""
    import torch

    if precision == "auto":
        precision = "bf16" if auto_bf16(cpu=cpu_bf16) else "fp32"
    if precision == "fp16" and not torch.cuda.is_available():
        raise UserError("precision=fp16 needs a GPU; use precision=bf16 or fp32 on the CPU")
    if precision == "bf16" and torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        raise UserError(f"precision=bf16 needs a GPU with bfloat16 support and {torch.cuda.get_device_name()} has "
                        f"none; use precision=fp16 or fp32 (precision=auto picks what it can)")
    return precision


def precision_note(precision: str, args: Any) -> str | None:
    """The line a recipe prints when ``precision=auto`` chose bf16 autocast: on a GPU or a CPU with native bfloat16."""
    if precision != "auto" or not args.bf16:
        return None
    if args.use_cpu:
        where = "this CPU has native bfloat16"
    else:
        import torch

        where = f"on {torch.cuda.get_device_name()}"
    return f"precision: bf16 autocast, {where} (weights stay float32; precision=fp32 turns it off)"


#: model kind -> (trainer, training arguments) class names in sentence_transformers
TRAINERS = {"dense": ("SentenceTransformerTrainer", "SentenceTransformerTrainingArguments"),
            "cross": ("CrossEncoderTrainer", "CrossEncoderTrainingArguments"),
            "sparse": ("SparseEncoderTrainer", "SparseEncoderTrainingArguments")}


def training_args(cfg: Any, output_dir: Any, in_batch_negatives: bool, labeled: bool = False,
                  epochs: float | None = None, cpu_bf16: bool = False, learning_rate: float | None = None,
                  kind: str = "dense", prompts: dict[str, str] | None = None) -> Any:
    """The training arguments of the model ``kind`` (see ``TRAINERS``) from a recipe config; checkpoints go to
    ``output_dir/checkpoints``.

    ``epochs`` and ``learning_rate`` override ``cfg.epochs`` and ``cfg.learning_rate`` (the text recipe passes its
    ``min_steps`` rule and its mining-dependent default rate through them); ``cpu_bf16``
    lets ``precision=auto`` choose bf16 on a CPU with native bfloat16 (see ``resolve_precision``); ``prompts`` maps
    text columns to the prompt put before them (``prompts.for_columns``)."""
    import sentence_transformers
    import torch
    from sentence_transformers.base.sampler import BatchSamplers

    cuda = torch.cuda.is_available()
    precision = resolve_precision(cfg.precision, cpu_bf16)
    sampler = (BatchSamplers.NO_DUPLICATES if in_batch_negatives
               else BatchSamplers.GROUP_BY_LABEL if labeled else BatchSamplers.BATCH_SAMPLER)
    if in_batch_negatives and getattr(cfg, "length_batching", False):
        from .sampler import LengthGroupedNoDuplicatesBatchSampler

        sampler = LengthGroupedNoDuplicatesBatchSampler  # same no-duplicate rule, less padding
    return getattr(sentence_transformers, TRAINERS[kind][1])(
        output_dir=str(output_dir / "checkpoints"),
        num_train_epochs=cfg.epochs if epochs is None else epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate if learning_rate is None else learning_rate,
        warmup_steps=cfg.warmup_ratio,  # a float < 1 is a ratio in transformers v5
        seed=cfg.seed,
        data_seed=cfg.seed,
        batch_sampler=sampler,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        logging_steps=cfg.logging_steps,
        report_to=[] if cfg.report_to in ("none", "", None) else [cfg.report_to],
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        # On the CPU, DDP only happens with use_cpu=True (otherwise each rank silently trains alone).
        use_cpu=not cuda,
        dataloader_drop_last=world_size() > 1,
        **dataloader_kwargs(getattr(cfg, "dataloader_workers", None), cuda),
        eval_strategy="no",
        prompts=prompts or None,
    )


#: data-loader processes on a GPU when ``dataloader_workers`` is not set: tokenising the next batches while the
#: GPU trains keeps per-step overhead off the critical path. On a CPU they would compete with training for cores.
GPU_DATALOADER_WORKERS = 4


def dataloader_kwargs(workers: int | None, cuda: bool) -> dict[str, Any]:
    """Training-argument keywords for the data loader: worker processes (kept alive across epochs) and, on a GPU,
    pinned memory for faster host-to-device copies."""
    if workers is None:
        workers = GPU_DATALOADER_WORKERS if cuda else 0
    if workers:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the tokenizer's own threads and forked workers
    return {"dataloader_num_workers": workers, "dataloader_persistent_workers": workers > 0,
            "dataloader_pin_memory": cuda}


def make_trainer(model: Any, args: Any, train_dataset: Any, loss: Any, callbacks: list | None = None,
                 max_length: int | None = None, kind: str = "dense") -> Any:
    """The trainer of the model ``kind`` (``TRAINERS``) over ``train_dataset`` and ``loss``: text, image-text,
    rerank and sparse alike.

    For text, pass ``choose_loss``'s ``choice.dataset`` and ``choice.loss``: the dataset in the loss's column order.
    ``max_length`` cuts the training texts at that many tokens through the data collator's own ``max_length``
    (the text recipe's ``max_train_tokens``). The model keeps its ``max_seq_length``, so evaluation, checkpoints
    and the saved model all use whole texts."""
    import sentence_transformers

    from .callbacks import readable_progress, widget_bar_off

    with widget_bar_off():
        trainer = getattr(sentence_transformers, TRAINERS[kind][0])(
            model=model, args=args, train_dataset=train_dataset, loss=loss, callbacks=callbacks or [])
    readable_progress(trainer)
    if max_length:
        trainer.data_collator.max_length = max_length
    return trainer


#: the names ``datasets`` gives a dataset read from local files: its loader's, not the data's
LOADER_NAMES = {"csv", "json", "parquet", "text", "arrow", "pandas", "imagefolder", "audiofolder", "videofolder",
                "webdataset", "generator", "xml", "sql"}


def name_hub_datasets(trainer: Any, cfg: Any) -> None:
    """Name the Hub datasets of ``data=`` and ``eval_data=`` in the model card (its ``datasets:`` metadata, and the
    training dataset's section). sentence-transformers finds a dataset's id only through ``download_checksums``,
    which datasets 5 leaves empty, so the card said "Unnamed Dataset". Set after the trainer is made: it has
    filled in the training set's size, columns and examples by then, and looks no id up on the Hub after that.
    A local file is named by its file name, never its folders (a home path names its user)."""
    from pathlib import Path

    from ..data import looks_like_path

    def hub_id(value: Any) -> str | None:
        return value.strip() if isinstance(value, str) and value.strip() and not looks_like_path(value) else None

    card = trainer.model.model_card_data
    card.add_tags("contrastkit")  # the Hub's search by tag finds every recipe's models, as it does image models
    train_id = hub_id(cfg.data)
    if not train_id and len(card.train_datasets) == 1 and card.train_datasets[0].get("name") in LOADER_NAMES:
        # a local file: datasets names it after its loader, and the card said "trained on the csv dataset"
        local = isinstance(cfg.data, os.PathLike) or isinstance(cfg.data, str) and looks_like_path(cfg.data)
        card.train_datasets[0]["name"] = Path(os.fspath(cfg.data).rstrip("/\\")).name if local else None
    if train_id and len(card.train_datasets) == 1:  # one Dataset: the recipes never train on a DatasetDict
        # the heading names the subset and a split other than train: one id can hold many training sets
        said = [f"subset {cfg.subset}"] * bool(cfg.subset) + [f"split {cfg.split}"] * (cfg.split not in (None, "train"))
        card.train_datasets[0].update(name=f"{train_id} ({', '.join(said)})" if said else train_id, id=train_id)
        if cfg.split:
            card.train_datasets[0]["split"] = cfg.split
    for found in (train_id, hub_id(getattr(cfg, "eval_data", None))):
        if found and found not in card.datasets:
            card.datasets.append(found)


def save(trainer: Any, out: Any) -> None:
    """A plain SentenceTransformer folder with sentence-transformers' own card, and the card's "Before and after
    training" section (``callbacks.card_section``) in it. Every rank calls it (only rank 0 writes); the Trainer's pickle
    of its arguments, with absolute paths, is removed."""
    from pathlib import Path

    from .callbacks import bars_off_in_logs, card_section, remove_args_pickle

    with bars_off_in_logs():
        trainer.save_model(str(out))
    if is_main_process():
        remove_args_pickle(out)
        card, section = Path(out) / "README.md", card_section(trainer)
        if section and card.is_file():
            card.write_text(with_section(card.read_text(encoding="utf-8"), section), encoding="utf-8")


def with_section(card: str, section: str) -> str:
    """``card`` with ``section`` before its "Training Details" (after the Evaluation a reader looks for it beside),
    or at the end of a card without one."""
    head, found, tail = card.partition("\n## Training Details")
    return f"{head.rstrip()}\n\n{section}{found}{tail}" if found else f"{card.rstrip()}\n\n{section}"


def train(trainer: Any, resume: bool = False) -> Any:
    """Train, resuming from the newest checkpoint when asked; out of memory falls back (see ``oom_fallback``).

    A checkpoint that already holds the run's whole length (a run stopped after its last save, before its model
    was saved) is evaluated and handed on to be saved, without a step more (``resume.evaluate_checkpoint``).
    Library lines the user cannot act on are hidden meanwhile (``callbacks.quiet_run``)."""
    from .callbacks import quiet_run

    with quiet_run():
        return _train(trainer, resume)


def _train(trainer: Any, resume: bool) -> Any:
    """``train`` itself."""
    import gc

    checkpoint = newest_checkpoint(trainer) if resume else None
    if resume and checkpoint is None:
        raise UserError(f"resume=true but '{trainer.args.output_dir}' holds no complete checkpoint yet (the run "
                        f"stopped before its first save); run the same command without resume=true to start again")
    if checkpoint is not None and holds_all_steps(trainer, checkpoint):
        _before_from_base_model(trainer, evaluate=True)
        return evaluate_checkpoint(trainer, checkpoint)
    first = True
    while True:
        _before_from_base_model(trainer, evaluate=first)  # resuming and retrying load weights before on_train_begin
        first = False
        try:
            output = trainer.train(resume_from_checkpoint=checkpoint)
            _check_trained(trainer)
            return output
        except RuntimeError as exc:  # torch.OutOfMemoryError is a RuntimeError too
            if not is_out_of_memory(exc):
                raise
            what = oom_fallback(trainer)
            if what is None:
                cpu_bf16 = trainer.args.bf16 and trainer.args.use_cpu  # oneDNN's bf16 kernels need more room
                raise UserError(f"out of memory even at micro-batch 1 ({str(exc).splitlines()[0][:120]}); "
                                f"lower max_seq_length{', use precision=fp32' if cpu_bf16 else ''} "
                                f"or use a smaller model") from None
        # Outside the except block: only now does Python drop the exception, whose traceback frames hold the failed
        # step's tensors, so the collection and the trim below can give that memory back before the retry.
        gc.collect()
        _empty_device_cache()
        _save_reached_step(trainer)
        trainer.optimizer, trainer.lr_scheduler = None, None  # rebuilt (or reloaded from the checkpoint)
        gc.collect()
        _empty_device_cache()
        checkpoint = newest_checkpoint(trainer)  # the last saved state, else the weights as they are now
        from ..report import Printer

        Printer()(f"out of memory: {what}; training again from {checkpoint or 'the current weights'}")


def _save_reached_step(trainer: Any) -> None:
    """After out of memory at step K > 0 with no checkpoint of step K, save one, so that the retry goes on from
    step K with the optimizer, schedule and loss history it had. Without it the retry started the schedule again
    at step 0 from weights already trained K steps: K steps more than asked, and a loss history of the retry
    alone. One process only: under DDP the other ranks do not stop with this one. A save that itself runs out of
    memory is given up (the retry then starts from the current weights, as before)."""
    from pathlib import Path

    from .callbacks import remove_args_pickle

    steps, folder = trainer.state.global_step, Path(trainer.args.output_dir) / f"checkpoint-{trainer.state.global_step}"
    if steps == 0 or world_size() > 1 or trainer.optimizer is None or (folder / "trainer_state.json").is_file():
        return
    try:
        trainer._save_checkpoint(trainer.model, trial=None)
    except RuntimeError as exc:
        if not is_out_of_memory(exc):
            raise
        return
    remove_args_pickle(folder)


def _check_trained(trainer: Any) -> None:
    """A run that took no optimizer step saved nothing new: say so instead of saving the base model as trained."""
    if trainer.state.global_step > 0:
        return
    batch = trainer.args.per_device_train_batch_size * max(1, world_size())
    raise UserError(f"training took 0 steps: no batch of {batch} rows could be formed from "
                    f"{len(trainer.train_dataset)} training rows (batches with in-batch negatives skip rows whose "
                    f"texts repeat within the batch); lower batch_size or add rows")


def _before_from_base_model(trainer: Any, evaluate: bool) -> None:
    """Let each BeforeAfterCallback evaluate the base model now (``evaluate``), or keep what it has (a retry)."""
    from .callbacks import BeforeAfterCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, BeforeAfterCallback):
            if evaluate:
                callback.evaluate_before(trainer.model)
            else:
                callback._before_done = True


def _empty_device_cache() -> None:
    """Give freed memory back before a retry: CUDA's cache, and glibc's heap on Linux (``malloc_trim``: blocks that
    a failed step freed can stay mapped, and under an address-space limit mapped memory counts even when free)."""
    import ctypes

    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to trim this way
        pass


def is_out_of_memory(exc: BaseException) -> bool:
    """True for torch's OutOfMemoryError and the allocators' RuntimeErrors (CUDA, MPS, CPU), as accelerate reads them.

    oneDNN (torch's CPU kernels) allocates a kernel's scratchpad when it creates the primitive, and a failed
    allocation there surfaces only as "could not create a primitive", so that counts too: if it was not memory,
    the fallback shrinks down to micro-batch 1 and then reports the original message.
    """
    import torch
    from accelerate.utils.memory import should_reduce_batch_size

    text = str(exc).lower()
    return isinstance(exc, torch.OutOfMemoryError) or should_reduce_batch_size(exc) or \
        "out of memory" in text or "could not create a primitive" in text


#: In-batch-negative losses and their GradCache twins, which keep the same negatives in bounded memory.
CACHED_TWIN = {"MultipleNegativesRankingLoss": "CachedMultipleNegativesRankingLoss",
               "MultipleNegativesSymmetricRankingLoss": "CachedMultipleNegativesSymmetricRankingLoss",
               "GISTEmbedLoss": "CachedGISTEmbedLoss"}


def oom_fallback(trainer: Any) -> str | None:
    """Make the next try need less memory; returns what changed, or None when nothing is left to shrink.

    In-batch-negative losses switch to their cached (GradCache) twin, which keeps the batch and its negatives;
    a cached loss halves its mini-batch; any other loss halves the micro-batch and doubles gradient accumulation.
    """
    import inspect

    from sentence_transformers.sentence_transformer import losses as L

    from .static import is_static_model

    loss = trainer.loss
    batch = trainer.args.per_device_train_batch_size
    # a static model's embeddings hold no activations to cache, and the cached losses refuse StaticEmbedding
    twin = CACHED_TWIN.get(type(loss).__name__) if not is_static_model(loss.model) else None
    if twin:
        cls = getattr(L, twin)
        keep = {n: getattr(loss, n) for n in inspect.signature(cls.__init__).parameters
                if n not in ("self", "model", "mini_batch_size") and hasattr(loss, n)}
        mini = max(1, min(32, batch // 4))
        trainer.loss = cls(loss.model, mini_batch_size=mini, **keep).to(loss.model.device)
        return f"{type(loss).__name__} -> {twin} (batch {batch} kept, mini-batches of {mini})"
    if hasattr(loss, "mini_batch_size") and loss.mini_batch_size > 1:
        loss.mini_batch_size //= 2
        return f"{type(loss).__name__} mini-batch halved to {loss.mini_batch_size}"
    if batch > 1:
        args = trainer.args
        args.per_device_train_batch_size = batch // 2
        args.gradient_accumulation_steps *= 2
        trainer._train_batch_size = args.train_batch_size  # the Trainer caches it at init
        return (f"micro-batch {batch} -> {batch // 2} with gradient accumulation x{args.gradient_accumulation_steps}"
                f" (in-batch negatives, if any, shrink with it)")
    return None
