"""What every remote store backend does: say an object's size, stream it, upload one whole."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from zoopm.network.net import Sink
    from zoopm.reporting import Progress


class RemoteMissing(Exception):
    """The remote store has no object under the key asked for."""


class Upload(Protocol):
    """One object being written: nobody sees it until commit, and discard leaves nothing.

    write, commit and close are called by the thread that uploads; discard by any thread (a
    Ctrl-C while that thread is busy), after which write and commit fail and nothing appears.
    """

    def write(self, chunk: bytes) -> None: ...

    def commit(self) -> None: ...

    def discard(self) -> None: ...

    def close(self) -> None: ...


class Backend(Protocol):
    """A remote store's objects by key (sha256/ab/abcdef…); every failure is a ZoopmError."""

    def size(self, key: str) -> int | None:
        """The object's size in bytes, or None when there is no object under key."""
        ...

    def read(self, key: str, sink: Sink, progress: Progress, size: int | None) -> None:
        """Streams the object into sink; RemoteMissing when there is none. size is what the
        object must hold: a backend that learns the object's size first refuses another."""
        ...

    def upload(self, key: str) -> Upload: ...
