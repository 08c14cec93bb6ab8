"""Gist source: a model-info gist at a commit, every file fetched from raw_url and verified."""

from __future__ import annotations

import re
from typing import Any

from zoopm.errors import SourceError
from zoopm.formats.lockfile import LockedModel
from zoopm.formats.manifest import REV_RE, GistSource, ModelSpec
from zoopm.network.github_api import GitHubClient, GitHubNotFound
from zoopm.sources.hosted import Hosted, HostedFile, check_names, pin_files

_RAW_BLOB = re.compile(r"/raw/([0-9a-f]{40})/")


def newest_gist_rev(api: GitHubClient, gist_id: str) -> str:
    """The gist's newest commit, from /commits (the history field is gone in newer API versions)."""
    try:
        result = api.get(api.url(f"gists/{gist_id}/commits", {"per_page": "1"}))
    except GitHubNotFound:
        raise GitHubNotFound(f"gist {gist_id}: not found on GitHub") from None
    data = result.data
    version = data[0].get("version") if isinstance(data, list) and data else None
    if not isinstance(version, str) or not REV_RE.fullmatch(version):
        raise SourceError(f"gist {gist_id}: GitHub listed no commit for it")
    return version


def resolve_gist(spec: ModelSpec, hosted: Hosted) -> LockedModel:
    """Pins the gist's files at its commit (one API request when rev is given)."""
    source = spec.source
    assert isinstance(source, GistSource)
    rev = source.rev or newest_gist_rev(hosted.api, source.gist)
    label = f"gist {source.gist}@{rev[:12]}"
    try:
        result = hosted.api.get(hosted.api.url(f"gists/{source.gist}/{rev}"))
    except GitHubNotFound:
        raise GitHubNotFound(
            f"{label}: no such gist or revision on GitHub",
            hint=f"check models.{spec.name} in zoo.toml; 'zoopm update {spec.name}' finds "
            "the newest revision",
        ) from None
    files = listed_files(result.data, label)
    check_names(files, label, flat=True)
    return pin_files(spec, hosted, files, {"gist": source.gist, "rev": rev}, label)


def listed_files(data: Any, label: str) -> list[HostedFile]:
    """The files a gist answer (GET gists/ID/REV) lists, sorted by name; names not yet judged."""
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise SourceError(f"{label}: GitHub's answer has no file list")
    if data.get("truncated") is True:
        raise SourceError(
            f"{label}: the gist has more than 300 files and the API lists only 300",
            hint="a model-info gist holds a few prototxt files and readme.md",
        )
    files = []
    for name, entry in data["files"].items():
        if not isinstance(entry, dict):
            raise SourceError(f"{label}: file {name!r} has no details in GitHub's answer")
        raw_url, size = entry.get("raw_url"), entry.get("size")
        if not isinstance(raw_url, str) or not isinstance(size, int) or isinstance(size, bool):
            raise SourceError(f"{label}: file {name!r} has no raw_url or size")
        blob = _RAW_BLOB.search(raw_url)
        if blob is None:
            raise SourceError(f"{label}: raw_url of {name!r} carries no blob id to verify it")
        files.append(HostedFile(str(name), size, blob.group(1), raw_url))
    return sorted(files, key=lambda f: f.path)


def gist_history(api: GitHubClient, gist_id: str, limit: int) -> tuple[list[str], bool]:
    """The gist's commits, newest first, at most limit of them (pages followed by their Link
    header); and whether that is the whole history."""
    url: str | None = api.url(f"gists/{gist_id}/commits", {"per_page": "100"})
    versions: list[str] = []
    pages = 0
    while url is not None and len(versions) < limit:
        pages += 1
        if pages > limit // 100 + 2:
            break  # an answer that pages on with nothing in it is someone else's loop
        try:
            result = api.get(url)
        except GitHubNotFound:
            raise GitHubNotFound(f"gist {gist_id}: not found on GitHub") from None
        if not isinstance(result.data, list):
            raise SourceError(f"gist {gist_id}: GitHub's list of commits is not a list")
        for item in result.data:
            version = item.get("version") if isinstance(item, dict) else None
            if not isinstance(version, str) or not REV_RE.fullmatch(version):
                raise SourceError(f"gist {gist_id}: GitHub listed a commit without a version")
            versions.append(version)
        url = result.links.get("next")
    return versions[:limit], url is None and len(versions) <= limit


def gist_files_at(api: GitHubClient, gist_id: str, rev: str) -> list[HostedFile]:
    """The files of a gist at one commit as GitHub lists them (name, size, git blob id), sorted;
    nothing is downloaded."""
    label = f"gist {gist_id}@{rev[:12]}"
    try:
        result = api.get(api.url(f"gists/{gist_id}/{rev}"))
    except GitHubNotFound:
        raise GitHubNotFound(f"{label}: no such gist or revision on GitHub") from None
    return listed_files(result.data, label)
