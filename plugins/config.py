"""Typed configs: a dataclass <- YAML file <- ``key=value`` overrides, with errors that name the field.

The same dataclass serves the CLI, YAML files and Python keyword arguments (as in TRL).
No heavy imports here: ``contrastkit show`` must stay fast.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from pathlib import Path
from typing import Any

from .device import PRECISIONS
from .errors import UnknownArgument, UserError, key_hint
from .values import Typed, brief_repr, coerce, home_as_tilde, read_yaml, type_name, yaml_safe


def field(default: Any = None, help: str = "", group: str | None = None, text: bool = False, **kwargs: Any) -> Any:
    """A dataclass field with a default and a one-line help text (mutable defaults are copied). ``text``: a field of
    any type whose scalar in YAML or on the command line is a path or an id, so ``data=2024`` names a folder.

    A recipe that only changes a shared field's default redeclares it with ``field(value)``: the help and the
    group come from the shared part. ``group`` orders ``contrastkit show`` and ``config.yaml``."""
    metadata = {"help": help, "group": group, "text": text}
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unknown_key(cls: type, key: str) -> UserError:
    names = [f.name for f in dataclasses.fields(cls)]
    hint = key_hint(key, names)
    if not issubclass(cls, RecipeArgs):  # a command's options (push, push-demo, demo): few enough to list
        return UnknownArgument(f"unknown option '{key}'.{hint} The options are: {', '.join(names)}.")
    package, _, module = cls.__module__.rpartition(".")  # a built-in recipe's module names it; a copied file's not
    recipe = module.replace("_", "-") if package == "contrastkit.recipes" else "RECIPE"
    return UnknownArgument(f"unknown config key '{key}'.{hint} Run 'contrastkit show {recipe}' to list the valid "
                           f"keys.")


def build(cls: type, values: dict[str, Any] | None = None, base: Any = None) -> Any:
    """Build a ``cls`` instance from ``values`` (on top of ``base`` or the defaults), checking keys and types."""
    hints = _type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    # a Config object's own values are checked like keyword ones (Config(overwrite="no") is not true); read field by
    # field, as asdict would deep-copy data= (a DataFrame, a Dataset)
    current = {f.name: coerce(f.name, getattr(base, f.name), hints[f.name]) for f in dataclasses.fields(base)} \
        if base is not None else {}
    for key, value in (values or {}).items():
        if key not in names:
            raise _unknown_key(cls, key)
        if isinstance(value, Typed) and _inherited(cls, key, "text"):  # data=2024: a folder, not a number
            value = str(value)
        current[key] = coerce(key, value, hints[key])
    cfg = cls(**current)
    validate = getattr(cfg, "validate", None)
    if callable(validate):
        validate()
    return cfg


def _wrong_config(cls: type, cfg: Any) -> UserError:
    """``text.run(rerank.Config())`` names both recipes' modules (both classes are called Config) and the run()
    that takes it."""
    def named(kind: type) -> str:
        return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"

    mine, theirs = named(cls), named(type(cfg))
    fix = "build one with its keyword arguments, or pass a dict"
    if type(cfg).__qualname__ == cls.__qualname__ and dataclasses.is_dataclass(cfg):
        fix = f"pass it to {type(cfg).__module__}.run() instead"
    return UserError(f"run() takes a {mine}, a dict or a YAML path, not a {theirs}; {fix}")


def resolve(cls: type, cfg: Any = None, config: str | Path | list | None = None, **overrides: Any) -> Any:
    """The Python entry: a config object, YAML files (later ones win) and/or keyword overrides -> a checked ``cls``."""
    if cfg is not None and not isinstance(cfg, cls):
        if isinstance(cfg, dict):
            overrides = {**cfg, **overrides}
            cfg = None
        elif isinstance(cfg, (str, Path)) and str(cfg).endswith((".yaml", ".yml")):
            config, cfg = cfg, None
        else:
            raise _wrong_config(cls, cfg)
    values: dict[str, Any] = {}
    names = {f.name for f in dataclasses.fields(cls)}
    for path in [] if config is None else config if isinstance(config, (list, tuple)) else [config]:
        layer = read_yaml(path)  # several files (--config twice): each on top of the ones before, as in LightningCLI
        unknown = next((key for key in layer if key not in names), None)
        if unknown is not None:  # say which file: the user may not know a run's config.yaml is another recipe's
            raise UserError(f"config file '{path}': {_unknown_key(cls, unknown)}") from None
        values.update(layer)
    values.update(overrides)
    return build(cls, values, base=cfg)


def _inherited(cls: type, name: str, key: str) -> Any:
    """A field's metadata ``key`` from the nearest class in ``cls``'s MRO that sets it (shared parts set help)."""
    for klass in cls.__mro__:
        f = getattr(klass, "__dataclass_fields__", {}).get(name)
        if f is not None and f.metadata.get(key):
            return f.metadata[key]
    return None


def ordered_fields(cls: type) -> list[dataclasses.Field]:
    """Fields in reading order: the data, then the recipe's own, then training, output and Hub."""
    rank = {group: i for i, group in enumerate(GROUP_ORDER)}
    fields = dataclasses.fields(cls)
    return sorted(fields, key=lambda f: rank.get(_inherited(cls, f.name, "group") or "recipe", len(rank)))


