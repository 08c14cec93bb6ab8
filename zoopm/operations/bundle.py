"""Bundles: a locked project and its blobs written into one file, and read back with no network.

Writing reads each blob from the store, hashing it as it streams into the bundle, so a blob
that rotted on disk is never bundled: it is quarantined, fetched again, and the bundle written
again once. Reading verifies each blob through the store's own writer (size, SHA-256 and the
SHA-1 zoo.lock pins) before it is stored; nothing else is written until every blob is in.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from zoopm.atomic import READ_NO_FOLLOW, fsync_dir
from zoopm.digest import CHUNK_SIZE, Hasher
from zoopm.errors import (
    BundleError,
    IntegrityError,
    ProjectError,
    UsageError,
    from_os_error,
)
from zoopm.formats.bundle import (
    BundleBlob,
    BundleHead,
    read_bundle,
    write_bundle,
)
from zoopm.formats.lockfile import LOCK_NAME, Lock, LockedFile, parse_lock
from zoopm.formats.manifest import Manifest, parse_manifest
from zoopm.network.fetch import Fetcher
from zoopm.operations.changes import manifest_changes
from zoopm.operations.install import FileAction, InstallResult, fetch_missing
from zoopm.reporting import Reporter
from zoopm.storage.locks import host_tag, pid_alive
from zoopm.storage.store import Expected, Store
from zoopm.tasks import CancelToken

# Not named after FILE: a name of 240 bytes, valid itself, would overflow once decorated.
_TEMP = re.compile(r"\.zoopm-bundle-([0-9a-f]{8})-([0-9]{1,10})-[0-9a-f]+\.tmp")


@dataclass(frozen=True)
class BundleWritten:
    """A bundle written: where, and what it holds."""

    path: Path
    models: int
    blobs: int
    size: int  # bytes of the bundle file


@dataclass(frozen=True)
class BundleRead:
    """A bundle read into the store: its project files, parsed, and what entered the store."""

    head: BundleHead
    manifest: Manifest
    lock: Lock
    stored: int  # blobs the store gained
    present: int  # blobs the store held already (their bytes in the bundle were skipped)
    stored_bytes: int


@dataclass(frozen=True)
class BundleInstalled:
    """An install from a bundle: what the store gained, what was written, what was placed."""

    path: Path
    stored: int  # blobs the store gained
    present: int  # blobs the store held already
    stored_bytes: int
    wrote: tuple[str, ...]  # project files written from the bundle (zoo.toml, zoo.lock)
    install: InstallResult


def needed(lock: Lock) -> dict[str, LockedFile]:
    """Every blob lock pins (sha256 → the first file pinning it)."""
    blobs: dict[str, LockedFile] = {}
    for model in lock.models:
        for file in model.files:
            blobs.setdefault(file.sha256, file)
    return blobs


def fill_store(
    lock: Lock,
    *,
    store: Store,
    fetcher: Fetcher,
    project_root: Path,
    jobs: int,
    offline: bool,
    token: CancelToken,
) -> None:
    """Makes the store hold every blob lock pins, as install would fetch them.

    A stat decides what is there (store.has): every blob is hashed as it streams into the
    bundle anyway, and one that does not match is fetched again then; proving each here too
    read every byte twice."""
    missing: dict[str, FileAction] = {}
    for model in lock.models:
        for file in model.files:
            if file.sha256 in missing or store.has(file.sha256, file.size):
                continue
            missing[file.sha256] = FileAction(model, file, project_root / model.name / file.path)
    fetch_missing(
        tuple(missing.values()),
        store=store,
        fetcher=fetcher,
        project_root=project_root,
        jobs=jobs,
        offline=offline,
        token=token,
    )


class _Rotten(Exception):
    """A store blob did not hash to what zoo.lock pins while it was being bundled."""

    def __init__(self, file: LockedFile, problem: str) -> None:
        super().__init__(problem)
        self.file = file
        self.problem = problem


def write_bundle_file(
    target: Path,
    zoo_toml: bytes,
    zoo_lock: bytes,
    lock: Lock,
    *,
    store: Store,
    refill: Callable[[], None],
    force: bool,
    reporter: Reporter,
    token: CancelToken,
) -> BundleWritten:
    """Writes the bundle to a temp file beside target, then renames it into place.

    refill() makes the store hold every blob again (after a rotten one was quarantined).
    Without force an existing target is refused, also one that appears while writing.
    """
    check_target(target, force=force)
    blobs = needed(lock)
    head = BundleHead(
        tuple(BundleBlob(sha256, file.size) for sha256, file in sorted(blobs.items())),
        zoo_toml,
        zoo_lock,
    )
    _sweep_temps(target)
    for attempt in (1, 2):
        try:
            size = _write_once(
                target, head, blobs, store=store, force=force, reporter=reporter, token=token
            )
            break
        except _Rotten as rotten:
            if attempt == 2:
                raise IntegrityError(
                    f"{store.blob_path(rotten.file.sha256)}: {rotten.problem}, again after "
                    "fetching it anew; no bundle was written",
                    hint="check the disk ('zoopm verify --store' re-hashes every blob)",
                ) from None
            reporter.warning(
                f"{store.blob_path(rotten.file.sha256)}: {rotten.problem}; moved to the "
                "quarantine, fetching it again"
            )
            refill()
    return BundleWritten(target, len(lock.models), len(blobs), size)


def check_target(target: Path, *, force: bool) -> None:
    """Refuses a target that is a directory, or that exists when force is not given."""
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        if not target.parent.is_dir():
            raise UsageError(
                f"{target}: the directory {target.parent} does not exist",
                hint="create it first, or name a file in an existing directory",
            ) from None
        return
    except OSError as exc:
        raise from_os_error(exc, target) from None
    if stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{target}: is a directory", hint="name the bundle file to write")
    if not force:
        raise UsageError(
            f"{target}: already exists",
            hint="add --force to replace it, or name another file",
        )


def _write_once(
    target: Path,
    head: BundleHead,
    blobs: dict[str, LockedFile],
    *,
    store: Store,
    force: bool,
    reporter: Reporter,
    token: CancelToken,
) -> int:
    progress = reporter.transfer(f"writing {target.name}", head.size)

    def contents(blob: BundleBlob) -> Iterator[bytes]:
        file = blobs[blob.sha256]
        path = store.blob_path(blob.sha256)
        try:
            fd = os.open(path, READ_NO_FOLLOW)
        except OSError as exc:
            store.quarantine(path)
            raise _Rotten(file, f"cannot be read ({exc.strerror or exc})") from None
        with os.fdopen(fd, "rb") as stream:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size != file.size:
                store.quarantine(path)
                raise _Rotten(file, f"is not the {file.size}-byte file zoo.lock pins")
            hasher = Hasher(parallel=True)
            try:
                while chunk := stream.read(CHUNK_SIZE):
                    token.check()
                    hasher.update(chunk)
                    progress.advance(len(chunk))
                    yield chunk
                digest = hasher.digest()
            finally:
                hasher.close()
        if (digest.size, digest.sha256, digest.sha1) != (file.size, file.sha256, file.sha1):
            store.quarantine(path)
            raise _Rotten(file, "does not hash to what zoo.lock pins")

    temp, fd = _create_temp(target)
    try:
        with os.fdopen(fd, "wb", buffering=CHUNK_SIZE) as out:
            size = write_bundle(out, head, contents)
            out.flush()
            os.fsync(out.fileno())
        _publish(temp, target, force=force)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    finally:
        progress.close()
    fsync_dir(target.parent)
    return size


def _create_temp(target: Path) -> tuple[Path, int]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        name = f".zoopm-bundle-{host_tag()}-{os.getpid()}-{os.urandom(4).hex()}.tmp"
        temp = target.parent / name
        try:
            return temp, os.open(temp, flags, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise from_os_error(exc, target.parent) from None


def _publish(temp: Path, target: Path, *, force: bool) -> None:
    """Renames temp to target. Without force never over a file that appeared meanwhile: a
    hard link fails rather than replace (where the file system has none, the rename follows a
    last look). With force a file or symlink there is replaced, never written through."""
    try:
        if force:
            os.replace(temp, target)
            return
        try:
            os.link(temp, target, follow_symlinks=False)
        except FileExistsError:
            raise UsageError(
                f"{target}: appeared while the bundle was written; it was left alone",
                hint="add --force to replace it, or name another file",
            ) from None
        except OSError:
            if os.path.lexists(target):
                raise UsageError(
                    f"{target}: appeared while the bundle was written; it was left alone",
                    hint="add --force to replace it, or name another file",
                ) from None
            os.replace(temp, target)
            return
        temp.unlink()
    except OSError as exc:
        raise from_os_error(exc, target) from None


def _sweep_temps(target: Path) -> None:
    """Removes temp files a killed bundle run of this host left beside target."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(target.parent):
            match = _TEMP.fullmatch(entry.name)
            if (
                match
                and match.group(1) == host_tag()
                and not pid_alive(int(match.group(2)))
                and entry.is_file(follow_symlinks=False)
            ):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


