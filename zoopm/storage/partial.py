"""A download kept across runs: its bytes so far in store/tmp/, and a sidecar saying what they are.

`tmp/dl-<host>-<key>.part` holds the bytes; `tmp/dl-<host>-<key>.json` (written atomically)
holds the URL, the server's strong validator and the pins the bytes must end up matching. The
key is what the blob will become (`sha256-<hex>`, or `sha1-<hex>` while locking), the same key
the Fetcher's per-blob lock uses. While a process writes a partial it holds an exclusive flock
on it, so a second process (or a lock that failed to exclude it) never writes the same bytes;
the lock dies with the process, which is what lets the next run take the file over.

Nothing here is trusted: a sidecar is read strictly and boundedly, never through a symlink, and
any doubt (a planted symlink, FIFO, directory or hard link, garbage JSON, another URL, other
pins, more bytes than pinned) means the partial is dropped and the download starts from 0. The
kept bytes are hashed again before the download goes on, and the final hash decides.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import stat
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from zoopm.atomic import READ_NO_FOLLOW, TooLarge, atomic_write, read_regular
from zoopm.storage.locks import host_tag

# After this long untouched, a kept partial is stale: gc and the next download remove it.
STALE_SECONDS = 7 * 24 * 3600.0
_KEY = re.compile(r"(?:sha256-[0-9a-f]{64}|sha1-[0-9a-f]{40})")
_NAME = re.compile(r"dl-([0-9a-f]{8})-(sha256-[0-9a-f]{64}|sha1-[0-9a-f]{40})\.(part|json)")
_SIDECAR_LIMIT = 64 * 1024
_URL_LIMIT = 16 * 1024
_VALIDATOR_LIMIT = 1024
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
Pins = Mapping[str, int | str | None]


@dataclass(frozen=True)
class ResumeKey:
    """Where a download may be kept: the blob's key and the URL as it may be written."""

    key: str
    url: str


@dataclass(frozen=True)
class Sidecar:
    """What a kept partial is: read from its JSON sidecar, every field checked."""

    url: str
    validator: str
    size: int
    pins: dict[str, int | str | None]


def is_key(key: str) -> bool:
    return _KEY.fullmatch(key) is not None


def strong_validator(value: str | None) -> bool:
    """Whether value can guard a byte-range resume: a strong ETag or a Last-Modified date.

    A weak ETag (W/…) cannot (RFC 9110, If-Range); the value goes into a request header, so
    it must be printable ASCII of sane length.
    """
    if not value or len(value) > _VALIDATOR_LIMIT or value.startswith("W/"):
        return False
    return all(0x20 <= ord(c) < 0x7F for c in value)


class Partial:
    """One kept download, open and flocked by this process until it is kept, dropped or taken."""

    def __init__(self, fd: int, part: Path, sidecar: Path, kept: int, found: Sidecar | None):
        self.fd = fd
        self.path = part
        self._sidecar = sidecar
        self.kept = kept  # bytes already in the file that may be resumed from
        self.validator = found.validator if found is not None else None
        self._recorded = found is not None
        self._inode = os.fstat(fd).st_ino

    @classmethod
    def open(
        cls, tmp: Path, resume: ResumeKey, pins: Pins, limit: int, *, fresh: bool = False
    ) -> Partial | None:
        """The partial for resume.key, flocked, with what of it may be resumed (kept bytes and
        validator, or 0 and None); None if no resumable file can be had (then the caller writes
        an ordinary temp file)."""
        if not is_key(resume.key):
            return None
        stem = f"dl-{host_tag()}-{resume.key}"
        part, sidecar = tmp / f"{stem}.part", tmp / f"{stem}.json"
        fd = _open_locked(part)
        if fd is None:
            return None
        try:
            size = os.fstat(fd).st_size
            found = None if fresh else read_sidecar(sidecar)
            usable = (
                found is not None
                and found.url == resume.url
                and found.pins == dict(pins)
                and 0 < size <= limit
                and found.size <= size
            )
            if not usable:
                os.ftruncate(fd, 0)
                _unlink_file(sidecar)
                return cls(fd, part, sidecar, 0, None)
            return cls(fd, part, sidecar, size, found)
        except BaseException:
            os.close(fd)
            raise

    @property
    def resumable(self) -> bool:
        """Whether a sidecar with a strong validator describes the bytes in the file."""
        return self._recorded

    def record(self, url: str, validator: str | None, size: int, pins: Pins) -> None:
        """Says in the sidecar what the bytes from now on are; a weak or missing validator means
        they cannot be resumed, so the sidecar goes (and the file is dropped if interrupted)."""
        self.validator = validator if strong_validator(validator) else None
        if self.validator is None:
            self._recorded = False
            _unlink_file(self._sidecar)
            return
        data = {
            "version": 1,
            "url": url,
            "validator": self.validator,
            "size": size,
            "pins": dict(pins),
        }
        try:
            # Not durable: after a power loss a missing sidecar only costs the kept bytes.
            atomic_write(self._sidecar, json.dumps(data).encode(), mode=0o600, durable=False)
            self._recorded = True
        except OSError:
            self._recorded = False  # a directory planted at its name, a full disk: not kept

    def keep(self, url: str, pins: Pins) -> int:
        """Leaves the file for the next run; the bytes kept (0: none, it cannot be resumed).

        The file's own length counts: an interrupt may land between hashing a chunk and
        writing it, and the next run resumes from the length anyway.
        """
        try:
            size = os.fstat(self.fd).st_size
        except OSError:
            size = 0
        if not self._recorded or size == 0:
            self.drop()
            return 0
        self.record(url, self.validator, size, pins)
        if not self._recorded:
            self.drop()
            return 0
        self.close()
        return size

    def drop(self) -> None:
        """Removes the file and its sidecar (only while the name still holds this file)."""
        if self._names_mine():
            _unlink_file(self.path)
        _unlink_file(self._sidecar)
        self.close()

    def take(self) -> Path:
        """Moves the finished file to a unique name of its own and returns it, for publishing.

        The rename and the inode check after it make sure the file published is the one that
        was hashed, even if something replaced the name meanwhile.
        """
        # Named like an ordinary temp file, so a crash before publishing leaves one the sweep
        # of dead processes' temp files removes.
        name = f"blob-{host_tag()}-{os.getpid()}-{secrets.token_hex(6)}.part"
        taken = self.path.with_name(name)
        os.rename(self.path, taken)
        if os.lstat(taken).st_ino != self._inode:
            with contextlib.suppress(OSError):
                os.rename(taken, self.path)
            raise OSError(f"{self.path}: replaced while it was being written")
        _unlink_file(self._sidecar)
        return taken

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1

    def _names_mine(self) -> bool:
        try:
            return os.lstat(self.path).st_ino == self._inode
        except OSError:
            return False