def describe(cls: type) -> list[tuple[str, str, Any, str]]:
    """Every field as (name, type, default, help), for ``contrastkit show``."""
    hints = _type_hints(cls)
    rows = []
    for f in ordered_fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = None
        rows.append((f.name, type_name(hints[f.name]), default, _inherited(cls, f.name, "help") or ""))
    return rows


def default_of(cfg: Any, name: str) -> Any:
    """The default of ``cfg``'s field ``name``: a value other than it was given by the user."""
    return next(f.default for f in dataclasses.fields(cfg) if f.name == name)


#: how config.yaml names a Python object given as a value (``<python DataFrame>``): it cannot hold the object
PYTHON_OBJECT = "<python "


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain, YAML-safe dict of a config in reading order (Python objects passed as data are summarised). A
    ``pathlib.Path`` given from Python (``data=Path("pairs.csv")``) is written as its text, so config.yaml repeats
    the run; the config keeps the Path, which the loaders read as a local path, never a Hub id."""
    out = {}
    for key, value in ((f.name, getattr(cfg, f.name)) for f in ordered_fields(type(cfg))):
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if isinstance(value, (list, dict, str, int, float, bool)) and yaml_safe(value) or value is None:
            out[key] = value
        else:
            out[key] = f"{PYTHON_OBJECT}{type(value).__name__}>"
    return out


#: fields that may name a file or folder to read: config.yaml writes them absolute, so ``--config`` repeats the run
#: from any folder (a relative path would be read from wherever the repeat starts, or be a Hub id there)
INPUT_PATHS = ("data", "eval_data", "model", "retriever", "distill_from", "backbone")


def _absolute(value: Any) -> Any:
    if isinstance(value, str) and value and not Path(value).expanduser().is_absolute() and Path(value).exists():
        return str(Path(value).resolve())
    return value


def dump_yaml(cfg: Any, path: str | Path) -> None:
    """Write the resolved config so the run can be repeated with ``--config`` from any folder: the files and folders
    it read by a relative path written absolute, home paths as ``~/...``. A repeat is a fresh run: ``resume`` and
    ``overwrite`` are written false, or ``--config`` of a resumed run would continue (and rewrite) the newest other
    run."""
    import yaml

    values = {**to_dict(cfg), **{key: False for key in ("resume", "overwrite") if hasattr(cfg, key)}}
    values.update({key: _absolute(values[key]) for key in INPUT_PATHS if key in values})
    text = yaml.safe_dump(home_as_tilde(values), sort_keys=False, allow_unicode=True)
    Path(path).write_text(text, encoding="utf-8")


def require_positive(cfg: Any, *names: str) -> None:
    """Every recipe's first check: these fields must be > 0 (a None means 'use the default' and passes)."""
    for name in names:
        value = getattr(cfg, name)
        if value is not None and value <= 0:
            kind = "an integer" if isinstance(value, int) else "a number"
            raise UserError(f"config field '{name}' must be {kind} > 0, got {value}")


def require_training_length(cfg: Any) -> None:
    """A run needs epochs > 0 (None: the recipe's default) or max_steps > 0."""
    if cfg.epochs is not None and cfg.epochs <= 0 and cfg.max_steps <= 0:
        raise UserError(f"config field 'epochs' must be > 0 (got {cfg.epochs:g}), or set max_steps > 0")


def require_range(cfg: Any, name: str, low: float, high: float, high_open: bool = False, note: str = "") -> None:
    """``low <= value <= high`` (``< high`` with ``high_open``); None means 'use the default' and passes."""
    value = getattr(cfg, name)
    if value is None or (low <= value < high if high_open else low <= value <= high):
        return
    bound = f"at least {low:g} and below {high:g}" if high_open else f"between {low:g} and {high:g}"
    raise UserError(f"config field '{name}' must be {bound}{f' ({note})' if note else ''}, got {value}")


# ------------------------------------------------------------------------------------------ shared parts
# Each recipe's Config subclasses the parts it needs and declares only its own fields; a field it redeclares
# with ``field(value)`` changes only the default. ``validate`` runs every part's ``check``, general ones first.

GROUP_ORDER = ("data", "recipe", "training", "output", "hub")


