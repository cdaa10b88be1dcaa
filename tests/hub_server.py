"""Test infrastructure: a small Hugging Face Hub-compatible HTTP server on 127.0.0.1 (no internet needed).

It answers the requests ``huggingface_hub`` really sends:
whoami, repo creation (models and Spaces, public or private), branches, YAML validation, preupload
("regular" mode, so files travel inline as base64), NDJSON commits (parsed completely, then applied
at once, like the Hub's atomic commits), repo info, recursive tree listing, and ``resolve`` downloads.
Auth is real: tokens map to user names, a user may only write to its own namespace (403 otherwise),
requests without a token get 401, and private repos are invisible (404) to everyone but their owner.

State lives in memory on the ``HubServer`` object, so ``stop()`` then ``start()`` (same port) simulates
a Hub that went away and came back; ``fail_next_commit()`` drops the connection in the middle of the
next commit upload, to simulate a push interrupted half-way. Use the ``hub_server`` fixture.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
SDKS = {"gradio", "docker", "static", "streamlit"}
REPO_ID = re.compile(r"(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*")  # "name" or "user/name"; a path is no id


def git_blob_sha(data: bytes) -> str:
    """The git blob id, as the Hub reports it for regular files (huggingface_hub compares it to skip no-ops)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    """One repository: its owner, visibility, and branches pointing at immutable commits."""

    repo_type: str
    repo_id: str
    private: bool
    sdk: str | None = None
    commits: dict[str, dict] = field(default_factory=dict)  # sha -> {"files": {path: bytes}, "message", "parent"}
    branches: dict[str, str] = field(default_factory=dict)  # name -> sha

    @property
    def owner(self) -> str:
        return self.repo_id.split("/")[0]

    def commit(self, branch: str, files: dict[str, bytes], message: str) -> str:
        parent = self.branches.get(branch)
        sha = hashlib.sha1(f"{self.repo_id}{branch}{parent}{message}{time.time_ns()}".encode()).hexdigest()
        self.commits[sha] = {"files": files, "message": message, "parent": parent}
        self.branches[branch] = sha
        return sha

    def resolve(self, rev: str) -> str | None:
        if rev in self.branches:
            return self.branches[rev]
        return rev if rev in self.commits else None


