"""Values typed on the command line, in YAML or as keywords, checked and converted to a config field's type.

No heavy imports here: ``contrastkit show`` must stay fast.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from pathlib import Path
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


class Typed(str):
    """A value YAML reads as a number, a boolean or a date, kept with its text. A field that takes text gets it as
    typed (``output_dir=0755``, ``subset=1.10``, ``subset: no`` for Norwegian), where YAML alone gives 493, 1.1 and
    False; any other field gets YAML's value, an integer in decimal (``seed=010`` is 10, not octal 8)."""

    value: Any

    @classmethod
    def of(cls, text: str, value: Any) -> Typed:
        out = cls(text)
        out.value = value
        return out

    def decimal(self) -> Any:
        plain_int = isinstance(self.value, int) and not isinstance(self.value, bool)
        return int(self, 10) if plain_int and self.lstrip("+-").isdigit() else self.value


def _keeping_text(tag: str) -> Any:
    """A YAML constructor for ``tag`` that returns YAML's value wrapped with the scalar's text (``Typed``)."""
    import yaml

    construct = yaml.SafeLoader.yaml_constructors[tag]
    return lambda loader, node: Typed.of(node.value, construct(loader, node))


_LOADER: Any = None


def load_yaml(text: str) -> Any:
    """YAML as ``yaml.safe_load`` reads it, except that numbers, booleans and dates keep their text (``Typed``)."""
    global _LOADER
    import yaml

    if _LOADER is None:
        _LOADER = type("TextKeepingLoader", (yaml.SafeLoader,), {})
        for kind in ("int", "float", "bool", "timestamp"):
            tag = f"tag:yaml.org,2002:{kind}"
            _LOADER.add_constructor(tag, _keeping_text(tag))
    return yaml.load(text, Loader=_LOADER)  # a SafeLoader subclass: safe


def _parse_scalar(text: str) -> Any:
    import yaml

    try:
        return load_yaml(text)
    except yaml.YAMLError:
        return text


def plain(value: Any) -> Any:
    """``value`` with every ``Typed`` inside it replaced by YAML's value (for fields of any type). Only the plain
    lists and dicts YAML builds are rebuilt: a ``DatasetDict`` (a dict) or a user's own sequence stays as given."""
    if isinstance(value, Typed):
        return value.decimal()
    if type(value) is list:
        return [plain(v) for v in value]
    if type(value) is dict:
        return {plain(k): plain(v) for k, v in value.items()}
    return value


