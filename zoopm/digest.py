"""Hashing helpers: one-pass SHA-1 + SHA-256 digests, git blob ids, and hex validation."""

from __future__ import annotations

import contextlib
import hashlib
import queue
import re
import threading
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
    """Feeds the same bytes to SHA-1 and SHA-256 at once, so a blob is read a single time.

    With parallel=True, once more than PARALLEL_AFTER bytes came, each hash runs in a thread of
    its own, fed through a bounded queue: hashlib lets go of the GIL on large buffers, so the
    hashing leaves the reader's critical path and the two hashes run side by side, while
    memory stays bounded (at most _QUEUE_CHUNKS chunks wait per hash). Small files never
    start a thread. Chunks handed to a parallel hasher must not change afterwards (bytes).
    """

    def __init__(self, *, parallel: bool = False) -> None:
        self._sha1 = hashlib.sha1(usedforsecurity=False)
        self._sha256 = hashlib.sha256()
        self.size = 0
        self._parallel = parallel
        self._workers: tuple[_HashWorker, ...] = ()

    def update(self, chunk: bytes | memoryview) -> None:
        self.size += len(chunk)
        if not self._workers and self._parallel and self.size > PARALLEL_AFTER:
            self._workers = (_HashWorker(self._sha1), _HashWorker(self._sha256))
        if self._workers:
            data = chunk if isinstance(chunk, bytes) else bytes(chunk)
            for worker in self._workers:
                worker.feed(data)
        else:
            self._sha1.update(chunk)
            self._sha256.update(chunk)

    def digest(self) -> Digest:
        for worker in self._workers:
            worker.finish()
        self._workers = ()
        return Digest(self.size, self._sha1.hexdigest(), self._sha256.hexdigest())

    def close(self) -> None:
        """Stops the hashing threads without waiting for them (the hash is not wanted)."""
        for worker in self._workers:
            worker.stop()
        self._workers = ()

    def __del__(self) -> None:
        self.close()


PARALLEL_AFTER = 4 * CHUNK_SIZE
_QUEUE_CHUNKS = 8


class _HashWorker:
    """One hash object updated in a daemon thread from a bounded queue of chunks."""

    def __init__(self, hash_object: hashlib._Hash) -> None:
        self._hash = hash_object
        self._queue: queue.Queue[bytes | None] = queue.Queue(_QUEUE_CHUNKS)
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="zoopm-hash", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None and not self._stopped:
            self._hash.update(chunk)

    def feed(self, chunk: bytes) -> None:
        self._queue.put(chunk)

    def finish(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def stop(self) -> None:
        self._stopped = True
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)


def digest_bytes(data: bytes) -> Digest:
    hasher = Hasher()
    hasher.update(data)
    return hasher.digest()


def digest_stream(stream: BinaryIO) -> Digest:
    hasher = Hasher(parallel=True)
    try:
        while chunk := stream.read(CHUNK_SIZE):
            hasher.update(chunk)
        return hasher.digest()
    finally:
        hasher.close()


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
