"""Link notes: each blob's inode and ctime right after zoopm last hard-linked it.

A hard link shares the blob's inode, and every new link moves that inode's ctime, seen through
every name it has: installing a model in one project makes every other project's placed copy of
the same blob look touched. A write that puts the size, mtime and mode back moves the ctime
too. Without a note only the bytes can tell the two apart (a hash, per byte); with one, a stat
does: if the inode's ctime is still the one zoopm wrote down after its last link, nothing but
zoopm has changed the inode since. And before a blob is linked again, a ctime that is not the
noted one means something else changed it: the blob is hashed first.

A note is written only for an inode whose bytes zoopm has just checked: a blob published or
proved by hashing, an inode zoopm linked after its note matched (or after hashing it), a placed
file hashed because its ctime moved. Removing a link moves the ctime too (deleting an old
checkout touches every blob it shared), so the next link of such a blob hashes it once, and
notes it again for everyone else.

Notes live in store/linked/<sha256[:2]>/<sha256> as "<inode> <ctime_ns> <links>". They are a
cache: a missing, unreadable or odd note only means the slower check (hashing) is made.
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


def read_note(store_root: Path, sha256: str) -> tuple[int, int, int] | None:
    """(inode, ctime_ns, link count) as noted, or None."""
    if _linked_away(store_root):
        return None
    try:
        text = read_regular(note_path(store_root, sha256), 96, follow=False).decode("ascii")
    except (OSError, TooLarge, UnicodeDecodeError):
        return None
    fields = text.split()
    if len(fields) != 3 or not all(field.isdigit() for field in fields):
        return None
    return int(fields[0]), int(fields[1]), int(fields[2])


def zoopm_was_last(store_root: Path, sha256: str, info: os.stat_result) -> bool:
    """Whether info (an lstat of the blob, or of a file sharing its inode) shows the inode as
    zoopm left it after its last link: nothing else has changed it since."""
    note = read_note(store_root, sha256)
    return note is not None and note[:2] == (info.st_ino, info.st_ctime_ns)


def write_note(store_root: Path, sha256: str, info: os.stat_result) -> None:
    """Notes info (of the blob's inode, as zoopm just left it or just proved it)."""
    if _linked_away(store_root):
        return
    path = note_path(store_root, sha256)
    if os.path.islink(path.parent):
        return
    text = f"{info.st_ino} {info.st_ctime_ns} {info.st_nlink}\n"
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text.encode(), durable=False)


def _linked_away(store_root: Path) -> bool:
    """Whether the notes directory (or its fan-out) is a symlink: not the store's own, so
    nothing is written or removed through it (and no note read through it is believed)."""
    return os.path.islink(store_root / NOTES_DIR)


def forget_notes(store_root: Path, sha256s: Iterable[str]) -> None:
    """Drops the notes of blobs gc removed (a note of a missing blob is harmless, just litter)."""
    if _linked_away(store_root):
        return
    for sha256 in sha256s:
        path = note_path(store_root, sha256)
        if os.path.islink(path.parent):
            continue
        with contextlib.suppress(OSError):
            os.unlink(path)
