"""A local emulation of GitHub's REST API (gists, repository contents) and its raw file hosts.

Two real HTTP/1.1 servers on 127.0.0.1, each on its own port so they are different origins:

* the API server (api.github.com, or a GitHub Enterprise ``/api/v3`` prefix), and
* the raw server, which plays both gist.githubusercontent.com (``/{owner}/{gist}/raw/...``) and
  raw.githubusercontent.com (``/{owner}/{repo}/{ref}/{path}``).

The behaviour follows /work/shared/reference/github-gist-api.md and github-contents-api.md: field
names and order from recorded real payloads, blob ids as git computes them, ``Link`` pagination,
weak ETags with free 304s, primary and secondary rate limits. Every URL in a payload or header
points back at these two servers. Web pages (``html_url``, ``git_pull_url``) live under
``{raw_base}/-/github.com`` and ``{raw_base}/-/gist.github.com`` and answer 404: they are not
emulated, except a gist's archive downloads: ``/-/gist.github.com/{id}/download`` and
``/{owner}/{id}/archive/{sha}.zip|.tar.gz`` redirect (302, as gist.github.com does) to
``{raw_base}/-/codeload.github.com/gist/{id}/zip|tar.gz/{sha}``, which serves the archive built
from the stored revision (top directory ``{id}-{sha}/``), or a crafted one (serve_archive).
"""

from __future__ import annotations

import base64
import calendar
import difflib
import email.utils
import fnmatch
import hashlib
import io
import json
import re
import tarfile
import threading
import time
import tomllib
import urllib.parse
import zipfile
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from tests.support.loopback import LoopbackServer, QuietHandler

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "github"

API_VERSIONS = ("2022-11-28", "2026-03-10")
DEFAULT_API_VERSION = "2022-11-28"
VERSION_WITHOUT_HISTORY = "2026-03-10"
TRUNCATE_BYTES = 1024 * 1024  # gist `content` holds at most this much of a file
CONTENTS_MAX_BYTES = 1024 * 1024  # the contents API inlines files up to this size
RAW_MAX_BYTES = 10 * 1024 * 1024  # the gist raw host answers 403 above this
MAX_FILES_LISTED = 300
ANONYMOUS_LIMIT = 60
TOKEN_LIMIT = 5000
WINDOW_SECONDS = 3600
PER_PAGE_DEFAULT = 30
PER_PAGE_MAX = 100
DEFAULT_BRANCH = "master"

# Names GitHub itself would never produce; listed (when switched on) to test a client's defences.
HOSTILE_FILENAMES = (
    "../evil",
    "a/b",
    "",
    ".",
    "..",
    "/etc/zoopm-evil",
    "a\\b",
    "C:evil",
    "bell\x07",
)

_SHA_RE = re.compile(r"[0-9a-f]{40}")
_GIST_WEB = "/-/gist.github.com/"
_CODELOAD = "/-/codeload.github.com/"
_HEX_PREFIX_RE = re.compile(r"[0-9a-f]{7,40}")
_DOCS = "https://docs.github.com/rest"
_DOC_GIST = "https://docs.github.com/rest/gists/gists#get-a-gist"
_DOC_GIST_REVISION = "https://docs.github.com/rest/gists/gists#get-a-gist-revision"
_DOC_GIST_COMMITS = "https://docs.github.com/rest/gists/gists#list-gist-commits"
_DOC_CONTENTS = "https://docs.github.com/rest/repos/contents#get-repository-content"
_DOC_REPO = "https://docs.github.com/rest/repos/repos#get-a-repository"
_DOC_COMMITS = "https://docs.github.com/rest/commits/commits#list-commits"
_DOC_COMMIT = "https://docs.github.com/rest/commits/commits#get-a-commit"
_DOC_PRIMARY = "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"
_DOC_SECONDARY = (
    "https://docs.github.com/free-pro-team@latest/rest/overview/"
    "rate-limits-for-the-rest-api#about-secondary-rate-limits"
)
_EXPOSE_HEADERS = (
    "ETag, Link, Location, Retry-After, X-GitHub-OTP, X-RateLimit-Limit, X-RateLimit-Remaining, "
    "X-RateLimit-Used, X-RateLimit-Resource, X-RateLimit-Reset, X-OAuth-Scopes, "
    "X-Accepted-OAuth-Scopes, X-Poll-Interval, X-GitHub-Media-Type, X-GitHub-SSO, "
    "X-GitHub-Request-Id, Deprecation, Sunset"
)
_GIST_EPOCH = calendar.timegm((2015, 2, 15, 8, 0, 0))
_REPO_EPOCH = calendar.timegm((2017, 3, 1, 12, 0, 0))
_DIFF_LINE_LIMIT = 20_000
_MAX_DRAIN = 1024 * 1024
_MAX_BODY = 64 * 1024 * 1024  # a write's JSON body is read up to this size
_DOC_GIST_CREATE = "https://docs.github.com/rest/gists/gists#create-a-gist"
_DOC_GIST_UPDATE = "https://docs.github.com/rest/gists/gists#update-a-gist"
_DOC_GIST_DELETE = "https://docs.github.com/rest/gists/gists#delete-a-gist"
DEFAULT_SCOPES = ("gist", "repo", "user")
_WRITE_METHODS = ("POST", "PATCH", "DELETE")
_T = TypeVar("_T")
# (extension, MIME type, Linguist language); anything else is text/plain with no language.
_FILE_TYPES = {
    ".md": ("text/markdown", "Markdown"),
    ".markdown": ("text/markdown", "Markdown"),
    ".txt": ("text/plain", "Text"),
    ".py": ("application/x-python", "Python"),
    ".sh": ("application/x-sh", "Shell"),
    ".json": ("application/json", "JSON"),
    ".yml": ("application/x-yaml", "YAML"),
    ".yaml": ("application/x-yaml", "YAML"),
    ".rb": ("application/x-ruby", "Ruby"),
    ".caffemodel": ("application/octet-stream", None),
}


