"""A test double of the Hugging Face Hub HTTP API, small enough to read, for running the real
``huggingface_hub`` client (2.x, over ``httpx2``) in-process with no network.

:meth:`HubDouble.install` points huggingface_hub's shared HTTP client at this WSGI app
(``set_client_factory`` + ``httpx2.WSGITransport``: no socket is opened); the client code
above the transport (``create_repo``, ``upload_folder``, ``create_tag``, ``snapshot_download``,
``hf_hub_download``, its cache and its error mapping) is the real one.

Endpoints covered (model repos only):

* ``POST /api/repos/create`` (409 when the repo exists; the first commit holds ``.gitattributes``)
* ``POST /api/models/{id}/preupload/{rev}`` (every file is answered ``uploadMode: regular``)
* ``POST /api/models/{id}/commit/{rev}`` (NDJSON: header, base64 ``file``, ``deletedFile``)
* ``POST /api/models/{id}/tag/{rev}`` (409 when the tag exists)
* ``GET /api/models/{id}``, ``GET /api/models/{id}/revision/{rev}`` (id, sha, private, siblings)
* ``GET /api/models/{id}/tree/{rev}`` (recursive file listing, one page)
* ``GET /api/models/{id}/refs`` (branches and tags)
* ``HEAD``/``GET /{id}/resolve/{rev}/{path}`` (``X-Repo-Commit``, ``ETag``, ``Content-Length``)
* ``POST /api/validate-yaml`` (always valid)

Errors carry the real ``X-Error-Code`` headers (``RepoNotFound``, ``RevisionNotFound``,
``EntryNotFound``), so the client raises its typed exceptions.

What the real Hub does and this double does not: large-file storage (LFS and Xet: every file
is a regular git blob sent base64 inside the commit, so ``hf_xet`` never runs), real auth
(one fixed write token; no scopes, orgs, gated repos, rate limits), pull requests and
``refs/...`` revisions, paginated listings, redirects to a CDN, skipping files that did not
change, README/YAML validation, repo types other than models, and git history beyond
"a commit is a full set of files with a parent".
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx2

GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.pth filter=lfs diff=lfs merge=lfs -text\n"


def git_blob_id(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Repo:
    private: bool
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> str | None:
        """A commit sha for a branch, a tag or a full commit sha; None if unknown."""
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.tags:
            return self.tags[revision]
        return revision if revision in self.commits else None

    def commit(self, branch: str, files: dict[str, bytes], message: str) -> str:
        parent = self.branches.get(branch, "")
        digest = hashlib.sha1(f"{parent}\n{message}\n".encode())
        for path in sorted(files):
            digest.update(f"{path} {git_blob_id(files[path])}\n".encode())
        sha = digest.hexdigest()
        self.commits[sha] = dict(files)
        self.branches[branch] = sha
        return sha


class HttpError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, **body: str) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.body = status, message, code, body


class HubDouble:
    """The WSGI app. ``token``: the one token allowed to write (and to read private repos).
    ``requests`` logs ``(method, path)`` of every request served."""

    def __init__(self, token: str | None = None, endpoint: str = "http://hub.test") -> None:
        self.token = token
        self.endpoint = endpoint
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []

    # --- wiring ---------------------------------------------------------------------------------

    def client(self) -> httpx2.Client:
        return httpx2.Client(transport=httpx2.WSGITransport(app=self), follow_redirects=True)

    def install(self) -> None:
        """Make huggingface_hub send every request to this app (until :func:`uninstall`)."""
        from huggingface_hub import set_client_factory

        set_client_factory(self.client)

    @staticmethod
    def uninstall() -> None:
        from huggingface_hub import set_client_factory
        from huggingface_hub.utils._http import default_client_factory

        set_client_factory(default_client_factory)

    # --- test helpers ---------------------------------------------------------------------------

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        repo = self.repos[repo_id]
        return repo.commits[repo.resolve(revision)]

    def tamper(self, repo_id: str, path: str, content: bytes, branch: str = "main") -> str:
        """Replace one file on ``branch`` behind the publisher's back; returns the new commit."""
        repo = self.repos[repo_id]
        return repo.commit(branch, {**self.files(repo_id, branch), path: content}, f"tamper with {path}")

    def seed(self, repo_id: str, files: dict[str, bytes], tag: str | None = None, private: bool = False) -> str:
        """Create a repo holding ``files`` on main (and tag it); returns the commit."""
        repo = self.repos.setdefault(repo_id, Repo(private=private))
        sha = repo.commit("main", {".gitattributes": GITATTRIBUTES, **files}, "seed")
        if tag:
            repo.tags[tag] = sha
        return sha

    # --- WSGI -----------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response) -> list[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        self.requests.append((method, path))
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        query = parse_qs(environ.get("QUERY_STRING", ""))
        authorized = self.token is None or environ.get("HTTP_AUTHORIZATION") == f"Bearer {self.token}"
        try:
            status, headers, payload = self._route(method, path, body, query, authorized)
        except HttpError as e:
            headers = {"Content-Type": "application/json", "X-Error-Message": e.message}
            if e.code:
                headers["X-Error-Code"] = e.code
            status, payload = e.status, json.dumps({"error": e.message, **e.body}).encode()
        reason = {200: "OK", 401: "Unauthorized", 404: "Not Found", 409: "Conflict"}.get(status, "Error")
        headers.setdefault("Content-Length", str(len(payload)))
        start_response(f"{status} {reason}", list(headers.items()))
        return [b""] if method == "HEAD" else [payload]

    def _route(self, method: str, path: str, body: bytes, query: dict, authorized: bool):
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/api/validate-yaml":
            return self._json({"errors": [], "warnings": []})
        if method == "POST" and path == "/api/repos/create":
            self._need_write(authorized)
            return self._create_repo(json.loads(body))
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            repo_id, rest = "/".join(parts[2:4]), parts[4:]
            repo = self._repo(repo_id, authorized)
            if method == "POST":
                self._need_write(authorized)
                if len(rest) == 2 and rest[0] == "preupload":
                    return self._preupload(json.loads(body))
                if len(rest) == 2 and rest[0] == "commit":
                    return self._commit(repo_id, repo, rest[1], body)
                if len(rest) == 2 and rest[0] == "tag":
                    return self._tag(repo, rest[1], json.loads(body))
            if method == "GET":
                if not rest:
                    return self._info(repo_id, repo, "main")
                if len(rest) == 2 and rest[0] == "revision":
                    return self._info(repo_id, repo, rest[1])
                if len(rest) >= 2 and rest[0] == "tree":
                    return self._tree(repo, rest[1], "/".join(rest[2:]))
                if rest == ["refs"]:
                    return self._refs(repo)
        if method in ("GET", "HEAD") and len(parts) >= 5 and parts[2] == "resolve":
            repo_id = "/".join(parts[:2])
            return self._resolve(self._repo(repo_id, authorized), parts[3], "/".join(parts[4:]))
        raise HttpError(404, f"{method} {path}: not served by the Hub double")

    # --- endpoints ------------------------------------------------------------------------------

    @staticmethod
    def _json(data: object) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "application/json"}, json.dumps(data).encode()

    @staticmethod
    def _need_write(authorized: bool) -> None:
        if not authorized:
            raise HttpError(401, "Invalid credentials in Authorization header")

    def _repo(self, repo_id: str, authorized: bool) -> Repo:
        repo = self.repos.get(repo_id)
        if repo is None or (repo.private and not authorized):
            raise HttpError(404, "Repository not found", "RepoNotFound")
        return repo

    def _commit_of(self, repo: Repo, revision: str) -> str:
        sha = repo.resolve(revision)
        if sha is None:
            raise HttpError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return sha

    def _create_repo(self, payload: dict) -> tuple[int, dict[str, str], bytes]:
        repo_id = f"{payload['organization']}/{payload['name']}"
        if repo_id in self.repos:
            raise HttpError(409, "You already created this model repo", url=f"{self.endpoint}/{repo_id}")
        repo = self.repos[repo_id] = Repo(private=payload.get("visibility") == "private")
        repo.commit("main", {".gitattributes": GITATTRIBUTES}, "initial commit")
        return self._json({"url": f"{self.endpoint}/{repo_id}", "name": repo_id})

    def _preupload(self, payload: dict) -> tuple[int, dict[str, str], bytes]:
        files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in payload["files"]]
        return self._json({"files": files, "commitOid": None})

    def _commit(self, repo_id: str, repo: Repo, revision: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if revision not in repo.branches:
            raise HttpError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        files = dict(repo.commits[repo.branches[revision]])
        message = ""
        for line in body.splitlines():
            item = json.loads(line)
            value = item["value"]
            if item["key"] == "header":
                message = value["summary"]
            elif item["key"] == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif item["key"] == "deletedFile":
                files.pop(value["path"], None)
            else:
                raise HttpError(400, f"commit operation {item['key']!r} is not served by the Hub double")
        sha = repo.commit(revision, files, message)
        url = f"{self.endpoint}/{repo_id}/commit/{sha}"
        return self._json({"commitUrl": url, "commitOid": sha, "pullRequestUrl": None})

    def _tag(self, repo: Repo, revision: str, payload: dict) -> tuple[int, dict[str, str], bytes]:
        if payload["tag"] in repo.tags:
            raise HttpError(409, f"Tag {payload['tag']} already exists")
        repo.tags[payload["tag"]] = self._commit_of(repo, revision)
        return self._json({})

    def _info(self, repo_id: str, repo: Repo, revision: str) -> tuple[int, dict[str, str], bytes]:
        sha = self._commit_of(repo, revision)
        siblings = [{"rfilename": p} for p in sorted(repo.commits[sha])]
        return self._json({"id": repo_id, "sha": sha, "private": repo.private, "siblings": siblings})

    def _tree(self, repo: Repo, revision: str, prefix: str) -> tuple[int, dict[str, str], bytes]:
        files = repo.commits[self._commit_of(repo, revision)]
        entries = [
            {"type": "file", "path": p, "size": len(c), "oid": git_blob_id(c)}
            for p, c in sorted(files.items())
            if not prefix or p.startswith(prefix.rstrip("/") + "/")
        ]
        return self._json(entries)

    def _refs(self, repo: Repo) -> tuple[int, dict[str, str], bytes]:
        def refs(names: dict[str, str], kind: str) -> list[dict[str, str]]:
            return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": c} for n, c in sorted(names.items())]

        branches, tags = refs(repo.branches, "heads"), refs(repo.tags, "tags")
        return self._json({"branches": branches, "tags": tags, "converts": [], "pullRequests": []})

    def _resolve(self, repo: Repo, revision: str, path: str) -> tuple[int, dict[str, str], bytes]:
        sha = self._commit_of(repo, revision)
        files = repo.commits[sha]
        if path not in files:
            raise HttpError(404, f"Entry not found: {path}", "EntryNotFound")
        content = files[path]
        headers = {
            "Content-Type": "application/octet-stream",
            "X-Repo-Commit": sha,
            "ETag": f'"{git_blob_id(content)}"',
        }
        return 200, headers, content


class UnreachableHub:
    """No network at all: every request fails to connect, as with no route to the Hub. ``attempts``
    logs the path of each try, so a test can tell that nothing is retried."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def _refuse(self, request: httpx2.Request) -> httpx2.Response:
        self.attempts.append(request.url.path)
        raise httpx2.ConnectError("[Errno 101] Network is unreachable", request=request)

    def install(self) -> None:
        from huggingface_hub import set_client_factory

        set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(self._refuse)))
