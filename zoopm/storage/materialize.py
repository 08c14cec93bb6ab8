"""Placing store blobs below the models directory: no symlink followed, ownership checked at write.

Every path below the models directory is reached one component at a time from a directory
file descriptor opened with O_NOFOLLOW, so a symlink planted at models/<name> or anywhere under
it is never written through. Whether zoopm may replace what sits at a target is decided right
before the rename that replaces it, not when the install was planned minutes earlier.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import os
import re
import secrets
import shutil
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from zoopm.atomic import DIR_NO_FOLLOW, NEW_FILE_NO_FOLLOW, READ_NO_FOLLOW
from zoopm.digest import CHUNK_SIZE, digest_stream
from zoopm.errors import InstallError, from_os_error
from zoopm.storage.locks import host_tag, pid_alive
from zoopm.storage.record import ADOPTED, Placed

_FICLONE = 0x40049409  # Linux ioctl: share the source file's extents (btrfs, XFS, bcachefs)
_NO_LINK_ERRNOS = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES}
_TEMP = re.compile(r"\.zoopm-([0-9a-f]{8})-([0-9]{1,10})-[0-9a-f]{8}\.tmp")

BlobPaths = Callable[[str], Path]


class Refused(InstallError):
    """A target holds something zoopm did not place; it is never overwritten."""

    default_hint = (
        "move it away (zoopm never overwrites files it did not place), then run 'zoopm install' "
        "again"
    )


class ModelsTree:
    """The models directory, walked without following symlinks; holds directory fds until closed."""

    def __init__(self, root: Path, blob_path: BlobPaths) -> None:
        self.root = root
        self._blob_path = blob_path
        self._dirs: dict[tuple[str, ...], int] = {}
        self._swept: set[tuple[str, ...]] = set()

    def __enter__(self) -> ModelsTree:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        for fd in self._dirs.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._dirs.clear()

    # --- reading ------------------------------------------------------------------------

    def lstat(self, rel: str) -> os.stat_result | None:
        """The entry at rel itself (never a link target); None if it or a real parent is absent."""
        found = self._existing(rel)
        return _lstat_at(*found) if found is not None else None

    def is_placed_file(self, rel: str, placed: Placed) -> bool:
        """Whether rel is the very file placed records (same inode and, where the file system
        keeps one, the same inode generation), whatever has been written into it since."""
        found = self._existing(rel)
        if found is None:
            return False
        info = _lstat_at(*found)
        return info is not None and placed.same_file(info, generation_at(*found))

    def stat_intact(self, rel: str, placed: Placed) -> bool:
        """Whether rel is still what zoopm placed, by size, mtime and inode (no re-hash).

        ctime is asked separately (ctime_moved): linking the same blob elsewhere moves it too,
        so a moved ctime calls for a hash, not a verdict.
        """
        if placed.pending:
            return False
        info = self.lstat(rel)
        if info is None or info.st_ino != placed.inode:
            return False
        if placed.how == "symlink":
            return stat.S_ISLNK(info.st_mode) and self._links_to_blob(rel, placed)
        return (
            stat.S_ISREG(info.st_mode)
            and info.st_size == placed.size
            and info.st_mtime_ns == placed.mtime_ns
        )

    def ctime_moved(self, rel: str, placed: Placed) -> bool:
        """Whether the file's ctime (for a symlink: its blob's) is not the one recorded."""
        if placed.ctime_ns is None:
            return False
        try:
            if placed.how == "symlink":
                info = os.stat(self._blob_path(placed.sha256))
            else:
                found = self.lstat(rel)
                if found is None:
                    return True
                info = found
        except OSError:
            return True
        return info.st_ctime_ns != placed.ctime_ns

    def holds(self, rel: str, sha256: str) -> bool:
        """Whether rel is a regular file (or zoopm's blob link) whose bytes hash to sha256."""
        found = self._existing(rel)
        if found is None:
            return False
        fd, name = found
        info = _lstat_at(fd, name)
        return info is not None and self._holds_at(fd, name, info, sha256)

    def _holds_at(self, fd: int, name: str, seen: os.stat_result, sha256: str) -> bool:
        """Whether the entry seen (an lstat of name) holds sha256; a swap meanwhile says no."""
        if stat.S_ISLNK(seen.st_mode):
            with contextlib.suppress(OSError):
                return os.readlink(name, dir_fd=fd) == str(self._blob_path(sha256))
            return False
        stream = _open_seen(fd, name, seen)
        if stream is None:
            return False
        with stream:
            return digest_stream(stream).sha256 == sha256

    def sha256(self, rel: str, on_chunk: Callable[[int], None]) -> str | None:
        """The SHA-256 of the regular file at rel, always read (never trusted from its stat) and
        never through a symlink; None if rel is not a regular file. on_chunk gets each chunk's
        length, for progress and Ctrl-C."""
        found = self._existing(rel)
        if found is None:
            return None
        fd, name = found
        seen = _lstat_at(fd, name)
        stream = _open_seen(fd, name, seen) if seen is not None else None
        if stream is None:
            return None
        with stream:
            hasher = hashlib.sha256()
            while chunk := stream.read(CHUNK_SIZE):
                hasher.update(chunk)
                on_chunk(len(chunk))
            return hasher.hexdigest()

    def entries(self, rel: str) -> list[tuple[str, os.stat_result]]:
        """The names in the real directory rel with their lstat; [] if rel is not one (a
        symlink at rel or above it is never followed)."""
        fd = self._open_dir(tuple(rel.split("/")) if rel else (), create=False)
        if fd is None:
            return []
        found = []
        for name in sorted(os.listdir(fd)):
            info = _lstat_at(fd, name)
            if info is not None:
                found.append((name, info))
        return found

    def is_temp(self, name: str) -> bool:
        """Whether name is a temp file an install makes beside its target (not the user's)."""
        return _TEMP.fullmatch(name) is not None

    def describe(self, rel: str, sha256: str) -> Placed | None:
        """A record entry for what is at rel now, if it holds sha256 (a pending placement done)."""
        found = self._existing(rel)
        if found is None:
            return None
        fd, name = found
        info = _lstat_at(fd, name)
        if info is None or not self._holds_at(fd, name, info, sha256):
            return None
        if stat.S_ISLNK(info.st_mode):
            return self._link_entry(sha256, info)
        return Placed.of(sha256, info.st_size, info, "copy", generation_at(fd, name))

    def adopt(self, rel: str, sha256: str) -> Placed | None:
        """An adopted entry for the regular file at rel if it holds sha256's bytes, else None.

        Writes nothing. An adopted file is the user's: kept while it holds the locked bytes,
        never replaced, never removed.
        """
        found = self._existing(rel)
        if found is None:
            return None
        fd, name = found
        current = _lstat_at(fd, name)
        if (
            current is None
            or not stat.S_ISREG(current.st_mode)
            or not self._holds_at(fd, name, current, sha256)
        ):
            return None
        return Placed.of(sha256, current.st_size, current, ADOPTED, generation_at(fd, name))

    def _link_entry(self, sha256: str, link: os.stat_result) -> Placed:
        """A symlink's entry: its own inode and mtime, its blob's size and ctime."""
        blob = os.stat(self._blob_path(sha256))
        entry = Placed.of(sha256, blob.st_size, link, "symlink")
        return dataclasses.replace(entry, ctime_ns=blob.st_ctime_ns)

    def ours_to_remove(self, rel: str, placed: Placed) -> bool:
        """Whether what is at rel is still what zoopm placed there, so removing it loses nothing.

        A symlink zoopm made counts even when its blob is gone (a wiped store): it is zoopm's.
        """
        if placed.how == ADOPTED:
            return False
        if self.stat_intact(rel, placed) and (
            not self.ctime_moved(rel, placed) or self.holds(rel, placed.sha256)
        ):
            return True
        if placed.pending:
            return self.holds(rel, placed.sha256)
        if placed.how == "symlink":
            found = self._existing(rel)
            info = self.lstat(rel)
            if found is None or info is None or info.st_ino != placed.inode:
                return False
            with contextlib.suppress(OSError):
                return os.readlink(found[1], dir_fd=found[0]) == str(self._blob_path(placed.sha256))
        return False

    def _links_to_blob(self, rel: str, placed: Placed) -> bool:
        found = self._existing(rel)
        if found is None:
            return False
        fd, name = found
        blob = self._blob_path(placed.sha256)
        try:
            if os.readlink(name, dir_fd=fd) != str(blob):
                return False
            info = os.lstat(blob)
        except OSError:
            return False
        return stat.S_ISREG(info.st_mode) and info.st_size == placed.size

    def _existing(self, rel: str) -> tuple[int, str] | None:
        """The open parent directory of rel and rel's last name; None if a parent is missing."""
        parent, name = _split(rel)
        fd = self._open_dir(parent, create=False)
        return (fd, name) if fd is not None else None

    # --- writing ------------------------------------------------------------------------

    def place(
        self,
        blob: Path,
        rel: str,
        sha256: str,
        mode: str,
        owned: Placed | None,
        *,
        adopt: bool = False,
    ) -> Placed:
        """Puts blob at rel by mode (auto, hardlink, symlink, copy), in one rename.

        owned is the install record's entry for rel. What is at rel now is replaced only if it
        is the very file zoopm placed (same inode), or if it holds the bytes zoopm meant to put
        there; anything else is Refused. With adopt (the record had no entry before this run),
        a file that already holds the locked bytes is adopted as it is, not replaced (and never
        removed later). A new file is linked into place, so one that appears meanwhile is never
        overwritten.
        """
        parent, name = _split(rel)
        fd = self._open_dir(parent, create=True)
        assert fd is not None
        self._sweep(parent, fd)
        if adopt and (adopted := self.adopt(rel, sha256)) is not None:
            return adopted
        temp = _temp_name()
        try:
            how = _create(blob, fd, temp, mode)
            self._put(fd, (temp, name), rel, sha256, owned)
        except OSError as exc:
            raise from_os_error(exc, self.root / rel) from None
        finally:
            # Also after Ctrl-C or a full disk halfway through a copy: no temp stays behind.
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=fd)
        try:
            # After the temp name is gone: unlinking it moved the file's ctime.
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError as exc:
            raise from_os_error(exc, self.root / rel) from None
        if how == "symlink":
            return self._link_entry(sha256, info)
        return Placed.of(sha256, info.st_size, info, how, generation_at(fd, name))

    def _put(
        self, fd: int, names: tuple[str, str], rel: str, sha256: str, owned: Placed | None
    ) -> None:
        temp, name = names
        for _ in range(3):
            current = _lstat_at(fd, name)
            if current is None:
                try:
                    # link(2) fails if the name appeared since the lstat: nothing is overwritten.
                    os.link(temp, name, src_dir_fd=fd, dst_dir_fd=fd, follow_symlinks=False)
                    return
                except FileExistsError:
                    continue
                except OSError as exc:
                    if exc.errno not in _NO_LINK_ERRNOS:
                        raise
                    # A file system without hard links: a rename is the best there is.
                    os.replace(temp, name, src_dir_fd=fd, dst_dir_fd=fd)
                    return
            if not self._mine(fd, name, current, sha256, owned):
                raise Refused(f"{self.root / rel}: exists and was not placed by zoopm")
            # What was judged must still be there, unchanged, at the moment of the rename.
            again = _lstat_at(fd, name)
            if again is not None and _same_identity(again, current):
                os.replace(temp, name, src_dir_fd=fd, dst_dir_fd=fd)
                return
        raise InstallError(
            f"{self.root / rel}: keeps changing while zoopm places it",
            hint="stop whatever writes there, then run 'zoopm install' again",
        )

    def _mine(
        self, fd: int, name: str, current: os.stat_result, sha256: str, owned: Placed | None
    ) -> bool:
        if stat.S_ISDIR(current.st_mode):
            return False
        if (
            owned is not None
            and not owned.pending
            and owned.how != ADOPTED
            and owned.same_file(current, generation_at(fd, name))
        ):
            return True  # the very file zoopm placed, perhaps changed in place: repaired
        # Otherwise ours only if it holds bytes zoopm put or meant to put there.
        candidates = {sha256} | ({owned.sha256} if owned is not None else set())
        return any(self._holds_at(fd, name, current, candidate) for candidate in candidates)

    def remove(self, rel: str, placed: Placed) -> bool:
        """Deletes what zoopm placed at rel (if it still is that), then emptied directories."""
        parent, name = _split(rel)
        found = self._existing(rel)
        if found is None or _lstat_at(found[0], name) is None:
            return True
        if not self.ours_to_remove(rel, placed):
            return False
        try:
            os.unlink(name, dir_fd=found[0])
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise from_os_error(exc, self.root / rel) from None
        self._prune(parent)
        return True

    def _prune(self, parts: tuple[str, ...]) -> None:
        while parts:
            fd = self._dirs.pop(parts, None)
            if fd is not None:
                os.close(fd)
            up = self._open_dir(parts[:-1], create=False)
            if up is None:
                return
            try:
                os.rmdir(parts[-1], dir_fd=up)
            except OSError:
                return
            parts = parts[:-1]

    def _open_dir(self, parts: tuple[str, ...], *, create: bool) -> int | None:
        """An fd of models_dir/parts, each component opened without following a symlink."""
        if parts in self._dirs:
            return self._dirs[parts]
        if not parts:
            fd = self._open_root(create)
        else:
            up = self._open_dir(parts[:-1], create=create)
            if up is None:
                return None
            fd = self._open_child(up, parts, create)
        if fd is not None:
            self._dirs[parts] = fd
        return fd

    def _open_root(self, create: bool) -> int | None:
        # The models directory itself may be a symlink (to a bigger disk): the user's choice.
        try:
            if create:
                self.root.mkdir(parents=True, exist_ok=True)
            return os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            if create:
                raise
            return None
        except OSError as exc:
            if not create and exc.errno == errno.ENOTDIR:
                return None
            raise from_os_error(exc, self.root) from None

    def _open_child(self, up: int, parts: tuple[str, ...], create: bool) -> int | None:
        name = parts[-1]
        for _ in range(2):
            try:
                return os.open(name, DIR_NO_FOLLOW, dir_fd=up)
            except FileNotFoundError:
                if not create:
                    return None
                with contextlib.suppress(FileExistsError):
                    try:
                        os.mkdir(name, 0o777, dir_fd=up)
                    except OSError as exc:
                        raise from_os_error(exc, self.root / parent_path(parts)) from None
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    if not create:
                        return None
                    info = _lstat_at(up, name)
                    link = info is not None and stat.S_ISLNK(info.st_mode)
                    kind = "a symbolic link" if link else "not a directory"
                    raise Refused(
                        f"{self.root / parent_path(parts)}: is {kind}; zoopm never writes through "
                        "one",
                        hint="move it away (zoopm does not follow links below the models "
                        "directory), then run 'zoopm install' again",
                    ) from None
                raise from_os_error(exc, self.root / parent_path(parts)) from None
        raise InstallError(f"{self.root / parent_path(parts)}: keeps changing while zoopm works")

    def _sweep(self, parts: tuple[str, ...], fd: int) -> None:
        """Removes temp files that an earlier, killed zoopm left in this directory."""
        if parts in self._swept:
            return
        self._swept.add(parts)
        with contextlib.suppress(OSError):
            for entry in os.listdir(fd):
                match = _TEMP.fullmatch(entry)
                if match and match.group(1) == host_tag() and not pid_alive(int(match.group(2))):
                    with contextlib.suppress(OSError):
                        os.unlink(entry, dir_fd=fd)


