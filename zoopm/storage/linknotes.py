"""Link notes: each blob's inode and ctime right after zoopm last hard-linked it.

A hard link shares the blob's inode, and every new link moves that inode's ctime, seen through
every name it has: installing a model in one project makes every other project's placed copy of
the same blob look touched. A write that puts the size, mtime and mode back moves the ctime
too. Without a note only the bytes can tell the two apart (a hash, per byte); with one, a stat
does: if the inode's ctime is still the one zoopm wrote down after its last link, nothing but
zoopm has changed the inode since. And before a blob is linked again, a ctime that is not the
noted one means something else changed it: the blob is hashed first.

Notes live in store/linked/<sha256[:2]>/<sha256> as "<inode> <ctime_ns>". They are a cache: a
missing, unreadable or odd note only means the slower check (hashing) is made.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from zoopm.atomic import TooLarge, atomic_write, read_regular

NOTES_DIR = "linked"


def note_path(store_root: Path, sha256: str) -> Path:
    return store_root / NOTES_DIR / sha256[:2] / sha256


def read_note(store_root: Path, sha256: str) -> tuple[int, int] | None:
    try:
        text = read_regular(note_path(store_root, sha256), 64, follow=False).decode("ascii")
    except (OSError, TooLarge, UnicodeDecodeError):
        return None
    inode, _, ctime = text.strip().partition(" ")
    if not (inode.isdigit() and ctime.isdigit()):
        return None
    return int(inode), int(ctime)


def zoopm_was_last(store_root: Path, sha256: str, info: os.stat_result) -> bool:
    """Whether info (an lstat of the blob, or of a file sharing its inode) shows the inode as
    zoopm left it after its last link: nothing else has changed it since."""
    return read_note(store_root, sha256) == (info.st_ino, info.st_ctime_ns)


def changed_since_linked(store_root: Path, sha256: str, info: os.stat_result) -> bool:
    """Whether the blob has a note that info contradicts: something but zoopm changed it."""
    note = read_note(store_root, sha256)
    return note is not None and note != (info.st_ino, info.st_ctime_ns)


def write_note(store_root: Path, sha256: str, inode: int, ctime_ns: int) -> None:
    path = note_path(store_root, sha256)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, f"{inode} {ctime_ns}\n".encode(), durable=False)


def forget_notes(store_root: Path, sha256s: Iterable[str]) -> None:
    """Drops the notes of blobs gc removed (a note of a missing blob is harmless, just litter)."""
    for sha256 in sha256s:
        with contextlib.suppress(OSError):
            os.unlink(note_path(store_root, sha256))
