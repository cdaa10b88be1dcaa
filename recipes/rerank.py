"""Train a reranker (a sentence-transformers CrossEncoder) that rescores a retriever's top-k.

    contrastkit run rerank data=pairs.csv
    from contrastkit.recipes import rerank; result = rerank.run(data="pairs.csv")

Steps: config -> data -> retriever mines negatives -> loss -> trainer -> save, rerank before/after, card -> Hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contrastkit.plugins.config import field, require_positive, resolve
from contrastkit.plugins.errors import UserError
from contrastkit.plugins.run import cleans_up_refusals
from contrastkit.plugins.st.config import MiningArgs, SentenceTransformerArgs

DESCRIPTION = "Train a reranker (CrossEncoder) that rescores a retriever's top-k; negatives mined for pairs."
SAMPLE_DATA = "faq_pairs.csv"
#: Default peak learning rate (docs/rerank.md says how it was chosen).
LEARNING_RATE = 1e-4


@dataclass
class Config(MiningArgs, SentenceTransformerArgs):
    """Everything the rerank recipe reads; each field is a CLI key (``key=value``) and a YAML key."""

    data: Any = field(None, "CSV/TSV/JSONL/Parquet path, Hub dataset id or Python rows (default: the bundled "
                            "question-answer pairs)")
    model: str = field("all-MiniLM-L6-v2", "base of the CrossEncoder: a local folder or a Hub id (a bi-encoder "
                                           "gets a new scoring head)")
    retriever: str = field("all-MiniLM-L6-v2", "bi-encoder that mines negatives and retrieves the candidates to "
                                               "rerank: a Hub id or a folder the text recipe wrote")
    loss: str = field("auto", "auto (chosen from the columns), or bce, mnrl, lambda, listnet, mse")
    num_negatives: int = field(3, "hard negatives mined per pair (default 3)")
    top_k: int = field(20, "candidates the retriever hands the reranker in evaluation (default 20)")
    min_steps: int = field(32, "raise epochs on small data until training takes this many steps (0: off)")
    freeze_embeddings: bool = field(True, "keep the token-embedding matrix fixed (default on: faster steps)")
    max_seq_length: int | None = field(None, "truncate query + document to this many tokens (default: the model's)")
    batch_size: int = field(32, "rows per batch (default 32)")
    learning_rate: float | None = field(None, f"peak learning rate (default {LEARNING_RATE:g})")

    def check(self) -> None:
        """The rerank recipe's own fields."""
        from contrastkit.plugins.st.rerank import check_rerank_loss

        check_rerank_loss(self.loss)
        require_positive(self, "top_k", "max_seq_length")
        if self.min_steps < 0:
            raise UserError(f"config field 'min_steps' must be >= 0 (0: off), got {self.min_steps}")