def git_blob_sha1(data: bytes) -> str:
    """The id git gives a file's bytes: what gist raw_urls and the contents API's `sha` hold."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class ApiRequest:
    """One request either server answered, as the client sent it, plus the status it got."""

    server: str  # "api" or "raw"
    method: str
    path: str  # without query
    query: dict[str, str]  # parsed, single values (the first one when repeated)
    headers: dict[str, str]  # lower-cased keys
    status: int
    counted: bool  # whether it was charged to the primary rate limit


# --- stored data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _GistCommit:
    sha: str
    tree: dict[str, str]  # file name -> blob sha
    committed_at: int
    additions: int
    deletions: int


@dataclass
class _Gist:
    gist_id: str
    owner: str
    description: str | None  # None when never given (GitHub answers null)
    public: bool
    commits: list[_GistCommit]  # oldest first
    updated: int | None = None  # set by a write; else the newest commit's date

    def blobs(self) -> set[str]:
        return {blob for commit in self.commits for blob in commit.tree.values()}

    @property
    def updated_at(self) -> int:
        return self.updated if self.updated is not None else self.commits[-1].committed_at


@dataclass(frozen=True)
class _Account:
    """What a registered token stands for: a user, and the OAuth scopes granted to it."""

    login: str
    scopes: tuple[str, ...]


@dataclass
class _Repo:
    owner: str
    name: str
    numeric_id: int
    trees: dict[str, dict[str, str]] = field(default_factory=dict)  # commit -> path -> blob
    added: list[str] = field(default_factory=list)  # commits in the order they were added
    history: list[str] | None = None  # newest first, as set_repo_history gave it
    # A private repository answers only a token's requests; its download_urls carry raw_token.
    private: bool = False
    raw_token: str = ""


@dataclass(frozen=True)
class _Identity:
    key: str  # what the rate limit is counted against
    token: str | None

    @property
    def limit(self) -> int:
        return ANONYMOUS_LIMIT if self.token is None else TOKEN_LIMIT

    @property
    def etag_part(self) -> str:
        return self.key if self.token is None else "token:" + _sha256(self.token.encode())


@dataclass
class _Window:
    used: int
    reset: int


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    counted: bool = False


@dataclass(frozen=True)
class _Result:
    """What a route produced, before the cross-cutting headers go on."""

    status: int
    payload: Any
    headers: list[tuple[str, str]] = field(default_factory=list)
    last_modified: int | None = None
    media: str = "github.v3; format=json"


@dataclass(frozen=True)
class _Secondary:
    status: int
    retry_after: int


@dataclass(frozen=True)
class _Ctx:
    """Per-request facts the payload builders need."""

    api: str
    raw: str
    accept: str
    version: str
    authenticated: bool = False


# --- the servers -----------------------------------------------------------------------------


class _Server(LoopbackServer):
    def __init__(self, emulator: GitHubEmulator, kind: str) -> None:
        self.emulator = emulator
        self.kind = kind
        super().__init__(_Handler)


class _Handler(QuietHandler):
    server: _Server

    def version_string(self) -> str:
        return "GitHub.com"

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_GET
    do_POST = do_GET
    do_PUT = do_GET
    do_PATCH = do_GET
    do_DELETE = do_GET
    do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        body = self._read_body()
        headers = {name.lower(): str(value) for name, value in self.headers.items()}
        answer = self.server.emulator._answer(
            self.server.kind, self.command, self.path, headers, str(self.client_address[0]), body
        )
        self.send_response(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        if answer.status in (204, 304):
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    def _read_body(self) -> bytes:
        """The request body (a write's JSON); b"" when there is none or it is not read."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            return b""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        limit = _MAX_BODY if self.command in _WRITE_METHODS else _MAX_DRAIN
        if length < 0 or length > limit:
            self.close_connection = True
        elif length:
            return self.rfile.read(length)
        return b""


# --- the emulator ----------------------------------------------------------------------------


class GitHubEmulator:
    """The GitHub REST API (gists, contents, commits, rate_limit) and raw hosts on 127.0.0.1.

    Data goes in with add_gist / add_repo_tree / set_repo_history / load_fixtures; switches
    inject rate limits and faults. Every request on both servers is logged (requests).
    """

    def __init__(self, api_prefix: str = "") -> None:
        if api_prefix and (not api_prefix.startswith("/") or api_prefix.endswith("/")):
            raise ValueError(f"api_prefix must look like '/api/v3', not {api_prefix!r}")
        self.api_prefix = api_prefix
        self.hostile_filenames = False
        self.api_version_2026_drops_history = True
        self._lock = threading.Lock()
        self._lifecycle = threading.Lock()
        self._gists: dict[str, _Gist] = {}
        self._repos: dict[str, _Repo] = {}  # "owner/repo" lower-cased -> repo
        self._blobs: dict[str, bytes] = {}
        self._hostile = {git_blob_sha1(_hostile_bytes(name)): name for name in HOSTILE_FILENAMES}
        for name in HOSTILE_FILENAMES:
            data = _hostile_bytes(name)
            self._blobs[git_blob_sha1(data)] = data
        self._tokens: dict[str, _Account] = {}
        self._created = 0  # gists made through POST /gists, for their ids
        self.noop_patch_422 = False
        self._windows: dict[str, _Window] = {}
        self._exhausted: tuple[int, int] | None = None  # (status, reset epoch)
        self._secondary: deque[_Secondary] = deque()
        self._api_faults: dict[tuple[str, str], deque[int]] = {}  # (method or "*", path)
        self._raw_faults: dict[str, int] = {}
        self._archives: dict[tuple[str, str], bytes] = {}  # (gist id, "zip"|"tar.gz") -> bytes
        self._archive_delay = 0.0
        self._log: list[ApiRequest] = []
        self._request_number = 0
        self._servers: tuple[_Server, _Server] | None = None
        self._ports = (0, 0)  # kept after stop, for handlers still finishing a request
        self._stopped = False

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        with self._lifecycle:
            if self._servers is not None or self._stopped:
                raise RuntimeError("a GitHubEmulator can be started only once")
            servers = (_Server(self, "api"), _Server(self, "raw"))
            for server in servers:
                server.serve_in_thread(f"GitHubEmulator-{server.kind}:{server.server_port}")
            self._servers = servers
            self._ports = (servers[0].server_port, servers[1].server_port)
        return self

    def stop(self) -> None:
        with self._lifecycle:
            servers = self._servers
            self._servers = None
            self._stopped = True
        if servers is None:
            return
        for server in servers:
            server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _port(self, index: int) -> int:
        servers = self._servers
        if servers is None:
            raise RuntimeError("the GitHubEmulator is not running")
        return servers[index].server_port

    @property
    def api_url(self) -> str:
        """What ZOOPM_GITHUB_API is set to: the API root, with the prefix if one was given."""
        return f"http://127.0.0.1:{self._port(0)}{self.api_prefix}"

    @property
    def raw_base(self) -> str:
        return f"http://127.0.0.1:{self._port(1)}"

    @property
    def web_base(self) -> str:
        """Where html_url and git_pull_url point (not served: 404)."""
        return self.raw_base + "/-"

    # --- data --------------------------------------------------------------------------------

    def add_gist(
        self,
        gist_id: str,
        owner: str,
        revisions: list[dict[str, bytes]],
        description: str = "",
        public: bool = True,
        *,
        created_at: int | None = None,
    ) -> list[str]:
        """Stores a gist; revisions oldest first, each the full file set. Returns commit shas.

        Commit i is dated created_at (epoch; default 2015-02-15T08:00:00Z) plus i days.
        """
        if not gist_id or "/" in gist_id:
            raise ValueError(f"not a gist id: {gist_id!r}")
        if not revisions or any(not files for files in revisions):
            raise ValueError("a gist needs at least one revision, each with at least one file")
        start = _GIST_EPOCH if created_at is None else created_at
        commits: list[_GistCommit] = []
        previous: dict[str, bytes] = {}
        parent = ""
        for index, files in enumerate(revisions):
            current = {name: bytes(data) for name, data in files.items()}
            tree = {name: git_blob_sha1(data) for name, data in sorted(current.items())}
            sha = _gist_commit_sha(gist_id, index, parent, tree)
            additions = deletions = 0
            for name in sorted(set(previous) | set(current)):
                added, deleted = _line_changes(previous.get(name, b""), current.get(name, b""))
                additions += added
                deletions += deleted
            commits.append(_GistCommit(sha, tree, start + index * 86400, additions, deletions))
            with self._lock:
                for name, data in current.items():
                    self._blobs[tree[name]] = data
            previous, parent = current, sha
        gist = _Gist(gist_id, owner, description, public, commits)
        with self._lock:
            self._gists[gist_id] = gist
        return [commit.sha for commit in commits]

    def add_repo_tree(self, owner: str, repo: str, commit: str, files: dict[str, bytes]) -> None:
        """Stores the files of a repository at one commit (a 40-hex sha), keyed by repo path."""
        _check_sha(commit)
        tree: dict[str, str] = {}
        blobs: dict[str, bytes] = {}
        for raw_path, data in files.items():
            path = raw_path.strip("/")
            if not path or any(part in ("", ".", "..") for part in path.split("/")):
                raise ValueError(f"not a repository path: {raw_path!r}")
            blob = git_blob_sha1(bytes(data))
            tree[path] = blob
            blobs[blob] = bytes(data)
        with self._lock:
            entry = self._repo_entry(owner, repo)
            entry.trees[commit] = tree
            if commit not in entry.added:
                entry.added.append(commit)
            self._blobs.update(blobs)

    def set_repo_history(self, owner: str, repo: str, commits: list[str]) -> None:
        """The repository's default-branch history, newest first (for /commits and 'master')."""
        for commit in commits:
            _check_sha(commit)
        with self._lock:
            self._repo_entry(owner, repo).history = list(commits)

    def load_fixtures(self, root: Path = FIXTURES) -> None:
        """Loads gists/<id>/{gist.toml,r1,r2,...} and repos/<owner>/<repo>/{repo.toml,<sha>/...}."""
        gists = root / "gists"
        for gist_dir in sorted(gists.iterdir()) if gists.is_dir() else []:
            meta = tomllib.loads((gist_dir / "gist.toml").read_text(encoding="utf-8"))
            revision_dirs = sorted(
                (p for p in gist_dir.iterdir() if p.is_dir() and re.fullmatch(r"r[0-9]+", p.name)),
                key=lambda p: int(p.name[1:]),
            )
            revisions = [
                {f.name: f.read_bytes() for f in sorted(d.iterdir()) if f.is_file()}
                for d in revision_dirs
            ]
            created = meta.get("created_at")
            self.add_gist(
                gist_dir.name,
                str(meta["owner"]),
                revisions,
                description=str(meta.get("description", "")),
                public=bool(meta.get("public", True)),
                created_at=None if created is None else _parse_iso(str(created)),
            )
        repos = root / "repos"
        for owner_dir in sorted(repos.iterdir()) if repos.is_dir() else []:
            for repo_dir in sorted(owner_dir.iterdir()):
                for commit_dir in sorted(repo_dir.iterdir()):
                    if not commit_dir.is_dir():
                        continue
                    files = {
                        f.relative_to(commit_dir).as_posix(): f.read_bytes()
                        for f in sorted(commit_dir.rglob("*"))
                        if f.is_file()
                    }
                    self.add_repo_tree(owner_dir.name, repo_dir.name, commit_dir.name, files)
                meta_file = repo_dir / "repo.toml"
                if meta_file.is_file():
                    meta = tomllib.loads(meta_file.read_text(encoding="utf-8"))
                    if "history" in meta:
                        history = [str(sha) for sha in meta["history"]]
                        self.set_repo_history(owner_dir.name, repo_dir.name, history)

    def gist_commits(self, gist_id: str) -> list[str]:
        """The gist's commit shas, oldest first."""
        with self._lock:
            return [commit.sha for commit in self._gists[gist_id].commits]

    def _repo_entry(self, owner: str, repo: str) -> _Repo:
        key = f"{owner}/{repo}".lower()
        entry = self._repos.get(key)
        if entry is None:
            entry = _Repo(owner, repo, _number("repo:" + key, 9))
            self._repos[key] = entry
        return entry

    # --- switches ----------------------------------------------------------------------------

    def make_private(self, owner: str, repo: str) -> str:
        """Makes a stored repository private, as GitHub serves one; returns its raw token.

        Its API answers need a token (404 without), and each download_url carries
        ``?token=<raw token>``, without which the raw host answers 404. The raw token is a
        secret a client must never write down.
        """
        with self._lock:
            entry = self._repos[f"{owner}/{repo}".lower()]
            entry.private = True
            entry.raw_token = _new_raw_token(entry.raw_token)
            return entry.raw_token

    def expire_raw_tokens(self, owner: str, repo: str) -> str:
        """The private repository's raw token expires: old download_urls get 404 from now on."""
        with self._lock:
            entry = self._repos[f"{owner}/{repo}".lower()]
            entry.raw_token = _new_raw_token(entry.raw_token)
            return entry.raw_token

    def allow_token(
        self, token: str, login: str = "zoopm-tester", scopes: tuple[str, ...] = DEFAULT_SCOPES
    ) -> None:
        """Registers a token of the user `login` with these OAuth scopes.

        Once any token is allowed, every other token gets 401 Bad credentials. Writes (create,
        update, delete a gist) need a registered token, always: an unregistered one gets 401
        even while none is registered (reads then still accept any token). A write with a token
        lacking the "gist" scope gets 404, as GitHub answers it.
        """
        with self._lock:
            self._tokens[token] = _Account(login, tuple(scopes))

    def gist_state(self, gist_id: str) -> tuple[bool, str | None, dict[str, bytes]] | None:
        """(public, description, files of the newest revision) of a gist; None if it is gone."""
        with self._lock:
            gist = self._gists.get(gist_id)
            if gist is None:
                return None
            tree = gist.commits[-1].tree
            return gist.public, gist.description, {n: self._blobs[b] for n, b in tree.items()}

    def exhaust_rate_limit(self, status: int = 403, reset_in: int = 60) -> None:
        """Primary limit at 0 for everyone until reset_in seconds from now (a new window then)."""
        if status not in (403, 429):
            raise ValueError(f"the primary limit answers 403 or 429, not {status}")
        with self._lock:
            self._exhausted = (status, int(time.time()) + reset_in)

    def restore_rate_limit(self) -> None:
        with self._lock:
            self._exhausted = None
            self._windows.clear()

    def secondary_limit(self, times: int = 1, status: int = 403, retry_after: int = 1) -> None:
        """The next `times` API requests (not /rate_limit) get the secondary-limit answer."""
        _check_times(times)
        if status not in (403, 429):
            raise ValueError(f"the secondary limit answers 403 or 429, not {status}")
        with self._lock:
            self._secondary.extend([_Secondary(status, retry_after)] * times)

    def fail_api(
        self, path: str, status: int = 502, times: int = 1, *, method: str | None = None
    ) -> None:
        """The next `times` API requests for path (without the prefix; globs allowed) fail;
        with method, only requests of that method (say "PATCH") count and fail."""
        _check_times(times)
        if not 400 <= status <= 599:
            raise ValueError(f"a failure status is 400..599, not {status}")
        with self._lock:
            key = ((method or "*").upper(), path)
            self._api_faults.setdefault(key, deque()).extend([status] * times)

    def corrupt_raw(self, path_suffix: str, times: int = 1) -> None:
        """The next `times` raw GETs whose path ends so get bytes that differ (same length)."""
        _check_times(times)
        with self._lock:
            self._raw_faults[path_suffix] = self._raw_faults.get(path_suffix, 0) + times

    def serve_archive(self, gist_id: str, form: str, data: bytes) -> None:
        """codeload answers every archive request of the gist in this form ("zip" or "tar.gz")
        with data instead of the archive built from the stored revision (a hostile archive)."""
        if form not in ("zip", "tar.gz"):
            raise ValueError(f"an archive is zip or tar.gz, not {form!r}")
        with self._lock:
            self._archives[(gist_id, form)] = bytes(data)

    def delay_archives(self, seconds: float) -> None:
        """codeload waits this long before it answers (to interrupt a client mid-way)."""
        self._archive_delay = seconds

    def gist_archive(self, gist_id: str, sha: str, form: str) -> bytes:
        """The archive codeload serves for the gist at commit sha, built as GitHub builds it."""
        with self._lock:
            gist = self._gists[gist_id]
            commit = next(c for c in gist.commits if c.sha == sha)
            files = {name: self._blobs[blob] for name, blob in sorted(commit.tree.items())}
        return _build_archive(f"{gist_id}-{sha}", files, commit.committed_at, sha, form)

    # --- log ---------------------------------------------------------------------------------

    @property
    def requests(self) -> list[ApiRequest]:
        with self._lock:
            return list(self._log)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def counted_requests(self) -> int:
        with self._lock:
            return sum(1 for entry in self._log if entry.counted)

    def rate_remaining(self, token: str | None = None) -> int:
        identity = _Identity("ip:127.0.0.1" if token is None else _token_key(token), token)
        with self._lock:
            return self._remaining(identity, int(time.time()))

    # --- rate limits -------------------------------------------------------------------------

    def _window(self, identity: _Identity, now: int) -> _Window:
        window = self._windows.get(identity.key)
        if window is None or now >= window.reset:
            window = _Window(0, now + WINDOW_SECONDS)
            self._windows[identity.key] = window
        return window

    def _exhaustion(self, now: int) -> tuple[int, int] | None:
        if self._exhausted is not None and now >= self._exhausted[1]:
            self._exhausted = None
            self._windows.clear()
        return self._exhausted

    def _remaining(self, identity: _Identity, now: int) -> int:
        window = self._window(identity, now)
        if self._exhaustion(now) is not None:
            return 0
        return max(identity.limit - window.used, 0)

    def _rate_headers(self, identity: _Identity, now: int) -> list[tuple[str, str]]:
        window = self._window(identity, now)
        exhausted = self._exhaustion(now)
        remaining = self._remaining(identity, now)
        used = identity.limit if exhausted is not None else window.used
        reset = exhausted[1] if exhausted is not None else window.reset
        return [
            ("x-ratelimit-limit", str(identity.limit)),
            ("x-ratelimit-remaining", str(remaining)),
            ("x-ratelimit-reset", str(reset)),
            ("x-ratelimit-used", str(used)),
            ("x-ratelimit-resource", "core"),
        ]

    # --- answering ---------------------------------------------------------------------------

    def _answer(
        self,
        kind: str,
        method: str,
        target: str,
        headers: dict[str, str],
        client: str,
        body: bytes = b"",
    ) -> _Answer:
        path, _, query_text = target.partition("?")
        query: dict[str, str] = {}
        for key, value in urllib.parse.parse_qsl(query_text, keep_blank_values=True):
            query.setdefault(key, value)
        if kind == "raw" and path.startswith(_CODELOAD) and self._archive_delay:
            time.sleep(self._archive_delay)  # outside the lock: other requests go on
        with self._lock:
            self._request_number += 1
            if kind == "api":
                answer = self._api(
                    method,
                    path,
                    query_text=query_text,
                    query=query,
                    headers=headers,
                    client=client,
                    body=body,
                )
            else:
                answer = self._raw(method, path, query, headers)
            # Logged before the status line goes out, so a client holding its answer sees it.
            self._log.append(
                ApiRequest(kind, method, path, query, headers, answer.status, answer.counted)
            )
        return answer

    def _request_id(self) -> str:
        n = self._request_number
        return f"{self._ports[0] & 0xFFFF:04X}:{n:04X}:{n * 7919 % 0xFFFFFF:06X}:" + (
            f"{n * 104729 % 0xFFFFFF:06X}:{int(time.time()) & 0xFFFFFFFF:08X}"
        )

    def _api(
        self,
        method: str,
        path: str,
        *,
        query_text: str,
        query: dict[str, str],
        headers: dict[str, str],
        client: str,
        body: bytes = b"",
    ) -> _Answer:
        now = int(time.time())
        request_id = self._request_id()
        anonymous = _Identity("ip:" + client, None)
        identity = anonymous
        authorization = headers.get("authorization")
        if authorization is not None:
            scheme, _, credential = authorization.strip().partition(" ")
            token = credential.strip()
            if (
                scheme.lower() not in ("bearer", "token")
                or not token
                or (self._tokens and token not in self._tokens)
            ):
                return self._error(
                    401,
                    "Bad credentials",
                    _DOCS,
                    anonymous,
                    now=now,
                    request_id=request_id,
                    status_field=True,
                )
            identity = _Identity(_token_key(token), token)

        version = headers.get("x-github-api-version", DEFAULT_API_VERSION).strip()
        if version not in API_VERSIONS:
            supported = ", ".join(f'"{v}"' for v in sorted(API_VERSIONS, reverse=True))
            message = (
                'The version you specified in the "X-GitHub-API-Version" request header, '
                f'"{version}", is not a supported version. The following versions are '
                f"currently supported: {supported}."
            )
            return self._error(400, message, _DOCS, identity, now=now, request_id=request_id)

        route: str | None = path
        if self.api_prefix:
            if path == self.api_prefix or path.startswith(self.api_prefix + "/"):
                route = path[len(self.api_prefix) :] or "/"
            else:
                route = None
        if route is not None and len(route) > 1:
            route = route.rstrip("/")

        if route != "/rate_limit" and self._secondary:
            secondary = self._secondary.popleft()
            message = (
                "You have exceeded a secondary rate limit. Please wait a few minutes before you "
                "try again. If you reach out to GitHub Support for help, please include the "
                f"request ID {request_id}."
            )
            answer = self._error(
                secondary.status, message, _DOC_SECONDARY, identity, now=now, request_id=request_id
            )
            answer.headers.append(("Retry-After", str(secondary.retry_after)))
            return answer

        fault = self._take_api_fault(method, path, route)
        if fault is not None:
            phrase = HTTPStatus(fault).phrase if fault in HTTPStatus._value2member_map_ else ""
            return self._error(
                fault,
                phrase or "Server Error",
                _DOCS,
                identity,
                now=now,
                request_id=request_id,
                status_field=True,
            )

        api_url = f"http://127.0.0.1:{self._ports[0]}{self.api_prefix}"
        raw_base = f"http://127.0.0.1:{self._ports[1]}"
        ctx = _Ctx(
            api_url, raw_base, headers.get("accept", ""), version, identity.token is not None
        )
        if route == "/rate_limit" and method in ("GET", "HEAD"):
            return self._finish(
                _Result(200, self._rate_limit_body(identity, now)),
                identity,
                ctx,
                request_headers=headers,
                now=now,
                request_id=request_id,
                charge=False,
            )

        exhausted = self._exhaustion(now)
        if exhausted is not None or self._remaining(identity, now) <= 0:
            status = exhausted[0] if exhausted is not None else 403
            if identity.token is None:
                message = (
                    f"API rate limit exceeded for {client}. (But here's the good news: "
                    "Authenticated requests get a higher rate limit. Check out the documentation "
                    "for more details.)"
                )
            else:
                message = f"API rate limit exceeded for user ID {_token_user_id(identity.token)}."
            answer = self._error(
                status, message, _DOC_PRIMARY, identity, now=now, request_id=request_id
            )
            return _Answer(
                answer.status,
                [h for h in answer.headers if not h[0].startswith("x-ratelimit-")]
                + [
                    ("x-ratelimit-limit", str(identity.limit)),
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", str(self._reset_of(identity, now))),
                    ("x-ratelimit-used", str(identity.limit)),
                    ("x-ratelimit-resource", "core"),
                ],
                answer.body,
            )

        if route is not None and method in _WRITE_METHODS:
            result = self._write(method, route, body, identity, ctx, now)
        elif route is None or method not in ("GET", "HEAD"):
            result = _not_found(_DOCS)
        else:
            result = self._route(route, query_text, query, ctx)
        return self._finish(
            result,
            identity,
            ctx,
            request_headers=headers,
            now=now,
            request_id=request_id,
            charge=True,
        )

    def _reset_of(self, identity: _Identity, now: int) -> int:
        exhausted = self._exhaustion(now)
        return exhausted[1] if exhausted is not None else self._window(identity, now).reset

    def _take_api_fault(self, method: str, path: str, route: str | None) -> int | None:
        for (only, pattern), queue in list(self._api_faults.items()):
            if only not in ("*", method):
                continue
            candidates = [path] if route is None else [path, route]
            if any(c == pattern or fnmatch.fnmatchcase(c, pattern) for c in candidates):
                status = queue.popleft()
                if not queue:
                    del self._api_faults[(only, pattern)]
                return status
        return None

    def _common_headers(
        self, identity: _Identity, now: int, request_id: str, version: str
    ) -> list[tuple[str, str]]:
        authenticated = identity.token is not None
        headers = [
            ("Content-Type", "application/json; charset=utf-8"),
            (
                "Cache-Control",
                ("private" if authenticated else "public") + ", max-age=60, s-maxage=60",
            ),
            (
                "Vary",
                "Accept, Authorization, Cookie, X-GitHub-OTP, Accept-Encoding"
                if authenticated
                else "Accept, Accept-Encoding",
            ),
        ]
        if authenticated:
            account = self._tokens.get(identity.token or "")
            scopes = ", ".join(account.scopes if account is not None else DEFAULT_SCOPES)
            headers += [("X-OAuth-Scopes", scopes), ("X-Accepted-OAuth-Scopes", "")]
        headers += [
            ("X-GitHub-Api-Version-Selected", version),
            *self._rate_headers(identity, now),
            ("Access-Control-Expose-Headers", _EXPOSE_HEADERS),
            ("Access-Control-Allow-Origin", "*"),
            ("X-Content-Type-Options", "nosniff"),
            ("X-GitHub-Request-Id", request_id),
        ]
        return headers

    def _error(
        self,
        status: int,
        message: str,
        documentation_url: str,
        identity: _Identity,
        *,
        now: int,
        request_id: str,
        status_field: bool = False,
    ) -> _Answer:
        payload: dict[str, str] = {"message": message, "documentation_url": documentation_url}
        if status_field:
            payload["status"] = str(status)
        headers = self._common_headers(identity, now, request_id, DEFAULT_API_VERSION)
        headers.append(("X-GitHub-Media-Type", "github.v3; format=json"))
        return _Answer(status, headers, _json_bytes(payload))

    def _finish(
        self,
        result: _Result,
        identity: _Identity,
        ctx: _Ctx,
        *,
        request_headers: dict[str, str],
        now: int,
        request_id: str,
        charge: bool,
    ) -> _Answer:
        if result.status == 204:
            if charge:
                self._window(identity, now).used += 1
            headers = [
                h
                for h in self._common_headers(identity, now, request_id, ctx.version)
                if h[0] != "Content-Type"
            ]
            return _Answer(204, headers, b"", counted=charge)
        body = _json_bytes(result.payload)
        etag = None
        if result.status == 200:
            digest = hashlib.md5(usedforsecurity=False)
            for part in (body, identity.etag_part.encode(), ctx.accept.encode()):
                digest.update(part)
                digest.update(b"\0")
            digest.update(ctx.version.encode())
            etag = f'W/"{digest.hexdigest()}"'
            condition = request_headers.get("if-none-match")
            if condition is not None and _etag_matches(condition, etag):
                headers = [
                    h
                    for h in self._common_headers(identity, now, request_id, ctx.version)
                    if h[0] != "Content-Type"
                ]
                headers.append(("ETag", etag))
                if result.last_modified is not None:
                    headers.append(("Last-Modified", _http_date(result.last_modified)))
                return _Answer(304, headers, b"", counted=False)
        if charge:
            self._window(identity, now).used += 1
        headers = self._common_headers(identity, now, request_id, ctx.version)
        if etag is not None:
            headers.append(("ETag", etag))
        if result.last_modified is not None:
            headers.append(("Last-Modified", _http_date(result.last_modified)))
        headers.append(("X-GitHub-Media-Type", result.media))
        headers.extend(result.headers)
        return _Answer(result.status, headers, body, counted=charge)

    def _rate_limit_body(self, identity: _Identity, now: int) -> dict[str, Any]:
        remaining = self._remaining(identity, now)
        core = {
            "limit": identity.limit,
            "used": identity.limit - remaining,
            "remaining": remaining,
            "reset": self._reset_of(identity, now),
        }
        search_limit = 10 if identity.token is None else 30
        minute = now + 60
        resources = {
            "core": core,
            "search": {
                "limit": search_limit,
                "used": 0,
                "remaining": search_limit,
                "reset": minute,
            },
            "graphql": {
                "limit": 0 if identity.token is None else 5000,
                "used": 0,
                "remaining": 0 if identity.token is None else 5000,
                "reset": now + WINDOW_SECONDS,
            },
            "code_search": {"limit": 10, "used": 0, "remaining": 10, "reset": minute},
        }
        return {"resources": resources, "rate": dict(core)}

    # --- routes ------------------------------------------------------------------------------

    def _route(self, route: str, query_text: str, query: dict[str, str], ctx: _Ctx) -> _Result:
        parts = [urllib.parse.unquote(part) for part in route.strip("/").split("/")]
        if parts[0] == "gists" and len(parts) in (2, 3):
            gist = self._gists.get(parts[1])
            if gist is None:
                return _not_found(_DOC_GIST)
            if len(parts) == 2:
                return self._gist_result(gist, len(gist.commits) - 1, False, ctx)
            if parts[2] == "commits":
                return self._gist_commits(gist, query_text, query, ctx)
            if parts[2] in ("forks", "star", "comments"):
                return _not_found(_DOCS)  # not emulated
            if not _SHA_RE.fullmatch(parts[2]):
                return _Result(
                    422,
                    {
                        "message": "Validation Failed",
                        "errors": [{"resource": "Gist", "code": "invalid", "field": "sha"}],
                        "documentation_url": _DOC_GIST_REVISION,
                        "status": "422",
                    },
                )
            for index, commit in enumerate(gist.commits):
                if commit.sha == parts[2]:
                    return self._gist_result(gist, index, True, ctx)
            return _not_found(_DOC_GIST_REVISION)
        repo: _Repo | None = None
        rest: list[str] = []
        if parts[0] == "repos" and len(parts) >= 3:
            repo = self._repos.get(f"{parts[1]}/{parts[2]}".lower())
            rest = parts[3:]
        elif parts[0] == "repositories" and len(parts) >= 2:
            repo = next((r for r in self._repos.values() if str(r.numeric_id) == parts[1]), None)
            rest = parts[2:]
        else:
            return _not_found(_DOCS)
        if repo is None or (repo.private and not ctx.authenticated):
            # GitHub hides a private repository from a request without a token: 404, not 403.
            return _not_found(_DOC_REPO)
        if not rest:
            return _Result(200, self._repo_json(repo, ctx))
        if rest[0] == "contents":
            return self._contents(repo, "/".join(rest[1:]), query, ctx)
        if rest[0] == "commits" and len(rest) == 1:
            return self._repo_commits(repo, query_text, query, ctx)
        if rest[0] == "commits":
            return self._repo_commit(repo, "/".join(rest[1:]), ctx)
        return _not_found(_DOCS)

    # --- gists -------------------------------------------------------------------------------

    def _user(self, login: str, ctx: _Ctx) -> dict[str, Any]:
        user_id = _number("user:" + login.lower(), 8)
        api = f"{ctx.api}/users/{login}"
        return {
            "login": login,
            "id": user_id,
            "node_id": _b64(f"04:User{user_id}"),
            "avatar_url": f"{ctx.raw}/-/avatars.githubusercontent.com/u/{user_id}?v=4",
            "gravatar_id": "",
            "url": api,
            "html_url": f"{ctx.raw}/-/github.com/{login}",
            "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
            "type": "User",
            "site_admin": False,
        }

    def _gist_commit_json(self, gist: _Gist, commit: _GistCommit, ctx: _Ctx) -> dict[str, Any]:
        return {
            "user": self._user(gist.owner, ctx),
            "version": commit.sha,
            "committed_at": _iso(commit.committed_at),
            "change_status": {
                "total": commit.additions + commit.deletions,
                "additions": commit.additions,
                "deletions": commit.deletions,
            },
            "url": f"{ctx.api}/gists/{gist.gist_id}/{commit.sha}",
        }

    def _gist_result(self, gist: _Gist, index: int, at_revision: bool, ctx: _Ctx) -> _Result:
        commit = gist.commits[index]
        gid = gist.gist_id
        as_base64 = "base64" in ctx.accept.lower()
        entries = sorted(commit.tree.items())
        if self.hostile_filenames:
            hostile = {name: blob for blob, name in self._hostile.items()}
            entries = sorted([*entries, *hostile.items()])
        files: dict[str, Any] = {}
        for name, blob in entries[:MAX_FILES_LISTED]:
            files[name] = self._gist_file(gist, name, blob, as_base64, ctx)
        gist_web = f"{ctx.raw}/-/gist.github.com"
        payload: dict[str, Any] = {
            "url": f"{ctx.api}/gists/{gid}" + (f"/{commit.sha}" if at_revision else ""),
            "forks_url": f"{ctx.api}/gists/{gid}/forks",
            "commits_url": f"{ctx.api}/gists/{gid}/commits",
            "id": gid,
            "node_id": _b64("04:Gist" + gid),
            "git_pull_url": f"{gist_web}/{gid}.git",
            "git_push_url": f"{gist_web}/{gid}.git",
            "html_url": f"{gist_web}/{gid}",
            "files": files,
            "public": gist.public,
            "created_at": _iso(gist.commits[0].committed_at),
            "updated_at": _iso(gist.updated_at),
            "description": gist.description,
            "comments": 0,
            "user": None,
            "comments_url": f"{ctx.api}/gists/{gid}/comments",
            "owner": self._user(gist.owner, ctx),
            "forks": [],
            "history": [
                self._gist_commit_json(gist, c, ctx) for c in reversed(gist.commits[: index + 1])
            ],
            "truncated": len(entries) > MAX_FILES_LISTED,
        }
        if ctx.version == VERSION_WITHOUT_HISTORY and self.api_version_2026_drops_history:
            del payload["forks"], payload["history"]
        media = "github.v3; param=base64; format=json" if as_base64 else "github.v3; format=json"
        return _Result(200, payload, last_modified=gist.updated_at, media=media)

    def _gist_file(
        self, gist: _Gist, name: str, blob: str, as_base64: bool, ctx: _Ctx
    ) -> dict[str, Any]:
        data = self._blobs[blob]
        part = data[:TRUNCATE_BYTES]
        try:
            data.decode("utf-8")
            text = not as_base64
        except UnicodeDecodeError:
            text = False
        if text:
            # The whole blob is valid UTF-8, so "ignore" can only drop a character the cut split.
            content = part.decode("utf-8", errors="ignore")
        else:
            content = base64.b64encode(part).decode("ascii")
        mime, language = _FILE_TYPES.get(Path(name).suffix.lower(), ("text/plain", None))
        quoted = urllib.parse.quote(name, safe="")
        if quoted in (".", ".."):
            # Escaped, so that clients which remove dot segments still reach the blob.
            quoted = quoted.replace(".", "%2E")
        return {
            "filename": name,
            "type": mime,
            "language": language,
            "raw_url": f"{ctx.raw}/{gist.owner}/{gist.gist_id}/raw/{blob}/{quoted}",
            "size": len(data),
            "truncated": len(data) > TRUNCATE_BYTES,
            "content": content,
            "encoding": "utf-8" if text else "base64",
        }

    def _gist_commits(
        self, gist: _Gist, query_text: str, query: dict[str, str], ctx: _Ctx
    ) -> _Result:
        newest_first = list(reversed(gist.commits))
        base = f"{ctx.api}/gists/{gist.gist_id}/commits"
        page_items, link = _paginate(newest_first, query_text, query, base)
        payload = [self._gist_commit_json(gist, commit, ctx) for commit in page_items]
        return _Result(200, payload, [("Link", link)] if link else [])

    # --- gist writes (create, update, delete) ------------------------------------------------

    def _write(
        self, method: str, route: str, body: bytes, identity: _Identity, ctx: _Ctx, now: int
    ) -> _Result:
        parts = [urllib.parse.unquote(part) for part in route.strip("/").split("/")]
        if parts == ["gists"] and method == "POST":
            doc = _DOC_GIST_CREATE
        elif len(parts) == 2 and parts[0] == "gists" and method in ("PATCH", "POST"):
            doc = _DOC_GIST_UPDATE  # GitHub takes POST for PATCH on a resource (gist -u sends it)
        elif len(parts) == 2 and parts[0] == "gists" and method == "DELETE":
            doc = _DOC_GIST_DELETE
        else:
            return _not_found(_DOCS)
        if identity.token is None:
            return _Result(
                401,
                {"message": "Requires authentication", "documentation_url": doc, "status": "401"},
            )
        account = self._tokens.get(identity.token)
        if account is None:
            return _Result(
                401, {"message": "Bad credentials", "documentation_url": _DOCS, "status": "401"}
            )
        if "gist" not in account.scopes:
            # "When an OAuth client does not have the gists scope, the API will return a 404."
            return _not_found(doc)
        gist: _Gist | None = None
        if len(parts) == 2:
            gist = self._gists.get(parts[1])
            if gist is None or gist.owner.lower() != account.login.lower():
                return _not_found(doc)  # someone else's gist: 404, not 403
            if method == "DELETE":
                del self._gists[gist.gist_id]
                return _Result(204, None)
        data = _json_object(body, doc)
        if isinstance(data, _Result):
            return data
        if gist is None:
            return self._create(data, account, ctx, now)
        return self._update(gist, data, ctx, now)

    def _create(self, data: dict[str, Any], account: _Account, ctx: _Ctx, now: int) -> _Result:
        doc = _DOC_GIST_CREATE
        public = data.get("public", False)
        if public in ("true", "false"):
            public = public == "true"
        if not isinstance(public, bool):
            return _invalid_request(doc, "public", public, "a boolean")
        description = data.get("description")
        if description is not None and not isinstance(description, str):
            return _invalid_request(doc, "description", description, "a string")
        files = data.get("files")
        if files is not None and not isinstance(files, dict):
            return _invalid_request(doc, "files", files, "an object")
        if not files:
            return _validation_failed(doc, "missing_field")
        for name, entry in files.items():
            if not isinstance(entry, dict):
                return _invalid_request(doc, name, entry, "an object")
            if "content" in entry and not isinstance(entry["content"], str):
                return _invalid_request(doc, "content", entry["content"], "a string")
        contents: dict[str, bytes] = {}
        for name, entry in files.items():
            problem = _name_problem(name, doc)
            if problem is not None:
                return problem
            if "content" not in entry:
                return _validation_failed(doc, "missing_field")
            content = _content_bytes(entry["content"], doc)
            if isinstance(content, _Result):
                return content
            contents[name] = content
        self._created += 1
        tree = {name: git_blob_sha1(content) for name, content in sorted(contents.items())}
        seed = f"created {self._created}\nowner {account.login}\n" + "".join(
            f"{blob} {name}\n" for name, blob in tree.items()
        )
        gist_id = hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()[:32]
        additions = sum(_line_changes(b"", content)[0] for content in contents.values())
        commit = _GistCommit(_gist_commit_sha(gist_id, 0, "", tree), tree, now, additions, 0)
        for name, content in contents.items():
            self._blobs[tree[name]] = content
        gist = _Gist(gist_id, account.login, description, public, [commit])
        self._gists[gist_id] = gist
        shown = self._gist_result(gist, 0, False, ctx)
        location = [("Location", f"{ctx.api}/gists/{gist_id}")]
        return _Result(201, shown.payload, location, shown.last_modified, shown.media)

    def _update(self, gist: _Gist, data: dict[str, Any], ctx: _Ctx, now: int) -> _Result:
        doc = _DOC_GIST_UPDATE
        # "public" is not a parameter of an update (a gist's visibility never changes): ignored.
        files = data.get("files")
        if "description" in data:
            description = data["description"]
            if description is not None and not isinstance(description, str):
                return _invalid_request(doc, "description", description, "a string")
        if files is not None and not isinstance(files, dict):
            return _invalid_request(doc, "files", files, "an object")
        if "description" not in data and files is None:
            return _validation_failed(doc, "missing_field")  # "at least one of" the two
        files = files or {}
        for entry in files.values():
            if entry is None:
                continue
            if not isinstance(entry, dict):
                return _invalid_request(doc, "files", entry, "an object")
            if "content" in entry and not isinstance(entry["content"], str):
                return _invalid_request(doc, "content", entry["content"], "a string")
            filename = entry.get("filename")
            if filename is not None and not isinstance(filename, str):
                return _invalid_request(doc, "filename", filename, "a string")
        current = gist.commits[-1].tree
        kept = dict(current)
        staged: dict[str, str] = {}
        contents: dict[str, bytes] = {}
        for key, entry in files.items():
            content = entry.get("content") if entry is not None else None
            filename = entry.get("filename") if entry is not None else None
            if content is None and filename is None:
                # null, or an object with neither content nor filename: the file is deleted.
                if key not in current:
                    return _validation_failed(doc, "missing_field")
                kept.pop(key, None)
                continue
            target = filename if filename is not None else key
            problem = _name_problem(target, doc)
            if problem is not None:
                return problem
            if content is not None:
                data_bytes = _content_bytes(content, doc)
                if isinstance(data_bytes, _Result):
                    return data_bytes
                blob = git_blob_sha1(data_bytes)
                contents[blob] = data_bytes
            elif key in current:
                blob = current[key]  # a rename keeps the blob
            else:
                return _validation_failed(doc, "missing_field")
            if key in current and target != key:
                kept.pop(key, None)
            if target in staged:
                return _validation_failed(doc, "already_exists")
            staged[target] = blob
        for target in staged:
            if target in kept and target not in files:
                return _validation_failed(doc, "already_exists")
        tree = {**kept, **staged}
        if not tree:
            return _validation_failed(doc, "missing_field")  # the last file cannot go
        changed = tree != current
        describes = "description" in data and data["description"] != gist.description
        if not changed and not describes and files and self.noop_patch_422:
            return _validation_failed(doc, "missing_field")
        self._blobs.update(contents)
        stamp = max(now, gist.updated_at)
        if changed:
            previous = gist.commits[-1]
            additions = deletions = 0
            for name in sorted(set(current) | set(tree)):
                old = self._blobs[current[name]] if name in current else b""
                new = self._blobs[tree[name]] if name in tree else b""
                added, deleted = _line_changes(old, new)
                additions, deletions = additions + added, deletions + deleted
            index = len(gist.commits)
            sha = _gist_commit_sha(gist.gist_id, index, previous.sha, tree)
            ordered = dict(sorted(tree.items()))
            gist.commits.append(_GistCommit(sha, ordered, stamp, additions, deletions))
        if "description" in data:
            gist.description = data["description"]
        gist.updated = stamp
        return self._gist_result(gist, len(gist.commits) - 1, False, ctx)

    # --- repositories ------------------------------------------------------------------------

    def _history(self, repo: _Repo) -> list[tuple[str, dict[str, str]]]:
        """(commit, tree) newest first; a commit without a stored tree keeps its parent's."""
        order = repo.history if repo.history is not None else list(reversed(repo.added))
        carried: dict[str, str] = {}
        oldest_first: list[tuple[str, dict[str, str]]] = []
        for sha in reversed(order):
            carried = repo.trees.get(sha, carried)
            oldest_first.append((sha, carried))
        return list(reversed(oldest_first))

    def _resolve(self, repo: _Repo, ref: str) -> str | None:
        """A commit sha for a branch name, a full sha or an unambiguous 7+ hex prefix."""
        history = self._history(repo)
        if ref in (DEFAULT_BRANCH, "HEAD"):
            return history[0][0] if history else None
        known = {sha for sha, _ in history} | set(repo.trees)
        if ref in known:
            return ref
        if _HEX_PREFIX_RE.fullmatch(ref):
            matches = [sha for sha in known if sha.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
        return None

    def _tree_at(self, repo: _Repo, commit: str) -> dict[str, str] | None:
        if commit in repo.trees:
            return repo.trees[commit]
        return next((tree for sha, tree in self._history(repo) if sha == commit), None)

    def _repo_json(self, repo: _Repo, ctx: _Ctx) -> dict[str, Any]:
        full = f"{repo.owner}/{repo.name}"
        api = f"{ctx.api}/repos/{full}"
        return {
            "id": repo.numeric_id,
            "node_id": _b64(f"010:Repository{repo.numeric_id}"),
            "name": repo.name,
            "full_name": full,
            "private": repo.private,
            "owner": self._user(repo.owner, ctx),
            "html_url": f"{ctx.raw}/-/github.com/{full}",
            "description": None,
            "fork": False,
            "url": api,
            "contents_url": f"{api}/contents/{{+path}}",
            "commits_url": f"{api}/commits{{/sha}}",
            "default_branch": DEFAULT_BRANCH,
            "visibility": "private" if repo.private else "public",
        }

    def _entry_json(
        self, repo: _Repo, ref: str, path: str, node: tuple[str, int, str], ctx: _Ctx
    ) -> dict[str, Any]:
        sha, size, kind = node
        full = f"{repo.owner}/{repo.name}"
        quoted_path = urllib.parse.quote(path)
        quoted_ref = urllib.parse.quote(ref, safe="")
        url = f"{ctx.api}/repos/{full}/contents/{quoted_path}?ref={quoted_ref}"
        git_kind = "trees" if kind == "dir" else "blobs"
        git_url = f"{ctx.api}/repos/{full}/git/{git_kind}/{sha}"
        html_kind = "tree" if kind == "dir" else "blob"
        html_url = f"{ctx.raw}/-/github.com/{full}/{html_kind}/{ref}/{quoted_path}"
        download = None if kind == "dir" else f"{ctx.raw}/{full}/{ref}/{quoted_path}"
        if download is not None and repo.private:
            download += f"?token={repo.raw_token}"
        return {
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "size": size,
            "url": url,
            "html_url": html_url,
            "git_url": git_url,
            "download_url": download,
            "type": kind,
            "_links": {"self": url, "git": git_url, "html": html_url},
        }

    def _contents(self, repo: _Repo, path: str, query: dict[str, str], ctx: _Ctx) -> _Result:
        ref = query.get("ref") or DEFAULT_BRANCH
        commit = self._resolve(repo, ref)
        tree = None if commit is None else self._tree_at(repo, commit)
        if tree is None:
            return _not_found(_DOC_CONTENTS)
        path = path.strip("/")
        accept = ctx.accept.lower()
        if path in tree:
            blob = tree[path]
            data = self._blobs[blob]
            entry = self._entry_json(repo, ref, path, (blob, len(data), "file"), ctx)
            links = entry.pop("_links")
            if len(data) <= CONTENTS_MAX_BYTES:
                encoded = base64.b64encode(data).decode("ascii")
                entry["content"] = "".join(
                    encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60)
                )
                entry["encoding"] = "base64"
            else:
                entry["content"] = ""
                entry["encoding"] = "none"
            entry["_links"] = links
            return _Result(200, entry)
        prefix = "" if not path else path + "/"
        below = {p[len(prefix) :]: blob for p, blob in tree.items() if p.startswith(prefix)}
        if not below:
            return _not_found(_DOC_CONTENTS)
        children: dict[str, tuple[str, int, str]] = {}
        subtrees: dict[str, dict[str, str]] = {}
        for rel, blob in below.items():
            head, sep, rest = rel.partition("/")
            if sep:
                subtrees.setdefault(head, {})[rest] = blob
            else:
                children[head] = (blob, len(self._blobs[blob]), "file")
        for name, sub in subtrees.items():
            children[name] = (_tree_sha(sub), 0, "dir")
        order = sorted(children, key=lambda n: (n + "/" if children[n][2] == "dir" else n).encode())
        entries = [
            self._entry_json(repo, ref, prefix + name, children[name], ctx) for name in order
        ]
        if "object" in accept:
            directory = self._entry_json(repo, ref, path, (_tree_sha(below), 0, "dir"), ctx)
            directory["entries"] = entries
            return _Result(200, directory, media="github.v3; param=object; format=json")
        return _Result(200, entries)

    def _commit_json(
        self,
        repo: _Repo,
        history: list[tuple[str, dict[str, str]]],
        index: int,
        ctx: _Ctx,
        detail: bool,
    ) -> dict[str, Any]:
        sha, tree = history[index]
        parent = history[index + 1] if index + 1 < len(history) else None
        full = f"{repo.owner}/{repo.name}"
        api = f"{ctx.api}/repos/{full}"
        web = f"{ctx.raw}/-/github.com/{full}"
        date = _iso(_REPO_EPOCH + (len(history) - 1 - index) * 86400)
        person = {"name": repo.owner, "email": f"{repo.owner.lower()}@users.zoopm.invalid"}
        root = _tree_sha(tree)
        payload: dict[str, Any] = {
            "sha": sha,
            "node_id": _b64(f"06:Commit{repo.numeric_id}:{sha}"),
            "commit": {
                "author": {**person, "date": date},
                "committer": {**person, "date": date},
                "message": f"Synthetic commit {sha[:7]} (zoopm GitHub emulator)",
                "tree": {"sha": root, "url": f"{api}/git/trees/{root}"},
                "url": f"{api}/git/commits/{sha}",
                "comment_count": 0,
                "verification": {
                    "verified": False,
                    "reason": "unsigned",
                    "signature": None,
                    "payload": None,
                    "verified_at": None,
                },
            },
            "url": f"{api}/commits/{sha}",
            "html_url": f"{web}/commit/{sha}",
            "comments_url": f"{api}/commits/{sha}/comments",
            "author": self._user(repo.owner, ctx),
            "committer": self._user(repo.owner, ctx),
            "parents": []
            if parent is None
            else [
                {
                    "sha": parent[0],
                    "url": f"{api}/commits/{parent[0]}",
                    "html_url": f"{web}/commit/{parent[0]}",
                }
            ],
        }
        if detail:
            before = {} if parent is None else parent[1]
            files: list[dict[str, Any]] = []
            total_add = total_del = 0
            for path in sorted(set(before) | set(tree)):
                old, new = before.get(path), tree.get(path)
                if old == new:
                    continue
                added, deleted = _line_changes(
                    self._blobs[old] if old else b"", self._blobs[new] if new else b""
                )
                total_add, total_del = total_add + added, total_del + deleted
                status = "added" if old is None else "removed" if new is None else "modified"
                quoted = urllib.parse.quote(path)
                files.append(
                    {
                        "sha": new or old,
                        "filename": path,
                        "status": status,
                        "additions": added,
                        "deletions": deleted,
                        "changes": added + deleted,
                        "blob_url": f"{web}/blob/{sha}/{quoted}",
                        "raw_url": f"{ctx.raw}/{full}/{sha}/{quoted}",
                        "contents_url": f"{api}/contents/{quoted}?ref={sha}",
                    }
                )
            payload["stats"] = {
                "total": total_add + total_del,
                "additions": total_add,
                "deletions": total_del,
            }
            payload["files"] = files
        return payload

    def _repo_commits(
        self, repo: _Repo, query_text: str, query: dict[str, str], ctx: _Ctx
    ) -> _Result:
        history = self._history(repo)
        start = 0
        if query.get("sha"):
            commit = self._resolve(repo, query["sha"])
            positions = [i for i, (sha, _) in enumerate(history) if sha == commit]
            if not positions:
                return _not_found(_DOC_COMMITS)
            start = positions[0]
        path = query.get("path", "").strip("/")
        chosen: list[int] = []
        for index in range(start, len(history)):
            if path:
                parent_tree = history[index + 1][1] if index + 1 < len(history) else {}
                if _signature(history[index][1], path) == _signature(parent_tree, path):
                    continue
            chosen.append(index)
        base = f"{ctx.api}/repositories/{repo.numeric_id}/commits"
        page_items, link = _paginate(chosen, query_text, query, base)
        payload = [self._commit_json(repo, history, i, ctx, detail=False) for i in page_items]
        return _Result(200, payload, [("Link", link)] if link else [])

    def _repo_commit(self, repo: _Repo, ref: str, ctx: _Ctx) -> _Result:
        commit = self._resolve(repo, ref)
        history = self._history(repo)
        positions = [i for i, (sha, _) in enumerate(history) if sha == commit]
        if commit is not None and not positions and commit in repo.trees:
            history = [(commit, repo.trees[commit])]
            positions = [0]
        if not positions:
            return _Result(
                422,
                {
                    "message": f"No commit found for SHA: {ref}",
                    "documentation_url": _DOC_COMMIT,
                    "status": "422",
                },
            )
        return _Result(200, self._commit_json(repo, history, positions[0], ctx, detail=True))

    # --- the raw host ------------------------------------------------------------------------

    def _raw(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str]
    ) -> _Answer:
        if path.startswith((_GIST_WEB, _CODELOAD)):
            return self._web(method, path)
        status, data = self._raw_lookup(path, query.get("token"))
        request_id = self._request_id()
        base = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox"),
            ("Access-Control-Allow-Origin", "*"),
            ("X-GitHub-Request-Id", request_id),
        ]
        if method not in ("GET", "HEAD"):
            return _Answer(405, [*base, ("Allow", "GET, HEAD")], b"405: Method Not Allowed")
        if status == 403:
            return _Answer(403, base, b"403: Forbidden")
        if data is None:
            return _Answer(404, base, b"404: Not Found")
        etag = '"' + _sha256(data) + '"'
        base += [("ETag", etag), ("Cache-Control", "max-age=300"), ("Accept-Ranges", "bytes")]
        condition = headers.get("if-none-match")
        if condition is not None and _etag_matches(condition, etag):
            return _Answer(304, [h for h in base if h[0] != "Content-Type"], b"")
        if method == "GET":
            data = self._maybe_corrupt(path, data)
        return _Answer(200, base, data)

    # --- the gist web host and codeload: archive downloads -------------------------------------

    def _web(self, method: str, path: str) -> _Answer:
        """gist.github.com's download redirects and codeload's archives (reference §6)."""
        base = [("X-GitHub-Request-Id", self._request_id())]
        not_found = _Answer(404, [*base, ("Content-Type", "text/plain")], b"Not Found")
        if method not in ("GET", "HEAD"):
            return not_found
        origin = f"http://127.0.0.1:{self._ports[1]}"
        parts = [urllib.parse.unquote(p) for p in path.split("/")[3:]]
        if path.startswith(_GIST_WEB):
            gist = self._gists.get(parts[0]) if parts[1:] == ["download"] else None
            if gist is None and len(parts) >= 2:
                gist = self._gists.get(parts[1])
            if gist is None:
                return not_found
            owner_ok = parts[0].lower() == gist.owner.lower()
            head = gist.commits[-1].sha
            if parts == [gist.gist_id, "download"]:
                # 1: /{id}/download -> /{owner}/{id}/download
                target = f"{origin}{_GIST_WEB}{gist.owner}/{gist.gist_id}/download"
            elif owner_ok and parts[1:] == [gist.gist_id, "download"]:
                # 2: -> codeload, the newest revision, as a zip
                target = f"{origin}{_CODELOAD}gist/{gist.gist_id}/zip/{head}"
            elif owner_ok and len(parts) == 4 and parts[1:3] == [gist.gist_id, "archive"]:
                name = parts[3]
                form = "zip" if name.endswith(".zip") else "tar.gz"
                sha = name.removesuffix(".zip").removesuffix(".tar.gz")
                if name == sha:
                    return not_found
                target = f"{origin}{_CODELOAD}gist/{gist.gist_id}/{form}/{sha}"
            else:
                return not_found
            return _Answer(302, [*base, ("Location", target), ("Content-Length", "0")], b"")
        # codeload: /gist/{id}/{zip|tar.gz}/{sha}
        if len(parts) != 4 or parts[0] != "gist" or parts[2] not in ("zip", "tar.gz"):
            return not_found
        gist = self._gists.get(parts[1])
        if gist is None:
            return not_found
        form, sha = parts[2], parts[3]
        crafted = self._archives.get((gist.gist_id, form))
        commit = next((c for c in gist.commits if c.sha == sha), None)
        if crafted is not None:
            data = crafted
        elif commit is None:
            return not_found
        else:
            files = {name: self._blobs[blob] for name, blob in sorted(commit.tree.items())}
            data = _build_archive(f"{gist.gist_id}-{sha}", files, commit.committed_at, sha, form)
        kind = "application/zip" if form == "zip" else "application/x-gzip"
        disposition = f"attachment; filename={gist.gist_id}-{sha}.{form}"
        return _Answer(
            200, [*base, ("Content-Type", kind), ("Content-Disposition", disposition)], data
        )

    def _maybe_corrupt(self, path: str, data: bytes) -> bytes:
        decoded = urllib.parse.unquote(path)
        for suffix, left in list(self._raw_faults.items()):
            if path.endswith(suffix) or decoded.endswith(suffix):
                if left <= 1:
                    del self._raw_faults[suffix]
                else:
                    self._raw_faults[suffix] = left - 1
                return _corrupt(data)
        return data

    def _raw_lookup(self, path: str, token: str | None) -> tuple[int, bytes | None]:
        segments = path.split("/")[1:]
        if len(segments) >= 4 and segments[2] == "raw":
            gist = self._gists.get(urllib.parse.unquote(segments[1]))
            owner = urllib.parse.unquote(segments[0])
            if gist is not None and gist.owner.lower() == owner.lower():
                data = self._gist_raw(gist, segments[3:])
                if data is not None and len(data) > RAW_MAX_BYTES:
                    return 403, None
                return (200, data) if data is not None else (404, None)
        if len(segments) >= 4:
            repo = self._repos.get(
                f"{urllib.parse.unquote(segments[0])}/{urllib.parse.unquote(segments[1])}".lower()
            )
            if repo is not None and (not repo.private or token == repo.raw_token):
                commit = self._resolve(repo, urllib.parse.unquote(segments[2]))
                tree = None if commit is None else self._tree_at(repo, commit)
                file_path = urllib.parse.unquote("/".join(segments[3:]))
                if tree is not None and file_path in tree:
                    return 200, self._blobs[tree[file_path]]
        return 404, None

    def _gist_raw(self, gist: _Gist, rest: list[str]) -> bytes | None:
        if len(rest) == 1:
            # /raw/{filename}: the latest revision; /raw/ alone: a single-file gist's file.
            latest = gist.commits[-1].tree
            name = urllib.parse.unquote(rest[0])
            if not name and len(latest) == 1:
                return self._blobs[next(iter(latest.values()))]
            return self._blobs[latest[name]] if name in latest else None
        ref = rest[0]
        if ref in gist.blobs() or ref in self._hostile:
            return self._blobs[ref]
        name = urllib.parse.unquote("/".join(rest[1:]))
        for commit in gist.commits:
            if commit.sha == ref and name in commit.tree:
                return self._blobs[commit.tree[name]]
        return None


