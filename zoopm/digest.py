"""Hashing helpers: one-pass SHA-1 + SHA-256 digests, git blob ids, and hex validation."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK_SIZE = 1 << 20

_SHA1_RE = re.compile(r"[0-9a-fA-F]{40}")
_SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class Digest:
    """The size and hashes of one byte string, as pinned in zoo.lock."""

    size: int
    sha1: str
    sha256: str


class Hasher:
    """Feeds the same bytes to SHA-1 and SHA-256 at once, so a blob is read a single time."""

    def __init__(self) -> None:
        self._sha1 = hashlib.sha1(usedforsecurity=False)
        self._sha256 = hashlib.sha256()
        self.size = 0

    def update(self, chunk: bytes | memoryview) -> None:
        self._sha1.update(chunk)
        self._sha256.update(chunk)
        self.size += len(chunk)

    def digest(self) -> Digest:
        return Digest(self.size, self._sha1.hexdigest(), self._sha256.hexdigest())


def digest_bytes(data: bytes) -> Digest:
    hasher = Hasher()
    hasher.update(data)
    return hasher.digest()


def digest_stream(stream: BinaryIO) -> Digest:
    hasher = Hasher()
    while chunk := stream.read(CHUNK_SIZE):
        hasher.update(chunk)
    return hasher.digest()


def digest_file(path: Path) -> Digest:
    with path.open("rb") as stream:
        return digest_stream(stream)


def git_blob_sha1(data: bytes) -> str:
    """The id git (and so GitHub's raw_url and contents API) gives a file's bytes."""
    hasher = git_blob_hasher(len(data))
    hasher.update(data)
    return hasher.hexdigest()


def git_blob_hasher(size: int) -> hashlib._Hash:
    """A SHA-1 primed with git's blob header: feed it size bytes and it gives their git id."""
    return hashlib.sha1(b"blob %d\0" % size, usedforsecurity=False)


def is_sha1_hex(text: str) -> bool:
    return _SHA1_RE.fullmatch(text) is not None


def is_sha256_hex(text: str) -> bool:
    return _SHA256_RE.fullmatch(text) is not None
