"""push: the blobs a project's zoo.lock pins (or the whole local store) into the shared remote
store, those it lacks only; in parallel, safe to run again and to interrupt."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from zoopm.errors import StoreError
from zoopm.formats.lockfile import Lock
from zoopm.remote_store.client import RemoteStore
from zoopm.reporting import Reporter, detail
from zoopm.storage.store import Store
from zoopm.tasks import CancelToken, run_tasks


@dataclass(frozen=True)
class Wanted:
    """One blob to be in the remote store: its name, size and what to call it in messages."""

    sha256: str
    size: int
    label: str
    # Its Caffe sha1, when known: its alias goes along, so that `lock` elsewhere finds it.
    sha1: str | None = None


@dataclass(frozen=True)
class PushResult:
    """What push uploaded, and what the remote store held already."""

    remote: str
    everything: bool  # --all: the whole local store, not one project's zoo.lock
    uploaded: tuple[Wanted, ...]
    present: tuple[Wanted, ...]

    @property
    def uploaded_bytes(self) -> int:
        return sum(blob.size for blob in self.uploaded)

    @property
    def present_bytes(self) -> int:
        return sum(blob.size for blob in self.present)


def locked_blobs(lock: Lock, store: Store) -> list[Wanted]:
    """Every blob lock pins, once each."""
    wanted: dict[str, Wanted] = {}
    for model in lock.models:
        for file in model.files:
            wanted.setdefault(
                file.sha256,
                Wanted(file.sha256, file.size, f"{model.name}/{file.path}", file.sha1),
            )
    return sorted(wanted.values(), key=lambda blob: blob.sha256)


def stored_blobs(store: Store) -> list[Wanted]:
    """Every blob in the local store (regular files under a blob's name)."""
    aliases = store.aliases()
    return [
        Wanted(blob.sha256, blob.info.st_size, blob.sha256[:12], aliases.get(blob.sha256))
        for blob in store.blobs()
        if blob.is_file
    ]


def push_blobs(
    blobs: Sequence[Wanted],
    *,
    remote: RemoteStore,
    store: Store,
    everything: bool,
    jobs: int,
    token: CancelToken,
    reporter: Reporter,
) -> PushResult:
    """Uploads each blob the remote store lacks, jobs at once, once every local copy is proven:
    a StoreError naming those the local store lacks, or that changed there, sends nothing."""
    _prove(blobs, store, everything=everything)
    remote.backend()  # a missing backend or a read-only remote is said once, before any task
    try:
        results = run_tasks(
            [functools.partial(_push_one, blob, remote, store, reporter) for blob in blobs],
            jobs,
            token,
        )
    except BaseException:
        # A Ctrl-C (or a failed sibling) ends the run soon, maybe while a thread is still
        # inside a slow write: its upload is thrown away here, not left half-sent.
        remote.discard_uploads()
        raise
    uploaded = tuple(blob for blob, sent in zip(blobs, results, strict=True) if sent)
    present = tuple(blob for blob, sent in zip(blobs, results, strict=True) if not sent)
    return PushResult(remote.url, everything, uploaded, present)


def _prove(blobs: Sequence[Wanted], store: Store, *, everything: bool) -> None:
    """One stat for an untouched blob; one that shows a sign of change is hashed (and moved to
    quarantine if wrong): a changed file is never pushed under the blob's name."""
    missing = [blob for blob in blobs if store.prove(blob.sha256, blob.size) is None]
    if not missing:
        return
    listed = ", ".join(blob.label for blob in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    what = (
        "blob(s) of the local store were changed there"
        if everything
        else "file(s) zoo.lock pins are not in the local store, or were changed there"
    )
    raise StoreError(
        f"{len(missing)} {what}: {listed}{more}",
        hint="run 'zoopm install' (it fetches them again), then push",
    )


def _push_one(blob: Wanted, remote: RemoteStore, store: Store, reporter: Reporter) -> bool:
    # Proven before any task started; push hashes the bytes again as it sends them.
    sent = remote.push(store.blob_path(blob.sha256), blob.sha256, blob.size, blob.label)
    if blob.sha1 is not None:
        remote.push_alias(blob.sha1, blob.sha256)
    if sent:
        detail(reporter, f"{blob.label}: uploaded ({blob.size:,} bytes)")
    return sent
