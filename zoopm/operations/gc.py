"""gc: the store keeps every blob some registered project's zoo.lock pins, and nothing else.

Run under the store's exclusive lock (Project.gc): every install and lock holds it shared from
before its first download until its zoo.lock is registered, so no blob a running zoopm needs
can look unneeded here. Nothing outside the store is ever removed, and nothing in it is
followed as a symlink: a link planted at a blob's name is removed as a link.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from zoopm.errors import StoreError, ZoopmError
from zoopm.formats.lockfile import read_lock
from zoopm.reporting import Reporter
from zoopm.storage.linknotes import forget_notes
from zoopm.storage.store import Registered, Store

# Quarantined blobs are kept this long for inspection; downloads kept for resuming, this long
# since their last byte. gc is the user's "free space" command, so it keeps them a day, not
# the week every download's own sweep keeps them.
KEEP_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class Forgotten:
    """A register entry gc drops, and why: its project's zoo.lock is gone, or it is not an
    entry zoopm wrote (a symlink, garbage, a path that is not a zoo.lock)."""

    entry: Path
    lock_path: Path | None
    reason: str


@dataclass(frozen=True)
class GcResult:
    """What gc removed from the store (or, in a dry run, would remove) and what it kept."""

    dry_run: bool
    projects: tuple[Path, ...]  # the zoo.lock files whose blobs are kept
    forgotten: tuple[Forgotten, ...]
    kept_blobs: int
    removed_blobs: tuple[str, ...]  # sha256 of each blob removed (or that would be)
    removed_bytes: int
    # Removed blobs that are still hard-linked elsewhere (a models directory): their bytes
    # stay on disk until those files go.
    linked_bytes: int
    aliases: int
    quarantined: int
    quarantined_bytes: int
    partials: int | None  # None in a dry run: what the partial sweep would take is not counted
    partial_bytes: int

    @property
    def freed_bytes(self) -> int:
        """Disk space given back (or that would be)."""
        blobs = self.removed_bytes - self.linked_bytes
        return blobs + self.quarantined_bytes + self.partial_bytes


def collect(
    store: Store, reporter: Reporter, *, dry_run: bool, now: float | None = None
) -> GcResult:
    """Forgets projects without a zoo.lock, then removes what no remaining lock pins.

    Refuses (StoreError, nothing removed) if a registered zoo.lock exists but cannot be read
    as a lock: gc cannot tell what that project needs.
    """
    now = time.time() if now is None else now
    store.refuse_links()
    projects: list[Path] = []
    forgotten: list[Forgotten] = []
    needed: set[str] = set()
    for entry in store.registered_projects():
        kept = _needed_by(entry)
        if isinstance(kept, Forgotten):
            forgotten.append(kept)
            if entry.problem is not None:
                reporter.warning(f"{entry.entry}: {entry.problem}; not a project entry zoopm wrote")
            continue
        assert entry.lock_path is not None
        projects.append(entry.lock_path)
        needed |= kept
    blobs = store.blobs()
    going = [blob for blob in blobs if blob.sha256 not in needed]
    removed_bytes = sum(blob.info.st_size for blob in going if blob.is_file)
    linked_bytes = sum(
        blob.info.st_size for blob in going if blob.is_file and blob.info.st_nlink > 1
    )
    names = {blob.sha256 for blob in going}
    aliases = store.stale_aliases(names)
    old = [item for item in store.quarantined() if now - item.since > KEEP_SECONDS]
    partials: int | None = None
    partial_bytes = 0
    if not dry_run:
        store.remove_blobs(names)
        forget_notes(store.root, names)
        store.remove_aliases(aliases)
        for item in old:
            store.remove_quarantined(item)
        partials, partial_bytes = store.clean_partials(KEEP_SECONDS)
        for gone in forgotten:
            store.forget_project(Registered(gone.entry, gone.lock_path))
    return GcResult(
        dry_run,
        tuple(projects),
        tuple(forgotten),
        len(blobs) - len(going),
        tuple(sorted(names)),
        removed_bytes,
        linked_bytes,
        len(aliases),
        len(old),
        sum(item.size for item in old),
        partials,
        partial_bytes,
    )


def _needed_by(entry: Registered) -> set[str] | Forgotten:
    """The blobs entry's zoo.lock pins, or why the entry is forgotten."""
    if entry.lock_path is None:
        return Forgotten(entry.entry, None, entry.problem or "not an entry zoopm wrote")
    path = entry.lock_path
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return Forgotten(entry.entry, path, "its zoo.lock is gone")
    except OSError as exc:
        raise _unreadable(entry, f"cannot be looked at: {exc.strerror or exc}") from None
    try:
        lock = read_lock(path)
    except ZoopmError as error:
        raise _unreadable(entry, error.message.split(": ", 1)[-1]) from None
    if lock is None:
        return Forgotten(entry.entry, path, "its zoo.lock is gone")
    return {file.sha256 for model in lock.models for file in model.files}


def _unreadable(entry: Registered, why: str) -> StoreError:
    path = entry.lock_path
    project = path.parent if path is not None else entry.entry
    return StoreError(
        f"gc: {path} cannot be read as a lock ({why}); gc removes nothing while it cannot tell "
        "what that project needs",
        hint=f"fix it (run 'zoopm lock' in {project}), or make gc forget that project: "
        f"rm {entry.entry}",
    )
