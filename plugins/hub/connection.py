"""Talking to the Hub: the endpoint's reachability, timeouts, the token, repo ids, and failures as one line.

The token comes from ``HF_TOKEN`` or the ``hf auth login`` cache, read by ``huggingface_hub`` itself: it is never
printed, logged or written by contrastkit.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import UserError

# Connect quickly (an unreachable Hub fails in seconds); allow slow reads for big commits.
CONNECT_TIMEOUT_S = 10.0
#: Seconds the probe before a Hub download waits for any answer (``offline_if_unreachable``)
PROBE_TIMEOUT_S = 5.0
READ_TIMEOUT_S = float(os.environ.get("CONTRASTKIT_HUB_TIMEOUT", "120"))
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
NO_TOKEN = "no Hugging Face token: set HF_TOKEN=hf_... or run 'hf auth login', then retry"
BAD_TOKEN = ("the Hub rejected your token (401); create a new one with write access and set HF_TOKEN or run "
             "'hf auth login'")


def is_space_model_id(name: str) -> bool:
    """Whether a demo Space can load ``name``: a Hub id that is not a local path, or the default model."""
    if name == "all-MiniLM-L6-v2":  # the demo resolves the default name itself
        return True
    return bool(REPO_ID.match(name)) and not Path(name).exists()


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

    from ..device import is_main_process

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


def check_repo_id(repo_id: str, key: str = "") -> None:
    """The Hub's own rules (huggingface_hub's ``validate_repo_id``), with the user/ part required."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
        valid = bool(REPO_ID.match(repo_id))
    except HFValidationError:
        valid = False
    if not valid and (url := re.match(r"^https?://[^/]+/(?:(?:models|spaces)/)?([^/]+/[^/?#]+)", repo_id)):
        raise UserError(f"{key + '=' if key else ''}'{repo_id}' is a URL, not a Hub repo id; write just "
                        f"'{url[1]}'")
    if not valid:
        raise UserError(f"{key + '=' if key else ''}'{repo_id}' is not a Hub repo id; write it as user/name (letters, "
                        f"digits, '-', '_', '.'; each part starts and ends with a letter or digit, no '--' or '..', "
                        f"no '.git' at the end, the name at most 96 characters)")


def api_for(token: str | None, who: dict[str, str]):
    """An HfApi with a token that works (the user's name goes into ``who``); fails before any repo is touched."""
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError

    given = bool(token)
    token = token or get_token()
    if not token:
        raise UserError(NO_TOKEN)
    api = HfApi(token=token)
    try:
        who["name"] = api.whoami()["name"]  # a 401 here means the token itself is wrong, not the repo
    except HfHubHTTPError as exc:
        if given and exc.response is not None and exc.response.status_code == 401:
            raise UserError("the Hub rejected the token given as token= (401); pass a valid token with write access, "
                            "or leave token= out to use HF_TOKEN or 'hf auth login'") from None
        raise
    return api


@contextmanager
def timeouts() -> Iterator[None]:
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
def hub_errors(repo_id: str, action: str, kind: str, who: dict[str, str]) -> Iterator[None]:
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
        raise UserError(f"could not reach the Hub at {constants.ENDPOINT} ({reason(exc)}); check your connection "
                        f"and run the same {action} again (nothing was committed)") from None
    except (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError) as exc:
        raise UserError(f"the {action} to '{repo_id}' was interrupted ({reason(exc)}); a commit is all-or-nothing, "
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
            raise UserError(f"the Hub rejected the README.md metadata of '{repo_id}': {reason(exc)}; fix the "
                            f"YAML block") from None
        raise UserError(f"the Hub refused the {action} to '{repo_id}' ({status}: {reason(exc)}); retry later, "
                        f"or check the repo on the Hub") from None
    except ValueError as exc:  # e.g. invalid README metadata reported by /api/validate-yaml
        lines = [ln.strip().lstrip("- ") for ln in str(exc).splitlines() if ln.strip()]
        if lines and lines[0].startswith("Invalid metadata in README.md") and len(lines) > 1:
            # huggingface_hub puts each of the Hub's complaints on a line of its own, after a bare heading
            raise UserError(f"the Hub rejected the README.md metadata of '{repo_id}' ({'; '.join(lines[1:])[:300]}); "
                            f"fix the YAML block between the '---' lines of the card and {action} again") from None
        raise UserError(f"the {action} to '{repo_id}' was refused: {reason(exc)}") from None


def reason(exc: BaseException) -> str:
    """The first meaningful line of an exception, short."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text[:200]