# --- helpers ---------------------------------------------------------------------------------


def _gist_commit_sha(gist_id: str, index: int, parent: str, tree: dict[str, str]) -> str:
    """A gist commit's id, derived from what it holds (fixtures/github/README.md)."""
    identity = f"gist {gist_id}\nindex {index}\nparent {parent}\n" + "".join(
        f"{blob} {name}\n" for name, blob in sorted(tree.items())
    )
    return hashlib.sha1(identity.encode(), usedforsecurity=False).hexdigest()


def _json_object(body: bytes, doc: str) -> dict[str, Any] | _Result:
    """A write's body as a JSON object, or GitHub's 400 answer (non-UTF-8 bytes included)."""
    try:
        data = json.loads(body.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError is one
        return _bad_request("Problems parsing JSON", doc)
    if not isinstance(data, dict):
        return _bad_request("Body should be a JSON object", doc)
    return data


def _bad_request(message: str, doc: str) -> _Result:
    return _Result(400, {"message": message, "documentation_url": doc, "status": "400"})


def _validation_failed(doc: str, code: str) -> _Result:
    return _Result(
        422,
        {
            "message": "Validation Failed",
            "errors": [{"resource": "Gist", "code": code, "field": "files"}],
            "documentation_url": doc,
            "status": "422",
        },
    )


def _invalid_request(doc: str, prop: str, value: Any, kind: str) -> _Result:
    """The schema check's 422, in its words: "For 'properties/content', nil is not a string."."""
    shown = "nil" if value is None else json.dumps(value, ensure_ascii=False)
    message = f"Invalid request.\n\nFor 'properties/{prop}', {shown} is not {kind}."
    return _Result(422, {"message": message, "documentation_url": doc, "status": "422"})


def _name_problem(name: str, doc: str) -> _Result | None:
    # '/' is GitHub's documented refusal; an empty name is refused here too (GitHub would
    # name it gistfileN, which the emulator does not play).
    if not name or "/" in name:
        return _validation_failed(doc, "invalid")
    return None


def _content_bytes(content: str, doc: str) -> bytes | _Result:
    """A file's new bytes; empty or white-space-only content is GitHub's 'files missing'."""
    try:
        data = content.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escape (\ud800) is no UTF-8 either
        return _bad_request("Problems parsing JSON", doc)
    if not content.strip():
        return _validation_failed(doc, "missing_field")
    return data


def _not_found(documentation_url: str) -> _Result:
    return _Result(
        404, {"message": "Not Found", "documentation_url": documentation_url, "status": "404"}
    )


def _paginate(
    items: list[_T], query_text: str, query: dict[str, str], base: str
) -> tuple[list[_T], str | None]:
    per_page = _int(query.get("per_page"), PER_PAGE_DEFAULT)
    per_page = PER_PAGE_DEFAULT if per_page < 1 else min(per_page, PER_PAGE_MAX)
    page = max(_int(query.get("page"), 1), 1)
    last = max(1, -(-len(items) // per_page))
    chosen = items[(page - 1) * per_page : page * per_page]
    if last == 1 and page == 1:
        return chosen, None
    # The client's own parameters, as it sent them, then page=N (GitHub's form).
    kept = [
        part
        for part in query_text.split("&")
        if part and urllib.parse.unquote_plus(part.partition("=")[0]) != "page"
    ]

    def url(number: int) -> str:
        return base + "?" + "&".join([*kept, f"page={number}"])

    links: list[tuple[int, str]] = []
    if page > 1:
        links.append((page - 1, "prev"))
    if page < last:
        links += [(page + 1, "next"), (last, "last")]
    if page > 1:
        links.append((1, "first"))
    return chosen, ", ".join(f'<{url(number)}>; rel="{rel}"' for number, rel in links)


def _build_archive(top: str, files: dict[str, bytes], epoch: int, sha: str, form: str) -> bytes:
    """A gist archive as `git archive` makes it: the directory top/ first, then each file."""
    buffer = io.BytesIO()
    if form == "zip":
        stamp = time.gmtime(epoch)[:6]
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            directory = zipfile.ZipInfo(top + "/", stamp)
            directory.create_system = 3
            directory.external_attr = (0o40775 << 16) | 0x10
            archive.writestr(directory, b"")
            for name, data in files.items():
                info = zipfile.ZipInfo(f"{top}/{name}", stamp)
                info.create_system = 3
                info.external_attr = 0o100664 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, data)
            archive.comment = sha.encode()
        return buffer.getvalue()
    # git archive writes a pax global header holding the commit id.
    with tarfile.open(
        fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT, pax_headers={"comment": sha}
    ) as archive:
        directory_info = tarfile.TarInfo(top)
        directory_info.type = tarfile.DIRTYPE
        directory_info.mode = 0o775
        directory_info.mtime = epoch
        archive.addfile(directory_info)
        for name, data in files.items():
            member = tarfile.TarInfo(f"{top}/{name}")
            member.size = len(data)
            member.mode = 0o664
            member.mtime = epoch
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def _tree_sha(files: dict[str, str]) -> str:
    """The git tree id of files (relative path -> blob sha), subdirectories included."""
    entries: dict[str, tuple[str, str]] = {}
    subdirs: dict[str, dict[str, str]] = {}
    for path, blob in files.items():
        head, sep, rest = path.partition("/")
        if sep:
            subdirs.setdefault(head, {})[rest] = blob
        else:
            entries[head] = ("100644", blob)
    for name, sub in subdirs.items():
        entries[name] = ("40000", _tree_sha(sub))
    order = sorted(entries, key=lambda n: (n + "/" if entries[n][0] == "40000" else n).encode())
    payload = b"".join(
        f"{entries[n][0]} {n}".encode() + b"\0" + bytes.fromhex(entries[n][1]) for n in order
    )
    return hashlib.sha1(b"tree %d\0" % len(payload) + payload, usedforsecurity=False).hexdigest()


def _signature(tree: dict[str, str], path: str) -> str | None:
    """What a path is in a tree (blob or tree id), or None if absent: equal means untouched."""
    if path in tree:
        return tree[path]
    prefix = path + "/"
    below = {p[len(prefix) :]: blob for p, blob in tree.items() if p.startswith(prefix)}
    return _tree_sha(below) if below else None


def _line_changes(old: bytes, new: bytes) -> tuple[int, int]:
    """(additions, deletions) in lines, as GitHub's change_status counts them."""
    if old == new:
        return 0, 0
    before, after = old.splitlines(), new.splitlines()
    if len(before) + len(after) > _DIFF_LINE_LIMIT:
        return len(after), len(before)
    additions = deletions = 0
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            deletions += i2 - i1
        if tag in ("replace", "insert"):
            additions += j2 - j1
    return additions, deletions


def _corrupt(data: bytes) -> bytes:
    """Different bytes of the same length: one letter's case flipped (else one byte inverted)."""
    if not data:
        return data
    buffer = bytearray(data)
    middle = len(buffer) // 2
    for index in [*range(middle, len(buffer)), *range(middle)]:
        if 0x41 <= buffer[index] <= 0x5A or 0x61 <= buffer[index] <= 0x7A:
            buffer[index] ^= 0x20
            return bytes(buffer)
    buffer[middle] ^= 0xFF
    return bytes(buffer)


def _etag_matches(header: str, etag: str) -> bool:
    """If-None-Match with the weak comparison: W/ prefixes ignored, lists and * allowed."""
    wanted = _opaque(etag)
    for part in header.split(","):
        tag = part.strip()
        if tag == "*" or (tag and _opaque(tag) == wanted):
            return True
    return False


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag[:2] in ("W/", "w/") else tag


def _new_raw_token(previous: str) -> str:
    """A raw-host token in GitHub's style: upper-case letters and digits, fresh each time."""
    seed = f"{previous}\0{time.time_ns()}\0{threading.get_ident()}".encode()
    return "A" + base64.b32encode(hashlib.sha256(seed).digest()).decode("ascii")[:31]


def _hostile_bytes(name: str) -> bytes:
    return f"hostile gist entry named {name!r}: a client must refuse this name\n".encode()


def _token_key(token: str) -> str:
    return "token:" + _sha256(token.encode())


def _token_user_id(token: str) -> int:
    return _number("token-user:" + token, 8)


def _number(text: str, digits: int) -> int:
    """A stable positive id of about `digits` decimal digits."""
    low: int = 10 ** (digits - 1)
    return int(_sha256(text.encode()), 16) % (9 * low) + low


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def _json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _parse_iso(text: str) -> int:
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def _http_date(epoch: int) -> str:
    return email.utils.formatdate(epoch, usegmt=True)


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _check_sha(sha: str) -> None:
    if not _SHA_RE.fullmatch(sha):
        raise ValueError(f"a commit is 40 lower-case hex digits, not {sha!r}")


def _check_times(times: int) -> None:
    if times < 1:
        raise ValueError(f"times must be at least 1, not {times}")


__all__ = [
    "API_VERSIONS",
    "FIXTURES",
    "HOSTILE_FILENAMES",
    "ApiRequest",
    "GitHubEmulator",
    "git_blob_sha1",
]
