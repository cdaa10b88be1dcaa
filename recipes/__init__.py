"""contrastkit recipes: one short module per recipe, listed here by name.

The registry is an explicit mapping of name -> (module path, one-line description) so that
``contrastkit list`` imports nothing heavy. Third-party packages add recipes through the
entry-point group ``contrastkit.recipes`` (name -> module path).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from contrastkit.plugins.errors import UserError, did_you_mean

ENTRY_POINT_GROUP = "contrastkit.recipes"

#: Built-in recipes: name -> (module path, one-line description).
RECIPES: dict[str, tuple[str, str]] = {
    "text": ("contrastkit.recipes.text",
             "Fine-tune a sentence-transformers text embedding model; the loss is chosen from your columns."),
    "rerank": ("contrastkit.recipes.rerank",
               "Train a reranker (CrossEncoder) that rescores a retriever's top-k; negatives mined for pairs."),
    "sparse": ("contrastkit.recipes.sparse",
               "Train a sparse encoder (CSR on a dense model, or SPLADE on a masked-LM) for inverted-index search."),
    "image": ("contrastkit.recipes.image",
              "Contrastive image embeddings with lightly on Lightning: supcon on labelled images, else SimCLR, MoCo, BYOL, ..."),
    "image-text": ("contrastkit.recipes.image_text",
                   "Fine-tune a CLIP-style image-text dual encoder on image-caption pairs."),
}


@dataclass
class RecipeInfo:
    """Where a recipe comes from, for ``contrastkit list``."""

    name: str
    module: str
    description: str
    source: str = "contrastkit"
    error: str | None = None


def _entry_points() -> list:
    from importlib.metadata import entry_points

    try:
        return list(entry_points(group=ENTRY_POINT_GROUP))
    except Exception:  # noqa: BLE001 - a broken distribution's metadata must never hide the built-ins
        return []


def _first_doc_line(module: str) -> tuple[str, str | None]:
    """A plugin recipe's description (first docstring line) or the one-line reason it is broken."""
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any import failure is reported, never raised
        return "", f"cannot be imported: {type(exc).__name__}: {exc}".splitlines()[0]
    problem = _contract_problem(mod)
    if problem:
        return "", problem
    doc = getattr(mod, "DESCRIPTION", None) or (mod.__doc__ or "").strip().splitlines()[0:1]
    return (doc if isinstance(doc, str) else (doc[0] if doc else "")), None


def _contract_problem(mod: ModuleType) -> str | None:
    if not callable(getattr(mod, "run", None)):
        return "has no run(cfg) function"
    if getattr(mod, "Config", None) is None:
        return "has no Config dataclass"
    return None


def list_recipes(include_plugins: bool = True) -> list[RecipeInfo]:
    """Built-in recipes, then those that installed packages add through entry points."""
    infos = [RecipeInfo(name, mod, desc) for name, (mod, desc) in RECIPES.items()]
    if include_plugins:
        for ep in _entry_points():
            if ep.name in RECIPES:
                continue  # built-ins win; a plugin cannot shadow them
            dist = getattr(getattr(ep, "dist", None), "name", None) or "plugin"
            desc, error = _first_doc_line(ep.value)
            infos.append(RecipeInfo(ep.name, ep.value, desc, source=dist, error=error))
    return infos


def _load_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise UserError(f"recipe file '{path}' does not exist; use 'contrastkit cp RECIPE {path}' to make one")
    name = f"contrastkit_user_recipe_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"recipe file '{path}' is not a Python module; it must end in .py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:  # IndentationError too
        sys.modules.pop(name, None)
        where = path if not exc.filename or Path(exc.filename).resolve() == path.resolve() else exc.filename
        raise UserError(f"recipe file '{where}', line {exc.lineno}: {exc.msg} (`{(exc.text or '').strip()[:80]}`); "
                        f"fix the syntax there") from None
    except Exception as exc:  # noqa: BLE001 - an import or name error in the user's file is one line
        sys.modules.pop(name, None)
        fix = "install the missing package or fix the import" if isinstance(exc, ImportError) else "fix it there"
        raise UserError(f"recipe file '{path}', line {_user_line(exc, path)}: {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}; {fix}") from None
    return module


def _user_line(exc: BaseException, path: Path) -> int | str:
    """The line of the user's recipe file where ``exc`` was raised (its last frame in that file)."""
    import traceback

    target = str(path.resolve())
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if str(Path(f.filename).resolve()) == target]
    return lines[-1] if lines else "?"


def load_recipe(name_or_path: str) -> ModuleType:
    """Import a recipe module by registry name, entry-point name or a path to a copied ``.py`` file."""
    if name_or_path.endswith(".py") or "/" in name_or_path:
        module = _load_file(Path(name_or_path))
    else:
        target = RECIPES.get(name_or_path, (None,))[0]
        plugin = None
        if target is None:
            for ep in _entry_points():
                if ep.name == name_or_path:
                    target = ep.value
                    plugin = getattr(getattr(ep, "dist", None), "name", None) or "its package"
                    break
        if target is None:
            hint = did_you_mean(name_or_path, [info.name for info in list_recipes()])
            raise UserError(f"unknown recipe '{name_or_path}'.{hint} Run 'contrastkit list' to see the recipes.")
        try:
            module = importlib.import_module(target)
        except Exception as exc:  # a broken plugin is one line, never a traceback
            if plugin is not None:
                reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
                raise UserError(f"recipe '{name_or_path}' from {plugin} cannot be imported ({reason}); "
                                f"fix or reinstall {plugin}") from None
            if not isinstance(exc, ImportError):
                raise
            raise UserError(f"recipe '{name_or_path}' cannot be imported ({exc}); install the package that "
                            f"provides it, e.g. pip install 'contrastkit[image]'") from None
    problem = _contract_problem(module)
    if problem:
        raise UserError(f"recipe '{name_or_path}' {problem}; see 'The recipe contract' in the README")
    return module


def recipe_source(name_or_path: str) -> Path:
    """The file that defines a recipe, for ``contrastkit cp``."""
    if name_or_path.endswith(".py"):
        return Path(name_or_path)
    target = RECIPES.get(name_or_path, (None,))[0]
    if target is None:
        target = next((ep.value for ep in _entry_points() if ep.name == name_or_path), None)
    if target is None:
        load_recipe(name_or_path)  # raises the unknown-recipe error with a suggestion
    spec = importlib.util.find_spec(target)
    if spec is None or spec.origin is None:
        raise UserError(f"recipe '{name_or_path}' has no source file to copy")
    return Path(spec.origin)
