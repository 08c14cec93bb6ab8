"""A read-only remote store on a static web server (http(s):// URL), fetched like any URL."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from zoopm.errors import NetworkError, RemoteStoreError
from zoopm.remote_store.backend import RemoteMissing, Upload

if TYPE_CHECKING:
    from zoopm.network.net import HttpClient, Sink
    from zoopm.reporting import Progress

# What a static server answers for a blob it does not have.
_MISSING = (403, 404, 410)


class WebBackend:
    """GET base/key; a push to it is refused before anything is sent."""

    def __init__(self, base: str, client: Callable[[], HttpClient]) -> None:
        self._base = base
        self._client = client

    def size(self, key: str) -> int | None:
        raise self._read_only()

    def read(self, key: str, sink: Sink, progress: Progress, size: int | None) -> None:
        try:
            self._client().download(f"{self._base}/{key}", sink, progress)
        except NetworkError as exc:
            if exc.status in _MISSING:
                raise RemoteMissing(key) from None
            raise RemoteStoreError(f"remote store {self._base}: {exc.message}") from None

    def upload(self, key: str) -> Upload:
        raise self._read_only()

    def _read_only(self) -> RemoteStoreError:
        return RemoteStoreError(
            f"remote store {self._base}: an http(s) remote store is read-only",
            hint="push to the bucket or directory the web server serves (s3://…, file://…); "
            "docs/remote-store.md",
        )
