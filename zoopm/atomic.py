"""Careful file I/O: atomic writes (old bytes or new, never half), bounded non-blocking reads."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

# What open(2) asks for when a program makes an ordinary file; the kernel takes the umask off.
_USUAL_MODE = 0o666
# The open(2) flags of every careful read, directory walk and new file: never through a
# symlink, never blocking on a FIFO put where a file should be, never inherited by a child.
CLOEXEC = getattr(os, "O_CLOEXEC", 0)
READ_NO_FOLLOW = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | CLOEXEC
DIR_NO_FOLLOW = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | CLOEXEC
NEW_FILE_NO_FOLLOW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | CLOEXEC


def atomic_write(path: Path, data: bytes, *, mode: int | None = None, durable: bool = True) -> None:
    """Writes data to a temp file beside path, fsyncs it, then renames it over path.

    The file gets mode when given; otherwise a file being replaced keeps its permission bits and
    a new file gets the usual mode under the umask (0666 & ~umask), as any editor would give it.
    durable=False skips the fsyncs, for notes that only matter while this process runs.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    wanted = mode if mode is not None else _existing_mode(path)
    fd, temp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            if wanted is not None:
                os.fchmod(handle.fileno(), wanted)
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_create(path: Path, data: bytes) -> None:
    """Writes a new file at path, whole or not at all, only where nothing is: a file (or a
    link) that appeared at path meanwhile is never replaced; FileExistsError says so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temp, path, follow_symlinks=False)  # fails where anything is, unlike a rename
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    fsync_dir(path.parent)


def _existing_mode(path: Path) -> int | None:
    """The permission bits of the regular file being replaced; None for anything else (a
    symlink planted there must not lend its target's mode to what replaces it)."""
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return stat.S_IMODE(info.st_mode) & 0o777 if stat.S_ISREG(info.st_mode) else None


def _create_temp(path: Path) -> tuple[int, Path]:
    """A new, empty, uniquely named file beside path, created with the usual mode.

    Not tempfile.mkstemp: it creates files 0600, and that mode would survive the rename.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        temp = path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp"
        try:
            return os.open(temp, flags, _USUAL_MODE), temp
        except FileExistsError:
            continue


def fsync_dir(path: Path) -> None:
    """Makes a rename in path durable; a no-op where directories cannot be fsynced."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class TooLarge(Exception):
    """read_regular found more bytes than its limit."""


def read_regular(path: Path, limit: int, *, follow: bool = True) -> bytes:
    """The bytes of the regular file at path, refusing what is not one or is over limit.

    A FIFO, a device (/dev/zero) or a directory put where a small file should be raises
    OSError (EINVAL, or what open says) instead of hanging or filling memory; a file larger
    than limit raises TooLarge. follow=False also refuses a symlink (ELOOP).
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow:
        flags |= os.O_NOFOLLOW
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as stream:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(22, "not a regular file", str(path))
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(str(path))
    return data
