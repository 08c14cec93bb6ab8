"""The content-addressed blob store shared by every project of a user; a blob is proven before use.

A published blob is read-only and stamped with a fixed mtime (as Nix stamps its store). Anything
that writes to it, through a hard link in some models directory or by hand, changes its mtime or
mode or size; such a blob is hashed again before it is linked again, and quarantined if wrong.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import queue
import re
import shutil
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from zoopm.atomic import (
    DIR_NO_FOLLOW,
    READ_NO_FOLLOW,
    TooLarge,
    atomic_write,
    fsync_dir,
    read_regular,
)
from zoopm.digest import (
    CHUNK_SIZE,
    PARALLEL_AFTER,
    Digest,
    Hasher,
    digest_stream,
    is_sha1_hex,
    is_sha256_hex,
)
from zoopm.errors import (
    Cancelled,
    IntegrityError,
    Interrupted,
    StoreError,
    ZoopmError,
    from_os_error,
)
from zoopm.storage.linknotes import write_note
from zoopm.storage.locks import hold_lock, host_tag, pid_alive
from zoopm.storage.partial import STALE_SECONDS, Partial, ResumeKey, clean_kept
from zoopm.tasks import CancelToken
from zoopm.trust import MAX_DOWNLOAD_BYTES

_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
STAMP_NS = 1_000_000_000  # every blob's mtime: one second after the epoch
_MAX_REGISTER_BYTES = 8192  # one path (PATH_MAX is 4096) and a newline
_PARTIAL = re.compile(r"blob-([0-9a-f]{8})-([0-9]{1,10})-.*\.part")


@dataclass(frozen=True)
class Expected:
    """What a blob must turn out to be; None means 'not known in advance'."""

    size: int | None = None
    sha1: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Blob:
    """A verified blob in the store."""

    path: Path
    digest: Digest


@dataclass(frozen=True)
class StoredBlob:
    """What is stored under one blob's name, as lstat saw it (maybe not a regular file)."""

    sha256: str
    path: Path
    info: os.stat_result

    @property
    def is_file(self) -> bool:
        return stat.S_ISREG(self.info.st_mode)


@dataclass(frozen=True)
class Registered:
    """One entry of the store's project register: the zoo.lock it names, or why it names none."""

    entry: Path
    lock_path: Path | None
    problem: str | None = None


@dataclass(frozen=True)
class Quarantined:
    """Something quarantine/ holds, and when (epoch seconds) it was put there."""

    path: Path
    since: float
    size: int


# An alias holds a sha256's 64 hex digits (and maybe a newline): anything longer is not one.
MAX_ALIAS = 128


def alias_target(raw: bytes) -> str | None:
    """The sha256 an alias's bytes name, or None if they are anything else."""
    try:
        text = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        return None
    return text if is_sha256_hex(text) else None


def register_key(lock_path: Path) -> str:
    """The name of lock_path's entry in the project register."""
    return hashlib.sha256(str(lock_path).encode()).hexdigest()[:32]


