"""Load any contrastkit output, a folder or a Hub id, as the model it is: a SentenceTransformer, CrossEncoder,
SparseEncoder or ImageEncoder. safetensors only; a missing repo, a damaged folder or an unreachable Hub is one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UserError
from .connection import REPO_ID, check_repo_id, offline_if_unreachable, reason, timeouts
from .folders import (
    IGNORE_PATTERNS,
    IMAGE_TYPE,
    PICKLE_PATTERNS,
    has_safetensors,
    read_json,
    without_tokenizer,
)


def load(repo_id_or_path: str | Path, revision: str | None = None, trust_remote_code: bool = False,
         **options: Any) -> Any:
    """A ready model for any contrastkit output (folder or Hub id): a SentenceTransformer, CrossEncoder, SparseEncoder
    or ImageEncoder. ``options`` go to the sentence-transformers class as its own keyword arguments, e.g.
    ``truncate_dim=64`` for a Matryoshka model, ``max_active_dims=`` for a sparse one, or ``device="cpu"``."""
    from ..st.models import resolve_model_name

    name = str(repo_id_or_path)
    if not name.strip():
        raise UserError("no model given; pass an output folder or a Hub repo id (user/name)")
    name, _ = resolve_model_name(name)
    path = Path(name).expanduser()
    if path.is_dir():
        folder = path
    elif path.exists():
        raise UserError(f"'{name}' is a file; pass the output folder (with config.json or modules.json) or a Hub id")
    elif REPO_ID.match(name) and not name.startswith((".", "/", "~")):
        try:  # the Hub's own rules, before any request: 'me/x.git' is no repo to look for
            check_repo_id(name)
        except UserError as exc:
            raise UserError(f"no folder '{name}' exists, and {exc}") from None
        folder = _download(name, revision)
    else:
        raise UserError(f"'{name}' is neither an existing folder nor a Hub repo id (user/name); check the path")
    return _load_folder(folder, name, trust_remote_code, options)


def _download(repo_id: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        with timeouts(), offline_if_unreachable(f"'{repo_id}'"):
            return Path(snapshot_download(repo_id, revision=revision,
                                          ignore_patterns=IGNORE_PATTERNS + PICKLE_PATTERNS))
    except RevisionNotFoundError:
        raise UserError(f"Hub repo '{repo_id}' has no revision '{revision}'; check the branch, tag or commit") from None
    except GatedRepoError:
        raise UserError(f"Hub repo '{repo_id}' is gated; accept its terms on the Hub, then set HF_TOKEN") from None
    except RepositoryNotFoundError:
        raise UserError(f"Hub repo '{repo_id}' was not found (or is private); check the id, or set HF_TOKEN "
                        f"to a token that can read it") from None
    except (LocalEntryNotFoundError, OfflineModeIsEnabled):
        raise UserError(f"could not download '{repo_id}': the Hub is unreachable (or HF_HUB_OFFLINE=1) and it is "
                        f"not in the local cache; connect and retry, or pass a local folder") from None
    except Exception as exc:  # noqa: BLE001 - any other transport failure is still one clear line
        raise UserError(f"could not download '{repo_id}' ({reason(exc)}); check the id and your connection, "
                        f"then retry") from None


def _load_folder(folder: Path, name: str, trust_remote_code: bool, options: dict[str, Any]) -> Any:
    config = read_json(folder / "config.json")
    is_st = (folder / "modules.json").is_file()
    if not is_st and not config and (folder / "config.json").is_file():
        raise UserError(f"'{name}' has a config.json that is not a JSON object; restore it from the run (or its Hub "
                        f"repo)")
    if not is_st and not config:
        from ..outdir import unfinished

        why = unfinished(folder)
        if why:
            raise UserError(why)
        raise UserError(f"'{name}' has neither modules.json nor config.json; pass a folder written by "
                        f"'contrastkit run' (or its Hub id)")
    if not has_safetensors(folder):
        pickles = sorted(p.name for p in folder.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".ckpt"))
        what = f"only pickle weights ({', '.join(pickles[:2])})" if pickles else "no weights"
        raise UserError(f"'{name}' has {what}; contrastkit loads safetensors only: re-save the model with "
                        f"safe_serialization=True (or push a contrastkit output)")
    if config.get("contrastkit_type") == IMAGE_TYPE:
        try:
            from ..vision.encoder import load_encoder
        except ImportError as exc:
            raise UserError(f"'{name}' is an image model and needs the image extras ({exc}); "
                            f"pip install 'contrastkit[image]'") from None
        if options:
            raise UserError(f"'{name}' is an image model, which takes no {', '.join(sorted(options))}; load it "
                            f"without, then move it with .to(device)")
        try:
            return load_encoder(folder)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - cut-off weights, a config missing keys: one line, not a traceback
            raise UserError(f"could not load '{name}' ({type(exc).__name__}: {reason(exc)}); its files look damaged: "
                            f"restore the folder from the run (or its Hub repo)") from None
    if (missing := without_tokenizer(folder)) is not None:
        where = "" if missing == "." else f" in {missing}/"
        raise UserError(f"could not load '{name}' (no tokenizer files{where}: tokenizer.json or a vocabulary); its "
                        f"files look damaged: restore the folder from the run (or its Hub repo)")
    import sentence_transformers

    from ..st.models import saved_type

    cls = getattr(sentence_transformers, saved_type(str(folder)) or "SentenceTransformer", None) or \
        sentence_transformers.SentenceTransformer  # a CrossEncoder or SparseEncoder loads as itself
    _check_options(cls, name, options)
    try:
        return cls(str(folder), trust_remote_code=trust_remote_code, **options)
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise UserError(f"'{name}' runs its own code; pass trust_remote_code=true if you trust it") from None
        raise UserError(f"could not load '{name}' ({reason(exc)}); is it a contrastkit output?") from None
    except OSError as exc:
        raise UserError(f"could not load '{name}' ({reason(exc)}); is it a contrastkit output?") from None
    except Exception as exc:  # noqa: BLE001 - cut-off weights and the like: one line, not a traceback
        raise UserError(f"could not load '{name}' ({type(exc).__name__}: {reason(exc)}); its files look damaged: "
                        f"restore the folder from the run (or its Hub repo)") from None


def _check_options(cls: type, name: str, options: dict[str, Any]) -> None:
    """An option the model's class does not take is named with the ones it does (``truncate_dim`` is a
    SentenceTransformer's; a SparseEncoder's is ``max_active_dims``), not a TypeError from deep in its constructor."""
    import inspect

    from ..errors import did_you_mean

    taken = [p for p in inspect.signature(cls.__init__).parameters
             if p not in ("self", "model_name_or_path", "modules", "trust_remote_code", "revision", "use_auth_token")]
    for key in options:
        if key not in taken:
            raise UserError(f"'{name}' is a {cls.__name__}, which takes no {key}=; its options are "
                            f"{', '.join(taken)}.{did_you_mean(key, taken)}")
