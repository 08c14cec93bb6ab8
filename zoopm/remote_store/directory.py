"""A remote store in a directory (file:// URL: a network share, a mounted bucket); no extra."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from zoopm.atomic import fsync_dir
from zoopm.digest import CHUNK_SIZE
from zoopm.errors import IntegrityError, RemoteStoreError
from zoopm.remote_store.backend import RemoteMissing
from zoopm.tasks import CancelToken

if TYPE_CHECKING:
    from zoopm.network.net import Sink
    from zoopm.reporting import Progress

_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class DirectoryBackend:
    """Objects as files below root, each written beside its place and renamed into it."""

    def __init__(self, root: Path, shown: str, token: CancelToken) -> None:
        self._root = root
        self._shown = shown
        self._token = token

    def _error(self, key: str, exc: OSError) -> RemoteStoreError:
        return _error(self._shown, key, exc)

    def size(self, key: str) -> int | None:
        try:
            info = os.lstat(self._root / key)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._error(key, exc) from None
        # Anything but a regular file (a link, a FIFO) is no object; an upload replaces it.
        return info.st_size if stat.S_ISREG(info.st_mode) else None

    def read(self, key: str, sink: Sink, progress: Progress, size: int | None) -> None:
        try:
            fd = os.open(self._root / key, _READ_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
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
        target = self._root / key
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._error(key, exc) from None
        return _DirectoryUpload(target, self._shown, key)

    def close(self) -> None:
        pass


class _DirectoryUpload:
    """A temp file beside the target; renamed over it on commit, removed on discard.

    discard may come from another thread (a Ctrl-C while the uploading thread is busy): it
    only removes the temp file's name, so the upload's own thread finds it gone and stops,
    and its descriptor is closed by that thread alone (never reused under its feet).
    """

    def __init__(self, target: Path, shown: str, key: str) -> None:
        self._target = target
        self._shown = shown
        self._key = key
        self._temp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
        self._discarded = threading.Event()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        try:
            self._fd = os.open(self._temp, flags, 0o644)
        except OSError as exc:
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
            os.replace(self._temp, self._target)
        except OSError as exc:
            self.close()
            self.discard()
            raise self._fail(exc) from None
        except BaseException:
            self.close()
            raise
        self.close()
        fsync_dir(self._target.parent)

    def close(self) -> None:
        """Closes the descriptor; only the thread that writes calls this."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1

    def discard(self) -> None:
        self._discarded.set()
        with contextlib.suppress(OSError):
            os.unlink(self._temp)


def _error(shown: str, key: str, exc: OSError) -> RemoteStoreError:
    reason = exc.strerror or str(exc)
    return RemoteStoreError(f"remote store {shown}: {key}: {reason}")