class Store:
    """Blobs named by SHA-256 under a two-character fan-out, with SHA-1 aliases for Caffe."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # Resumable writers open in this process, and the sizes of downloads kept for the
        # next run: what an interrupted command reports.
        self._writers: set[BlobWriter] = set()
        self._kept: list[int] = []
        self._writers_lock = threading.Lock()

    def blob_path(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256

    def _alias_path(self, sha1: str) -> Path:
        return self.root / "sha1" / sha1[:2] / sha1

    def has(self, sha256: str, size: int | None = None) -> bool:
        """Whether the blob is there and shows no sign of tampering (stat only, no hashing)."""
        return self._looks_intact(self.blob_path(sha256), size)

    def get(self, sha256: str) -> Path | None:
        """The blob's path if a regular file is there; callers that trust it must prove() it."""
        path = self.blob_path(sha256)
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.lstat(path).st_mode):
                return path
        return None

    def prove(
        self,
        sha256: str,
        size: int | None = None,
        sha1: str | None = None,
        *,
        suspect: bool = False,
    ) -> Path | None:
        """The blob's path once it is shown to be sha256 (and sha1); None if missing or wrong.

        An untouched blob costs one stat. A blob with any sign of tampering is hashed again:
        if its bytes are right it is stamped again, otherwise it is moved to quarantine/.
        """
        path = self.blob_path(sha256)
        if (
            not suspect
            and self._looks_intact(path, size)
            and (sha1 is None or self._alias_says(sha1, sha256))
        ):
            return path
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise from_os_error(exc, path) from None
        digest = _hash_no_follow(path) if stat.S_ISREG(info.st_mode) else None
        if digest is None or digest.sha256 != sha256 or (size is not None and digest.size != size):
            self.quarantine(path)
            return None
        if sha1 is not None and digest.sha1 != sha1.lower():
            raise IntegrityError(
                f"{path}: zoo.lock pins sha1 {sha1.lower()} with sha256 {sha256}, but the bytes "
                f"with that sha256 have sha1 {digest.sha1}",
                hint="zoo.lock was edited by hand: run 'zoopm lock' to pin the model again",
            )
        self._stamp(path)
        self._write_alias(digest)
        return path

    def find_by_sha1(self, sha1: str) -> Digest | None:
        """The digest of the stored blob whose SHA-1 is sha1: the alias is followed, then proven.

        Locking pins what this returns, so a wrong alias (or a blob changed on disk) must never
        hand back another model's bytes: the blob is hashed before its digest is believed.
        """
        sha1 = sha1.lower()
        sha256 = self._read_alias(sha1)
        if sha256 is None:
            return None
        path = self.blob_path(sha256)
        try:
            info = os.lstat(path)
        except OSError:
            return None
        digest = _hash_no_follow(path) if stat.S_ISREG(info.st_mode) else None
        if digest is None or digest.sha256 != sha256:
            self.quarantine(path)
            return None
        if digest.sha1 != sha1:
            return None  # the alias is wrong; the blob itself is fine
        self._stamp(path)
        return digest

    def quarantine(self, path: Path) -> None:
        """Moves a wrong blob aside (kept for inspection) so that it is fetched again."""
        target = self.root / "quarantine" / f"{path.name}.{time.time_ns()}"
        try:
            _mkdir(target.parent)
            os.replace(path, target)
        except FileNotFoundError:
            return
        except OSError:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _looks_intact(self, path: Path, size: int | None) -> bool:
        try:
            info = os.lstat(path)
        except OSError:
            return False
        return (
            stat.S_ISREG(info.st_mode)
            and info.st_mtime_ns == STAMP_NS
            and not info.st_mode & _WRITE_BITS
            and (size is None or info.st_size == size)
        )

    def _alias_says(self, sha1: str, sha256: str) -> bool:
        return self._read_alias(sha1.lower()) == sha256

    def _read_alias(self, sha1: str) -> str | None:
        """The sha256 an alias names; None if it is missing or not a small file of hex."""
        try:
            return alias_target(read_regular(self._alias_path(sha1), MAX_ALIAS, follow=False))
        except (OSError, TooLarge):
            return None

    def _stamp(self, path: Path) -> None:
        """Stamps a blob whose bytes were just proven, and notes its inode as zoopm left it."""
        try:
            os.chmod(path, _READ_ONLY, follow_symlinks=False)
            os.utime(path, ns=(STAMP_NS, STAMP_NS), follow_symlinks=False)
            self._note(path)
        except OSError as exc:
            raise from_os_error(exc, path) from None

    def _note(self, path: Path) -> None:
        """Writes the link note of the verified blob at path (storage/linknotes.py)."""
        info = os.lstat(path)
        if stat.S_ISREG(info.st_mode):
            write_note(self.root, path.name, info)

    def _write_alias(self, digest: Digest) -> None:
        alias = self._alias_path(digest.sha1)
        if self._alias_says(digest.sha1, digest.sha256):
            return
        with contextlib.suppress(OSError):
            if not stat.S_ISREG(os.lstat(alias).st_mode):
                self.quarantine(alias)  # a directory or FIFO planted there: moved aside
        try:
            atomic_write(alias, digest.sha256.encode())
        except OSError as exc:
            raise from_os_error(exc, alias) from None

    def writer(
        self,
        expected: Expected,
        label: str,
        *,
        resume: ResumeKey | None = None,
        fresh: bool = False,
        token: CancelToken | None = None,
    ) -> BlobWriter:
        """A writer for one blob; with resume, a download kept by an earlier run goes on
        (unless fresh) and an interrupted one is kept for the next run."""
        return BlobWriter(self, expected, label, resume=resume, fresh=fresh, token=token)

    def kept_downloads(self) -> tuple[int, int]:
        """(downloads, bytes) this process leaves for the next run: those kept when they were
        interrupted, and resumable ones still open (a thread that has not stopped yet)."""
        with self._writers_lock:
            live = [w.written for w in self._writers if w.validator is not None]
            kept = list(self._kept)
        sizes = [size for size in kept + live if size > 0]
        return len(sizes), sum(sizes)

    def drop_temps(self) -> int:
        """Removes the names of the temp files open writers would not keep for a resume (any
        thread may still write to them; what it writes then goes nowhere, and its commit
        fails). What an interrupted run calls before it ends. Returns how many."""
        with self._writers_lock:
            paths = [w.temp_path for w in self._writers if not w.resumable]
        for path in paths:
            with contextlib.suppress(OSError):
                os.unlink(path)
        return len(paths)

    def _opened(self, writer: BlobWriter) -> None:
        with self._writers_lock:
            self._writers.add(writer)

    def _closed(self, writer: BlobWriter, kept: int = 0) -> None:
        with self._writers_lock:
            self._writers.discard(writer)
            if kept:
                self._kept.append(kept)

    @contextlib.contextmanager
    def blob_lock(
        self,
        key: str,
        *,
        timeout: float,
        token: CancelToken | None = None,
        on_wait: Callable[[str], None] | None = None,
        label: str = "",
    ) -> Iterator[None]:
        """Keeps two processes from downloading the same blob at once; never needed for safety."""
        what = f"downloading {label}" if label else "a download"
        with hold_lock(
            self.root / "locks" / f"{key}.lock",
            what,
            timeout=timeout,
            token=token,
            on_wait=on_wait,
        ):
            yield

    def ingest_file(self, source: Path, expected: Expected, label: str) -> Blob:
        """Copies a local file into the store, hashing it in the same pass."""
        with self.writer(expected, label) as writer:
            try:
                with source.open("rb") as stream:
                    while chunk := stream.read(CHUNK_SIZE):
                        writer.write(chunk)
            except OSError as exc:
                raise StoreError(f"{source}: cannot read: {exc}", hint="check the file") from None
            return writer.commit()

    def add_bytes(self, data: bytes, expected: Expected, label: str) -> Blob:
        """Stores bytes already in memory (small info files)."""
        with self.writer(expected, label) as writer:
            writer.write(data)
            return writer.commit()

    def verify(self, sha256: str) -> bool:
        """Whether the stored blob still hashes to its name (always re-hashes)."""
        path = self.get(sha256)
        if path is None:
            return False
        digest = _hash_no_follow(path)
        return digest is not None and digest.sha256 == sha256

    def is_registered(self, lock_path: Path) -> bool:
        """Whether the register already names this zoo.lock (read only)."""
        record = self.root / "projects" / register_key(lock_path)
        with contextlib.suppress(OSError, TooLarge):
            return read_regular(record, 64 * 1024, follow=False) == f"{lock_path}\n".encode()
        return False

    def register_project(self, lock_path: Path) -> None:
        """Records a project that uses the store, so gc can keep what its lock needs."""
        if self.is_registered(lock_path):
            return
        record = self.root / "projects" / register_key(lock_path)
        content = str(lock_path) + "\n"
        try:
            atomic_write(record, content.encode())
        except OSError as exc:
            raise from_os_error(exc, record) from None

    # --- what verify --store and gc read and remove; never through a symlink -----------------

    def registered_projects(self) -> list[Registered]:
        """Every entry of projects/, read strictly: a regular file (never a link followed), small,
        holding one absolute, normalised path of a file named zoo.lock, under the name
        register_project gives that path. An entry that is none of these has its problem set.
        """
        folder = self.root / "projects"
        fd = self._real_dir("projects")
        if fd is None:
            return []
        try:
            names = sorted(os.listdir(fd))
        finally:
            os.close(fd)
        return [
            _read_register(folder / name)
            for name in names
            if not name.startswith(".")  # an atomic write's temp file, not an entry
        ]

    def forget_project(self, entry: Registered) -> None:
        """Removes one register entry (the entry itself, never what a link there points at)."""
        self._remove_in("projects", entry.entry.name)

    def blobs(self) -> list[StoredBlob]:
        """Everything stored under a blob's name in sha256/, as lstat sees it.

        Names that are not a blob's (64 lower-case hex digits under their own fan-out directory)
        were not written by zoopm and are not listed; a fan-out directory that is a symlink is
        not followed.
        """
        found: list[StoredBlob] = []
        for fan, fd in self._fan_outs("sha256"):
            try:
                for entry in os.scandir(fd):
                    name = entry.name
                    if not (is_sha256_hex(name) and name == name.lower() and name[:2] == fan):
                        continue
                    with contextlib.suppress(FileNotFoundError):
                        info = entry.stat(follow_symlinks=False)
                        found.append(StoredBlob(name, self.blob_path(name), info))
            finally:
                os.close(fd)
        return sorted(found, key=lambda blob: blob.sha256)

    def rehash(self, sha256: str, on_chunk: Callable[[int], None]) -> Digest | None:
        """The digest of what is stored under a blob's name, always read, never through a link;
        None if it is not a regular file. on_chunk gets each chunk's length (progress, Ctrl-C)."""
        try:
            fd = os.open(self.blob_path(sha256), READ_NO_FOLLOW)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as stream:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            hasher = Hasher()
            while chunk := stream.read(CHUNK_SIZE):
                hasher.update(chunk)
                on_chunk(len(chunk))
            return hasher.digest()

    def remove_blobs(self, names: Iterable[str]) -> tuple[int, int]:
        """Deletes the blobs named (each the file or link at its name, never a link's target) and
        the sha1 aliases naming them; returns how many blobs went and their bytes. Emptied fan-out
        directories go too."""
        by_fan: dict[str, list[str]] = {}
        for name in names:
            if is_sha256_hex(name) and name == name.lower():
                by_fan.setdefault(name[:2], []).append(name)
        count = size = 0
        for fan, fd in self._fan_outs("sha256", only=set(by_fan)):
            try:
                for name in by_fan[fan]:
                    info = _lstat_at(fd, name)
                    if info is None or not _removable(info):
                        continue
                    try:
                        os.unlink(name, dir_fd=fd)
                    except FileNotFoundError:
                        continue
                    except OSError as exc:
                        raise from_os_error(exc, self.blob_path(name)) from None
                    count += 1
                    size += info.st_size if stat.S_ISREG(info.st_mode) else 0
            finally:
                os.close(fd)
            self._remove_if_empty("sha256", fan)
        return count, size

    def aliases(self) -> dict[str, str]:
        """Every sha1 alias that names a blob in the store: sha256 → sha1 (a name that is not
        a sha1's, or an alias that is not a small file of hex, is left out)."""
        return {target: name for name, target in self._alias_entries() if target is not None}

    def stale_aliases(self, gone: set[str]) -> list[str]:
        """The sha1 aliases that name no blob: one in gone, or one not stored (or not a small
        file of hex at all). Only names that are a sha1's are looked at."""
        return sorted(
            name
            for name, target in self._alias_entries()
            if target is None or target in gone or self.get(target) is None
        )

    def _alias_entries(self) -> Iterator[tuple[str, str | None]]:
        """Each alias's sha1 and the sha256 it names (None when it names none)."""
        for fan, fd in self._fan_outs("sha1"):
            try:
                names = os.listdir(fd)
            finally:
                os.close(fd)
            for name in names:
                if is_sha1_hex(name) and name == name.lower() and name[:2] == fan:
                    yield name, self._read_alias(name)

    def remove_aliases(self, names: Iterable[str]) -> int:
        count = 0
        for name in names:
            path = self._alias_path(name)
            with contextlib.suppress(OSError):
                info = os.lstat(path)
                if _removable(info):
                    os.unlink(path)
                    count += 1
            self._remove_if_empty("sha1", name[:2])
        return count

    def quarantined(self) -> list[Quarantined]:
        """What quarantine/ holds, with when it was put there (from the name quarantine gives,
        else the entry's ctime, which the rename into quarantine/ set)."""
        folder = self.root / "quarantine"
        found: list[Quarantined] = []
        fd = self._real_dir("quarantine")
        if fd is None:
            return []
        try:
            for name in os.listdir(fd):
                info = _lstat_at(fd, name)
                if info is None:
                    continue
                _, _, stamp = name.rpartition(".")
                when = int(stamp) if stamp.isdigit() and len(stamp) < 20 else info.st_ctime_ns
                size = info.st_size if stat.S_ISREG(info.st_mode) else 0
                found.append(Quarantined(folder / name, when / 1e9, size))
        finally:
            os.close(fd)
        return sorted(found, key=lambda item: item.path.name)

    def remove_quarantined(self, item: Quarantined) -> None:
        self._remove_in("quarantine", item.path.name)

    def refuse_links(self) -> None:
        """Raises StoreError if a directory of the store's own (sha256/, sha1/, projects/,
        quarantine/, tmp/, linked/) is a symlink or not a directory: gc removes nothing
        through one."""
        for kind in ("sha256", "sha1", "projects", "quarantine", "tmp", "linked"):
            fd = self._real_dir(kind)
            if fd is not None:
                os.close(fd)

    def _real_dir(self, kind: str) -> int | None:
        """An fd of the store's directory kind, opened without following a link; None if it
        does not exist. A symlink or a file there is a StoreError."""
        path = self.root / kind
        try:
            return os.open(path, DIR_NO_FOLLOW)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise StoreError(
                    f"{path}: is not a directory of the store (a symbolic link, or a file); "
                    "zoopm never follows one there",
                    hint=f"move {path} away: zoopm makes that directory itself when it needs it",
                ) from None
            raise from_os_error(exc, path) from None

    def _remove_in(self, kind: str, name: str) -> None:
        """Removes name from the store's directory kind: a file or link itself, or a directory
        with what it holds (no link inside followed); never through a link to the directory."""
        fd = self._real_dir(kind)
        if fd is None:
            return
        try:
            info = _lstat_at(fd, name)
            if info is None:
                return
            if stat.S_ISDIR(info.st_mode):
                shutil.rmtree(name, dir_fd=fd)
            else:
                os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise from_os_error(exc, self.root / kind / name) from None
        finally:
            os.close(fd)

    def _fan_outs(self, kind: str, only: set[str] | None = None) -> Iterator[tuple[str, int]]:
        """(name, open fd) of each real fan-out directory of sha256/ or sha1/; the caller closes
        each fd. A fan-out that is a symlink (or not a directory) is skipped; sha256/ or sha1/
        itself being one is a StoreError."""
        top = self._real_dir(kind)
        if top is None:
            return
        try:
            for name in sorted(os.listdir(top)):
                if len(name) != 2 or (only is not None and name not in only):
                    continue
                try:
                    fd = os.open(name, DIR_NO_FOLLOW, dir_fd=top)
                except OSError:
                    continue
                yield name, fd
        finally:
            os.close(top)

    def _remove_if_empty(self, kind: str, fan: str) -> None:
        with contextlib.suppress(OSError):
            os.rmdir(self.root / kind / fan)

    def sweep_partials(self) -> None:
        """Removes temp files of writers whose process is gone (killed, or power lost), and
        kept downloads that are stale or whose blob is stored by now."""
        with contextlib.suppress(ZoopmError):
            self.clean_partials(STALE_SECONDS)

    def clean_partials(self, older_than: float) -> tuple[int, int]:
        """Removes this host's leftovers in tmp/: temp files of dead processes, and kept
        downloads untouched for older_than seconds (or whose blob is stored by now).

        A download some live process is writing, and anything of another host (a store
        shared over the network), is never touched. Returns (files removed, bytes freed).
        """
        tmp = self.root / "tmp"
        count = freed = 0
        if os.path.islink(tmp):
            return 0, 0  # not the store's own directory: nothing in it is the store's to remove
        try:
            entries = list(os.scandir(tmp))
        except FileNotFoundError:
            return 0, 0
        except OSError as exc:
            raise from_os_error(exc, tmp) from None
        for entry in entries:
            match = _PARTIAL.fullmatch(entry.name)
            if match and match.group(1) == host_tag() and not pid_alive(int(match.group(2))):
                with contextlib.suppress(OSError):
                    size = entry.stat(follow_symlinks=False).st_size
                    os.unlink(entry.path)
                    count, freed = count + 1, freed + size
        done = {f"sha256-{name}" for name in self._stored_among(entries)}
        kept_count, kept_bytes = clean_kept(tmp, older_than, done)
        return count + kept_count, freed + kept_bytes

    def _stored_among(self, entries: list[os.DirEntry[str]]) -> Iterator[str]:
        """The sha256 of each kept download in entries whose blob the store holds already."""
        for entry in entries:
            name = entry.name
            if name.startswith("dl-") and name.endswith(".part") and "-sha256-" in name:
                sha256 = name[-69:-5]
                if is_sha256_hex(sha256) and self.has(sha256):
                    yield sha256

    def _publish(self, temp: Path, digest: Digest) -> Blob:
        final = self.blob_path(digest.sha256)
        try:
            _mkdir(final.parent)
            os.chmod(temp, _READ_ONLY)
            os.utime(temp, ns=(STAMP_NS, STAMP_NS))
            if self._looks_intact(final, digest.size):
                # Another process stored the same bytes meanwhile; its blob may be linked already.
                temp.unlink()
            else:
                os.replace(temp, final)
                fsync_dir(final.parent)
                self._note(final)  # its bytes were hashed as they were written
            self._write_alias(digest)
        except ZoopmError:
            raise
        except OSError as exc:
            raise from_os_error(exc, final) from None
        return Blob(final, digest)


