"""The Hugging Face Hub: push an output folder, load any output back, create a demo Space.

This is the only module that talks to the Hub (through ``huggingface_hub``). The token comes from
``HF_TOKEN`` or the ``hf auth login`` cache, read by ``huggingface_hub`` itself: it is never
printed, logged or written by contrastkit. Every failure is a one-line ``UserError`` that says what
to do; a push is one commit, so it lands completely or not at all.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import outdir
from .config import field
from .errors import UserError

# Files of an output folder that never go to the Hub: resumable checkpoints, training state,
# logs and local bookkeeping. Patterns are huggingface_hub's (fnmatch on paths relative to the
# folder; a trailing "/" means "everything under it"). Everything else in the folder is pushed.
IGNORE_PATTERNS = [
    "checkpoints/", "*/checkpoints/",  # trainer / Lightning checkpoints (resume=true reads them locally)
    "runs/",  # TensorBoard logs
    "examples/",  # an image run's held-out images for the local demo: the user's data, not pushed unasked
    "training_args.bin", "*.pt", "*.pth", "*.ckpt",  # pickles: trainer arguments, optimizer, scheduler, RNG state
    ".contrastkit-*", "*/.contrastkit-*",  # local probes and markers
    "__pycache__/", "*/__pycache__/", "*.lock", ".DS_Store",
]
# Pickle weights: never loaded (safetensors only), so never downloaded either.
PICKLE_PATTERNS = ["*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.pickle"]
IMAGE_TYPE = "image-encoder"  # "contrastkit_type" in an image output's config.json
# Connect quickly (an unreachable Hub fails in seconds); allow slow reads for big commits.
CONNECT_TIMEOUT_S = 10.0
#: Seconds the probe before a Hub download waits for any answer (``offline_if_unreachable``)
PROBE_TIMEOUT_S = 5.0
READ_TIMEOUT_S = float(os.environ.get("CONTRASTKIT_HUB_TIMEOUT", "120"))
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
NO_TOKEN = "no Hugging Face token: set HF_TOKEN=hf_... or run 'hf auth login', then retry"
BAD_TOKEN = ("the Hub rejected your token (401); create a new one with write access and set HF_TOKEN or run "
             "'hf auth login'")


@dataclass
class PushConfig:
    """Options of ``contrastkit push`` (``key=value``) and ``hub.push``."""

    private: bool = field(False, "create the repo as private (only applies when it does not exist yet)")
    revision: str | None = field(None, "branch to push to (created from main if missing; default: main)")
    commit_message: str | None = field(None, "commit message (default: 'Upload <folder> with contrastkit')")
    # repr=False: the token must not reach logs or tracebacks
    token: str | None = field(None, "Hub token; prefer the HF_TOKEN variable or 'hf auth login' (kept out of logs)",
                              repr=False)
    create_pr: bool = field(False, "open a pull request instead of committing to the branch")


def _is_space_model_id(name: str) -> bool:
    if name == "all-MiniLM-L6-v2":  # the demo resolves the default name itself
        return True
    return bool(REPO_ID.match(name)) and not Path(name).exists()


# ---------------------------------------------------------------------------------------------- load


def load(repo_id_or_path: str | Path, revision: str | None = None, trust_remote_code: bool = False) -> Any:
    """A ready model for any contrastkit output (folder or Hub id): a SentenceTransformer, CrossEncoder, SparseEncoder
    or ImageEncoder."""
    from .st.models import resolve_model_name

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
        folder = _download(name, revision)
    else:
        raise UserError(f"'{name}' is neither an existing folder nor a Hub repo id (user/name); check the path")
    return _load_folder(folder, name, trust_remote_code)


def reachable() -> bool:
    """Whether the Hub endpoint answers at all (any HTTP status counts), in one request without retries."""
    import httpx2
    from huggingface_hub import constants

    try:
        httpx2.head(constants.ENDPOINT, timeout=PROBE_TIMEOUT_S)
    except httpx2.TransportError:  # no route, no DNS, refused, timed out
        return False
    return True


@contextmanager
def offline_if_unreachable(what: str) -> Iterator[None]:
    """Around loading ``what`` (e.g. ``"dataset 'user/name'"``) from the Hub: when the Hub cannot be reached at
    all, read from the local cache only, and say so in one line when that worked. Without this, huggingface_hub
    retries every file for about a minute before it falls back to the cache or fails. The switch is undone when the
    block ends; ``HF_HUB_OFFLINE=1`` skips the probe."""
    import sys

    from huggingface_hub import constants

    from .device import is_main_process

    if constants.HF_HUB_OFFLINE or reachable():
        yield
        return
    datasets_config = sys.modules.get("datasets.config")  # datasets keeps its own copy of the switch
    saved = constants.HF_HUB_OFFLINE, getattr(datasets_config, "HF_HUB_OFFLINE", constants.HF_HUB_OFFLINE)
    constants.HF_HUB_OFFLINE = True
    if datasets_config is not None:
        datasets_config.HF_HUB_OFFLINE = datasets_config.HF_DATASETS_OFFLINE = True
    try:
        yield
        if is_main_process():  # when the cache had it; else the caller's error says what to do
            print(f"note: the Hub ({constants.ENDPOINT}) cannot be reached; {what} was read from the local cache "
                  f"(HF_HUB_OFFLINE=1 skips this check)", file=sys.stderr, flush=True)
    finally:
        constants.HF_HUB_OFFLINE = saved[0]
        if (datasets_config := sys.modules.get("datasets.config")) is not None:  # also when imported in the block
            datasets_config.HF_HUB_OFFLINE = datasets_config.HF_DATASETS_OFFLINE = saved[1]


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
        with _timeouts(), offline_if_unreachable(f"'{repo_id}'"):
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
        raise UserError(f"could not download '{repo_id}' ({_reason(exc)}); check the id and your connection, "
                        f"then retry") from None


def _has_safetensors(folder: Path) -> bool:
    return any(p for p in folder.rglob("*.safetensors") if "checkpoints" not in p.relative_to(folder).parts)


# A tokenizer's vocabulary: without one, transformers builds an empty tokenizer and every text embeds the same.
VOCAB_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "*.model", "*.tiktoken")


def _without_tokenizer(folder: Path) -> str | None:
    """The module folder (relative, "." for the root) of a Transformer module that reads text but has no tokenizer
    vocabulary, or None. Image-only Transformer modules and other modules (StaticEmbedding) are not checked."""
    for module in _read_json(folder / "modules.json", list):
        if not isinstance(module, dict) or not str(module.get("type", "")).endswith(".Transformer"):
            continue
        path = folder / str(module.get("path") or "")
        settings = _read_json(path / "sentence_bert_config.json")
        if "text" not in settings.get("modality_config", {"text": None}):  # older folders: text only
            continue
        if not any(next(path.glob(pattern), None) for pattern in VOCAB_FILES):
            return path.relative_to(folder).as_posix()
    return None


def _load_folder(folder: Path, name: str, trust_remote_code: bool) -> Any:
    config = _read_json(folder / "config.json")
    is_st = (folder / "modules.json").is_file()
    if not is_st and not config and (folder / "config.json").is_file():
        raise UserError(f"'{name}' has a config.json that is not a JSON object; restore it from the run (or its Hub "
                        f"repo)")
    if not is_st and not config:
        raise UserError(f"'{name}' has neither modules.json nor config.json; pass a folder written by "
                        f"'contrastkit run' (or its Hub id)")
    if not _has_safetensors(folder):
        pickles = sorted(p.name for p in folder.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".ckpt"))
        what = f"only pickle weights ({', '.join(pickles[:2])})" if pickles else "no weights"
        raise UserError(f"'{name}' has {what}; contrastkit loads safetensors only: re-save the model with "
                        f"safe_serialization=True (or push a contrastkit output)")
    if config.get("contrastkit_type") == IMAGE_TYPE:
        try:
            from .vision.encoder import load_encoder
        except ImportError as exc:
            raise UserError(f"'{name}' is an image model and needs the image extras ({exc}); "
                            f"pip install 'contrastkit[image]'") from None
        try:
            return load_encoder(folder)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - cut-off weights, a config missing keys: one line, not a traceback
            raise UserError(f"could not load '{name}' ({type(exc).__name__}: {_reason(exc)}); its files look damaged: "
                            f"restore the folder from the run (or its Hub repo)") from None
    if (missing := _without_tokenizer(folder)) is not None:
        where = "" if missing == "." else f" in {missing}/"
        raise UserError(f"could not load '{name}' (no tokenizer files{where}: tokenizer.json or a vocabulary); its "
                        f"files look damaged: restore the folder from the run (or its Hub repo)")
    import sentence_transformers

    from .st.models import saved_type

    cls = getattr(sentence_transformers, saved_type(str(folder)) or "SentenceTransformer", None) or \
        sentence_transformers.SentenceTransformer  # a CrossEncoder or SparseEncoder loads as itself
    try:
        return cls(str(folder), trust_remote_code=trust_remote_code)
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise UserError(f"'{name}' runs its own code; pass trust_remote_code=true if you trust it") from None
        raise UserError(f"could not load '{name}' ({_reason(exc)}); is it a contrastkit output?") from None
    except OSError as exc:
        raise UserError(f"could not load '{name}' ({_reason(exc)}); is it a contrastkit output?") from None
    except Exception as exc:  # noqa: BLE001 - cut-off weights and the like: one line, not a traceback
        raise UserError(f"could not load '{name}' ({type(exc).__name__}: {_reason(exc)}); its files look damaged: "
                        f"restore the folder from the run (or its Hub repo)") from None


def _read_json(path: Path, kind: type = dict) -> Any:
    """The file's JSON if it is a ``kind`` (a dict unless told), else an empty one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return kind()
    return data if isinstance(data, kind) else kind()


