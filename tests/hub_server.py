"""A small Hugging Face Hub look-alike for tests: the endpoints that huggingface_hub's client and
transformers' loaders call, served by the standard library on 127.0.0.1.

Only model repos, only regular (non-LFS) uploads: ``preupload`` answers ``uploadMode: "regular"`` for
every file, so the client sends file contents base64-encoded inside the NDJSON commit and never needs
the LFS or Xet transfer services. Repos live in memory as immutable commit snapshots, so revision
pins (branch names and commit ids) behave like on the Hub.

Errors carry the ``X-Error-Code`` headers huggingface_hub turns into its typed exceptions
(``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``); an unknown token gets the Hub's 401
message. Start it with ``HubServer(tokens={"hf_test": "alice"})`` as a context manager and point
``HF_ENDPOINT`` at ``server.url`` before huggingface_hub is imported (it reads the variable at import).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_BRANCH = "main"
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"  # what a new Hub repo starts with
INVALID_TOKEN_MESSAGE = "Invalid credentials in Authorization header"  # the text the client keys on
# Every repo route starts like this; the revision segment is URL-quoted by the client (no "/" inside).
API_REPO_ROUTE = re.compile(r"^/api/models/(?P<ns>[^/]+)/(?P<name>[^/]+)(?:/(?P<rest>.*))?$")
RESOLVE_ROUTE = re.compile(r"^/(?P<ns>[^/]+)/(?P<name>[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


def git_blob_oid(content: bytes) -> str:
    """The git object id of a file, which the Hub reports as a regular file's oid and ETag."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Commit:
    oid: str
    message: str
    files: dict[str, bytes]
    created: str


@dataclass
class Repo:
    repo_id: str
    owner: str
    private: bool
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        oid = self.branches.get(revision, revision)
        return self.commits.get(oid)


