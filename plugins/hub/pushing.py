"""Push an output folder to the Hub in one commit (it lands completely or not at all), with a card whose usage
snippet loads the repo it was pushed to."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import outdir
from ..config import field
from ..errors import UserError
from .connection import api_for, check_repo_id, hub_errors, reason, timeouts
from .folders import IMAGE_TYPE, files_to_push, has_safetensors, read_json

PR_REF = "refs/pr/"  # revision=refs/pr/N pushes to an open pull request


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


def push(output_dir: str | Path, repo_id: str, cfg: PushConfig | None = None) -> str:
    """Push a contrastkit output folder to ``repo_id`` in one commit; prints and returns the commit (or PR) URL, or
    says that nothing was committed when the repo already holds the folder's files."""
    cfg = cfg or PushConfig()
    folder = _check_output(Path(output_dir).expanduser())
    check_repo_id(repo_id)
    _check_card(folder)
    message = cfg.commit_message or f"Upload {folder.name} with contrastkit"
    ops = _operations(folder, repo_id, _card_revision(cfg))
    who: dict[str, str] = {}
    with hub_errors(repo_id, "push", "model", who), timeouts():
        api = api_for(cfg.token, who)
        if cfg.private:
            _check_not_public(api, repo_id)
        api.create_repo(repo_id, private=cfg.private, exist_ok=True)
        if cfg.revision and cfg.revision != "main" and not cfg.revision.startswith(PR_REF):
            api.create_branch(repo_id, branch=cfg.revision, exist_ok=True)  # a PR's ref is no branch to create
        head = _head(api, repo_id, cfg.revision)
        # One create_commit, not upload_folder: with hf_xet installed (a dependency of huggingface_hub here),
        # upload_folder streams through pipelined_upload, which commits a large folder in several batches
        # ("part 2", ...), so a failed push could leave half of it. files_to_push applies the same ignore patterns.
        with _quiet_empty_commit():
            info = api.create_commit(repo_id, ops, commit_message=message, revision=cfg.revision,
                                     create_pr=cfg.create_pr or None)
    url = str(info.pr_url or info.commit_url)
    if info.pr_url is None and info.oid == head:  # huggingface_hub skipped the commit: every file was there already
        print(f"note: '{repo_id}' ({cfg.revision or 'main'}) already holds these files, so nothing was committed"
              f"{' and no pull request was opened' if cfg.create_pr else ''}", file=sys.stderr, flush=True)
    else:  # one line for the CLI, a recipe's push_to_hub and Python alike
        print(f"pushed {folder} -> {url}", flush=True)
    return url


def _check_not_public(api: Any, repo_id: str) -> None:
    """``private=true`` cannot keep a push to an existing public repo private (create_repo leaves its visibility as
    it is), so refuse it before anything is sent rather than publish what the user meant to keep private."""
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        public = not api.model_info(repo_id).private
    except RepositoryNotFoundError:  # a new repo: created private below
        return
    if public:
        raise UserError(f"'{repo_id}' already exists and is public, and private=true only makes new repos private; "
                        f"make it private on the Hub first (its Settings page), or push without private=true")


def _head(api: Any, repo_id: str, revision: str | None) -> str | None:
    """The commit ``revision`` points at before the push; a missing pull request ref is one line."""
    from huggingface_hub.errors import RevisionNotFoundError

    try:
        return api.model_info(repo_id, revision=revision).sha
    except RevisionNotFoundError:
        raise UserError(f"'{repo_id}' has no pull request {revision}; pass revision= a branch, or create_pr=true to "
                        f"open a new pull request") from None


@contextmanager
def _quiet_empty_commit() -> Iterator[None]:
    """huggingface_hub warns in its own words when a commit changes nothing; ``push`` says so itself."""
    import logging

    hf_logger = logging.getLogger("huggingface_hub.hf_api")
    quiet = logging.Filter()
    quiet.filter = lambda record: "empty commit" not in record.getMessage()  # type: ignore[method-assign]
    hf_logger.addFilter(quiet)
    try:
        yield
    finally:
        hf_logger.removeFilter(quiet)


def _card_revision(cfg: PushConfig) -> str | None:
    """The branch the pushed card's snippet loads: a branch other than main (the card there describes that branch's
    model, and main may hold another or none); not a pull request, whose card is meant for the branch it merges to."""
    branch = cfg.revision
    return None if cfg.create_pr or not branch or branch == "main" or branch.startswith(PR_REF) else branch


