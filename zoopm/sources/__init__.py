"""Sources: turning a declared model (gist, repository or local directory) into pinned files."""

from __future__ import annotations

from typing import Protocol

from zoopm.digest import Digest
from zoopm.storage.store import Expected


class BinaryFetcher(Protocol):
    """Gets a model binary into the store while locking, and says what it hashed to."""

    def fetch_binary(self, url: str, sha1: str | None, label: str) -> Digest: ...

    def from_remote_store(self, expected: Expected, label: str) -> bool:
        """Whether the blob expected names is now in the store, fetched from the shared remote
        store and proven by its hashes; False with no remote store or when it lacks it."""
        ...