def parent_path(parts: tuple[str, ...]) -> str:
    return "/".join(parts)


def _split(rel: str) -> tuple[tuple[str, ...], str]:
    parts = rel.split("/")
    return tuple(parts[:-1]), parts[-1]


# FS_IOC_GETVERSION: _IOR('v', 1, long) on Linux.
_FS_IOC_GETVERSION = 0x80087601 if sys.maxsize > 2**32 else 0x80047601


def generation_at(fd: int, name: str) -> int | None:
    """The inode generation of the regular file name in directory fd (never followed, never
    blocking); None where the file system keeps none, or the file cannot be opened."""
    import array
    import fcntl

    try:
        file = os.open(name, READ_NO_FOLLOW, dir_fd=fd)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(file).st_mode):
            return None
        value = array.array("l", [0])
        fcntl.ioctl(file, _FS_IOC_GETVERSION, value, True)
        return int(value[0]) & 0xFFFFFFFF
    except OSError:
        return None
    finally:
        os.close(file)


def _open_seen(fd: int, name: str, seen: os.stat_result) -> BinaryIO | None:
    """The regular file name in directory fd opened for reading, if it is still the entry seen
    (never through a symlink, never blocking); None otherwise."""
    if not stat.S_ISREG(seen.st_mode):
        return None
    try:
        file_fd = os.open(name, READ_NO_FOLLOW, dir_fd=fd)
    except OSError:
        return None
    stream = os.fdopen(file_fd, "rb")
    if not _same_identity(os.fstat(file_fd), seen):
        stream.close()
        return None
    return stream


