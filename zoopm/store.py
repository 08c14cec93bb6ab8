"""The content-addressed blob store shared by every project of a user (the only filelock user)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from zoopm.atomic import atomic_write, fsync_dir
from zoopm.digest import CHUNK_SIZE, Digest, Hasher, digest_file, is_sha256_hex
from zoopm.errors import IntegrityError, StoreError

_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


@dataclass(frozen=True)
class Expected:
    """What a blob must turn out to be; None means 'not known in advance'."""

    size: int | None = None
    sha1: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Blob:
    """A verified blob in the store."""

    path: Path
    digest: Digest


class Store:
    """Blobs named by SHA-256 under a two-character fan-out, with SHA-1 aliases for Caffe."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def blob_path(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256

    def _alias_path(self, sha1: str) -> Path:
        return self.root / "sha1" / sha1[:2] / sha1

    def has(self, sha256: str) -> bool:
        return self.blob_path(sha256).is_file()

    def get(self, sha256: str) -> Path | None:
        path = self.blob_path(sha256)
        return path if path.is_file() else None

    def find_sha1(self, sha1: str) -> str | None:
        """The SHA-256 of the stored blob whose SHA-1 is sha1, if there is one."""
        try:
            sha256 = self._alias_path(sha1.lower()).read_text(encoding="ascii").strip()
        except (FileNotFoundError, UnicodeDecodeError):
            return None
        except OSError as exc:
            raise StoreError(f"{self.root}: cannot read sha1 alias {sha1}: {exc}") from None
        return sha256 if is_sha256_hex(sha256) and self.has(sha256) else None

    def writer(self, expected: Expected, label: str) -> BlobWriter:
        return BlobWriter(self, expected, label)

    @contextlib.contextmanager
    def blob_lock(self, key: str) -> Iterator[None]:
        """Keeps two processes from downloading the same blob at once; never needed for safety."""
        from filelock import FileLock

        locks = self.root / "locks"
        _mkdir(locks)
        with FileLock(str(locks / f"{key}.lock")):
            yield

    def ingest_file(self, source: Path, expected: Expected, label: str) -> Blob:
        """Copies a local file into the store, hashing it in the same pass."""
        with self.writer(expected, label) as writer:
            try:
                with source.open("rb") as stream:
                    while chunk := stream.read(CHUNK_SIZE):
                        writer.write(chunk)
            except OSError as exc:
                raise StoreError(f"{source}: cannot read: {exc}", hint="check the file") from None
            return writer.commit()

    def add_bytes(self, data: bytes, expected: Expected, label: str) -> Blob:
        """Stores bytes already in memory (small info files)."""
        with self.writer(expected, label) as writer:
            writer.write(data)
            return writer.commit()

    def verify(self, sha256: str) -> bool:
        """Whether the stored blob still hashes to its name."""
        path = self.get(sha256)
        return path is not None and digest_file(path).sha256 == sha256

    def register_project(self, lock_path: Path) -> None:
        """Records a project that uses the store, so gc can keep what its lock needs."""
        key = hashlib.sha256(str(lock_path).encode()).hexdigest()[:32]
        record = self.root / "projects" / key
        content = str(lock_path) + "\n"
        with contextlib.suppress(OSError):
            if record.read_text(encoding="utf-8") == content:
                return
        atomic_write(record, content.encode())

    def _publish(self, temp: Path, digest: Digest) -> Blob:
        final = self.blob_path(digest.sha256)
        try:
            _mkdir(final.parent)
            os.chmod(temp, _READ_ONLY)
            # Content-addressed: if another process got there first, its blob is the same bytes.
            os.replace(temp, final)
            fsync_dir(final.parent)
            alias = self._alias_path(digest.sha1)
            if not alias.is_file():
                atomic_write(alias, digest.sha256.encode())
        except OSError as exc:
            raise StoreError(f"{self.root}: cannot store blob {digest.sha256}: {exc}") from None
        return Blob(final, digest)


class BlobWriter:
    """A blob being written: a unique temp file hashed as it streams, published only if verified."""

    def __init__(self, store: Store, expected: Expected, label: str) -> None:
        self._store = store
        self._expected = expected
        self._label = label
        tmp = store.root / "tmp"
        try:
            _mkdir(tmp)
            fd, name = tempfile.mkstemp(dir=tmp, prefix="blob-", suffix=".part")
        except OSError as exc:
            raise StoreError(f"{store.root}: cannot create a temp file: {exc}") from None
        self._file = os.fdopen(fd, "wb")
        self._path = Path(name)
        self._hasher = Hasher()
        self._done = False

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._done:
            self.abort()

    @property
    def written(self) -> int:
        return self._hasher.size

    def write(self, chunk: bytes) -> None:
        limit = self._expected.size
        if limit is not None and self._hasher.size + len(chunk) > limit:
            raise IntegrityError(
                f"{self._label}: more than the pinned {limit} bytes arrived",
            )
        self._hasher.update(chunk)
        try:
            self._file.write(chunk)
        except OSError as exc:
            raise StoreError(f"{self._store.root}: cannot write: {exc}") from None

    def reset(self) -> None:
        """Starts over from byte 0 (a server ignored a resume request)."""
        self._file.seek(0)
        self._file.truncate()
        self._hasher = Hasher()

    def commit(self) -> Blob:
        digest = self._hasher.digest()
        try:
            self._check(digest)
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            blob = self._store._publish(self._path, digest)
        except BaseException:
            self.abort()
            raise
        self._done = True
        return blob

    def abort(self) -> None:
        self._done = True
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()

    def _check(self, digest: Digest) -> None:
        expected = self._expected
        if expected.size is not None and digest.size != expected.size:
            raise IntegrityError(
                f"{self._label}: size mismatch: expected {expected.size} bytes, got {digest.size}"
            )
        for name, want, got in (
            ("sha256", expected.sha256, digest.sha256),
            ("sha1", expected.sha1, digest.sha1),
        ):
            if want is not None and want.lower() != got:
                raise IntegrityError(
                    f"{self._label}: {name} mismatch: expected {want.lower()}, got {got}"
                )


def _mkdir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