class BlobWriter:
    """A blob being written: a temp file hashed as it streams, published only if verified.

    With resume, the temp file is the download's kept partial (see partial.py): its bytes so far
    are hashed again first, and an interrupted download leaves it for the next run.
    """

    def __init__(
        self,
        store: Store,
        expected: Expected,
        label: str,
        *,
        resume: ResumeKey | None = None,
        fresh: bool = False,
        token: CancelToken | None = None,
    ) -> None:
        self._store = store
        self._expected = expected
        self._label = label
        self._resume = resume
        self._hasher = Hasher(parallel=True)
        self._done = False
        # Where the file was at the kept bytes' end; writing back to disk starts from there.
        self._written_back = 0
        self._feeder: _FileFeeder | None = None
        self._partial: Partial | None = None
        # Bytes taken from a kept partial that are still part of the file being written.
        self.resumed_from = 0
        tmp = store.root / "tmp"
        try:
            _mkdir(tmp)
            # Only bytes a pin can check are ever resumed: the final hash must be able to
            # catch a kept prefix that rotted or was tampered with.
            if resume is not None and (expected.sha1 or expected.sha256):
                limit = expected.size if expected.size is not None else MAX_DOWNLOAD_BYTES
                self._partial = Partial.open(tmp, resume, self._pins, limit, fresh=fresh)
            if self._partial is not None:
                self._fd = self._partial.fd
                self._path = self._partial.path
            else:
                prefix = f"blob-{host_tag()}-{os.getpid()}-"
                self._fd, name = tempfile.mkstemp(dir=tmp, prefix=prefix, suffix=".part")
                self._path = Path(name)
        except OSError as exc:
            raise from_os_error(exc, tmp) from None
        store._opened(self)
        if self._partial is not None and self._partial.kept:
            self._hash_kept(self._partial, token)

    def _hash_kept(self, partial: Partial, token: CancelToken | None) -> None:
        """Hashes the kept bytes (never trusted), then goes on writing after them."""
        try:
            offset = 0
            while offset < partial.kept:
                if token is not None:
                    token.check()
                chunk = os.pread(self._fd, min(CHUNK_SIZE, partial.kept - offset), offset)
                if not chunk:
                    break
                self._hasher.update(chunk)
                offset += len(chunk)
            os.lseek(self._fd, offset, os.SEEK_SET)
        except OSError:
            offset = -1
        except BaseException:
            # Interrupted while hashing: the partial stays exactly as it was, for the next run.
            self._done = True
            partial.close()
            self._hasher.close()
            self._store._closed(self, kept=partial.kept)
            raise
        if offset != partial.kept:
            self.reset()
            return
        self.resumed_from = offset
        self._written_back = offset

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if self._done:
            return
        if isinstance(exc, (Cancelled, Interrupted, KeyboardInterrupt)):
            self.keep()
        else:
            self.abort()

    @property
    def written(self) -> int:
        return self._hasher.size

    @property
    def temp_path(self) -> Path:
        return self._path

    @property
    def resumable(self) -> bool:
        """Whether an interruption keeps this download for the next run."""
        return self._partial is not None and self._resume is not None

    @property
    def validator(self) -> str | None:
        """The validator that guards the kept bytes (for If-Range); None if nothing is kept."""
        partial = self._partial
        if partial is None or not self.written or not partial.resumable:
            return None
        return partial.validator

    @property
    def resumed(self) -> bool:
        """Whether bytes kept by an earlier run are part of what is being written."""
        return self.resumed_from > 0

    @property
    def _pins(self) -> dict[str, int | str | None]:
        expected = self._expected
        return {"size": expected.size, "sha1": expected.sha1, "sha256": expected.sha256}

    def started(self, validator: str | None) -> None:
        """A server began sending the bytes from written on; validator is what it said they
        are (ETag or Last-Modified), recorded so that the next run can resume them."""
        if self._partial is not None and self._resume is not None:
            self._partial.record(self._resume.url, validator, self.written, self._pins)

    def write(self, chunk: bytes) -> None:
        limit = self._expected.size
        if limit is not None and self._hasher.size + len(chunk) > limit:
            raise IntegrityError(
                f"{self._label}: more than the pinned {limit} bytes arrived",
            )
        if self._hasher.size + len(chunk) > MAX_DOWNLOAD_BYTES:
            raise IntegrityError(
                f"{self._label}: more than {MAX_DOWNLOAD_BYTES // 1024**3} GiB arrived; "
                "no model binary is that large",
                hint="the URL does not lead to a model binary; check caffemodel_url",
            )
        self._hasher.update(chunk)
        try:
            if self._feeder is None and self._hasher.size > PARALLEL_AFTER:
                # A large blob: the file is written in a thread of its own, as it is hashed.
                self._feeder = _FileFeeder(self._fd, self._written_back)
            if self._feeder is not None:
                self._feeder.put(chunk)
            else:
                _write_all(self._fd, chunk)
        except OSError as exc:
            self.abort()
            raise from_os_error(exc, self._store.root) from None

    def _settle(self, *, check: bool = True) -> None:
        """Waits until every chunk is in the file; raises the first write error if check."""
        feeder = self._feeder
        if feeder is None:
            return
        try:
            feeder.finish()
        except OSError:
            if check:
                raise
        except BaseException:
            feeder.drop()  # interrupted while waiting: the thread is told to stop, not lost
            raise
        finally:
            self._feeder = None

    def reset(self) -> None:
        """Starts over from byte 0 (a server ignored a resume request)."""
        try:
            self._settle(check=False)
            os.ftruncate(self._fd, 0)
            os.lseek(self._fd, 0, os.SEEK_SET)
        except OSError as exc:
            self.abort()
            raise from_os_error(exc, self._store.root) from None
        self._hasher.close()
        self._hasher = Hasher(parallel=True)
        self._written_back = 0
        self.resumed_from = 0

    def commit(self) -> Blob:
        digest = self._hasher.digest()
        try:
            self._check(digest)
            try:
                self._settle()
                if os.fstat(self._fd).st_size != digest.size:
                    # What was hashed is not what is in the file: never published.
                    raise IntegrityError(f"{self._label}: the temp file is not the bytes hashed")
                os.fsync(self._fd)
                if self._partial is not None:
                    # From here on the file is an ordinary temp file of this process.
                    self._path = self._partial.take()
                self._close_fd()
                self._partial = None
                path = self._path
            except OSError as exc:
                raise from_os_error(exc, self._store.root) from None
            blob = self._store._publish(path, digest)
        except BaseException:
            self.abort()
            raise
        self._done = True
        self._store._closed(self)
        return blob

    def keep(self) -> None:
        """Leaves a resumable download for the next run; anything else is removed."""
        if self._partial is None or self._resume is None:
            self.abort()
            return
        self._done = True
        self._hasher.close()
        self._settle(check=False)
        kept = self._partial.keep(self._resume.url, self._pins)
        self._store._closed(self, kept=kept)

    def abort(self) -> None:
        self._done = True
        self._hasher.close()
        self._settle(check=False)
        if self._partial is not None:
            self._partial.drop()
        else:
            self._close_fd()
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
        self._store._closed(self)

    def _close_fd(self) -> None:
        if self._partial is not None:
            self._partial.close()
        elif self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = -1

    def _check(self, digest: Digest) -> None:
        expected = self._expected
        if expected.size is not None and digest.size != expected.size:
            raise IntegrityError(
                f"{self._label}: size mismatch: expected {expected.size} bytes, got {digest.size}"
            )
        for name, want, got in (
            ("sha256", expected.sha256, digest.sha256),
            ("sha1", expected.sha1, digest.sha1),
        ):
            if want is not None and want.lower() != got:
                raise IntegrityError(
                    f"{self._label}: {name} mismatch: expected {want.lower()}, got {got}"
                )


