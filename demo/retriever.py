"""Run folders in the demo, and the retriever behind a reranker: search hands a CrossEncoder the top-k of a
bi-encoder, as its evaluation did.

The rerank recipe records that bi-encoder and k in its run folder (``metrics.json``: ``retriever``, ``top_k``;
``config.yaml``: the same keys). Without them (a bare CrossEncoder, a Hub repo without the files), or when the
named retriever cannot be loaded, the demo uses the packaged all-MiniLM-L6-v2 and says so in the page.

A ``checkpoint-N`` inside a run loads as a model, but its run's settings live two folders up, and the run's
``metrics.json`` describes the final model, not the checkpoint. A run that has not saved its model yet (stopped,
or still training) has only checkpoints: the page names the newest one the demo can load, and how to finish the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from contrastkit.plugins.outdir import CHECKPOINTS

from .core import _LOADED, Slot, _fit_seq_length, model_key, remember

DEFAULT_TOP_K = 20  # the rerank recipe's default top_k
_RETRIEVERS: dict[tuple[str, bool, tuple], Any] = {}


def run_folder(name: str) -> Path | None:
    """The folder holding a model's run files: the folder itself, or a Hub repo's snapshot in the local cache
    (``hub.load`` downloaded it; nothing is downloaded here). None when there is neither."""
    local = Path(name).expanduser()
    if local.is_dir():
        return local
    from huggingface_hub import try_to_load_from_cache

    for file in ("metrics.json", "config.yaml"):
        try:
            found = try_to_load_from_cache(name, file)
        except Exception:  # noqa: BLE001 - not a repo id (a missing path, say): it has no cached run files
            return None
        if isinstance(found, str):
            return Path(found).parent
    return None


def run_settings(name: str) -> tuple[str | None, int | None, str]:
    """(retriever, top_k, where they were read) from the reranker's run folder; (None, None, "") when it has none,
    and (None, None, "none") when its run used none (config.yaml then names a default that was never loaded)."""
    from contrastkit.plugins.report import read_metrics

    folder = run_of_checkpoint(name) or run_folder(name)  # a checkpoint trained with its run's settings
    if folder is None:
        return None, None, ""
    metrics = read_metrics(folder) or {}
    if "retriever" in metrics and metrics["retriever"] is None:  # trained and evaluated on scored/labelled pairs
        return None, None, "none"
    config = read_yaml(folder / "config.yaml")
    retriever = next((v for v in (metrics.get("retriever"), config.get("retriever")) if isinstance(v, str) and v),
                     None)
    top_k = next((v for v in (metrics.get("top_k"), config.get("top_k")) if isinstance(v, int) and v > 0), None)
    source = "metrics.json" if metrics.get("retriever") else "config.yaml" if config.get("retriever") else ""
    return retriever, top_k, source


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        import yaml

        data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    except Exception:  # noqa: BLE001 - unreadable or broken YAML: the file says nothing
        return {}
    return data if isinstance(data, dict) else {}


def load_retriever(name: str, trust_remote_code: bool = False) -> Any:
    """A bi-encoder (SentenceTransformer) through ``load_model``, once per model; a model the demo already loaded
    for a slot is shared. Raises UserError when ``name`` is not a bi-encoder that loads."""
    from contrastkit.plugins.st.models import load_model

    key = model_key(name, trust_remote_code)
    shared = _LOADED.get(key)
    if shared is not None and shared.kind == "dense":
        return shared.model
    if key not in _RETRIEVERS:  # load_model refuses a reranker or sparse encoder folder
        model = load_model(name, trust_remote_code, what="retriever")
        _fit_seq_length(model)
        remember(_RETRIEVERS, key, model)
        if key not in _LOADED:  # a slot that names the same model, loaded after this, shares it
            remember(_LOADED, key, Slot("retriever", name, model=model))
    return _RETRIEVERS[key]


def attach(slot: Slot, trust_remote_code: bool = False) -> None:
    """Give a reranker slot its retriever, its top-k and a note for the page saying where both came from."""
    from contrastkit.plugins.st.models import DEFAULT_TEXT_MODEL, HUB_TEXT_MODEL, resolve_model_name

    named, top_k, source = run_settings(slot.name)
    slot.top_k = top_k or DEFAULT_TOP_K
    default = DEFAULT_TEXT_MODEL + (" (the packaged copy)" if resolve_model_name(DEFAULT_TEXT_MODEL)[0] !=
                                    HUB_TEXT_MODEL else "")
    reason = ""
    if named:
        try:
            model = load_retriever(named, trust_remote_code)
            slot.retriever = Slot(f"{slot.role} reranker's retriever", named, model=model)
            slot.retriever_from_run = True
            slot.retriever_note = (f"search reranks the top {slot.top_k} of `{named}`, the retriever its run used "
                                   f"({source})")
            return
        except Exception as exc:  # noqa: BLE001 - the page says why, and the fallback still searches
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split("; pass ")[0][:200]
    try:
        model = load_retriever(DEFAULT_TEXT_MODEL, trust_remote_code)
    except Exception as exc:  # noqa: BLE001
        slot.retriever_note = (f"no retriever could be loaded for search ({reason or 'its folder names none'}; "
                               f"{DEFAULT_TEXT_MODEL}: {str(exc).splitlines()[0][:200]}), so it does not search")
        return
    slot.retriever = Slot(f"{slot.role} reranker's retriever", DEFAULT_TEXT_MODEL, model=model)
    if named:
        slot.retriever_note = (f"the retriever its run used, `{named}`, could not be loaded ({reason}), so search "
                               f"reranks the top {slot.top_k} of {default} instead")
    elif source == "none":
        slot.retriever_note = (f"its run used no retriever (it trained and was evaluated on scored or labelled "
                               f"pairs), so search reranks the top {slot.top_k} of {default}")
    else:
        slot.retriever_note = (f"its folder does not say which retriever its run used, so search reranks the top "
                               f"{slot.top_k} of {default}")


# --------------------------------------------------------------------------- checkpoints and unfinished runs
def _step(path: Path) -> int | None:
    """N of a Trainer ``checkpoint-N`` folder name, else None."""
    prefix, _, number = path.name.rpartition("-")
    return int(number) if prefix == "checkpoint" and number.isdigit() else None


def run_of_checkpoint(name: str) -> Path | None:
    """The run folder that holds ``name`` as ``checkpoints/checkpoint-N``, or None (not such a checkpoint)."""
    path = Path(name).expanduser()
    if _step(path) is None or path.parent.name != CHECKPOINTS or not path.is_dir():
        return None
    return path.parent.parent


def checkpoint_note(name: str) -> str:
    """One status line for a checkpoint inside a run ('' for anything else): which run and step it is, and why the
    run's held-out figures are not shown for it."""
    run = run_of_checkpoint(name)
    if run is None:
        return ""
    step = _step(Path(name))
    return (f"ℹ️ This is the checkpoint at step {step} of the run `{run}`: its settings come from that run, but the "
            f"run's held-out figures (metrics.json) are for the run's final model, so none are shown for it.")


def unfinished_run(name: str) -> str | None:
    """Why ``name`` loads no model when it is a run that has not saved its model yet (``outdir.unfinished``), or a
    run's ``checkpoints`` folder, with what to pass instead: the run's final model or its newest checkpoint. None
    for any other folder (the loader's own message says what is wrong with it)."""
    from contrastkit.plugins.outdir import newest_checkpoint, unfinished

    path = Path(name).expanduser()
    folder = path.parent if path.name == CHECKPOINTS and path.is_dir() else path
    if not (folder / CHECKPOINTS).is_dir() or (path / "modules.json").is_file() or (path / "config.json").is_file():
        return None
    newest = newest_checkpoint(folder / CHECKPOINTS)
    if folder != path and ((folder / "modules.json").is_file() or (folder / "config.json").is_file()):
        also = f", or one checkpoint, e.g. model={newest}" if newest else ""
        return f"'{path}' holds the run's checkpoints; pass the run folder, model={folder}, for its final model{also}"
    why = unfinished(folder)
    if why is None:
        return None
    return f"{why}; or pass its newest checkpoint, model={newest}" if newest else why
