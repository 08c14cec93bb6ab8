"""Placing store blobs below the models directory: no symlink followed, ownership checked at write.

Every path below the models directory is reached one component at a time from a directory
file descriptor opened with O_NOFOLLOW, so a symlink planted at models/<name> or anywhere under
it is never written through. Whether zoopm may replace what sits at a target is decided right
before the rename that replaces it, not when the install was planned minutes earlier.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

from zoopm.digest import CHUNK_SIZE, Hasher
from zoopm.errors import InstallError, from_os_error
from zoopm.locks import pid_alive
from zoopm.record import Placed

_FICLONE = 0x40049409  # Linux ioctl: share the source file's extents (btrfs, XFS, bcachefs)
_NO_LINK_ERRNOS = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES}
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_TEMP = re.compile(r"\..*\.zoopm-(\d+)-[0-9a-f]{8}\.tmp")

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

    def is_intact(self, rel: str, placed: Placed) -> bool:
        """Whether rel is still what zoopm placed, judged by stat alone (no re-hash)."""
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

    def holds(self, rel: str, sha256: str) -> bool:
        """Whether rel is a regular file (or zoopm's blob link) whose bytes hash to sha256."""
        found = self._existing(rel)
        if found is None:
            return False
        fd, name = found
        info = _lstat_at(fd, name)
        if info is None:
            return False
        if stat.S_ISLNK(info.st_mode):
            with contextlib.suppress(OSError):
                return os.readlink(name, dir_fd=fd) == str(self._blob_path(sha256))
            return False
        if not stat.S_ISREG(info.st_mode):
            return False
        try:
            file_fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        except OSError:
            return False
        hasher = Hasher()
        with os.fdopen(file_fd, "rb") as stream:
            if not stat.S_ISREG(os.fstat(file_fd).st_mode):
                return False
            while chunk := stream.read(CHUNK_SIZE):
                hasher.update(chunk)
        return hasher.digest().sha256 == sha256

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

    def place(self, blob: Path, rel: str, sha256: str, mode: str, owned: Placed | None) -> Placed:
        """Puts blob at rel by mode (auto, hardlink, symlink, copy), in one rename.

        owned is the install record's entry for rel. The target is replaced only if the record
        says zoopm placed it, or if it already holds the same bytes; anything else is Refused.
        A new file is linked into place so that one appearing meanwhile is never overwritten.
        """
        parent, name = _split(rel)
        fd = self._open_dir(parent, create=True)
        assert fd is not None
        self._sweep(parent, fd)
        temp = _temp_name(name)
        try:
            how = _create(blob, fd, temp, mode)
        except InstallError:
            raise
        except OSError as exc:
            raise from_os_error(exc, self.root / parent_path(parent) / name) from None
        try:
            self._put(fd, (temp, name), rel, sha256, owned)
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError as exc:
            raise from_os_error(exc, self.root / rel) from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=fd)
        size = os.stat(blob).st_size if how == "symlink" else info.st_size
        return Placed(sha256, size, info.st_mtime_ns, info.st_ino, how)

    def _put(
        self, fd: int, names: tuple[str, str], rel: str, sha256: str, owned: Placed | None
    ) -> None:
        temp, name = names
        current = _lstat_at(fd, name)
        if current is None:
            try:
                # link(2) fails if the name appeared since the lstat: nothing is overwritten.
                os.link(temp, name, src_dir_fd=fd, dst_dir_fd=fd, follow_symlinks=False)
                return
            except FileExistsError:
                current = _lstat_at(fd, name)
            except OSError as exc:
                if exc.errno not in _NO_LINK_ERRNOS:
                    raise
        if current is not None and not self._mine(rel, current, sha256, owned):
            raise Refused(f"{self.root / rel}: exists and was not placed by zoopm")
        os.replace(temp, name, src_dir_fd=fd, dst_dir_fd=fd)

    def _mine(self, rel: str, current: os.stat_result, sha256: str, owned: Placed | None) -> bool:
        if stat.S_ISDIR(current.st_mode):
            return False
        if owned is not None and not owned.pending:
            return True
        # A pending entry or no entry: ours only if it holds the bytes zoopm meant to put there.
        candidates = {sha256} | ({owned.sha256} if owned is not None else set())
        return any(self.holds(rel, candidate) for candidate in candidates)

    def remove(self, rel: str, placed: Placed) -> bool:
        """Deletes what zoopm placed at rel (if it still is that), then emptied directories."""
        parent, name = _split(rel)
        found = self._existing(rel)
        if found is None:
            return True
        fd = found[0]
        current = _lstat_at(fd, name)
        if current is None:
            return True
        if not (self.is_intact(rel, placed) or (placed.pending and self.holds(rel, placed.sha256))):
            return False
        try:
            os.unlink(name, dir_fd=fd)
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
                return os.open(name, _DIR_FLAGS, dir_fd=up)
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
                if match and not pid_alive(int(match.group(1))):
                    with contextlib.suppress(OSError):
                        os.unlink(entry, dir_fd=fd)


def parent_path(parts: tuple[str, ...]) -> str:
    return "/".join(parts)


def _split(rel: str) -> tuple[tuple[str, ...], str]:
    parts = rel.split("/")
    return tuple(parts[:-1]), parts[-1]


def _lstat_at(fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _temp_name(name: str) -> str:
    return f".{name[:180]}.zoopm-{os.getpid()}-{secrets.token_hex(4)}.tmp"


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
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    dest = os.open(temp, flags, 0o444, dir_fd=fd)
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
        dest = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o444, dir_fd=fd)
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
