"""RemoteStore: blobs fetched from the shared remote store into the local one, every byte
proven by the hash zoo.lock pins, and blobs pushed to it whole or not at all."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from zoopm.digest import CHUNK_SIZE, Digest
from zoopm.errors import (
    Cancelled,
    IntegrityError,
    RemoteStoreError,
    from_os_error,
)
from zoopm.remote_store.backend import Backend, RemoteMissing, Upload
from zoopm.remote_store.location import RemoteLocation, alias_key, blob_key
from zoopm.reporting import NullProgress, detail
from zoopm.storage.store import MAX_ALIAS, Expected, alias_target
from zoopm.tasks import CancelToken

if TYPE_CHECKING:
    from zoopm.network.net import HttpClient
    from zoopm.reporting import Reporter
    from zoopm.storage.store import Store


def open_backend(
    location: RemoteLocation,
    http: Callable[[], HttpClient],
    token: CancelToken,
    read_timeout: float,
) -> Backend:
    """The backend for location's scheme: a directory, a static web server, or fsspec's."""
    if location.scheme == "file":
        from zoopm.remote_store.directory import DirectoryBackend

        return DirectoryBackend(Path(location.directory), location.url, token)
    if not location.writable:
        from zoopm.remote_store.web import WebBackend

        return WebBackend(location.url, http)
    from zoopm.remote_store.objects import open_objects

    return open_objects(location, token, read_timeout)


class RemoteStore:
    """The remote store as install and push use it; the backend is opened on first use."""

    def __init__(
        self,
        location: RemoteLocation,
        backend: Callable[[], Backend],
        reporter: Reporter,
        token: CancelToken,
    ) -> None:
        self.location = location
        self._open = backend
        self._backend: Backend | None = None
        self._open_failed: RemoteStoreError | None = None
        self._opening = threading.Lock()
        self._reporter = reporter
        self._token = token
        # Set once a request fails for a reason other than a missing blob: the rest of the
        # run goes to the origin at once instead of failing the same way once per blob.
        self._broken = False
        # Uploads in progress, so that an interrupted push can throw them away itself.
        self._uploads: set[Upload] = set()
        self._closed = False

    @property
    def url(self) -> str:
        return self.location.url

    def backend(self) -> Backend:
        """The backend, opened once; a failure to open it is raised again, not retried."""
        with self._opening:
            if self._open_failed is not None:
                raise self._open_failed
            if self._backend is None:
                try:
                    self._backend = self._open()
                except RemoteStoreError as exc:
                    self._open_failed = exc
                    raise
            return self._backend

    def fetch(self, store: Store, expected: Expected, label: str) -> Digest | str:
        """The blob expected.sha256 names, from the remote store into store and proven by its
        hashes; otherwise why not ("has no copy", "has a wrong copy", "failed: …"), said in a
        line, and the caller goes on to the origin. Only a Ctrl-C, a backend that is not
        installed or a failure of the local store raises."""
        assert expected.sha256 is not None
        where = f"remote store {self.url}"
        backend = self._reader(label)
        if isinstance(backend, str):
            return backend
        try:
            progress = self._reporter.transfer(f"downloading {label}", expected.size)
            try:
                with store.writer(expected, f"{label} from the {where}") as writer:
                    backend.read(blob_key(expected.sha256), writer, progress, expected.size)
                    digest = writer.commit().digest
            finally:
                progress.close()
        except RemoteMissing:
            detail(self._reporter, f"{label}: not in the {where}")
            return f"the {where} has no copy"
        except IntegrityError as exc:
            # A wrong copy is skipped, never trusted: the origin is asked instead.
            self._reporter.warning(f"{exc.message}; skipped, fetching from the origin")
            return f"the {where} has a wrong copy"
        except RemoteStoreError as exc:
            return self._failed(exc, label)
        detail(self._reporter, f"{label}: from the {where}")
        return digest

    def _reader(self, label: str) -> Backend | str:
        """The backend to read from, or why the remote store is not asked (it failed earlier
        in this run, or cannot be opened). A package to install stops the run: said once."""
        if self._broken:
            return f"the remote store {self.url} failed earlier in this run"
        try:
            return self.backend()
        except RemoteStoreError as exc:
            if exc.needs_install:
                raise
            return self._failed(exc, label)

    def _failed(self, exc: RemoteStoreError, label: str) -> str:
        """Marks the remote store as failing for the rest of the run, said once."""
        with self._opening:
            first, self._broken = not self._broken, True
        message = exc.message
        if first:  # parallel fetches that failed the same way say nothing more
            self._reporter.warning(
                f"{message}; the remote store is not asked again in this run, "
                "fetching from the origin"
            )
        else:
            detail(self._reporter, f"{label}: {message}")
        return f"the remote store {self.url} failed ({message})"

    def fetch_by_sha1(self, store: Store, sha1: str, label: str) -> Digest | str:
        """The blob whose Caffe sha1 is sha1, found through the remote store's alias and
        proven by both hashes (the alias only says which sha256 to ask for); otherwise why not,
        as fetch says it."""
        where = f"remote store {self.url}"
        backend = self._reader(label)
        if isinstance(backend, str):
            return backend
        small = _SmallSink(MAX_ALIAS)
        try:
            backend.read(alias_key(sha1), small, NullProgress(), None)
        except RemoteMissing:
            detail(self._reporter, f"{label}: sha1 {sha1} is not in the {where}")
            return f"the {where} has no copy"
        except IntegrityError as exc:
            self._reporter.warning(f"{where}: sha1 alias {sha1}: {exc.message}; skipped")
            return f"the {where} has a wrong alias"
        except RemoteStoreError as exc:
            return self._failed(exc, label)
        sha256 = alias_target(bytes(small.data))
        if sha256 is None:
            self._reporter.warning(f"{where}: sha1 alias {sha1} names no sha256; skipped")
            return f"the {where} has a wrong alias"
        return self.fetch(store, Expected(sha1=sha1, sha256=sha256), label)

    def push_alias(self, sha1: str, sha256: str) -> None:
        """Puts sha1's alias (the sha256, as the local store keeps it) unless it is there."""
        backend = self.backend()
        key = alias_key(sha1)
        data = sha256.encode()
        if backend.size(key) == len(data):
            return
        with self._upload(backend, key) as upload:
            upload.write(data)
            upload.commit()

    def push(self, path: Path, sha256: str, size: int, label: str) -> bool:
        """Uploads the local blob at path unless the remote holds an object of its size under
        its name; True when it was uploaded. The bytes are hashed as they are sent and the
        upload is committed only when they are the blob's: a changed local file never
        reaches the remote."""
        backend = self.backend()
        key = blob_key(sha256)
        if backend.size(key) == size:
            return False
        self._token.check()
        hasher = hashlib.sha256()
        sent = 0
        progress = self._reporter.transfer(f"uploading {label}", size)
        try:
            with self._upload(backend, key) as upload, path.open("rb") as stream:
                while chunk := stream.read(CHUNK_SIZE):
                    self._token.check()
                    hasher.update(chunk)
                    sent += len(chunk)
                    upload.write(chunk)
                    progress.advance(len(chunk))
                if hasher.hexdigest() != sha256 or sent != size:
                    raise IntegrityError(
                        f"{label}: the local store's blob {sha256} changed while it was pushed",
                        hint="run 'zoopm verify --store', then push again",
                    )
                upload.commit()
        except OSError as exc:
            raise from_os_error(exc, path) from None
        finally:
            progress.close()
        return True

    @contextlib.contextmanager
    def _upload(self, backend: Backend, key: str) -> Iterator[Upload]:
        """A new upload, thrown away unless the body commits it. discard_uploads knows it
        from the moment it exists (it is made under the lock that takes), and none is made
        once that has run."""
        with self._opening:
            if self._closed:
                raise Cancelled("stopped: the run is ending")
            upload = backend.upload(key)
            self._uploads.add(upload)
        try:
            yield upload
        except BaseException:
            upload.discard()
            raise
        finally:
            upload.close()
            with self._opening:
                self._uploads.discard(upload)

    def discard_uploads(self) -> None:
        """Throws away every upload still open (their threads may be busy in a slow write),
        and refuses new ones: what a Ctrl-C calls before the process ends."""
        with self._opening:
            self._closed = True
            uploads = list(self._uploads)
        for upload in uploads:
            upload.discard()


class _SmallSink:
    """Collects a small object in memory, refusing more than its limit."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self.data = bytearray()

    @property
    def written(self) -> int:
        return len(self.data)

    def write(self, chunk: bytes) -> None:
        if len(self.data) + len(chunk) > self._limit:
            raise IntegrityError(f"more than {self._limit} bytes; no alias is that large")
        self.data += chunk

    def reset(self) -> None:
        self.data.clear()