@cleans_up_refusals
def run(cfg: Config | None = None, **overrides: Any):
    """Train, rerank the held-out split before/after, save a plain CrossEncoder folder and return a Result."""
    cfg = resolve(Config, cfg, **overrides)
    from contrastkit.plugins import run, splits
    from contrastkit.plugins.device import world_size
    from contrastkit.plugins.st import formats, mining, models, rerank, training
    from contrastkit.plugins.st.callbacks import BeforeAfterCallback, NoPickledArgs
    from transformers import set_seed

    # 1. Output folder (checked first, so a bad path fails before any work)
    out, log = run.start(cfg, "rerank")

    # 2. Data and its format; a format without query/document relations, or a loss it cannot train, fails
    # before any model loads
    train_data, eval_data = splits.load_splits(cfg, SAMPLE_DATA, formats.used_columns)
    train_data, fmt = formats.detect_format(train_data, cfg.columns)
    rerank.check_format(fmt, train_data.column_names)
    rerank.check_loss_fits(cfg.loss, fmt.kind)  # and a loss the format cannot train, before mining
    rerank.check_negatives_available(cfg.loss, fmt.kind, cfg.mine_hard_negatives)
    cfg.check_num_negatives(fmt.kind == "pair" and cfg.mine_hard_negatives is not False, fmt.kind)
    eval_data, eval_fmt = formats.detect_format(eval_data, cfg.columns, held_out=fmt) if eval_data is not None \
        else (None, fmt)
    # the retriever mines pairs' negatives and hands the held-out evaluation its candidates; retriever= or top_k=
    # that nothing reads fails here
    mines = cfg.mine_hard_negatives is True or fmt.kind == "pair" and cfg.mine_hard_negatives is not False
    reranked = rerank.reranks(eval_data, eval_fmt)
    rerank.check_retriever_read(cfg, mines, fmt.kind, eval_fmt.kind)
    needs_retriever = mines or reranked

    # 3. The CrossEncoder (first: a base it cannot be fails before mining), the retriever (mining and candidates),
    # mined negatives for pairs, the loss
    set_seed(cfg.seed)  # a new classifier head starts alike on every run with this seed
    model = models.load_model(cfg.model, cfg.trust_remote_code, kind="cross")
    rerank.check_one_label(model, cfg.model)
    models.training_length(model, cfg.max_seq_length, 0)  # sets max_seq_length; refuses one beyond the model's
    kind_given = fmt.kind  # pair before mining, triplet after
    retriever = models.load_model(cfg.retriever, cfg.trust_remote_code, what="retriever") if needs_retriever else None
    if mines:
        # only a loss that needs negatives has to have them; auto and mnrl fall back to in-batch negatives
        needs = cfg.mine_hard_negatives is True or rerank.check_rerank_loss(cfg.loss) not in ("auto", "mnrl")
        train_data, fmt = mining.mine_or_keep(retriever, train_data, fmt, cfg.columns, cfg.num_negatives, needs,
                                              f"the retriever {cfg.retriever}", log)
    # pairs still without negatives (mining off, or none found) reach here only with auto or mnrl
    choice = rerank.choose_rerank_loss(model, train_data, fmt, cfg.loss, mined=fmt.kind != kind_given)
    log(f"loss: {type(choice.loss).__name__} ({choice.reason})")
    if cfg.freeze_embeddings:
        log(f"model: token embeddings frozen ({models.freeze_token_embeddings(model):,} weights); "
            f"freeze_embeddings=false trains them too")
    for note in fmt.notes:
        log(f"data: {note}")
    held_out = len(eval_data) if eval_data is not None else 0
    log(f"data: {len(choice.dataset)} training rows, {held_out} held out")

    # 4. Trainer: sentence-transformers' CrossEncoderTrainer, with the before/after callback
    evaluator = rerank.make_rerank_evaluator(retriever, eval_data, eval_fmt, cfg.top_k, batch_size=cfg.batch_size)
    if evaluator is not None and eval_fmt.kind in ("pair", "triplet"):
        log(f"evaluation: the retriever's top {cfg.top_k} for each held-out query, reranked (base_*: the "
            f"retriever's own order)")
    callback = BeforeAfterCallback(evaluator, out, headline=lambda m: rerank.headline(m, eval_fmt.kind),
                                   extra={"recipe": "rerank", "loss": type(choice.loss).__name__,
                                          "loss_reason": choice.reason, "format": fmt.kind,
                                          # scored or labelled pairs use no retriever: none is recorded
                                          "retriever": models.absolute(cfg.retriever) if needs_retriever else None,
                                          "top_k": cfg.top_k if needs_retriever else None,
                                          "train_rows": len(choice.dataset), "world_size": world_size(),
                                          "eval_rows": held_out})
    epochs = training.recipe_epochs(cfg, len(choice.dataset), log)
    args = training.training_args(cfg, out, in_batch_negatives=choice.in_batch_negatives, epochs=epochs,
                                  cpu_bf16=True, learning_rate=cfg.learning_rate or LEARNING_RATE, kind="cross")
    # A CrossEncoder uses every trainable weight; DDP's search for unused ones (the Trainer's default for a model
    # that is not a transformers PreTrainedModel) fails the first backward of BCE and the listwise losses
    args.ddp_find_unused_parameters = False
    if note := training.precision_note(cfg.precision, args):
        log(note)
    trainer = training.make_trainer(model, args, choice.dataset, choice.loss, callbacks=[callback, NoPickledArgs()],
                                    kind="cross")
    training.name_hub_datasets(trainer, cfg)
    training.train(trainer, resume=cfg.resume)

    # 5. Save (metrics.json came from the callback), config.yaml, Hub
    training.save(trainer, out)
    warning = rerank.below_retriever(callback.after)
    if warning:
        log(warning)
    return run.finish(cfg, out, callback.metrics, model)