class HubError(Exception):
    """An HTTP error answer: status, the Hub's error code header (if any) and a message."""

    def __init__(self, status: int, message: str, code: str | None = None, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


class HubState:
    """All repos, the accepted tokens (token -> user name) and a log of (method, path, status)."""

    def __init__(self, tokens: dict[str, str]):
        self.tokens = dict(tokens)
        self.repos: dict[str, Repo] = {}
        self.log: list[tuple[str, str, int]] = []
        self.lock = threading.Lock()

    def user(self, authorization: str | None) -> str | None:
        if not authorization:
            return None
        token = authorization.removeprefix("Bearer ").strip()
        if token not in self.tokens:
            raise HubError(401, INVALID_TOKEN_MESSAGE)
        return self.tokens[token]

    def readable(self, repo_id: str, user: str | None) -> Repo:
        repo = self.repos.get(repo_id)
        if repo is None or (repo.private and user != repo.owner):
            # The Hub does not reveal private repos: same answer as for a missing one.
            raise HubError(404, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    def writable(self, repo_id: str, user: str | None) -> Repo:
        if user is None:
            raise HubError(401, "You must be authenticated to write to a repo", "RepoNotFound")
        repo = self.readable(repo_id, user)
        if repo.owner != user:
            raise HubError(403, f"You don't have the rights to write to {repo_id}")
        return repo

    def create_repo(self, user: str | None, name: str, namespace: str | None, private: bool) -> Repo:
        if user is None:
            raise HubError(401, "You must be authenticated to create a repo")
        namespace = namespace or user
        if namespace != user:
            raise HubError(403, f"You don't have the rights to create a model under the namespace {namespace}")
        repo_id = f"{namespace}/{name}"
        if repo_id in self.repos:  # the Hub's conflict answer still carries the url; the client reads it
            raise HubError(409, "You already created this model repo", url_path=repo_id)
        repo = Repo(repo_id, owner=user, private=private)
        self.repos[repo_id] = repo
        self.commit(repo, DEFAULT_BRANCH, "initial commit", {".gitattributes": GITATTRIBUTES})
        return repo

    @staticmethod
    def commit(repo: Repo, branch: str, message: str, files: dict[str, bytes]) -> Commit:
        parent = repo.branches.get(branch, "")
        digest = hashlib.sha1(json.dumps([parent, message, sorted((p, git_blob_oid(c)) for p, c in files.items())]).encode())
        digest.update(str(len(repo.commits)).encode())  # identical trees on different commits still get new ids
        now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        commit = Commit(digest.hexdigest(), message, files, now)
        repo.commits[commit.oid] = commit
        repo.branches[branch] = commit.oid
        return commit


def entry(path: str, content: bytes) -> dict:
    return {"type": "file", "path": path, "oid": git_blob_oid(content), "size": len(content)}


class HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive like the Hub; every answer sets Content-Length
    state: HubState  # set on the subclass HubServer builds

    def log_message(self, format, *args):  # noqa: A002 - signature from BaseHTTPRequestHandler
        """Quiet: the state's log records requests for tests to inspect."""

    # --- plumbing -----------------------------------------------------------------------------
    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self.body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status = 500
        try:
            with self.state.lock:
                user = self.state.user(self.headers.get("Authorization"))
                status, headers, payload = self._route(method, url.path, user)
        except HubError as err:
            body = {"error": err.message}
            if "url_path" in err.extra:
                body["url"] = f"http://{self.headers['Host']}/{err.extra['url_path']}"
            status, headers, payload = err.status, {}, json.dumps(body).encode()
            if err.code:
                headers["X-Error-Code"] = err.code
            headers["X-Error-Message"] = err.message
        self.state.log.append((method, url.path, status))
        self._send(status, headers, payload, head=method == "HEAD")

    def _send(self, status: int, headers: dict, payload, head: bool) -> None:
        if not isinstance(payload, bytes):
            payload = json.dumps(payload).encode()
            headers.setdefault("Content-Type", "application/json")
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if not head:
            self.wfile.write(payload)

    def _json(self):
        return json.loads(self.body or b"{}")

    # --- routes -------------------------------------------------------------------------------
    def _route(self, method: str, path: str, user: str | None):
        if method == "POST" and path == "/api/repos/create":
            return self._create_repo(user)
        if method == "DELETE" and path == "/api/repos/delete":
            return self._delete_repo(user)
        if method == "GET" and path == "/api/whoami-v2":
            if user is None:
                raise HubError(401, INVALID_TOKEN_MESSAGE)
            return 200, {}, {"type": "user", "name": user, "orgs": []}
        if method == "POST" and path == "/api/validate-yaml":
            return 200, {}, {"errors": [], "warnings": []}
        if match := RESOLVE_ROUTE.match(path):
            return self._resolve(user, match)
        if match := API_REPO_ROUTE.match(path):
            return self._repo_api(method, user, f"{match['ns']}/{match['name']}", match["rest"] or "")
        raise HubError(404, f"no route for {method} {path}")

    def _create_repo(self, user):
        payload = self._json()
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        repo = self.state.create_repo(user, payload["name"], payload.get("organization"), private)
        return 200, {}, {"url": f"http://{self.headers['Host']}/{repo.repo_id}", "name": repo.repo_id}

    def _delete_repo(self, user):
        payload = self._json()
        repo_id = f"{payload.get('organization') or user}/{payload['name']}"
        self.state.writable(repo_id, user)
        del self.state.repos[repo_id]
        return 200, {}, {}

    def _repo_api(self, method: str, user, repo_id: str, rest: str):
        verb, _, tail = rest.partition("/")
        if method == "GET" and verb in ("", "revision"):
            return self._model_info(user, repo_id, unquote(tail) if verb else DEFAULT_BRANCH)
        if method == "GET" and verb == "refs":
            repo = self.state.readable(repo_id, user)
            branches = [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": oid} for b, oid in repo.branches.items()]
            return 200, {}, {"branches": branches, "tags": [], "converts": []}
        if method == "GET" and verb == "tree":
            revision, _, folder = tail.partition("/")
            return self._tree(user, repo_id, unquote(revision), unquote(folder))
        if method == "POST" and verb == "paths-info":
            return self._paths_info(user, repo_id, unquote(tail))
        if method == "POST" and verb == "preupload":
            return self._preupload(user, repo_id, unquote(tail))
        if method == "POST" and verb == "commit":
            return self._commit(user, repo_id, unquote(tail))
        if method == "POST" and verb == "branch":
            return self._create_branch(user, repo_id, unquote(tail))
        raise HubError(404, f"no route for {method} /api/models/{repo_id}/{rest}")

    def _snapshot(self, user, repo_id: str, revision: str) -> tuple[Repo, Commit]:
        repo = self.state.readable(repo_id, user)
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return repo, commit

    def _model_info(self, user, repo_id: str, revision: str):
        repo, commit = self._snapshot(user, repo_id, revision)
        siblings = [{"rfilename": p, "size": len(c), "blobId": git_blob_oid(c)} for p, c in sorted(commit.files.items())]
        info = {"id": repo_id, "author": repo.owner, "sha": commit.oid, "private": repo.private, "lastModified": commit.created,
                "createdAt": commit.created, "siblings": siblings, "tags": [], "disabled": False, "gated": False}
        return 200, {}, info

    def _tree(self, user, repo_id: str, revision: str, folder: str):
        _, commit = self._snapshot(user, repo_id, revision)
        prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
        recursive = self.query.get("recursive", "false").lower() in ("1", "true")
        files, folders = [], set()
        for path, content in sorted(commit.files.items()):
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix):].split("/")
            if len(parts) == 1 or recursive:
                files.append(entry(path, content))
            for depth in range(1, len(parts) if recursive else min(len(parts), 2)):
                folders.add(prefix + "/".join(parts[:depth]))
        if prefix and not files and not folders:
            raise HubError(404, f"{folder} does not exist on {revision}", "EntryNotFound")
        return 200, {}, [{"type": "directory", "path": f, "oid": git_blob_oid(f.encode())} for f in sorted(folders)] + files

    def _paths_info(self, user, repo_id: str, revision: str):
        _, commit = self._snapshot(user, repo_id, revision)
        if self.headers.get("Content-Type", "").startswith("application/json"):
            paths = self._json().get("paths", [])
        else:
            paths = parse_qs(self.body.decode()).get("paths", [])
        return 200, {}, [entry(p, commit.files[p]) for p in paths if p in commit.files]

    def _preupload(self, user, repo_id: str, revision: str):
        repo = self.state.writable(repo_id, user)
        current = repo.resolve(revision)
        files = []
        for item in self._json()["files"]:
            existing = current.files.get(item["path"]) if current else None
            files.append({"path": item["path"], "uploadMode": "regular", "shouldIgnore": False,
                          "oid": git_blob_oid(existing) if existing is not None else None})
        return 200, {}, {"files": files}

    def _commit(self, user, repo_id: str, branch: str):
        repo = self.state.writable(repo_id, user)
        if branch not in repo.branches:
            raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
        lines = [json.loads(line) for line in self.body.splitlines() if line.strip()]
        header = next(item["value"] for item in lines if item["key"] == "header")
        files = dict(repo.resolve(branch).files)
        for item in lines:
            value = item["value"]
            if item["key"] == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif item["key"] == "deletedFile":
                files.pop(value["path"], None)
            elif item["key"] == "deletedFolder":
                files = {p: c for p, c in files.items() if not p.startswith(value["path"].rstrip("/") + "/")}
            elif item["key"] != "header":
                raise HubError(400, f"this test server accepts regular files only, not {item['key']}")
        commit = self.state.commit(repo, branch, header["summary"], files)
        url = f"http://{self.headers['Host']}/{repo_id}/commit/{commit.oid}"
        return 200, {}, {"commitUrl": url, "commitOid": commit.oid, "pullRequestUrl": None, "success": True}

    def _create_branch(self, user, repo_id: str, branch: str):
        repo = self.state.writable(repo_id, user)
        if branch in repo.branches:
            raise HubError(409, "Reference already exists")
        start = repo.resolve(self._json().get("startingPoint") or DEFAULT_BRANCH)
        if start is None:
            raise HubError(404, "Invalid starting point", "RevisionNotFound")
        repo.branches[branch] = start.oid
        return 200, {}, {}

    def _resolve(self, user, match):
        repo_id, revision, path = f"{match['ns']}/{match['name']}", unquote(match["rev"]), unquote(match["path"])
        _, commit = self._snapshot(user, repo_id, revision)
        if path not in commit.files:
            raise HubError(404, f"{path} does not exist on {revision}", "EntryNotFound")
        content = commit.files[path]
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{git_blob_oid(content)}"',
                   "Content-Type": "application/octet-stream"}
        return 200, headers, content


class HubServer:
    """The test Hub on a free port of 127.0.0.1, served from a daemon thread.

    ``tokens`` maps accepted tokens to user names; ``url`` is what HF_ENDPOINT should be set to.
    """

    def __init__(self, tokens: dict[str, str] | None = None):
        self.state = HubState(tokens or {})
        handler = type("BoundHubHandler", (HubHandler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="test-hub", daemon=True)

    def __enter__(self) -> HubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()
