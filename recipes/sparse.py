"""Train a sparse text encoder (sentence-transformers SparseEncoder) whose vectors an inverted index can serve.

    contrastkit run sparse data=pairs.csv
    from contrastkit.recipes import sparse; result = sparse.run(data="pairs.csv")

Steps: config -> data -> model (CSR head or SPLADE) -> mined negatives -> loss -> trainer -> save, card -> Hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contrastkit.plugins.config import field, require_positive, resolve
from contrastkit.plugins.errors import UserError
from contrastkit.plugins.run import cleans_up_refusals
from contrastkit.plugins.st.config import MiningArgs, PromptArgs, SentenceTransformerArgs

DESCRIPTION = "Train a sparse encoder (CSR on a dense model, or SPLADE on a masked-LM) for inverted-index search."
SAMPLE_DATA = "faq_pairs.csv"
#: Default peak learning rate (docs/sparse.md says how it was chosen).
LEARNING_RATE = 4e-5


@dataclass
class Config(MiningArgs, PromptArgs, SentenceTransformerArgs):
    """Everything the sparse recipe reads; each field is a CLI key (``key=value``) and a YAML key."""

    data: Any = field(None, "CSV/TSV/JSONL/Parquet path, Hub dataset id or Python rows (default: the bundled "
                            "question-answer pairs)")
    model: str = field("all-MiniLM-L6-v2", "base: a dense model (gets a CSR head) or a masked-LM (gets SPLADE), "
                                           "a local folder or a Hub id")
    head: str = field("auto", "auto (SPLADE on a masked-LM base, else CSR), csr or splade")
    active_dims: int | None = field(None, "non-zero dimensions per CSR vector (default 128 for a new head; a CSR "
                                          "SparseEncoder base keeps its own); not with SPLADE, whose sparsity "
                                          "comes from its regulariser")
    similarity: str = field("auto", "auto (cosine for CSR, dot for SPLADE), cosine or dot: what pairs are trained and "
                                    "searched with")
    scale: float | None = field(None, "inverse temperature of the in-batch loss (default 20 with cosine, 1 with dot)")
    retriever: str | None = field(None, "bi-encoder that mines hard negatives (default: the base when it is dense, "
                                        "else all-MiniLM-L6-v2)")
    min_steps: int = field(32, "raise epochs on small data until training takes this many steps (0: off)")
    freeze_embeddings: bool = field(True, "keep the token-embedding matrix fixed (default on: faster steps)")
    max_seq_length: int | None = field(None, "truncate texts to this many tokens (default: the model's)")
    batch_size: int = field(32, "pairs per batch; in-batch negatives grow with it (default 32)")
    learning_rate: float | None = field(None, f"peak learning rate (default {LEARNING_RATE:g})")

    def check(self) -> None:
        """The sparse recipe's own fields."""
        from contrastkit.plugins.st.sparse import check_head, check_similarity

        check_head(self.head)
        check_similarity(self.similarity)
        require_positive(self, "scale")
        require_positive(self, "active_dims", "max_seq_length")
        if self.min_steps < 0:
            raise UserError(f"config field 'min_steps' must be >= 0 (0: off), got {self.min_steps}")