# ---------------------------------------------------------------------------------------------- push


def push(output_dir: str | Path, repo_id: str, cfg: PushConfig | None = None) -> str:
    """Push a contrastkit output folder to ``repo_id`` in one commit; returns the commit (or PR) URL."""
    cfg = cfg or PushConfig()
    folder = _check_output(Path(output_dir).expanduser())
    _check_repo_id(repo_id)
    _check_card(folder)
    message = cfg.commit_message or f"Upload {folder.name} with contrastkit"
    ops = _operations(folder, repo_id)
    who: dict[str, str] = {}
    with _hub_errors(repo_id, "push", "model", who), _timeouts():
        api = _api(cfg.token, who)
        api.create_repo(repo_id, private=cfg.private, exist_ok=True)
        if cfg.revision and cfg.revision != "main":
            api.create_branch(repo_id, branch=cfg.revision, exist_ok=True)
        # One create_commit, not upload_folder: with hf_xet installed (a dependency of huggingface_hub here),
        # upload_folder streams through pipelined_upload, which commits a large folder in several batches
        # ("part 2", ...), so a failed push could leave half of it. files_to_push applies the same ignore patterns.
        info = api.create_commit(repo_id, ops, commit_message=message, revision=cfg.revision,
                                 create_pr=cfg.create_pr or None)
    return str(info.pr_url or info.commit_url)


