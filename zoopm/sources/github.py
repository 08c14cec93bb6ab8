"""Repository source: a model directory of a GitHub repository at a commit, via the contents API."""

from __future__ import annotations

import urllib.parse
from typing import Any

from zoopm.errors import SourceError
from zoopm.formats.lockfile import LockedModel
from zoopm.formats.manifest import REV_RE, GithubSource, ModelSpec
from zoopm.network.github_api import GitHubClient, GitHubNotFound
from zoopm.reporting import Reporter
from zoopm.sources.hosted import Hosted, HostedFile, check_names, pin_files

_MAX_ENTRIES = 1000  # the contents API lists at most this many entries of a directory
# A model directory is shallow; an API answer (third-party text) that nests deeper, or lists
# more subdirectories than this, is refused rather than walked for ever.
_MAX_DEPTH = 8
_MAX_DIRS = 200


def newest_repo_rev(api: GitHubClient, repo: str, path: str) -> str:
    """The newest commit that touched path (any commit, for "", the repository's root)."""
    params = {"path": path, "per_page": "1"} if path else {"per_page": "1"}
    url = api.url(f"repos/{repo}/commits", params)
    try:
        data = api.get(url).data
    except GitHubNotFound:
        raise GitHubNotFound(f"github {repo}: repository not found on GitHub") from None
    sha = data[0].get("sha") if isinstance(data, list) and data else None
    if not isinstance(sha, str) or not REV_RE.fullmatch(sha):
        raise SourceError(
            f"github {repo}/{path}: no commit touches this path"
            if path
            else f"github {repo}: the repository has no commit"
        )
    return sha


def resolve_repo(spec: ModelSpec, hosted: Hosted) -> LockedModel:
    """Pins the directory's files at the commit (one API request per directory level)."""
    source = spec.source
    assert isinstance(source, GithubSource)
    rev = source.rev or newest_repo_rev(hosted.api, source.github, source.path)
    label = f"github {source.where}@{rev[:12]}"
    quoted = urllib.parse.quote(source.path)
    first = hosted.api.url(f"repos/{source.github}/contents/{quoted}", {"ref": rev})
    files = _Walker(hosted.api, label, hosted.reporter).walk(first, "")
    check_names(files, label)
    canonical = {"github": source.github, "path": source.path, "rev": rev}
    return pin_files(spec, hosted, files, canonical, label)


class _Walker:
    """Follows a directory listing down, bounded: an API answer is someone else's text."""

    def __init__(self, api: GitHubClient, label: str, reporter: Reporter) -> None:
        self.api = api
        self.label = label
        self.reporter = reporter
        self.dirs = 0

    def walk(self, url: str, prefix: str) -> list[HostedFile]:
        label = self.label
        self.dirs += 1
        if prefix.count("/") > _MAX_DEPTH or self.dirs > _MAX_DIRS:
            raise SourceError(
                f"{label}: GitHub listed directories more than {_MAX_DEPTH} deep or more than "
                f"{_MAX_DIRS} of them; that is no model directory",
                hint="check path in zoo.toml: it should name one model's directory",
            )
        try:
            data = self.api.get(url).data
        except GitHubNotFound:
            raise GitHubNotFound(
                f"{label}: no such repository, path or commit on GitHub",
                hint="check github, path and rev in zoo.toml; a private repository needs "
                "GITHUB_TOKEN set to a token that can read it",
            ) from None
        if not isinstance(data, list):
            raise SourceError(f"{label}: {prefix or 'the path'} is a file, not a model directory")
        if len(data) >= _MAX_ENTRIES:
            raise SourceError(f"{label}: the directory has {_MAX_ENTRIES} entries or more")
        files: list[HostedFile] = []
        for entry in data:
            files.extend(self.entry(entry, prefix))
        return sorted(files, key=lambda f: f.path)

    def entry(self, entry: Any, prefix: str) -> list[HostedFile]:
        label = self.label
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise SourceError(f"{label}: GitHub listed an entry without a name")
        path = prefix + entry["name"]
        kind = entry.get("type")
        if kind == "dir" and isinstance(entry.get("url"), str):
            return self.walk(entry["url"], path + "/")
        download, sha, size = entry.get("download_url"), entry.get("sha"), entry.get("size")
        if kind != "file" or not isinstance(download, str):
            self.reporter.warning(f"{label}/{path}: left out: a {kind}, not a file")
            return []
        if not isinstance(sha, str) or not isinstance(size, int) or isinstance(size, bool):
            raise SourceError(f"{label}: {path} has no sha or size in GitHub's answer")
        return [HostedFile(path, size, sha, download)]


def repo_files_at(
    api: GitHubClient, repo: str, path: str, rev: str, reporter: Reporter
) -> list[HostedFile]:
    """The files below a repository directory at a commit as the contents API lists them (path,
    size, git blob id), sorted; nothing is downloaded."""
    label = f"github {repo}/{path}@{rev[:12]}"
    first = api.url(f"repos/{repo}/contents/{urllib.parse.quote(path)}", {"ref": rev})
    return _Walker(api, label, reporter).walk(first, "")
