"""A remote store on object storage through fsspec (s3://, gs://, az://, …): the only module
that imports fsspec, and only once a remote store is configured.

Credentials and endpoints are the backend's own (for S3: the AWS environment and config
files, AWS_ENDPOINT_URL included); zoopm passes none and prints none.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from zoopm.digest import CHUNK_SIZE
from zoopm.errors import Cancelled, IntegrityError, RemoteStoreError, ZoopmError
from zoopm.remote_store.backend import RemoteMissing
from zoopm.tasks import CancelToken

if TYPE_CHECKING:
    from zoopm.network.net import Sink
    from zoopm.remote_store.location import RemoteLocation
    from zoopm.reporting import Progress

_CONNECT_TIMEOUT = 5.0
# Seconds an S3 request may go without a byte: a silent endpoint costs at most two of them.
_S3_READ_TIMEOUT = 20.0
EXTRA_HINT = "install the extra: pip install 'zoopm[remote]' (fsspec and s3fs)"
# The fsspec package each protocol needs beyond fsspec itself, for the hint.
_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs"}
_PACKAGES |= {"abfs": "adlfs", "abfss": "adlfs"}
# Bytes asked of the server at once when reading: fewer, larger requests are much faster on
# S3 (and moto); each job holds at most about two such blocks in memory.
_READ_BLOCK = 16 * CHUNK_SIZE
# Parts of a multipart upload: S3 wants at least 5 MiB in each but the last.
_WRITE_BLOCK = 8 * CHUNK_SIZE


def open_objects(location: RemoteLocation, token: CancelToken, read_timeout: float) -> Objects:
    """The fsspec file system for location; a clear error when fsspec or its backend is not
    installed, naming what to install."""
    try:
        import fsspec
    except ImportError:
        raise _not_installed(
            f"remote store {location.url} ({location.origin}) needs fsspec, which is not installed",
            EXTRA_HINT,
        ) from None
    options: dict[str, Any] = {"skip_instance_cache": True}
    if location.scheme in ("s3", "s3a"):
        # Fail over to the origin soon when the endpoint is down or silent, instead of after
        # botocore's attempts times s3fs's own retries times a minute each.
        options["config_kwargs"] = {
            "connect_timeout": _CONNECT_TIMEOUT,
            "read_timeout": min(read_timeout, _S3_READ_TIMEOUT),
            # Attempts in all, the first included (botocore's max_attempts counts retries).
            "retries": {"total_max_attempts": 2},
        }
    try:
        # The URL as a whole: a protocol that needs a host or options from it gets them.
        fs, base = fsspec.core.url_to_fs(location.url, **options)
    except ImportError as exc:
        package = _PACKAGES.get(location.scheme)
        if package is None:
            # fsspec's own words name what to install ("Install paramiko to access SFTP").
            raise _not_installed(
                f"remote store {location.url} ({location.origin}) needs a package fsspec "
                f"uses for {location.scheme}://, which is not installed",
                _reason(exc),
            ) from None
        hint = EXTRA_HINT if package == "s3fs" else f"install {package} (pip install {package})"
        raise _not_installed(
            f"remote store {location.url} ({location.origin}) needs {package}, which is not "
            "installed",
            hint,
        ) from None
    except ValueError as exc:
        raise RemoteStoreError(
            f"remote store {location.url} ({location.origin}): {_reason(exc)}",
            hint=f"fsspec knows no protocol {location.scheme}://; use s3://, gs://, az:// …",
        ) from None
    except Exception as exc:  # a backend's own setup error, in one line
        raise RemoteStoreError(
            f"remote store {location.url} ({location.origin}): {_reason(exc)}"
        ) from None
    if location.scheme in ("s3", "s3a"):
        fs.retries = 1  # botocore retries already; s3fs would retry each of its attempts
    return Objects(fs, str(base), location, token)


def _not_installed(message: str, hint: str) -> RemoteStoreError:
    error = RemoteStoreError(message, hint)
    error.needs_install = True
    return error


class Objects:
    """Keys below the location's path in an fsspec file system."""

    def __init__(self, fs: Any, base: str, location: RemoteLocation, token: CancelToken) -> None:
        self._fs = fs
        self._base = base.rstrip("/")
        self._shown = location.url
        self._token = token

    def _path(self, key: str) -> str:
        return f"{self._base}/{key}"

    def _error(self, key: str, exc: BaseException) -> ZoopmError:
        if isinstance(exc, ZoopmError):
            return exc
        hint = None
        if isinstance(exc, PermissionError):
            hint = "the backend's credentials may not read or write there; check them"
        return RemoteStoreError(f"remote store {self._shown}: {key}: {_reason(exc)}", hint)

    def _missing(self, key: str, exc: FileNotFoundError) -> bool:
        """Whether exc says the object is not there, rather than the bucket (which is a
        failure to report: a typo in its name must not look like an empty store)."""
        path = self._path(key)
        return not exc.args or str(exc.args[0]).rstrip("/") in (path, key, f"/{path}")

    def size(self, key: str) -> int | None:
        try:
            info = self._fs.info(self._path(key))
        except FileNotFoundError as exc:
            if self._missing(key, exc):
                return None
            raise self._error(key, exc) from None
        except Exception as exc:  # any backend failure becomes one line
            raise self._error(key, exc) from None
        if info.get("type") != "file":
            return None
        return int(info.get("size") or 0)

    def read(self, key: str, sink: Sink, progress: Progress, size: int | None) -> None:
        try:
            stream = self._fs.open(self._path(key), "rb", block_size=_READ_BLOCK)
        except FileNotFoundError as exc:
            if self._missing(key, exc):
                raise RemoteMissing(key) from None
            raise self._error(key, exc) from None
        except IsADirectoryError:
            raise RemoteMissing(key) from None
        except Exception as exc:
            raise self._error(key, exc) from None
        try:
            found = getattr(stream, "size", None)
            if size is not None and isinstance(found, int) and found != size:
                raise IntegrityError(
                    f"remote store {self._shown}: {key} holds {found} bytes, zoo.lock pins {size}"
                )
            while chunk := stream.read(CHUNK_SIZE):
                self._token.check()
                sink.write(chunk)
                progress.advance(len(chunk))
        except (ZoopmError, Cancelled):
            raise
        except FileNotFoundError as exc:
            if self._missing(key, exc):
                raise RemoteMissing(key) from None
            raise self._error(key, exc) from None
        except Exception as exc:
            raise self._error(key, exc) from None
        finally:
            with contextlib.suppress(Exception):
                stream.close()

    def upload(self, key: str) -> _ObjectUpload:
        try:
            stream = self._fs.open(self._path(key), "wb", autocommit=False, block_size=_WRITE_BLOCK)
        except Exception as exc:
            raise self._error(key, exc) from None
        return _ObjectUpload(stream, key, self._error)