class Part:
    """Base of every config: ``validate()`` runs the ``check`` of each class in the MRO, shared parts first."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Each config shows only what differs from its defaults (``brief_repr``). Set in the class itself, as
        ``@dataclass`` keeps a ``__repr__`` a class defines and replaces an inherited one."""
        super().__init_subclass__(**kwargs)
        if "__repr__" not in cls.__dict__:
            cls.__repr__ = lambda self: brief_repr(self, ordered_fields(type(self)))  # type: ignore[method-assign]

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        """Configs take keywords only, each checked as ``run()`` checks it: the fields are ordered by their shared
        part, so ``Config("pairs.csv")`` set push_to_hub (a Hub id there would push the model to it), and
        ``Config(epoch=2)`` was a TypeError with no did-you-mean. (``__new__`` gets the call's arguments before the
        dataclass ``__init__`` each recipe's Config generates.)"""
        if args:
            name = f"{cls.__module__.rpartition('.')[2]}.{cls.__qualname__}"  # text.Config
            shown = ", ".join(repr(a) if len(repr(a)) <= 40 else f"<{type(a).__name__}>" for a in args)
            raise UnknownArgument(f"{name}() takes keyword arguments only, e.g. {name}(data='pairs.csv', epochs=2); "
                                  f"got {len(args)} positional ({shown})")
        if dataclasses.is_dataclass(cls):
            names = {f.name for f in dataclasses.fields(cls)}
            unknown = next((key for key in kwargs if key not in names), None)
            if unknown is not None:
                raise _unknown_key(cls, unknown)
        return super().__new__(cls)

    def validate(self) -> None:
        """Reject values that cannot work before any data or model is loaded."""
        for klass in reversed(type(self).__mro__):
            check = klass.__dict__.get("check")
            if check is not None:
                check(self)


@dataclasses.dataclass
class DataArgs(Part):
    """Where the training and held-out data come from."""

    data: Any = field(None, "training data (default: the recipe's bundled sample)", group="data", text=True)
    subset: str | None = field(None, "Hub dataset subset (configuration) name", group="data")
    split: str | None = field(None, "Hub dataset split (default: train)", group="data")
    eval_data: Any = field(None, "held-out data in the same format (default: hold out 10%, at most 1,000)",
                           group="data", text=True)
    eval_subset: str | None = field(None, "subset of an eval_data Hub dataset (default: subset= when eval_data is the "
                                          "training dataset)", group="data")
    eval_split: str | None = field(None, "split of an eval_data Hub dataset or DatasetDict (default: validation, dev "
                                         "or test, when it has one)", group="data")

    def check(self) -> None:
        """A blank data= or eval_data= is an error, never "the current folder"; so is the stand-in config.yaml
        writes for data given from Python, which was looked for as a file, then on the Hub."""
        from .data import check_not_blank

        for name in ("data", "eval_data"):
            check_not_blank(getattr(self, name), name)
            if isinstance(getattr(self, name), str) and getattr(self, name).startswith(PYTHON_OBJECT):
                raise UserError(f"{name}={getattr(self, name)} stands for the Python object that the run this config "
                                f"comes from was given; a config file cannot hold it: give {name}= a file, a folder or "
                                f"a Hub id, or pass the object from Python again")
        if self.eval_split not in (None, "") and self.eval_source() is None:
            if type(self.data).__name__ == "DatasetDict":
                raise UserError(f"eval_split={self.eval_split} names no split of the DatasetDict given as data, other "
                                f"than the one it trains on (splits: {', '.join(self.data)}); pick another, or give "
                                f"eval_data=")
            raise UserError(f"eval_split={self.eval_split} picks a split of eval_data, and no eval_data is given; "
                            f"for another split of the training dataset, give eval_data= its id too")
        if self.eval_subset not in (None, "") and self.eval_data is None:
            raise UserError(f"eval_subset={self.eval_subset} picks a subset of an eval_data Hub dataset, and no "
                            f"eval_data is given; give eval_data= the dataset's id too")

    def eval_source(self) -> Any:
        """eval_data; else data itself when it is a DatasetDict with an evaluation split (validation, dev or test)
        other than the one it trains on, as a user who passes a whole DatasetDict means; else None."""
        if self.eval_data is not None or type(self.data).__name__ != "DatasetDict":
            return self.eval_data
        return self.data if self.dict_eval_split() else None

    def dict_eval_split(self) -> str | None:
        """The split a DatasetDict given as data is evaluated on: eval_split, else the first evaluation split that
        is not the one it trains on."""
        from .data import EVAL_SPLITS, default_split

        train = self.split or default_split(list(self.data), "data", "data")
        wanted = [self.eval_split] if self.eval_split else EVAL_SPLITS
        return next((s for s in wanted if s in self.data and s != train), None)

    def eval_options(self) -> tuple[str | None, str | None]:
        """(subset, split) for loading ``eval_source()``: ``eval_subset``, else the training data's subset when it
        names the same dataset (another split of it, usually); and ``eval_split``. A DatasetDict given as data that
        trains on its validation split is evaluated on another one, said in one line."""
        same = isinstance(self.data, str) and isinstance(self.eval_data, str) and self.data == self.eval_data
        split = self.eval_split or None
        if self.eval_data is None and type(self.data).__name__ == "DatasetDict" and split is None:
            from .data import EVAL_SPLITS, log_line

            chosen = self.dict_eval_split()
            if chosen != next((s for s in EVAL_SPLITS if s in self.data), None):  # the usual one would be training's
                log_line(f"held out: the '{chosen}' split of the DatasetDict (splits: {', '.join(self.data)}; it "
                         f"trains on '{self.split}'); eval_split= picks another")
                split = chosen
        return self.eval_subset or (self.subset if same else None), split


