"""Config parts of the recipes that train through sentence-transformers: the shared trainer fields, the loss
choice and hard-negative mining. No sentence-transformers import here, so ``contrastkit show`` stays fast."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..config import Part, RecipeArgs, default_of, field, require_positive, require_range
from ..errors import UserError, did_you_mean


@dataclasses.dataclass
class SentenceTransformerArgs(RecipeArgs):
    """What the recipes that train through sentence-transformers' trainer share (text and image-text)."""

    columns: dict[str, str] = field({}, "map roles to your column names", group="data")
    model: str = field("all-MiniLM-L6-v2", "base model: a local folder or a Hub id", group="recipe")
    trust_remote_code: bool = field(False, "allow the model's own code from the Hub to run", group="recipe")
    warmup_ratio: float = field(0.1, "fraction of steps used for linear warm-up", group="training")
    logging_steps: int = field(5, "log the loss every N steps", group="training")
    report_to: str = field("none", "where the trainer reports: none, tensorboard, wandb, ...", group="training")
    dataloader_workers: int | None = field(None, "processes that collate and tokenise batches beside training "
                                                 "(default: 4 on a GPU, 0 on a CPU)", group="training")

    def check(self) -> None:
        """A positive logging interval and a warm-up share below 1."""
        require_positive(self, "logging_steps")
        if self.dataloader_workers is not None and self.dataloader_workers < 0:
            raise UserError(f"config field 'dataloader_workers' must be >= 0 (0: collate in the training process), "
                            f"got {self.dataloader_workers}")
        require_range(self, "warmup_ratio", 0, 1, high_open=True)
        check_report_to(self.report_to)


#: transformers' reporting integrations -> the package each needs
REPORTERS = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "comet_ml": "comet_ml",
             "clearml": "clearml", "neptune": "neptune", "dvclive": "dvclive", "codecarbon": "codecarbon",
             "swanlab": "swanlab", "trackio": "trackio", "azure_ml": "azureml", "dagshub": "dagshub"}


def check_report_to(report_to: str | None) -> None:
    """A reporter transformers knows, whose package is installed (else the Trainer fails with a traceback)."""
    import importlib.util

    if report_to in (None, "", "none", "all"):
        return
    if report_to not in REPORTERS:
        raise UserError(f"config field 'report_to' got unknown reporter '{report_to}'; use none or one of: "
                        f"{', '.join(REPORTERS)}.{did_you_mean(report_to, REPORTERS)}")
    package = REPORTERS[report_to]
    if importlib.util.find_spec(package) is None:
        raise UserError(f"report_to={report_to} needs the {package} package, which is not installed; pip install "
                        f"{package}, or report_to=none")


@dataclasses.dataclass
class LossArgs(Part):
    """Which loss trains the model: chosen from the columns by default, or named."""

    loss: str = field("auto", "auto (chosen from the columns), or mnrl, cached_mnrl, gist, cached_gist, cosent, "
                              "angle, cosine, contrastive, online_contrastive, triplet, batch_hard, "
                              "batch_hard_margin, batch_all, batch_semi_hard, simcse, tsdae", group="recipe")
    guide_model: str | None = field(None, "guide model for loss=gist or cached_gist (default: all-MiniLM-L6-v2)",
                                    group="recipe")
    matryoshka_dims: list[int] | None = field(None, "wrap the loss in MatryoshkaLoss over these dims, e.g. "
                                                    "[384,128,64]", group="recipe")
    mini_batch_size: int | None = field(None, "use the cached (GradCache) loss with this mini-batch size",
                                        group="recipe")
    scale: float | None = field(None, "similarity scale (inverse temperature) of MNRL/CoSENT (default: the loss's)",
                                group="recipe")

    def check(self) -> None:
        """A known loss name, a positive mini-batch and scale."""
        from .losses import check_loss

        check_loss(self.loss)
        require_positive(self, "mini_batch_size", "scale")


@dataclasses.dataclass
class MiningArgs(Part):
    """Hard negatives mined for pairs with the base model before training."""

    mine_hard_negatives: bool | None = field(None, "mine hard negatives for pairs, with the base model (or retriever= "
                                                    "where the recipe has one) (default: on for anchor/positive pairs "
                                                    "with an in-batch-negative loss)",
                                             group="recipe")
    num_negatives: int = field(1, "hard negatives mined per pair (default 1)", group="recipe")

    def check(self) -> None:
        """At least one negative per pair."""
        require_positive(self, "num_negatives")

    def check_num_negatives(self, mined: bool, kind: str, loss: str = "auto") -> None:
        """Mining asked for on data that is not pairs, and ``num_negatives`` changed from its default where it would
        do nothing, fail in one line: nothing is mined (data that is not pairs, or mining off), or ``loss=triplet``,
        which trains on one negative per row."""
        if self.mine_hard_negatives is True and kind != "pair":  # before any model loads, in every recipe
            raise UserError(f"mine_hard_negatives=true needs anchor/positive pairs, but the data is {kind} data; "
                            f"drop mine_hard_negatives=, or give anchor/positive pairs")
        default = default_of(self, "num_negatives")
        if mined and loss == "triplet" and self.num_negatives > 1:
            raise UserError(f"loss=triplet trains on one negative per row, so num_negatives={self.num_negatives} "
                            f"would mine {self.num_negatives - 1} it never reads; use num_negatives=1, or loss=mnrl "
                            f"to train on them all")
        if not mined and self.num_negatives != default:
            why = f"the data is {kind} data" if kind != "pair" else "mining is off for these pairs"
            raise UserError(f"num_negatives={self.num_negatives} applies only when hard negatives are mined for "
                            f"anchor/positive pairs, and {why}; drop num_negatives=")


@dataclasses.dataclass
class PromptArgs(Part):
    """The prefixes a model reads before queries and documents (E5, BGE, nomic and the like)."""

    prompts: Any = field("auto", "auto (the base model's own query/document prompts, if it has "
                                                  "any), none, one prompt for every text, or {query: 'query: ', "
                                                  "document: 'passage: '}", group="recipe")

    def check(self) -> None:
        """auto, none, one string, or query/document strings; YAML's spellings of nothing become ``none`` here, so
        the run, its config.yaml and its resume record all read one value."""
        from .prompts import check, normal

        self.prompts = normal(self.prompts)
        check(self.prompts)


@dataclasses.dataclass
class StaticArgs(Part):
    """``model=static``: static embeddings distilled from a dense model with model2vec, then trained."""

    distill_from: str | None = field(None, "with model=static: the dense model distilled into static embeddings, "
                                           "a local folder or a Hub id (default: all-MiniLM-L6-v2)", group="recipe")
    static_dims: int | None = field(None, "with model=static: dimensions of the distilled embeddings (PCA; "
                                          "default 256)", group="recipe")

    def check(self) -> None:
        """Positive dimensions, and no option that cannot apply to static embeddings."""
        from .static import check_options

        require_positive(self, "static_dims")
        check_options(self)
