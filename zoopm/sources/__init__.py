"""Sources: turning a declared model (gist, repository or local directory) into pinned files."""

from __future__ import annotations

from typing import Protocol

from zoopm.digest import Digest


class BinaryFetcher(Protocol):
    """Gets a model binary into the store while locking, and says what it hashed to."""

    def fetch_binary(self, url: str, sha1: str | None, label: str) -> Digest: ...