def _lstat_at(fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _temp_name() -> str:
    # Not derived from the file's name: a long non-ASCII name would overflow NAME_MAX.
    return f".zoopm-{host_tag()}-{os.getpid()}-{secrets.token_hex(4)}.tmp"


def _same_identity(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino, a.st_mode, a.st_size, a.st_mtime_ns, a.st_ctime_ns) == (
        b.st_dev,
        b.st_ino,
        b.st_mode,
        b.st_size,
        b.st_mtime_ns,
        b.st_ctime_ns,
    )


def _create(blob: Path, fd: int, temp: str, mode: str) -> str:
    if mode == "symlink":
        os.symlink(blob, temp, dir_fd=fd)
        return "symlink"
    if mode == "hardlink":
        try:
            os.link(blob, temp, dst_dir_fd=fd)
        except OSError as exc:
            raise InstallError(
                f"cannot hardlink {blob} into the models directory: {exc.strerror}",
                hint="the store and the models directory must be on one file system; "
                "use link-mode copy or auto",
            ) from None
        return "hardlink"
    if mode == "auto":
        if _reflink(blob, fd, temp):
            return "reflink"
        try:
            os.link(blob, temp, dst_dir_fd=fd)
            return "hardlink"
        except OSError as exc:
            if exc.errno not in _NO_LINK_ERRNOS:
                raise
    _copy(blob, fd, temp)
    return "copy"


def _copy(blob: Path, fd: int, temp: str) -> None:
    dest = os.open(temp, NEW_FILE_NO_FOLLOW, 0o444, dir_fd=fd)
    try:
        with open(blob, "rb") as source, os.fdopen(os.dup(dest), "wb") as out:
            shutil.copyfileobj(source, out, CHUNK_SIZE)
    finally:
        os.close(dest)


def _reflink(blob: Path, fd: int, temp: str) -> bool:
    try:
        import fcntl
    except ImportError:
        return False
    source = os.open(blob, os.O_RDONLY)
    try:
        dest = os.open(temp, NEW_FILE_NO_FOLLOW, 0o444, dir_fd=fd)
        try:
            fcntl.ioctl(dest, _FICLONE, source)
            return True
        except OSError:
            os.close(dest)
            dest = -1
            os.unlink(temp, dir_fd=fd)
            return False
        finally:
            if dest >= 0:
                os.close(dest)
    finally:
        os.close(source)