# --- reading ----------------------------------------------------------------------------------


def read_bundle_file(
    path: Path,
    *,
    store: Store,
    judge: Callable[[Manifest, Lock], None],
    reporter: Reporter,
    token: CancelToken,
) -> BundleRead:
    """Reads the bundle at path: its zoo.toml and zoo.lock must agree and pin exactly the blobs
    it lists; judge(manifest, lock) then decides whether they suit the project. Every blob
    the store lacks is stored, verified; nothing else is written."""
    label = str(path)
    stream = _open_bundle(path)
    parsed: list[tuple[Manifest, Lock]] = []
    counts = {"stored": 0, "present": 0, "bytes": 0}
    sha1s: dict[str, str] = {}

    def judge_head(head: BundleHead) -> None:
        manifest, lock = _parse_head(head, path)
        for model in lock.models:
            for file in model.files:
                if sha1s.setdefault(file.sha256, file.sha1) != file.sha1:
                    raise BundleError(
                        f"{label}: zoo.lock pins blob {file.sha256} with two sha1s; "
                        "nothing was installed"
                    )
        _check_blobs(head, lock, label)
        judge(manifest, lock)
        parsed.append((manifest, lock))

    def take(blob: BundleBlob, chunks: Iterator[bytes]) -> None:
        sha1 = sha1s[blob.sha256]
        try:
            if store.prove(blob.sha256, blob.size, sha1) is not None:
                for chunk in chunks:
                    token.check()
                    progress.advance(len(chunk))
                counts["present"] += 1
                return
            with store.writer(Expected(blob.size, sha1, blob.sha256), blob.entry) as writer:
                for chunk in chunks:
                    token.check()
                    writer.write(chunk)
                    progress.advance(len(chunk))
                writer.commit()
        except IntegrityError as exc:
            raise BundleError(f"{label}: {exc.message}; nothing was installed") from None
        counts["stored"] += 1
        counts["bytes"] += blob.size

    with stream:
        progress = reporter.transfer(f"reading {path.name}", os.fstat(stream.fileno()).st_size)
        try:
            head = read_bundle(stream, label, judge=judge_head, take=take)
        finally:
            progress.close()
    manifest, lock = parsed[0]
    return BundleRead(head, manifest, lock, counts["stored"], counts["present"], counts["bytes"])


