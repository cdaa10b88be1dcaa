"""Fine-tune a sentence-transformers text embedding model; the loss is chosen from your columns.

    contrastkit run text data=pairs.csv epochs=1
    contrastkit run text data=pairs.csv model=static     # static embeddings: distilled, then trained
    from contrastkit.recipes import text; result = text.run(data="pairs.csv", epochs=1)

Steps: config -> data -> loss -> trainer -> save, evaluate, card -> Hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contrastkit.plugins.config import field, require_positive, resolve
from contrastkit.plugins.errors import UserError
from contrastkit.plugins.run import cleans_up_refusals
from contrastkit.plugins.st.config import (
    LossArgs,
    MiningArgs,
    PromptArgs,
    SentenceTransformerArgs,
    StaticArgs,
)

DESCRIPTION = "Fine-tune a sentence-transformers text embedding model; the loss is chosen from your columns."
SAMPLE_DATA = "faq_pairs.csv"
#: Default peak learning rates (docs/text.md says how they were chosen): on pairs, and with mined negatives.
LEARNING_RATE, LEARNING_RATE_MINED = 1.5e-4, 1e-4
#: Default batch on a CPU (measured on 2 cores, docs/text.md) and on a GPU (docs/speed.md says why 32).
BATCH_SIZE, BATCH_SIZE_GPU = 16, 32


@dataclass
class Config(LossArgs, MiningArgs, PromptArgs, StaticArgs, SentenceTransformerArgs):
    """Everything the text recipe reads; each field is a CLI key (``key=value``) and a YAML key. The loss, mining,
    prompt and static-embedding fields come from ``LossArgs``, ``MiningArgs``, ``PromptArgs`` and ``StaticArgs``
    (contrastkit.plugins.st.config)."""

    data: Any = field(None, "CSV/TSV/JSONL/Parquet path, Hub dataset id or Python rows (default: the bundled "
                            "question-answer pairs)")
    columns: dict[str, str] = field({}, "map roles to your column names, e.g. {anchor: question, positive: answer}")
    model: str = field("all-MiniLM-L6-v2", "base model: a local folder or a Hub id; or static: static embeddings "
                                           "distilled from distill_from=, far faster to encode, at some quality")
    min_steps: int = field(32, "raise epochs on small data until training takes this many steps (0: off; "
                               "default 32)")
    length_batching: bool = field(False, "batch texts of similar length together (faster; default off)")
    freeze_embeddings: bool = field(True, "keep the token-embedding matrix fixed (default on: faster steps)")
    max_seq_length: int | None = field(None, "truncate texts to this many tokens (default: the model's)")
    max_train_tokens: int = field(64, "cut texts at this many tokens for mining and training only; evaluation "
                                      "and the saved model keep max_seq_length (0: no cut; default 64)")
    batch_size: int | None = field(None, "pairs per batch; in-batch negatives grow with it (default 16 on a CPU, "
                                         "32 on a GPU, 128 with model=static)")
    learning_rate: float | None = field(None, "peak learning rate (default 1.5e-4, or 1e-4 with mined negatives; "
                                              "3e-2 with model=static)")
    precision: str = field("auto", "auto, fp32, bf16 or fp16 (auto: bf16 on a GPU or CPU with native bfloat16, "
                                   "else fp32)")

    def check(self) -> None:
        """The text recipe's own fields."""
        require_positive(self, "max_seq_length")
        if self.max_train_tokens < 0:
            raise UserError(f"config field 'max_train_tokens' must be >= 0 (0: no cut), got {self.max_train_tokens}")
        if self.min_steps < 0:
            raise UserError(f"config field 'min_steps' must be >= 0 (0: off), got {self.min_steps}")