@cleans_up_refusals
def run(cfg: Config | None = None, **overrides: Any):
    """Train, evaluate retrieval before/after, save a plain SparseEncoder folder and return a Result."""
    cfg = resolve(Config, cfg, **overrides)
    from contrastkit.plugins import run, splits
    from contrastkit.plugins.device import world_size
    from contrastkit.plugins.st import formats, mining, models, prompts, sparse, training
    from contrastkit.plugins.st.callbacks import BeforeAfterCallback, NoPickledArgs
    from transformers import set_seed

    # 1. Output folder (checked first, so a bad path fails before any work)
    out, log = run.start(cfg, "sparse")

    # 2. Data and its format; a format the sparse losses cannot read fails before any model loads
    train_data, eval_data = splits.load_splits(cfg, SAMPLE_DATA, formats.used_columns)
    train_data, fmt = formats.detect_format(train_data, cfg.columns)
    sparse.check_format(fmt, train_data.column_names, cfg.similarity, cfg.scale)
    cfg.check_num_negatives(fmt.kind == "pair" and cfg.mine_hard_negatives is not False, fmt.kind)
    mines = cfg.mine_hard_negatives is True or fmt.kind == "pair" and cfg.mine_hard_negatives is not False
    sparse.check_retriever(cfg.retriever, mines, fmt.kind)
    prompts.check_fits(cfg.prompts, fmt.kind)
    eval_data, eval_fmt = formats.detect_format(eval_data, cfg.columns, held_out=fmt) if eval_data is not None \
        else (None, fmt)

    # 3. Model and head, mined negatives for pairs, the wrapped loss
    set_seed(cfg.seed)  # the new CSR head starts alike on every run with this seed
    base = sparse.load_sparse_base(cfg.model, cfg.head, cfg.active_dims, cfg.trust_remote_code)
    model, head = base.model, sparse.head_of(base.model)
    models.training_length(model, cfg.max_seq_length, 0)  # sets max_seq_length; refuses one beyond the model's
    if base.own_head:
        log(f"model: the base's own CSR head, {sparse.active_dims_of(model)} of {model.get_embedding_dimension()} "
            f"dimensions active ({'active_dims=' if cfg.active_dims else 'as it was trained; active_dims= changes it'})")
    elif head == "csr":
        chosen = sparse.check_head(cfg.head) == "csr"  # on a dense base, a masked-LM one or a SPLADE model's encoder
        where = "a new CSR head (head=csr)" if chosen else "CSR head on the dense base"
        log(f"model: {where}, {sparse.active_dims_of(model)} of {model.get_embedding_dimension()} dimensions active "
            f"(active_dims=){'' if chosen else '; a masked-LM base gets SPLADE instead'}")
    else:
        vocab = model[0].auto_model.config.vocab_size  # SpladePooling learns its width only in its first forward
        log(f"model: SPLADE over the {vocab:,}-word vocabulary (sparsity from its FLOPS regulariser)")
    if mines:
        # the dense base mines; a SparseEncoder base (SPLADE, or a CSR run's folder) is no bi-encoder to mine with
        base_mines = head == "csr" and not base.saved_sparse
        miner = cfg.retriever or (cfg.model if base_mines else models.DEFAULT_TEXT_MODEL)
        retriever = models.load_model(miner, cfg.trust_remote_code, what="retriever")
        if cfg.retriever is None and base_mines:  # the base mines: with the prompts it trains with
            prompts.apply(cfg.prompts, retriever, fmt.kind, lambda _: None)
        train_data, fmt = mining.mine_or_keep(retriever, train_data, fmt, cfg.columns, cfg.num_negatives,
                                              cfg.mine_hard_negatives is True, miner, log)
        del retriever
    prompt_pair = prompts.apply(cfg.prompts, model, fmt.kind, log)
    choice = sparse.choose_sparse_loss(model, fmt, cfg.similarity, cfg.scale)
    log(f"loss: {type(choice.loss).__name__} ({choice.reason})")
    if cfg.freeze_embeddings:
        log(f"model: token embeddings frozen ({models.freeze_token_embeddings(model):,} weights); "
            f"freeze_embeddings=false trains them too")
    for note in fmt.notes:
        log(f"data: {note}")
    held_out = len(eval_data) if eval_data is not None else 0
    log(f"data: {len(train_data)} training rows, {held_out} held out")

    # 4. Trainer: sentence-transformers' SparseEncoderTrainer, with the before/after callback
    evaluator = sparse.make_sparse_evaluator(eval_data, eval_fmt, batch_size=cfg.batch_size)
    callback = BeforeAfterCallback(evaluator, out, headline=lambda m: sparse.headline(m, eval_fmt.kind),
                                   extra={"recipe": "sparse", "head": head, "loss": type(choice.loss).__name__,
                                          "loss_reason": choice.reason, "format": fmt.kind,
                                          "active_dims": sparse.active_dims_of(model),
                                          "train_rows": len(train_data), "world_size": world_size(),
                                          "eval_rows": held_out,
                                          "prompts": dict(zip(("query", "document"), prompt_pair or ("", "")))})
    epochs = training.recipe_epochs(cfg, len(train_data), log)
    args = training.training_args(cfg, out, in_batch_negatives=choice.in_batch_negatives, epochs=epochs,
                                  cpu_bf16=True, learning_rate=cfg.learning_rate or LEARNING_RATE, kind="sparse",
                                  prompts=prompts.for_columns(prompt_pair, train_data))
    if note := training.precision_note(cfg.precision, args):
        log(note)
    trainer = training.make_trainer(model, args, train_data, choice.loss, kind="sparse",
                                    callbacks=[callback, NoPickledArgs(), *sparse.loss_callbacks(choice.loss)])
    training.name_hub_datasets(trainer, cfg)
    training.train(trainer, resume=cfg.resume)

    # 5. Save (metrics.json came from the callback), config.yaml, Hub
    training.save(trainer, out)
    return run.finish(cfg, out, callback.metrics, model)