def files_to_push(output_dir: str | Path) -> list[str]:
    """The paths (relative, '/'-separated) that ``push`` would upload: everything but IGNORE_PATTERNS."""
    from huggingface_hub.utils import filter_repo_objects
    from huggingface_hub.utils._paths import DEFAULT_IGNORE_PATTERNS

    folder = Path(output_dir)
    paths = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return list(filter_repo_objects(paths, ignore_patterns=IGNORE_PATTERNS + DEFAULT_IGNORE_PATTERNS))


def _operations(folder: Path, repo_id: str) -> list[Any]:
    from huggingface_hub import CommitOperationAdd

    return [CommitOperationAdd(path_in_repo=p, path_or_fileobj=card_for_repo(folder, repo_id) if p == "README.md"
                               else str(folder / p)) for p in files_to_push(folder)]


# sentence-transformers' usage snippet: `model = SentenceTransformer("sentence_transformers_model_id")` (or
# CrossEncoder, SparseEncoder... with their placeholders), or the id of an earlier push_to_hub
_ST_LOAD = re.compile(r'^(model = \w+)\("[^"\n]*"\)', re.MULTILINE)
# its example files (image-text): 'assets/image_0.jpg', src="assets/...", or an earlier repo's URL of them
_ST_ASSET = re.compile(r'(["\'])(?:[^"\'\s]*/resolve/main/)?assets/')
_FRONT_MATTER = re.compile(r"---\n.*?\n---\n", re.DOTALL)


