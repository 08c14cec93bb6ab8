"""Remote info files: bytes from a raw URL, checked against their git blob id, kept in the store."""

from __future__ import annotations

from dataclasses import dataclass

from zoopm.digest import git_blob_sha1
from zoopm.errors import IntegrityError, SourceError
from zoopm.github_api import GitHubClient
from zoopm.lockfile import LockedFile, LockedModel
from zoopm.manifest import ModelSpec
from zoopm.net import HttpClient
from zoopm.paths import relative_path_problem
from zoopm.reporting import NullProgress, Reporter
from zoopm.sources import BinaryFetcher
from zoopm.sources.assemble import binary_entry, locked_model, read_info
from zoopm.store import Expected, Store

MAX_INFO_FILE = 10 * 1024 * 1024  # what GitHub's raw hosts serve for a gist file


@dataclass(frozen=True)
class Remote:
    """What a GitHub-hosted source needs: the API, plain HTTP for raw files, the store."""

    api: GitHubClient
    http: HttpClient
    store: Store
    fetcher: BinaryFetcher
    reporter: Reporter


@dataclass(frozen=True)
class RemoteFile:
    """One file as an API listed it: where it goes, its size, git blob id and raw URL."""

    path: str
    size: int
    blob: str
    url: str


@dataclass(frozen=True)
class FetchedFile:
    locked: LockedFile
    data: bytes


class _MemorySink:
    """Collects a small download, refusing more bytes than the API said the file has."""

    def __init__(self, limit: int, label: str) -> None:
        self._chunks: list[bytes] = []
        self._limit = limit
        self._label = label
        self.written = 0

    def write(self, chunk: bytes) -> None:
        if self.written + len(chunk) > self._limit:
            raise IntegrityError(f"{self._label}: more than the listed {self._limit} bytes arrived")
        self._chunks.append(chunk)
        self.written += len(chunk)

    def reset(self) -> None:
        self._chunks.clear()
        self.written = 0

    @property
    def data(self) -> bytes:
        return b"".join(self._chunks)


def check_names(files: list[RemoteFile], label: str, *, flat: bool = False) -> None:
    """Refuses names that could escape the model directory or collide on a case-blind disk.

    flat: the names are single file names (a gist has no directories).
    """
    seen: dict[str, str] = {}
    for file in files:
        problem = relative_path_problem(file.path)
        if flat and "/" in file.path:
            problem = f"{file.path!r} contains '/'"
        if problem:
            raise SourceError(f"{label}: file name {file.path!r} is not usable: {problem}")
        if any(ord(c) < 0x20 for c in file.path):
            raise SourceError(f"{label}: file name {file.path!r} has a control character")
        other = seen.setdefault(file.path.lower(), file.path)
        if other != file.path:
            raise SourceError(
                f"{label}: files {other!r} and {file.path!r} differ only in case",
                hint="they would overwrite each other on macOS and Windows",
            )
        if file.size > MAX_INFO_FILE:
            raise SourceError(
                f"{label}: {file.path} is {file.size} bytes; GitHub serves files of at most "
                "10 MB this way",
                hint="model info files are small: keep large files out of the model's gist",
            )


def fetch_file(http: HttpClient, store: Store, file: RemoteFile, label: str) -> FetchedFile:
    """Downloads one listed file (never with the API token) and verifies it before storing it."""
    where = f"{label} {file.path}"
    sink = _MemorySink(file.size, where)
    http.download(file.url, sink, NullProgress())
    data = sink.data
    if len(data) != file.size:
        raise IntegrityError(f"{where}: size mismatch: listed {file.size} bytes, got {len(data)}")
    blob = git_blob_sha1(data)
    if blob != file.blob:
        raise IntegrityError(
            f"{where}: git blob mismatch: expected {file.blob}, got {blob}",
            hint="the raw host served other bytes than the API listed; nothing was installed",
        )
    stored = store.add_bytes(data, Expected(size=file.size), file.url)
    digest = stored.digest
    return FetchedFile(
        LockedFile(file.path, digest.size, digest.sha1, digest.sha256, (file.url,)), data
    )


def read_small(http: HttpClient, url: str, limit: int = MAX_INFO_FILE) -> bytes:
    """A small file (an index) read whole from a URL, refusing more than limit bytes."""
    sink = _MemorySink(limit, url)
    http.download(url, sink, NullProgress())
    return sink.data


def pin_files(
    spec: ModelSpec,
    remote: Remote,
    files: list[RemoteFile],
    source: dict[str, str],
    label: str,
) -> LockedModel:
    """Fetches and verifies the listed files, then adds the binary their readme.md names."""
    fetched = {f.path: fetch_file(remote.http, remote.store, f, label) for f in files}
    _, info = read_info({p: f.data for p, f in fetched.items()}, label, remote.reporter)
    locked = [f.locked for f in fetched.values()]
    binary = binary_entry(
        spec=spec, info=info, label=label, fetcher=remote.fetcher, reporter=remote.reporter
    )
    if binary is not None:
        locked.append(binary)
    return locked_model(spec, source, info, locked, label)