@dataclasses.dataclass
class TrainArgs(Part):
    """How long and how hard to train, and how reproducibly."""

    epochs: float = field(1.0, "training epochs", group="training")
    max_steps: int = field(-1, "stop after this many steps (overrides epochs when > 0)", group="training")
    batch_size: int = field(32, "examples per batch", group="training")
    learning_rate: float | None = field(None, "peak learning rate (default: the recipe's)", group="training")
    seed: int = field(42, "seed for the held-out split, shuffling and initialisation", group="training")
    precision: str = field("auto", "auto, fp32, bf16 or fp16 (auto: bf16 where the hardware supports it, else "
                                   "fp32)", group="training")

    #: the values ``precision`` accepts; a recipe whose trainer takes other names sets its own (None: no check)
    PRECISIONS = PRECISIONS

    def check(self) -> None:
        """Positive batch and rate, some training length, a known precision. Any max_steps <= 0 means off (-1),
        as its help says: the trainers read 0 as "stop at once"."""
        require_positive(self, "batch_size", "learning_rate")
        require_training_length(self)
        if not 0 <= self.seed < 2**32:  # numpy's and Lightning's range
            raise UserError(f"config field 'seed' must be an integer from 0 to {2**32 - 1:,}, got {self.seed}")
        if self.max_steps <= 0:
            self.max_steps = -1
        if self.PRECISIONS and self.precision not in self.PRECISIONS:
            raise UserError(f"config field 'precision' must be {', '.join(self.PRECISIONS[:-1])} or "
                            f"{self.PRECISIONS[-1]}, got '{self.precision}'")


@dataclasses.dataclass
class OutputArgs(Part):
    """Where the run writes, and its checkpoints."""

    output_dir: str | None = field(None, "where to write the model (default: outputs/<recipe>-<timestamp>)",
                                   group="output")
    overwrite: bool = field(False, "allow writing into an existing, non-empty output_dir", group="output")
    resume: bool = field(False, "continue from the last checkpoint in output_dir (default: the newest run of "
                                "this recipe)", group="output")
    save_steps: int = field(500, "save a checkpoint every N steps (and at the end)", group="output")
    save_total_limit: int = field(2, "keep the newest N checkpoints (-1: keep all)", group="output")

    def check(self) -> None:
        """A positive checkpoint interval; keep at least one checkpoint, or all."""
        require_positive(self, "save_steps")
        if self.save_total_limit == 0 or self.save_total_limit < -1:
            raise UserError(f"config field 'save_total_limit' must be >= 1, or -1 to keep all; got "
                            f"{self.save_total_limit}")


@dataclasses.dataclass
class HubArgs(Part):
    """Sharing the result."""

    push_to_hub: str | None = field(None, "after a successful run, push the output to this Hub repo id",
                                    group="hub")

    def check(self) -> None:
        """A repo id of the right form and a token, before any training. ``false`` means no push, as the Trainer's
        ``push_to_hub`` reads it; ``true`` names no repo, so it is refused with the form to use."""
        word = str(self.push_to_hub).strip().lower()
        if word in ("false", "no", "off"):
            self.push_to_hub = None
        elif word in ("true", "yes", "on"):
            raise UserError(f"push_to_hub={self.push_to_hub} names no repo: give the Hub repo id to push to, e.g. "
                            f"push_to_hub=your-name/my-model (or drop push_to_hub to keep the run local)")
        if self.push_to_hub not in (None, ""):
            from .hub import check_push_target

            check_push_target(self.push_to_hub)


@dataclasses.dataclass
class RecipeArgs(DataArgs, TrainArgs, OutputArgs, HubArgs):
    """The shared parts every recipe has: data, training, output and Hub."""