class _ObjectUpload:
    """An fsspec file opened without autocommit: the object appears on commit, whole.

    A lock keeps discard (from any thread) from running inside a write: discard waits for the
    part being sent, then aborts the upload, and later writes and the commit fail.
    """

    def __init__(self, stream: Any, key: str, error: Callable[[str, BaseException], ZoopmError]):
        self._stream = stream
        self._key = key
        self._error = error
        self._lock = threading.Lock()
        self._discarded = False

    def _check(self) -> None:
        if self._discarded:
            raise RemoteStoreError(f"{self._key}: upload stopped")

    def write(self, chunk: bytes) -> None:
        with self._lock:
            self._check()
            try:
                self._stream.write(chunk)
            except Exception as exc:
                raise self._error(self._key, exc) from None

    def commit(self) -> None:
        with self._lock:
            self._check()
            try:
                self._stream.close()
                self._stream.commit()
            except Exception as exc:
                failed = self._error(self._key, exc)
            else:
                return
        self.discard()
        raise failed

    def discard(self) -> None:
        with self._lock:
            if self._discarded:
                return
            self._discarded = True
            with contextlib.suppress(Exception):
                self._stream.discard()
            # Closed for good: fsspec's finaliser would otherwise flush the thrown-away buffer.
            with contextlib.suppress(Exception):
                self._stream.closed = True

    def close(self) -> None:
        pass


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