def _operations(folder: Path, repo_id: str, revision: str | None = None) -> list[Any]:
    from huggingface_hub import CommitOperationAdd

    return [CommitOperationAdd(path_in_repo=p, path_or_fileobj=card_for_repo(folder, repo_id, revision)
                               if p == "README.md" else str(folder / p)) for p in files_to_push(folder)]


# sentence-transformers' usage snippet: `model = SentenceTransformer("sentence_transformers_model_id")` (or
# CrossEncoder, SparseEncoder... with their placeholders), or the id of an earlier push_to_hub
_ST_LOAD = re.compile(r'^(model = \w+)\("[^"\n]*"(?:, revision="[^"\n]*")?\)', re.MULTILINE)
# its example files (image-text): 'assets/image_0.jpg', src="assets/...", or an earlier repo's URL of them
_ST_ASSET = re.compile(r'(["\'])(?:[^"\'\s]*/resolve/[^/"\'\s]+/)?assets/')
_FRONT_MATTER = re.compile(r"---\n.*?\n---\n", re.DOTALL)


def card_for_repo(output_dir: str | Path, repo_id: str, revision: str | None = None) -> bytes:
    """The folder's README.md as pushed to ``repo_id``: its usage snippet loads ``repo_id`` (and finds its example
    files there), at ``revision`` when given (a branch), whatever placeholder or earlier repo the local card names. The
    local file stays as it is: a push changes nothing in the folder, and the folder may go to other repos too."""
    from urllib.parse import quote

    from huggingface_hub import constants

    folder = Path(output_dir)
    raw = (folder / "README.md").read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:  # not a card contrastkit wrote: sent as it is
        return raw
    front = _FRONT_MATTER.match(text)
    head, body = (text[:front.end()], text[front.end():]) if front else ("", text)
    if read_json(folder / "config.json").get("contrastkit_type") == IMAGE_TYPE:
        from ..vision.card import for_repo

        body = for_repo(body, repo_id, revision)
    else:
        at = f', revision="{revision}"' if revision else ""
        base = f"{constants.ENDPOINT.rstrip('/')}/{repo_id}/resolve/{quote(revision or 'main', safe='')}/assets/"
        body = _ST_LOAD.sub(lambda m: f'{m[1]}("{repo_id}"{at})', body)
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
    _check_finished(folder)
    if not ((folder / "modules.json").is_file() or (folder / "config.json").is_file()):
        raise UserError(f"'{folder}' is not a contrastkit output (no modules.json or config.json); "
                        f"pass the folder printed as 'done: ...' by 'contrastkit run'")
    if not (folder / "README.md").is_file():
        raise UserError(f"'{folder}' has no README.md model card; rerun the recipe (it writes the card) "
                        f"or add a README.md")
    if not has_safetensors(folder):
        raise UserError(f"'{folder}' has no .safetensors weights; contrastkit pushes safetensors only "
                        f"(re-save with safe_serialization=True)")
    return folder


def _check_finished(folder: Path) -> None:
    """A run records ``finished_steps`` once its model is saved; until then the folder's model files, if any, are an
    earlier run's, so they must not go out as it (``outdir.unfinished``)."""
    why = outdir.unfinished(folder)
    if why:
        raise UserError(f"{why}, then push")


def check_push_target(repo_id: Any) -> None:
    """Before a run with ``push_to_hub=``: a repo id of the right form and a token to push with, checked without the
    network, so that a run never trains for nothing."""
    from huggingface_hub import get_token

    check_repo_id(str(repo_id), "push_to_hub")
    if not get_token():
        raise UserError(f"push_to_hub={repo_id} needs a Hugging Face token: set HF_TOKEN=hf_... or run "
                        f"'hf auth login', or leave push_to_hub out and run 'contrastkit push' later")


def _check_card(folder: Path) -> str:
    """Image cards carry Hub YAML written by contrastkit: check it parses and holds metadata."""
    from huggingface_hub import ModelCard

    readme = folder / "README.md"
    is_image = read_json(folder / "config.json").get("contrastkit_type") == IMAGE_TYPE
    try:
        card = ModelCard.load(readme, ignore_metadata_errors=not is_image)
    except Exception as exc:  # noqa: BLE001 - yaml / metadata errors of any kind
        raise UserError(f"the model card {readme} has invalid YAML metadata ({reason(exc)}); fix the block "
                        f"between the '---' lines") from None
    if is_image and not card.data.to_dict():
        raise UserError(f"the model card {readme} has no YAML metadata block; rerun the image recipe to rewrite it")
    return "image" if is_image else "text"