def card_for_repo(output_dir: str | Path, repo_id: str) -> bytes:
    """The folder's README.md as pushed to ``repo_id``: its usage snippet loads ``repo_id`` (and finds its example
    files there), whatever placeholder or earlier repo the local card names. The local file stays as it is: a push
    changes nothing in the folder, and the folder may go to other repos too."""
    from huggingface_hub import constants

    folder = Path(output_dir)
    raw = (folder / "README.md").read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:  # not a card contrastkit wrote: sent as it is
        return raw
    front = _FRONT_MATTER.match(text)
    head, body = (text[:front.end()], text[front.end():]) if front else ("", text)
    if _read_json(folder / "config.json").get("contrastkit_type") == IMAGE_TYPE:
        from .vision.card import for_repo

        body = for_repo(body, repo_id)
    else:
        base = f"{constants.ENDPOINT.rstrip('/')}/{repo_id}/resolve/main/assets/"
        body = _ST_LOAD.sub(lambda m: f'{m[1]}("{repo_id}")', body)
        body = _ST_ASSET.sub(lambda m: m[1] + base, body)
    return (head + body).encode("utf-8")


def _check_output(folder: Path) -> Path:
    if folder.is_file():
        raise UserError(f"'{folder}' is a file; pass the output folder printed as 'done: ...' by 'contrastkit run'")
    if not folder.is_dir():
        raise UserError(f"output folder '{folder}' does not exist; pass a folder written by 'contrastkit run'")
    if run := outdir.holder(folder):  # first: during a first run the folder has no model yet
        raise UserError(f"output folder '{folder}' is in use by a run ({run}); wait for it to finish, then push "
                        f"the folder it leaves")
    if not ((folder / "modules.json").is_file() or (folder / "config.json").is_file()):
        raise UserError(f"'{folder}' is not a contrastkit output (no modules.json or config.json); "
                        f"pass the folder printed as 'done: ...' by 'contrastkit run'")
    if not (folder / "README.md").is_file():
        raise UserError(f"'{folder}' has no README.md model card; rerun the recipe (it writes the card) "
                        f"or add a README.md")
    if not _has_safetensors(folder):
        raise UserError(f"'{folder}' has no .safetensors weights; contrastkit pushes safetensors only "
                        f"(re-save with safe_serialization=True)")
    return folder


def check_push_target(repo_id: Any) -> None:
    """Before a run with ``push_to_hub=``: a repo id of the right form and a token to push with, checked without the
    network, so that a run never trains for nothing."""
    from huggingface_hub import get_token

    _check_repo_id(str(repo_id), "push_to_hub")
    if not get_token():
        raise UserError(f"push_to_hub={repo_id} needs a Hugging Face token: set HF_TOKEN=hf_... or run "
                        f"'hf auth login', or leave push_to_hub out and run 'contrastkit push' later")