class HubServer:
    """The fake Hub. ``tokens`` maps token -> user name; ``url`` is what HF_ENDPOINT should be."""

    def __init__(self, tokens: dict[str, str], port: int = 0):
        self.tokens = dict(tokens)
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lock = threading.Lock()
        self.port = port
        self.requests: list[str] = []  # "METHOD path" of every request, for assertions
        self._fail_next_commit = False
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HubServer:
        """Listen on 127.0.0.1 (a free port the first time, the same port after a stop)."""
        handler = type("Handler", (_Handler,), {"hub": self})
        ThreadingHTTPServer.allow_reuse_address = True
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening (connections are refused until ``start()``); the repos are kept."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def fail_next_commit(self) -> None:
        """Drop the connection half-way through the next commit upload, without applying it."""
        self._fail_next_commit = True

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        """The files of a repo at a revision (for assertions)."""
        repo = self.repos[(repo_type, repo_id)]
        return dict(repo.commits[repo.resolve(revision)]["files"])

    def commit_count(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> int:
        """How many commits lead to ``revision`` (the creation commit included)."""
        repo = self.repos[(repo_type, repo_id)]
        sha, n = repo.resolve(revision), 0
        while sha:
            n, sha = n + 1, repo.commits[sha]["parent"]
        return n


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output clean (and never log headers)
        pass

    # -- plumbing ---------------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes | dict | list = b"", headers: dict | None = None) -> None:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, message: str, code: str | None = None) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._send(status, {"error": message}, headers)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _user(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return self.hub.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None

    def _bad_token(self) -> bool:
        auth = self.headers.get("Authorization", "")
        return auth.startswith("Bearer ") and auth[7:] not in self.hub.tokens

    def _readable(self, repo_type: str, repo_id: str) -> Repo | None:
        repo = self.hub.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and self._user() != repo.owner):
            self._error(404, "Repository not found", "RepoNotFound")
            return None
        return repo

    def _readable_revision(self, repo_type: str, repo_id: str, rev: str) -> tuple[Repo, str] | None:
        """The repo and the commit ``rev`` names, or None after answering 404 for either."""
        repo = self._readable(repo_type, repo_id)
        if repo is None:
            return None
        sha = repo.resolve(rev)
        if sha is None:
            self._error(404, f"Revision {rev} not found", "RevisionNotFound")
            return None
        return repo, sha

    def _writable(self, repo_type: str, repo_id: str) -> Repo | None:
        if self._bad_token():
            self._error(401, "Invalid credentials in Authorization header")
            return None
        user = self._user()
        if user is None:
            self._error(401, "You must be authenticated to write", "RepoNotFound")
            return None
        repo = self._readable(repo_type, repo_id)
        if repo is not None and repo.owner != user:
            self._error(403, f"You don't have the rights to write to {repo_id}")
            return None
        return repo

    # -- routing ----------------------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        self.hub.requests.append(f"{self.command} {self.path}")
        parts = urlsplit(self.path)
        path, query = unquote(parts.path), parse_qs(parts.query)
        if path == "/api/whoami-v2":
            return self._whoami()
        m = re.fullmatch(r"/api/(models|datasets|spaces)/([^/]+/[^/]+)(?:/revision/(.+))?", path)
        if m:
            return self._info(TYPES[m[1]], m[2], m[3] or "main")
        m = re.fullmatch(r"/api/(models|datasets|spaces)/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", path)
        if m:
            return self._tree(TYPES[m[1]], m[2], m[3], m[4] or "", query.get("recursive", ["false"])[0] == "True"
                              or query.get("recursive", [""])[0].lower() == "true")
        m = re.fullmatch(r"/(datasets/|spaces/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if m:
            return self._resolve({"datasets/": "dataset", "spaces/": "space"}.get(m[1] or "", "model"),
                                 m[2], m[3], m[4])
        self._error(404, f"no route for GET {path}")

    def do_POST(self) -> None:
        self.hub.requests.append(f"POST {self.path}")
        parts = urlsplit(self.path)
        path, query = unquote(parts.path), parse_qs(parts.query)
        if path == "/api/repos/create":
            return self._create(json.loads(self._body() or b"{}"))
        if path == "/api/validate-yaml":
            return self._validate_yaml(json.loads(self._body() or b"{}"))
        m = re.fullmatch(r"/api/(models|datasets|spaces)/([^/]+/[^/]+)/(preupload|commit|branch)/(.+)", path)
        if m:
            repo_type, repo_id, action, rev = TYPES[m[1]], m[2], m[3], m[4]
            if action == "preupload":
                return self._preupload(repo_type, repo_id, rev, json.loads(self._body() or b"{}"))
            if action == "branch":
                return self._branch(repo_type, repo_id, rev, json.loads(self._body() or b"{}"))
            return self._commit(repo_type, repo_id, rev, "create_pr" in query)
        self._body()
        self._error(404, f"no route for POST {path}")

    # -- endpoints --------------------------------------------------------------------------------------
    def _whoami(self) -> None:
        user = self._user()
        if user is None:
            return self._error(401, "Invalid credentials in Authorization header")
        self._send(200, {"type": "user", "name": user, "fullname": user, "orgs": [],
                         "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}}})

    def _create(self, payload: dict) -> None:
        if self._bad_token() or self._user() is None:
            return self._error(401, "Invalid credentials in Authorization header")
        user = self._user()
        repo_type = payload.get("type") or "model"
        namespace = payload.get("organization") or user
        repo_id = f"{namespace}/{payload['name']}"
        if namespace != user:
            return self._error(403, f"You don't have the rights to create a repo under {namespace}")
        if repo_type == "space" and payload.get("sdk") not in SDKS:
            return self._error(400, "Invalid sdk for a Space")
        url = f"{self.hub.url}/{PREFIX[repo_type]}{repo_id}"
        with self.hub.lock:
            if (repo_type, repo_id) in self.hub.repos:
                return self._send(409, {"error": "You already created this repo", "url": url})
            repo = Repo(repo_type, repo_id, private=payload.get("visibility") == "private"
                        or bool(payload.get("private")), sdk=payload.get("sdk"))
            repo.commit("main", {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"},
                        "initial commit")
            self.hub.repos[(repo_type, repo_id)] = repo
        self._send(200, {"url": url, "name": repo_id, "id": repo_id})

    def _validate_yaml(self, payload: dict) -> None:
        content = payload.get("content", "")
        m = re.match(r"^---\s*\n(.*?)\n---\s*\n", content, re.DOTALL)
        errors = []
        try:
            meta = yaml.safe_load(m[1]) if m else {}
        except yaml.YAMLError as exc:
            meta, errors = {}, [f"YAML is invalid: {str(exc).splitlines()[0]}"]
        if not isinstance(meta, dict):
            errors.append("YAML metadata must be a mapping")
            meta = {}
        if "tags" in meta and not (isinstance(meta["tags"], list) and all(isinstance(t, str) for t in meta["tags"])):
            errors.append('"tags" must be a list of strings')
        if "license" in meta and not isinstance(meta["license"], str):
            errors.append('"license" must be a string')
        for key, kind in (("base_model", "model"), ("datasets", "dataset")):  # ids the Hub links to, so it checks them
            ids = meta.get(key, [])
            for value in ids if isinstance(ids, list) else [ids]:
                if not (isinstance(value, str) and REPO_ID.fullmatch(value)):
                    errors.append(f'"{key}" with value "{value}" is not valid. Use a {kind} id from the Hub.')
        if payload.get("repoType") == "space" and meta.get("sdk") not in SDKS:
            errors.append(f'"sdk" must be one of {sorted(SDKS)}')
        if errors:
            return self._send(400, {"errors": [{"message": e} for e in errors]})
        self._send(200, {"warnings": []})

    def _preupload(self, repo_type: str, repo_id: str, rev: str, payload: dict) -> None:
        repo = self._writable(repo_type, repo_id)
        if repo is None:
            return
        sha = repo.resolve(rev)
        existing = repo.commits[sha]["files"] if sha else {}
        self._send(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                                    "oid": git_blob_sha(existing[f["path"]]) if f["path"] in existing else None}
                                   for f in payload.get("files", [])]})

    def _branch(self, repo_type: str, repo_id: str, branch: str, payload: dict) -> None:
        repo = self._writable(repo_type, repo_id)
        if repo is None:
            return
        if branch.startswith("refs/"):  # as the Hub answers: a pull request's ref is no branch name
            return self._error(400, f"Invalid reference for a branch: {branch}")
        start = repo.resolve(payload.get("startingPoint") or "main")
        if start is None:
            return self._error(404, "Invalid starting point", "RevisionNotFound")
        with self.hub.lock:
            if branch in repo.branches:
                return self._error(409, f"Branch {branch} already exists")
            repo.branches[branch] = start
        self._send(200, {})

    def _commit(self, repo_type: str, repo_id: str, rev: str, create_pr: bool) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if self.hub._fail_next_commit:
            # Read half the upload, then vanish: the client sees a broken connection, nothing is applied.
            self.hub._fail_next_commit = False
            self.rfile.read(length // 2)
            self.close_connection = True
            self.connection.shutdown(2)
            return
        body = self.rfile.read(length)
        repo = self._writable(repo_type, repo_id)
        if repo is None:
            return
        # Parse everything first; apply only if every line is valid (one atomic commit).
        header, adds, deletes = {}, {}, []
        try:
            for line in body.splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                key, value = item["key"], item["value"]
                if key == "header":
                    header = value
                elif key == "file":
                    adds[value["path"]] = base64.b64decode(value["content"], validate=True)
                elif key in ("deletedFile", "deletedFolder"):
                    deletes.append(value["path"])
                else:
                    raise ValueError(f"unsupported operation {key} (this test Hub only takes regular files)")
        except (ValueError, KeyError) as exc:
            return self._error(400, f"invalid commit payload: {exc}")
        with self.hub.lock:
            base = repo.resolve(rev)
            if base is None:
                return self._error(404, f"Revision {rev} not found", "RevisionNotFound")
            files = dict(repo.commits[base]["files"])
            for d in deletes:
                files = {p: b for p, b in files.items() if p != d and not p.startswith(d.rstrip("/") + "/")}
            files.update(adds)
            branch = rev
            if create_pr:
                branch = f"refs/pr/{sum(b.startswith('refs/pr/') for b in repo.branches) + 1}"
                repo.branches[branch] = base
            sha = repo.commit(branch, files, header.get("summary", ""))
        url = f"{self.hub.url}/{PREFIX[repo_type]}{repo_id}"
        pr_url = f"{url}/discussions/{branch.rsplit('/', 1)[-1]}" if create_pr else None
        self._send(200, {"commitUrl": f"{url}/commit/{sha}", "commitOid": sha, "pullRequestUrl": pr_url,
                         "success": True})

    def _info(self, repo_type: str, repo_id: str, rev: str) -> None:
        found = self._readable_revision(repo_type, repo_id, rev)
        if found is None:
            return
        repo, sha = found
        files = repo.commits[sha]["files"]
        info = {"id": repo_id, "author": repo.owner, "sha": sha, "private": repo.private,
                "lastModified": "2026-01-01T00:00:00.000Z", "tags": [],
                "siblings": [{"rfilename": p, "size": len(b), "blobId": git_blob_sha(b)} for p, b in files.items()]}
        if repo_type == "space":
            info["sdk"] = repo.sdk
        self._send(200, info)

    def _tree(self, repo_type: str, repo_id: str, rev: str, sub: str, recursive: bool) -> None:
        found = self._readable_revision(repo_type, repo_id, rev)
        if found is None:
            return
        repo, sha = found
        prefix = sub.strip("/") + "/" if sub.strip("/") else ""
        entries, folders = [], set()
        for path, data in sorted(repo.commits[sha]["files"].items()):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix):].split("/")
            for i in range(1, len(rest) if recursive else min(len(rest), 2)):
                folders.add(prefix + "/".join(rest[:i]))
            if recursive or len(rest) == 1:
                entries.append({"type": "file", "path": path, "size": len(data), "oid": git_blob_sha(data)})
        entries += [{"type": "directory", "path": f, "oid": hashlib.sha1(f.encode()).hexdigest()}
                    for f in sorted(folders)]
        self._send(200, entries)

    def _resolve(self, repo_type: str, repo_id: str, rev: str, path: str) -> None:
        found = self._readable_revision(repo_type, repo_id, rev)
        if found is None:
            return
        repo, sha = found
        data = repo.commits[sha]["files"].get(path)
        if data is None:
            return self._error(404, f"Entry {path} not found", "EntryNotFound")
        self._send(200, data, {"ETag": f'"{git_blob_sha(data)}"', "X-Repo-Commit": sha,
                               "Content-Type": "application/octet-stream"})


def new_token(user: str) -> str:
    """A fresh, unguessable test token for ``user`` (so a test can search output for it)."""
    return f"hf_test{user}{secrets.token_hex(12)}"