def read_sidecar(path: Path) -> Sidecar | None:
    """The sidecar at path, or None for anything not exactly what zoopm writes."""
    try:
        data = json.loads(read_regular(path, _SIDECAR_LIMIT, follow=False))
    except (OSError, TooLarge, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("version") != 1:
        return None
    url, validator, size, pins = (data.get(k) for k in ("url", "validator", "size", "pins"))
    if not isinstance(url, str) or not url or len(url) > _URL_LIMIT:
        return None
    if not isinstance(validator, str) or not strong_validator(validator):
        return None
    if type(size) is not int or size < 0:
        return None
    if not isinstance(pins, dict) or set(pins) != {"size", "sha1", "sha256"}:
        return None
    if not all(v is None or type(v) in (int, str) for v in pins.values()):
        return None
    return Sidecar(url, validator, size, pins)


def _open_locked(path: Path) -> int | None:
    """A read-write descriptor of the regular file at path, created if missing, flocked by us.

    A symlink, FIFO or hard link planted at the name is removed (never followed or written
    through) and a file made in its place; a directory there, or a live writer's lock, gives
    None.
    """
    for _ in range(3):
        try:
            fd = os.open(path, _OPEN_FLAGS, 0o600)
        except OSError:
            if not _unlink_odd(path):
                return None
            continue
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
                os.close(fd)
                if not _unlink_odd(path):
                    return None
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return None  # another process is writing it
            # Between open and flock the name may have been given to another file.
            if os.lstat(path).st_ino != info.st_ino:
                os.close(fd)
                continue
            return fd
        except OSError:
            with contextlib.suppress(OSError):
                os.close(fd)
            return None
    return None


def _unlink_odd(path: Path) -> bool:
    """Removes what is at path unless it is a directory; whether the name is free now."""
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            return False
        os.unlink(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def _unlink_file(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


@dataclass(frozen=True)
class _Found:
    key: str
    paths: tuple[Path, ...]
    size: int
    newest: float


def _kept_here(tmp: Path) -> Iterator[_Found]:
    """This host's kept partials in tmp, grouped by key (a part, its sidecar, or both)."""
    groups: dict[str, list[tuple[Path, os.stat_result]]] = {}
    try:
        entries = list(os.scandir(tmp))
    except OSError:
        return
    tag = host_tag()
    for entry in entries:
        match = _NAME.fullmatch(entry.name)
        if match is None or match.group(1) != tag:
            continue
        with contextlib.suppress(OSError):
            groups.setdefault(match.group(2), []).append(
                (Path(entry.path), entry.stat(follow_symlinks=False))
            )
    for key, found in groups.items():
        size = sum(info.st_size for path, info in found if path.suffix == ".part")
        newest = max(info.st_mtime for _, info in found)
        yield _Found(key, tuple(path for path, _ in found), size, newest)


def clean_kept(tmp: Path, older_than: float, done: set[str]) -> tuple[int, int]:
    """Removes this host's kept partials untouched for older_than seconds, those whose blob
    is stored (key in done), and halves (a part without sidecar, or the reverse); a partial a
    live process writes is never touched. Returns (partials removed, bytes freed)."""
    now = time.time()
    count = freed = 0
    for found in _kept_here(tmp):
        part = next((p for p in found.paths if p.suffix == ".part"), None)
        whole = len(found.paths) == 2
        if whole and now - found.newest <= older_than and found.key not in done:
            continue
        with _probe_lock(part) as free:
            if not free:
                continue
            for path in found.paths:
                _unlink_file(path)
        count += 1
        freed += found.size
    return count, freed


@contextlib.contextmanager
def _probe_lock(part: Path | None) -> Iterator[bool]:
    """Holds the part's flock while the body runs; yields False if a live writer holds it."""
    if part is None:
        yield True
        return
    try:
        fd = os.open(part, READ_NO_FOLLOW)
    except OSError:
        yield True  # a symlink or a file gone meanwhile: nobody writes through that name
        return
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                yield False
                return
        yield True
    finally:
        os.close(fd)
