"""A remote store in a directory (file:// URL: a network share, a mounted bucket); no extra.

The directory named in the URL is the user's choice and may be a link; below it nothing is
followed: each directory on a blob's way (sha256/, then its fan-out) is opened without
following a link, and every name is read, created and renamed relative to those descriptors.
Whoever else can write to a shared directory can put a link there, never redirect a push.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from zoopm.atomic import CLOEXEC, DIR_NO_FOLLOW, NEW_FILE_NO_FOLLOW, READ_NO_FOLLOW
from zoopm.digest import CHUNK_SIZE
from zoopm.errors import IntegrityError, RemoteStoreError, from_os_error
from zoopm.remote_store.backend import RemoteMissing
from zoopm.tasks import CancelToken

if TYPE_CHECKING:
    from zoopm.network.net import Sink
    from zoopm.reporting import Progress

# What opening a directory on the way says when a link or a file stands there instead.
_NOT_A_DIRECTORY = (errno.ELOOP, errno.ENOTDIR)


class _Missing(Exception):
    """A directory on the way to a key is not there."""


class DirectoryBackend:
    """Objects as files below root, each written beside its place and renamed into it."""

    def __init__(self, root: Path, shown: str, token: CancelToken) -> None:
        self._root = root
        self._shown = shown
        self._token = token

    def _error(self, key: str, exc: OSError) -> RemoteStoreError:
        return _error(self._shown, key, exc)

    @contextlib.contextmanager
    def _parent(self, key: str, *, create: bool) -> Iterator[int]:
        """A descriptor of the directory that holds key, reached without following a link
        below the root (created on the way when create); _Missing when one is not there."""
        *parts, _ = key.split("/")
        try:
            if create:
                self._root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY | CLOEXEC)
        except OSError as exc:
            # Not the blob but the store itself: a failure to report, never "no copy".
            hint = from_os_error(exc).hint
            if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
                hint = "check the directory the file:// URL names, and that it is mounted"
            raise RemoteStoreError(
                f"remote store {self._shown}: {exc.strerror or exc}", hint=hint
            ) from None
        try:
            for part in parts:
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=fd)
                try:
                    inner = os.open(part, DIR_NO_FOLLOW, dir_fd=fd)
                except FileNotFoundError:
                    raise _Missing from None
                except OSError as exc:
                    if exc.errno in _NOT_A_DIRECTORY and not create:
                        raise _Missing from None
                    raise
                os.close(fd)
                fd = inner
            yield fd
        finally:
            os.close(fd)

    def size(self, key: str) -> int | None:
        if not os.path.lexists(self._root):
            return None  # a store not made yet holds nothing; the first push makes it
        try:
            with self._parent(key, create=False) as parent:
                info = os.lstat(key.rsplit("/", 1)[-1], dir_fd=parent)
        except (_Missing, FileNotFoundError):
            return None
        except OSError as exc:
            raise self._error(key, exc) from None
        # Anything but a regular file (a link, a FIFO) is no object; an upload replaces it.
        return info.st_size if stat.S_ISREG(info.st_mode) else None

    def read(self, key: str, sink: Sink, progress: Progress, size: int | None) -> None:
        try:
            with self._parent(key, create=False) as parent:
                fd = os.open(key.rsplit("/", 1)[-1], READ_NO_FOLLOW, dir_fd=parent)
        except (_Missing, FileNotFoundError, NotADirectoryError):
            raise RemoteMissing(key) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise RemoteMissing(key) from None  # a link at a blob's name is no object
            raise self._error(key, exc) from None
        try:
            info = os.fstat(fd)
        except OSError as exc:
            os.close(fd)
            raise self._error(key, exc) from None
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)  # a directory or a FIFO at a blob's name is no object either
            raise RemoteMissing(key)
        with os.fdopen(fd, "rb", buffering=0) as stream:
            if size is not None and info.st_size != size:
                raise IntegrityError(
                    f"remote store {self._shown}: {key} holds {info.st_size} bytes, "
                    f"zoo.lock pins {size}"
                )
            try:
                while chunk := stream.read(CHUNK_SIZE):
                    self._token.check()
                    sink.write(chunk)
                    progress.advance(len(chunk))
            except OSError as exc:
                raise self._error(key, exc) from None

    def upload(self, key: str) -> _DirectoryUpload:
        try:
            with self._parent(key, create=True) as parent:
                return _DirectoryUpload(os.dup(parent), key, self._shown)
        except OSError as exc:
            if exc.errno in _NOT_A_DIRECTORY:
                raise RemoteStoreError(
                    f"remote store {self._shown}: {key}: a directory on its way is a link or "
                    "a file; zoopm does not write through it",
                    hint="remove it from the remote store's directory, then push again",
                ) from None
            raise self._error(key, exc) from None


class _DirectoryUpload:
    """A temp file beside the target; renamed over it on commit, removed on discard.

    discard may come from another thread (a Ctrl-C while the uploading thread is busy): it
    only removes the temp file's name, so the upload's own thread finds it gone and stops,
    and the descriptors are closed by that thread alone (never reused under its feet).
    """

    def __init__(self, parent: int, key: str, shown: str) -> None:
        self._parent = parent
        self._name = key.rsplit("/", 1)[-1]
        self._key = key
        self._shown = shown
        self._temp = f".{self._name}.{secrets.token_hex(6)}.part"
        self._discarded = threading.Event()
        flags = NEW_FILE_NO_FOLLOW
        try:
            self._fd = os.open(self._temp, flags, 0o644, dir_fd=parent)
        except OSError as exc:
            os.close(parent)
            raise self._fail(exc) from None

    def _fail(self, exc: OSError) -> RemoteStoreError:
        return _error(self._shown, self._key, exc)

    def _check(self) -> None:
        if self._discarded.is_set():
            raise RemoteStoreError(f"remote store {self._shown}: {self._key}: upload stopped")

    def write(self, chunk: bytes) -> None:
        self._check()
        view = memoryview(chunk)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            raise self._fail(exc) from None

    def commit(self) -> None:
        try:
            self._check()
            os.fsync(self._fd)
            self._check()
            # Gone when discarded meanwhile: the rename fails and nothing is published.
            os.replace(self._temp, self._name, src_dir_fd=self._parent, dst_dir_fd=self._parent)
            with contextlib.suppress(OSError):
                os.fsync(self._parent)
        except OSError as exc:
            self.discard()
            if exc.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
                raise RemoteStoreError(
                    f"remote store {self._shown}: {self._key}: a directory stands at the blob's "
                    "name; zoopm does not remove it",
                    hint="remove it from the remote store's directory, then push again",
                ) from None
            raise self._fail(exc) from None

    def close(self) -> None:
        """Closes the descriptors; only the thread that writes calls this."""
        for fd in (self._fd, self._parent):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._parent = -1

    def discard(self) -> None:
        self._discarded.set()
        with contextlib.suppress(OSError):
            os.unlink(self._temp, dir_fd=self._parent)


def _error(shown: str, key: str, exc: OSError) -> RemoteStoreError:
    """The failure of an operating-system call in the store's directory, with the hint its
    error number calls for (permissions, a read-only mount, a full disk)."""
    reason = exc.strerror or str(exc)
    return RemoteStoreError(f"remote store {shown}: {key}: {reason}", from_os_error(exc).hint)
