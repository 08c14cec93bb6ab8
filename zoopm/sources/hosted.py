"""Hosted info files: bytes from a raw URL, checked against their git blob id, kept in the store."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass

from zoopm.digest import git_blob_hasher
from zoopm.errors import IntegrityError, SourceError
from zoopm.formats.lockfile import LockedFile, LockedModel
from zoopm.formats.manifest import ModelSpec
from zoopm.formats.modelinfo import find_readme
from zoopm.network.github_api import GitHubClient
from zoopm.network.net import HttpClient, without_token
from zoopm.paths import relative_path_problem
from zoopm.reporting import NullProgress, Reporter
from zoopm.sources import BinaryFetcher
from zoopm.sources.assemble import binary_entry, locked_model, read_info
from zoopm.storage.store import BlobWriter, Expected, Store
from zoopm.trust import Trust, url_problem

MAX_INFO_FILE = 10 * 1024 * 1024  # what GitHub's raw hosts serve for a gist file


@dataclass(frozen=True)
class Hosted:
    """What a GitHub-hosted source needs: the API, plain HTTP for raw files, the store."""

    api: GitHubClient
    http: HttpClient
    store: Store
    fetcher: BinaryFetcher
    reporter: Reporter


@dataclass(frozen=True)
class HostedFile:
    """One file as an API listed it: where it goes, its size, git blob id and raw URL."""

    path: str
    size: int
    blob: str
    url: str


@dataclass(frozen=True)
class FetchedFile:
    """A file now in the store; its bytes are kept only when asked for (the readme to parse)."""

    locked: LockedFile
    data: bytes | None


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


def check_names(files: list[HostedFile], label: str, *, flat: bool = False) -> None:
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
        if any(ord(c) < 0x20 or unicodedata.category(c) in ("Cc", "Cf") for c in file.path):
            raise SourceError(
                f"{label}: file name {file.path!r} has a control or format character",
                hint="such a character (a right-to-left override, say) makes a name read as "
                "another; the source must rename the file",
            )
        if any(part.startswith(".zoopm") for part in file.path.split("/")):
            raise SourceError(
                f"{label}: file name {file.path!r} starts with '.zoopm', which zoopm keeps "
                "for its own files (the install record, temp files)",
                hint="the source must rename the file",
            )
        # Every directory on the path too: a file 'a' beside a directory 'A/' collide as well.
        parts = file.path.split("/")
        for end in range(1, len(parts) + 1):
            spelled = "/".join(parts[:end])
            other = seen.setdefault(_folded(spelled), spelled)
            if other != spelled:
                raise SourceError(
                    f"{label}: {other!r} and {spelled!r} differ only in case or Unicode "
                    "normalisation",
                    hint="they would overwrite each other on macOS and Windows",
                )
        if file.size > MAX_INFO_FILE:
            raise SourceError(
                f"{label}: {file.path} is {file.size} bytes; GitHub serves files of at most "
                "10 MB this way",
                hint="model info files are small: keep large files out of the model's gist",
            )


def _folded(path: str) -> str:
    """What a case-blind, normalising file system (macOS, Windows) makes of a path."""
    return unicodedata.normalize("NFC", path).casefold()


class _GitBlobSink:
    """Streams a download into the store while hashing it the way git names a blob."""

    def __init__(self, writer: BlobWriter, size: int, keep: bool) -> None:
        self._writer = writer
        self._size = size
        self._keep = keep
        self._chunks: list[bytes] = []
        self._git = self._start()

    def _start(self) -> hashlib._Hash:
        # git hashes a header with the length first; the API's listed size stands in for it,
        # and the writer refuses any byte beyond that size.
        return git_blob_hasher(self._size)

    @property
    def written(self) -> int:
        return self._writer.written

    def write(self, chunk: bytes) -> None:
        self._writer.write(chunk)
        self._git.update(chunk)
        if self._keep:
            self._chunks.append(chunk)

    def reset(self) -> None:
        self._writer.reset()
        self._git = self._start()
        self._chunks.clear()

    @property
    def blob(self) -> str:
        return self._git.hexdigest()

    @property
    def data(self) -> bytes | None:
        return b"".join(self._chunks) if self._keep else None


def fetch_file(
    http: HttpClient, store: Store, file: HostedFile, label: str, *, keep: bool = False
) -> FetchedFile:
    """Streams one listed file (never with the API token) into the store, verified on the way.

    Only with keep are its bytes returned as well: a model's info files together can be far
    larger than memory should hold, and only readme.md is read.
    """
    where = f"{label} {file.path}"
    problem = url_problem(file.url, Trust.THIRD_PARTY)
    if problem:
        raise SourceError(
            f"{where}: GitHub listed the URL {file.url!r}, which zoopm will not fetch: {problem}",
            hint="is ZOOPM_GITHUB_API the real API? its answers may only name http(s) URLs",
        )
    with store.writer(Expected(size=file.size), where) as writer:
        sink = _GitBlobSink(writer, file.size, keep)
        http.download(file.url, sink, NullProgress())
        if sink.written != file.size:
            raise IntegrityError(
                f"{where}: size mismatch: listed {file.size} bytes, got {sink.written}"
            )
        if sink.blob != file.blob:
            raise IntegrityError(
                f"{where}: git blob mismatch: expected {file.blob}, got {sink.blob}",
                hint="the raw host served other bytes than the API listed; nothing was installed",
            )
        digest = writer.commit().digest
    # A private repository's raw URL carries a short-lived token: used above, never written.
    url = without_token(file.url)
    locked = LockedFile(file.path, digest.size, digest.sha1, digest.sha256, (url,))
    return FetchedFile(locked, sink.data)


def read_small(http: HttpClient, url: str, limit: int = MAX_INFO_FILE) -> bytes:
    """A small file (an index) read whole from a URL, refusing more than limit bytes."""
    sink = _MemorySink(limit, url)
    http.download(url, sink, NullProgress())
    return sink.data


def pin_files(
    spec: ModelSpec,
    hosted: Hosted,
    files: list[HostedFile],
    source: dict[str, str],
    label: str,
) -> LockedModel:
    """Fetches and verifies the listed files, then adds the binary their readme.md names."""
    readme = find_readme([f.path for f in files if "/" not in f.path], label)
    fetched = [
        fetch_file(hosted.http, hosted.store, f, label, keep=f.path == readme) for f in files
    ]
    kept = {f.locked.path: f.data for f in fetched if f.data is not None}
    readme, info = read_info(kept, label, hosted.reporter)
    locked = [f.locked for f in fetched]
    binary = binary_entry(
        spec=spec,
        info=info,
        label=label,
        fetcher=hosted.fetcher,
        reporter=hosted.reporter,
        readme=readme,
    )
    if binary is not None:
        locked.append(binary)
    return locked_model(spec, source, info, locked, label)
