"""Placing store blobs into the models directory atomically, and the record of what was placed."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

from zoopm.atomic import atomic_write
from zoopm.errors import InstallError

RECORD_NAME = ".zoopm-installed.json"
RECORD_VERSION = 1
_FICLONE = 0x40049409  # Linux ioctl: share the source file's extents (btrfs, XFS, bcachefs)
_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
_NO_LINK_ERRNOS = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES}


@dataclass(frozen=True)
class Placed:
    """What one placed file looked like right after zoopm put it there."""

    sha256: str
    size: int
    mtime_ns: int
    inode: int
    how: str  # reflink, hardlink, symlink or copy


@dataclass(frozen=True)
class Record:
    """Every file a previous install placed, per model and relative path."""

    models: dict[str, dict[str, Placed]]

    def placed(self, model: str, path: str) -> Placed | None:
        return self.models.get(model, {}).get(path)


def read_record(models_dir: Path) -> Record:
    """The install record; an unreadable record counts as empty (files are then re-placed)."""
    try:
        data = json.loads((models_dir / RECORD_NAME).read_text(encoding="utf-8"))
        if data.get("version") != RECORD_VERSION:
            return Record({})
        return Record(
            {
                model: {path: Placed(**entry) for path, entry in files.items()}
                for model, files in data["models"].items()
            }
        )
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return Record({})


def write_record(models_dir: Path, record: Record) -> None:
    data = {
        "version": RECORD_VERSION,
        "models": {
            model: {path: asdict(placed) for path, placed in sorted(files.items())}
            for model, files in sorted(record.models.items())
            if files
        },
    }
    try:
        atomic_write(models_dir / RECORD_NAME, (json.dumps(data, indent=1) + "\n").encode())
    except OSError as exc:
        raise InstallError(f"{models_dir / RECORD_NAME}: cannot write: {exc}") from None


def is_intact(target: Path, placed: Placed) -> bool:
    """Whether target is still what zoopm placed, judged by stat alone (no re-hash)."""
    try:
        info = target.lstat()
    except OSError:
        return False
    if placed.how == "symlink":
        return stat.S_ISLNK(info.st_mode) and info.st_ino == placed.inode
    return (
        stat.S_ISREG(info.st_mode)
        and info.st_size == placed.size
        and info.st_mtime_ns == placed.mtime_ns
        and info.st_ino == placed.inode
    )


def place(blob: Path, target: Path, sha256: str, mode: str) -> Placed:
    """Puts blob at target by mode (auto, hardlink, symlink, copy); target changes in one rename."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InstallError(f"{target.parent}: cannot create directory: {exc.strerror}") from None
    temp = target.parent / f".{target.name}.zoopm-tmp-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()
    try:
        how = _create(blob, temp, mode)
        os.replace(temp, target)
        info = target.lstat()
    except InstallError:
        raise
    except OSError as exc:
        raise InstallError(f"{target}: cannot place file: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    return Placed(sha256, info.st_size, info.st_mtime_ns, info.st_ino, how)


def _create(blob: Path, temp: Path, mode: str) -> str:
    if mode == "symlink":
        os.symlink(blob, temp)
        return "symlink"
    if mode == "hardlink":
        try:
            os.link(blob, temp)
        except OSError as exc:
            raise InstallError(
                f"{temp.parent}: cannot hardlink from the store: {exc.strerror}",
                hint="the store and the models directory must be on one file system; "
                "use link-mode copy or auto",
            ) from None
        return "hardlink"
    if mode == "auto":
        if _reflink(blob, temp):
            return "reflink"
        try:
            os.link(blob, temp)
            return "hardlink"
        except OSError as exc:
            if exc.errno not in _NO_LINK_ERRNOS:
                raise
    shutil.copyfile(blob, temp)
    os.chmod(temp, _READ_ONLY)
    return "copy"


def _reflink(blob: Path, temp: Path) -> bool:
    try:
        import fcntl
    except ImportError:
        return False
    source = os.open(blob, os.O_RDONLY)
    try:
        dest = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            fcntl.ioctl(dest, _FICLONE, source)
            return True
        except OSError:
            os.close(dest)
            dest = -1
            temp.unlink()
            return False
        finally:
            if dest >= 0:
                os.close(dest)
    finally:
        os.close(source)


def remove(target: Path, stop_at: Path) -> None:
    """Deletes a placed file, then the directories it leaves empty, up to stop_at."""
    try:
        target.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise InstallError(f"{target}: cannot remove: {exc.strerror}") from None
    parent = target.parent
    while parent != stop_at and stop_at in parent.parents:
        try:
            parent.rmdir()
        except OSError:
            break
        parent = parent.parent
