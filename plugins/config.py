"""Typed configs: a dataclass <- YAML file <- ``key=value`` overrides, with errors that name the field.

The same dataclass serves the CLI, YAML files and Python keyword arguments (as in TRL).
No heavy imports here: ``contrastkit show`` must stay fast.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, Union

from .errors import UserError, did_you_mean


def field(default: Any = None, help: str = "", **kwargs: Any) -> Any:
    """A dataclass field with a default and a one-line help text (mutable defaults are copied)."""
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata={"help": help}, **kwargs)
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)


def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def type_name(tp: Any) -> str:
    """A short, readable name for a field type, e.g. ``int``, ``list[int] | None``."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(type_name(a) for a in typing.get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if tp is type(None):
        return "None"
    return getattr(tp, "__name__", str(tp))


def _parse_scalar(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _coerce(name: str, value: Any, tp: Any) -> Any:
    """Check ``value`` against ``tp`` and convert where the meaning is unambiguous (e.g. 1 -> 1.0)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(name, value, arg)
            except UserError as exc:
                errors.append(exc)
        raise UserError(f"config field '{name}' expects {type_name(tp)}, got {value!r}")
    if origin is list:
        (item_tp,) = typing.get_args(tp) or (Any,)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value] if not isinstance(value, str) else [v for v in value.split(",") if v != ""]
        if not isinstance(value, (list, tuple)):
            raise UserError(f"config field '{name}' expects a list ({type_name(tp)}), got {value!r}")
        return [_coerce(name, _parse_scalar(v) if isinstance(v, str) and item_tp is not str else v, item_tp)
                for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(
                f"config field '{name}' expects a mapping such as {{a: b}}, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "yes", "no", "1", "0"}:
            return value.lower() in {"true", "yes", "1"}
        raise UserError(f"config field '{name}' expects true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise UserError(f"config field '{name}' expects an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and any(c.isdigit() for c in value):  # YAML 1.1 reads 1e-4 as text
            try:
                return float(value)
            except ValueError:
                pass
        raise UserError(f"config field '{name}' expects a number, got {value!r}")
    if tp is str:
        if isinstance(value, (dict, list)):
            raise UserError(f"config field '{name}' expects text, got {value!r}")
        return value if isinstance(value, str) else str(value)
    return value


def _unknown_key(cls: type, key: str) -> UserError:
    hint = did_you_mean(key, [f.name for f in dataclasses.fields(cls)], cutoff=0.5)
    return UserError(f"unknown config key '{key}'.{hint} Run 'contrastkit show RECIPE' to list the valid keys.")


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Turn ``["epochs=2", "columns={anchor: q}"]`` into a dict; values are parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"override '{item}' is not key=value; write it as e.g. epochs=2")
        key, _, raw = item.partition("=")
        key = key.strip().lstrip("-").replace("-", "_")
        if not key:
            raise UserError(f"override '{item}' has no key; write it as e.g. epochs=2")
        out[key] = _parse_scalar(raw) if raw != "" else ""
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a dict, with one-line errors for a missing or malformed file."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file '{path}' does not exist; check the path given to --config")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise UserError(f"config file '{path}' is not valid YAML{where}; fix the syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file '{path}' must hold a mapping of key: value, not {type(data).__name__}")
    return data


def build(cls: type, values: dict[str, Any] | None = None, base: Any = None) -> Any:
    """Build a ``cls`` instance from ``values`` (on top of ``base`` or the defaults), checking keys and types."""
    hints = _type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    current = dataclasses.asdict(base) if base is not None else {}
    for key, value in (values or {}).items():
        if key not in names:
            raise _unknown_key(cls, key)
        current[key] = _coerce(key, value, hints[key])
    cfg = cls(**current)
    validate = getattr(cfg, "validate", None)
    if callable(validate):
        validate()
    return cfg


def resolve(cls: type, cfg: Any = None, config: str | Path | None = None, **overrides: Any) -> Any:
    """The Python entry: a config object, a YAML file and/or keyword overrides -> a checked ``cls``."""
    if cfg is not None and not isinstance(cfg, cls):
        if isinstance(cfg, dict):
            overrides = {**cfg, **overrides}
            cfg = None
        elif isinstance(cfg, (str, Path)) and str(cfg).endswith((".yaml", ".yml")):
            config, cfg = cfg, None
        else:
            raise UserError(f"run() takes a {cls.__name__}, a dict or a YAML path, not {type(cfg).__name__}")
    values: dict[str, Any] = {}
    if config is not None:
        values.update(read_yaml(config))
    values.update(overrides)
    return build(cls, values, base=cfg)


def describe(cls: type) -> list[tuple[str, str, Any, str]]:
    """Every field as (name, type, default, help), for ``contrastkit show``."""
    hints = _type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = None
        rows.append((f.name, type_name(hints[f.name]), default, f.metadata.get("help", "")))
    return rows


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain, YAML-safe dict of a config (Python objects passed as data are summarised)."""
    out = {}
    for key, value in dataclasses.asdict(cfg).items():
        if isinstance(value, (list, dict, str, int, float, bool)) and _yaml_safe(value) or value is None:
            out[key] = value
        else:
            out[key] = f"<python {type(value).__name__}>"
    return out


def _yaml_safe(value: Any) -> bool:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return True
    if isinstance(value, (list, tuple)):
        return len(value) <= 64 and all(_yaml_safe(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _yaml_safe(v) for k, v in value.items())
    return False


def _home_as_tilde(value: Any) -> Any:
    """Paths under the home folder as ``~/...`` (every loader expands it), so a shared config.yaml names no user."""
    home = str(Path.home())
    if isinstance(value, str) and home not in ("/", "") and (value == home or value.startswith(home + os.sep)):
        return "~" + value[len(home):]
    if isinstance(value, dict):
        return {k: _home_as_tilde(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_home_as_tilde(v) for v in value]
    return value


def dump_yaml(cfg: Any, path: str | Path) -> None:
    """Write the resolved config so the run can be repeated with ``--config`` (home paths written as ``~/...``)."""
    import yaml

    text = yaml.safe_dump(_home_as_tilde(to_dict(cfg)), sort_keys=False, allow_unicode=True)
    Path(path).write_text(text, encoding="utf-8")


def require_positive(cfg: Any, *names: str) -> None:
    """Every recipe's first check: these fields must be > 0 (a None means 'use the default' and passes)."""
    for name in names:
        value = getattr(cfg, name)
        if value is not None and value <= 0:
            kind = "an integer" if isinstance(value, int) else "a number"
            raise UserError(f"config field '{name}' must be {kind} > 0, got {value}")


def require_training_length(cfg: Any) -> None:
    """A run needs epochs > 0 or max_steps > 0."""
    if cfg.epochs <= 0 and cfg.max_steps <= 0:
        raise UserError(f"config field 'epochs' must be > 0 (got {cfg.epochs:g}), or set max_steps > 0")