def coerce(name: str, value: Any, tp: Any) -> Any:
    """Check ``value`` against ``tp`` and convert where the meaning is unambiguous (e.g. 1 -> 1.0)."""
    origin = typing.get_origin(tp)
    if isinstance(value, Typed) and tp is not str and origin not in (Union, types.UnionType, list):
        value = value.decimal()
    if tp is Any:
        return plain(value)
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
    """A command-line value as YAML reads it, except that numbers, booleans and dates keep their text (``Typed``)."""
    value = _parse_scalar(raw)
    return Typed.of(raw.strip(), value.value) if isinstance(value, Typed) else value


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Turn ``["epochs=2", "columns={anchor: q}"]`` into a dict; values are parsed as YAML scalars. A key given twice
    with two values is refused rather than the last one taken unsaid."""
    out: dict[str, Any] = {}
    first: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"override '{item}' is not key=value; write it as e.g. epochs=2")
        key, _, raw = item.partition("=")
        key = key.strip().lstrip("-").replace("-", "_")
        if not key:
            raise UserError(f"override '{item}' has no key; write it as e.g. epochs=2")
        value = _typed(raw) if raw.strip() else raw  # data=" " stays blank text, not YAML's null
        value = value if _meant(raw, value) else raw
        if key in out and out[key] != value:  # e.g. an edited command line: which one was meant is the user's call
            raise UserError(f"{key} is given twice ({key}={first[key]}, {item.strip()}); keep the one you mean")
        out[key], first[key] = value, first.get(key, raw.strip())
    return out


def _meant(raw: str, value: Any) -> bool:
    """Whether YAML's reading of a one-line value is what its writer meant. Only [a, b] is a list and {a: b} a
    mapping (prompts=query: is the text "query: "); only null and ~ are null. A '#', '&', '|' or '- ' reached us
    through the shell's quotes, so it is text: output_dir='#3 run' is not YAML's comment (null), split=&train not
    an anchor, commit_message='- typo' not a list."""
    text = raw.strip()
    if isinstance(value, dict):
        return text.startswith("{")
    if isinstance(value, list):
        return text.startswith("[")
    if value is None:
        return text in ("null", "Null", "NULL", "~")
    if isinstance(value, str) and not isinstance(value, Typed):
        return value == text or text[:1] in "'\""  # a quoted value is YAML's on purpose
    return True


#: the YAML files shipped in contrastkit.recipes.configs (``plugins`` reads them as files, never imports recipes)
_BUNDLED = Path(__file__).resolve().parent.parent / "recipes" / "configs"


def _bundled(path: Path) -> Path:
    """``path``; or, for a bare file name that is no file here, the bundled config of that name when there is one
    (``--config text_matryoshka.yaml`` as the bundled files' own comments run them)."""
    if path.is_file() or path.parent != Path(".") or not (_BUNDLED / path.name).is_file():
        return path
    return _BUNDLED / path.name


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a dict, with one-line errors for a missing or malformed file. Numbers, booleans
    and dates keep their text, so ``subset: no`` or ``output_dir: 0755`` mean what they do on the command line."""
    import yaml

    p = _bundled(Path(path))
    if not p.is_file():
        raise UserError(f"config file '{path}' does not exist; check the path given to --config (bundled, found "
                        f"by name: {', '.join(sorted(q.name for q in _BUNDLED.glob('*.yaml')))})")
    try:
        data = load_yaml(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise UserError(f"config file '{path}' is not valid YAML{where}; fix the syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file '{path}' must hold a mapping of key: value, not {type(data).__name__}")
    return data


def brief_repr(cfg: Any, fields: list[dataclasses.Field] | None = None) -> str:
    """``text.Config(data='pairs.csv', epochs=2)``: a config's class and the fields that differ from their defaults,
    as scikit-learn shows an estimator. The dataclass repr listed all 40-odd fields, a screenful in a notebook (and
    in every Result); a DataFrame or Dataset given as data is named by its type, not printed. ``fields``: in this
    order (default: the dataclass's)."""
    shown = []
    for f in dataclasses.fields(cfg) if fields is None else fields:
        if not f.repr:
            continue
        value = getattr(cfg, f.name)
        simple = _simple(value)
        default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        if value is default or simple and _simple(default) and value == default and \
                isinstance(value, bool) == isinstance(default, bool):  # overwrite=1 is not the default False
            continue
        shown.append(f"{f.name}={value!r}" if simple else f"{f.name}=<{type(value).__name__}>")
    return f"{type(cfg).__module__.rpartition('.')[2]}.{type(cfg).__qualname__}({', '.join(shown)})"


def _simple(value: Any) -> bool:
    """A value short to print and safe to compare: text, numbers, None, and small plain lists and dicts of them."""
    if value is None or isinstance(value, (str, int, float, bool, os.PathLike)):
        return True
    if type(value) in (list, tuple):
        return len(value) <= 16 and all(_simple(v) for v in value)
    if type(value) is dict:
        return len(value) <= 16 and all(_simple(k) and _simple(v) for k, v in value.items())
    return False


def yaml_safe(value: Any) -> bool:
    """Whether config.yaml can hold ``value`` as it is: text, numbers, None, and plain lists (64 at most) and
    dicts of them; anything else (a DataFrame given as data) is written as its type."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return True
    if isinstance(value, (list, tuple)):
        return len(value) <= 64 and all(yaml_safe(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and yaml_safe(v) for k, v in value.items())
    return False


def home_as_tilde(value: Any) -> Any:
    """Paths under the home folder as ``~/...`` (every loader expands it), so a shared config.yaml names no user."""
    home = str(Path.home())
    if isinstance(value, str) and home not in ("/", "") and (value == home or value.startswith(home + os.sep)):
        return "~" + value[len(home):]
    if isinstance(value, dict):
        return {k: home_as_tilde(v) for k, v in value.items()}
    if isinstance(value, list):
        return [home_as_tilde(v) for v in value]
    return value