_WRITEBACK_BYTES = 8 * CHUNK_SIZE
_FEED_CHUNKS = 8


class _FileFeeder:
    """Writes chunks to a file in a daemon thread fed through a bounded queue, asking the kernel
    to write each few MiB back to disk as it goes (so the final fsync is short, and most of a
    kept partial is on disk should the power go). The first write error stops the writing and
    is raised by the next put() or by finish()."""

    def __init__(self, fd: int, offset: int) -> None:
        # A descriptor of its own, closed by the thread when it ends: however the writer ends
        # (Ctrl-C while waiting for this thread, say), closing the writer's descriptor can never
        # let a late write land in whatever file the process opens next under the same number.
        self._fd = os.dup(fd)
        self._position = self._written_back = offset
        self._queue: queue.Queue[bytes | None] = queue.Queue(_FEED_CHUNKS)
        self._error: OSError | None = None
        self._dropping = False
        self._thread = threading.Thread(target=self._run, name="zoopm-write", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while (chunk := self._queue.get()) is not None:
                if self._error is not None or self._dropping:
                    continue  # drained, so that a put() waiting on a full queue never hangs
                try:
                    _write_all(self._fd, chunk)
                    self._position += len(chunk)
                    if self._position - self._written_back >= _WRITEBACK_BYTES:
                        _start_writeback(
                            self._fd, self._written_back, self._position - self._written_back
                        )
                        self._written_back = self._position
                except OSError as exc:
                    self._error = exc
        finally:
            with contextlib.suppress(OSError):
                os.close(self._fd)

    def drop(self) -> None:
        """Stops without waiting: what is queued is thrown away, and the thread ends (closing
        its descriptor) as soon as it sees the end of the queue."""
        self._dropping = True
        while True:
            try:
                self._queue.put_nowait(None)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()

    def put(self, chunk: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(chunk if isinstance(chunk, bytes) else bytes(chunk))

    def finish(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """Linux's sync_file_range(2), which Python's os module lacks; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Asks the kernel to start writing a range of the file to disk, without waiting for it."""
    function = _sync_file_range()
    if function is not None:
        function(fd, offset, length, 2)  # SYNC_FILE_RANGE_WRITE; a failure only costs speed


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _mkdir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


def _hash_no_follow(path: Path) -> Digest | None:
    """The digest of the regular file at path, never through a symlink; None if unreadable."""
    try:
        fd = os.open(path, READ_NO_FOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as stream:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return digest_stream(stream)


def _removable(info: os.stat_result) -> bool:
    """gc removes a file or a symlink (the link itself); anything else at a name is left."""
    return stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)


def _lstat_at(fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _read_register(entry: Path) -> Registered:
    """One register entry, read as strictly as the install record (see registered_projects)."""
    try:
        raw = read_regular(entry, _MAX_REGISTER_BYTES, follow=False)
    except TooLarge:
        return Registered(entry, None, "larger than any entry zoopm writes")
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return Registered(entry, None, "is a symbolic link (never followed)")
        if exc.errno in (errno.EINVAL, errno.EISDIR):
            return Registered(entry, None, "not a regular file")
        return Registered(entry, None, f"cannot be read: {exc.strerror or exc}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Registered(entry, None, "not UTF-8 text")
    path = text[:-1]
    if not text.endswith("\n") or not path or "\n" in path or "\0" in path:
        return Registered(entry, None, "not one line naming a zoo.lock")
    lock_path = Path(path)
    if not lock_path.is_absolute() or os.path.normpath(path) != path:
        return Registered(entry, None, "does not hold an absolute, normalised path")
    if lock_path.name != "zoo.lock":
        return Registered(entry, None, f"names {path!r}, which is not a zoo.lock")
    if register_key(lock_path) != entry.name:
        return Registered(entry, None, "is not the entry zoopm writes for the path it holds")
    return Registered(entry, lock_path)