def _check_repo_id(repo_id: str, key: str = "") -> None:
    """The Hub's own rules (huggingface_hub's ``validate_repo_id``), with the user/ part required."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
        valid = bool(REPO_ID.match(repo_id))
    except HFValidationError:
        valid = False
    if not valid:
        raise UserError(f"{key + '=' if key else ''}'{repo_id}' is not a Hub repo id; write it as user/name (letters, "
                        f"digits, '-', '_', '.'; each part starts and ends with a letter or digit, no '--' or '..', "
                        f"no '.git' at the end, the name at most 96 characters)")


def _check_card(folder: Path) -> str:
    """Image cards carry Hub YAML written by contrastkit: check it parses and holds metadata."""
    from huggingface_hub import ModelCard

    readme = folder / "README.md"
    is_image = _read_json(folder / "config.json").get("contrastkit_type") == IMAGE_TYPE
    try:
        card = ModelCard.load(readme, ignore_metadata_errors=not is_image)
    except Exception as exc:  # noqa: BLE001 - yaml / metadata errors of any kind
        raise UserError(f"the model card {readme} has invalid YAML metadata ({_reason(exc)}); fix the block "
                        f"between the '---' lines") from None
    if is_image and not card.data.to_dict():
        raise UserError(f"the model card {readme} has no YAML metadata block; rerun the image recipe to rewrite it")
    return "image" if is_image else "text"


def _api(token: str | None, who: dict[str, str]):
    """An HfApi with a token that works (the user's name goes into ``who``); fails before any repo is touched."""
    from huggingface_hub import HfApi, get_token

    token = token or get_token()
    if not token:
        raise UserError(NO_TOKEN)
    api = HfApi(token=token)
    who["name"] = api.whoami()["name"]  # a 401 here means the token itself is wrong, not the repo
    return api


@contextmanager
def _timeouts() -> Iterator[None]:
    """Short connect timeout for every Hub call in the block, so an unreachable Hub fails in seconds."""
    import httpx2
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils._http import default_client_factory

    def factory():
        client = default_client_factory()
        client.timeout = httpx2.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
        return client

    set_client_factory(factory)
    try:
        yield
    finally:
        set_client_factory(default_client_factory)


@contextmanager
def _hub_errors(repo_id: str, action: str, kind: str, who: dict[str, str]) -> Iterator[None]:
    """Turn huggingface_hub/httpx failures into one line that says what to do; the token never appears."""
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError, RepositoryNotFoundError

    try:
        yield
    except UserError:
        raise
    except LocalTokenNotFoundError:
        raise UserError(NO_TOKEN) from None
    except (httpx2.ConnectError, httpx2.ConnectTimeout) as exc:
        raise UserError(f"could not reach the Hub at {constants.ENDPOINT} ({_reason(exc)}); check your connection "
                        f"and run the same {action} again (nothing was committed)") from None
    except (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError) as exc:
        raise UserError(f"the {action} to '{repo_id}' was interrupted ({_reason(exc)}); a commit is all-or-nothing, "
                        f"so run the same {action} again") from None
    except RepositoryNotFoundError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status == 401 and "whoami" in str(exc.response.request.url if exc.response is not None else ""):
            raise UserError(BAD_TOKEN) from None
        raise UserError(f"{kind} repo '{repo_id}' was not found and could not be created; check the id and that "
                        f"your token can write to its namespace") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status == 401:
            raise UserError(BAD_TOKEN) from None
        if status == 403:
            mine = f"{who.get('name', 'your-name')}/{repo_id.split('/')[-1]}"
            raise UserError(f"you cannot write to '{repo_id}' (403): it belongs to another account or your token "
                            f"is read-only; push to your own namespace ({mine}) or use a token with write "
                            f"access") from None
        if status == 400 and "metadata" in str(exc).lower():
            raise UserError(f"the Hub rejected the README.md metadata of '{repo_id}': {_reason(exc)}; fix the "
                            f"YAML block") from None
        raise UserError(f"the Hub refused the {action} to '{repo_id}' ({status}: {_reason(exc)}); retry later, "
                        f"or check the repo on the Hub") from None
    except ValueError as exc:  # e.g. invalid README metadata reported by /api/validate-yaml
        raise UserError(f"the {action} to '{repo_id}' was refused: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    """The first meaningful line of an exception, short."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text[:200]


# ---------------------------------------------------------------------------------------------- Space
# The demo Space lives in space.py; these names stay importable from here.
from .space import PushDemoConfig, push_demo, space_files  # noqa: F401