@cleans_up_refusals
def run(cfg: Config | None = None, **overrides: Any):
    """Train, evaluate before/after, save a plain SentenceTransformer folder and return a Result."""
    cfg = resolve(Config, cfg, **overrides)
    from contrastkit.plugins import run, splits
    from contrastkit.plugins.device import is_main_process, on_gpu, world_size
    from contrastkit.plugins.st import evaluation, formats, losses, mining, models, prompts, static, training
    from contrastkit.plugins.st.callbacks import BeforeAfterCallback, NoPickledArgs

    # 1. Output folder (checked first, so a bad path fails before any work), with the batch size settled before
    #    its run record: a default-batch run resumed on another kind of device would otherwise change it silently
    is_static = static.wanted(cfg.model)
    default_gpu_batch = cfg.batch_size is None and not is_static and on_gpu()
    if cfg.batch_size is None:
        cfg.batch_size = static.BATCH_SIZE if is_static else BATCH_SIZE_GPU if default_gpu_batch else BATCH_SIZE
    out, log = run.start(cfg, "text")
    if default_gpu_batch:
        log(f"batch size: {BATCH_SIZE_GPU} on a GPU ({BATCH_SIZE} on a CPU); batch_size= sets it")

    # 2. Data: any input -> datasets.Dataset and a held-out split; bad columns fail before the model loads
    train_data, eval_data = splits.load_splits(cfg, SAMPLE_DATA, formats.used_columns)
    train_data, data_format = formats.detect_format(train_data, cfg.columns)
    eval_data, eval_format = formats.detect_format(eval_data, cfg.columns, held_out=data_format) \
        if eval_data is not None else (None, None)
    given = cfg.eval_source() is not None  # eval_data, or a DatasetDict's test split: never given back to training
    train_data, eval_data = evaluation.unused_holdout(data_format, train_data, eval_data, given, log)
    if is_static:
        static.check_format(data_format, train_data.column_names)
    prompts.check_fits(cfg.prompts, data_format.kind)
    losses.check_options(cfg.loss, data_format.kind, cfg.mini_batch_size, cfg.scale, cfg.length_batching,
                         cfg.guide_model, cfg.batch_size)
    cfg.check_num_negatives(losses.mines(cfg.mine_hard_negatives, data_format.kind, cfg.loss), data_format.kind,
                            losses.loss_key(cfg.loss))

    # 3. Model (or static embeddings distilled from one), mined hard negatives for pairs, the loss for the columns
    if is_static:
        model, cut = static.distil(cfg.distill_from, cfg.static_dims, cfg.trust_remote_code, log), None
    else:
        model = models.load_model(cfg.model, trust_remote_code=cfg.trust_remote_code)
        cut = models.training_length(model, cfg.max_seq_length, cfg.max_train_tokens)
    if cut:
        log(f"training: texts cut at {cut} tokens (max_train_tokens; evaluation and the saved model "
            f"use {model.max_seq_length}; max_train_tokens=0 keeps them whole)")
    # the prompts go on the model first: mining, evaluation and the saved model read them there
    prompt_pair = prompts.apply(cfg.prompts, model, data_format.kind, log)
    train_data, data_format, columns = mining.mine_step(cfg, model, train_data, data_format, cut, log)
    mined = columns is None
    choice = losses.choose_loss(model, train_data, cfg.loss, columns, cfg.batch_size, cfg.mini_batch_size,
                                cfg.matryoshka_dims, cfg.guide_model, cfg.scale, cfg.seed, data_format)
    log(f"loss: {type(choice.loss).__name__} ({choice.reason})")
    # tsdae's decoder shares the embedding matrix; a static model is nothing but its embeddings
    if cfg.freeze_embeddings and choice.name != "tsdae" and not is_static:
        log(f"model: token embeddings frozen ({models.freeze_token_embeddings(model):,} weights); "
            f"freeze_embeddings=false trains them too")
    for note in choice.format.notes:
        log(f"data: {note}")
    held_out = len(eval_data) if eval_data is not None else 0
    log(f"data: {len(choice.dataset)} training rows, {held_out} held out")

    # 4. Trainer: sentence-transformers' own, with the before/after callback
    eval_format = eval_format or choice.format
    # a Matryoshka run is evaluated at each of its dimensions too (below the whole embedding's, which is evaluated)
    cut_dims = [d for d in cfg.matryoshka_dims or () if d < model.get_embedding_dimension()]
    evaluator = evaluation.make_evaluator(eval_format, eval_data, batch_size=cfg.batch_size, seed=cfg.seed,
                                          matryoshka_dims=cut_dims)
    callback = BeforeAfterCallback(evaluator, out, headline=lambda m: evaluation.headline(m, eval_format.kind),
                                   extra={"recipe": "text", "loss": type(choice.loss).__name__,
                                          "loss_reason": choice.reason, "format": choice.format.kind,
                                          "train_rows": len(choice.dataset), "world_size": world_size(),
                                          "max_train_tokens": cut, "mined_hard_negatives": mined,
                                          "eval_rows": held_out, "static": is_static,
                                          "prompts": dict(zip(("query", "document"), prompt_pair or ("", "")))})
    epochs = training.recipe_epochs(cfg, len(choice.dataset), log)
    learning_rate = cfg.learning_rate or (static.LEARNING_RATE if is_static else
                                          LEARNING_RATE_MINED if mined else LEARNING_RATE)
    if is_static:
        log(f"static embeddings: batch {cfg.batch_size}, learning rate {learning_rate:g} (batch_size= and "
            f"learning_rate= set them)")
    elif mined and cfg.learning_rate is None:
        log(f"learning rate: {learning_rate:g} with mined negatives (learning_rate= sets it)")
    # bf16 autocast speeds up a transformer's matrix products; a static model has none to speed up
    args = training.training_args(cfg, out, in_batch_negatives=choice.in_batch_negatives, epochs=epochs,
                                  labeled=choice.format.kind == "labeled", cpu_bf16=not is_static,
                                  learning_rate=learning_rate,
                                  prompts=prompts.for_columns(prompt_pair, choice.dataset))
    if note := training.precision_note(cfg.precision, args):
        log(note)
    trainer = training.make_trainer(model, args, choice.dataset, choice.loss, callbacks=[callback, NoPickledArgs()],
                                    max_length=cut)
    training.name_hub_datasets(trainer, cfg)
    training.train(trainer, resume=cfg.resume)

    # 5. Save (metrics.json came from the callback); static embeddings: speed and quality beside the dense model
    training.save(trainer, out)
    if is_static and is_main_process():
        texts = static.sample_texts(eval_data, train_data)
        speed = static.against_dense(model, cfg.distill_from, texts, evaluator,
                                     lambda m: evaluation.headline(m, eval_format.kind), cfg.trust_remote_code)
        static.report(out, callback.metrics, speed, log)

    # 6. config.yaml, Hub
    return run.finish(cfg, out, callback.metrics, model)