def _open_bundle(path: Path) -> BinaryIO:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UsageError(
            f"{path}: no such file", hint="name the bundle 'zoopm bundle' wrote"
        ) from None
    except OSError as exc:
        raise from_os_error(exc, path) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UsageError(f"{path}: not a regular file", hint="name the bundle 'zoopm bundle' wrote")
    return os.fdopen(fd, "rb", buffering=CHUNK_SIZE)


def _parse_head(head: BundleHead, path: Path) -> tuple[Manifest, Lock]:
    label = str(path)
    try:
        manifest = parse_manifest(head.zoo_toml.decode("utf-8"), path / "zoo.toml")
        lock = parse_lock(head.zoo_lock.decode("utf-8"), f"{label}/{LOCK_NAME}")
    except UnicodeDecodeError:
        raise BundleError(f"{label}: zoo.toml or zoo.lock is not UTF-8 text") from None
    except ProjectError as exc:
        raise BundleError(f"{exc.message} (inside the bundle)") from None
    changes = manifest_changes(manifest, lock)
    if changes:
        raise BundleError(
            f"{label}: its zoo.lock does not match its zoo.toml ({', '.join(changes)}); "
            "nothing was installed",
            hint="run 'zoopm lock' in the project, then 'zoopm bundle' again",
        )
    return manifest, lock


def _check_blobs(head: BundleHead, lock: Lock, label: str) -> None:
    """The bundle must list exactly the blobs its zoo.lock pins, each with the pinned size."""
    listed = {blob.sha256: blob.size for blob in head.blobs}
    for model in lock.models:
        for file in model.files:
            size = listed.get(file.sha256)
            if size is None:
                raise BundleError(
                    f"{label}: lacks {model.name}/{file.path} (sha256 {file.sha256}), which its "
                    "zoo.lock pins; nothing was installed"
                )
            if size != file.size:
                raise BundleError(
                    f"{label}: lists blob {file.sha256} as {size} bytes; zoo.lock pins "
                    f"{model.name}/{file.path} at {file.size}; nothing was installed"
                )
    extra = sorted(set(listed) - set(needed(lock)))
    if extra:
        raise BundleError(
            f"{label}: lists blob {extra[0]}, which its zoo.lock does not pin; "
            "nothing was installed"
        )
