"""Values typed on the command line, in YAML or as keywords, checked and converted to a config field's type.

No heavy imports here: ``contrastkit show`` must stay fast.
"""

from __future__ import annotations

import math
import types
import typing
from typing import Any, Union

from .errors import UserError


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


class _Number(str):
    """A number typed on the command line, kept with its text: a field that takes text gets ``output_dir=0755`` or
    ``subset=1.10`` as typed, where YAML alone gives 493 and 1.1; a number field gets the number, in decimal."""

    number: Any

    @classmethod
    def of(cls, text: str, number: Any) -> _Number:
        out = cls(text)
        out.number = number
        return out

    def decimal(self) -> Any:
        return int(self, 10) if self.lstrip("+-").isdigit() else self.number


def coerce(name: str, value: Any, tp: Any) -> Any:
    """Check ``value`` against ``tp`` and convert where the meaning is unambiguous (e.g. 1 -> 1.0)."""
    origin = typing.get_origin(tp)
    if isinstance(value, _Number) and tp is not str and origin not in (Union, types.UnionType, list):
        value = value.decimal()
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
                return coerce(name, value, arg)
            except UserError as exc:
                errors.append(exc)
        if len(errors) == 1:  # an optional field (int | None): the one type's own message ("an integer")
            raise errors[0]
        raise UserError(f"config field '{name}' expects {type_name(tp)}, got {value!r}")
    if origin is list:
        (item_tp,) = typing.get_args(tp) or (Any,)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value] if not isinstance(value, str) else [v for v in value.split(",") if v != ""]
        if not isinstance(value, (list, tuple)):
            raise UserError(f"config field '{name}' expects a list ({type_name(tp)}), got {value!r}")
        return [coerce(name, _typed(v) if isinstance(v, str) and item_tp is not str else v, item_tp)
                for v in value]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise UserError(
                f"config field '{name}' expects a mapping such as {{a: b}}, got {value!r}")
        key_tp, value_tp = typing.get_args(tp) or (Any, Any)  # {anchor: 0} names a column "0"
        return {coerce(name, k, key_tp): coerce(name, v, value_tp) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "yes", "no", "1", "0"}:
            return value.lower() in {"true", "yes", "1"}
        if isinstance(value, int) and value in (0, 1):  # YAML reads a 1 or 0 as a number
            return bool(value)
        raise UserError(f"config field '{name}' expects true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():  # YAML keeps 0128 as text (not octal)
            return int(value, 10)
        raise UserError(f"config field '{name}' expects an integer, got {value!r}")
    if tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str) and any(c.isdigit() for c in value):  # YAML 1.1 reads 1e-4 as text
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None:
            raise UserError(f"config field '{name}' expects a number, got {value!r}")
        if not math.isfinite(number):
            raise UserError(f"config field '{name}' expects a finite number, got {value}")
        return number
    if tp is str:
        if isinstance(value, (dict, list)):
            raise UserError(f"config field '{name}' expects text, got {value!r}")
        return str(value)
    return value


def _typed(raw: str) -> Any:
    """A command-line value as YAML reads it, except that a number keeps its text too (``_Number``)."""
    value = _parse_scalar(raw)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _Number.of(raw.strip(), value)
    return value


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
        value = _typed(raw) if raw.strip() else raw  # data=" " stays blank text, not YAML's null
        # only {a: b} is a mapping: prompts=query: is the text "query: ", not YAML's {query: null}
        out[key] = raw if isinstance(value, dict) and not raw.lstrip().startswith("{") else value
    return out
