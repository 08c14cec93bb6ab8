"""Link notes: each blob's inode and ctime right after zoopm last hard-linked it.

A hard link shares the blob's inode, and every new link moves that inode's ctime, seen through
every name it has: installing a model in one project makes every other project's placed copy of
the same blob look touched. A write that puts the size, mtime and mode back moves the ctime
too. Without a note only the bytes can tell the two apart (a hash, per byte); with one, a stat
does: if the inode's ctime is still the one zoopm wrote down after its last link, nothing but
zoopm has changed the inode since. And before a blob is linked again, a ctime that is not the
noted one means something else changed it: the blob is hashed first.

Removing a link moves the ctime too (and lowers the link count): deleting an old checkout
touches every blob it shared. Before linking, a blob that only lost links since its note is
trusted by its stat, as it was before notes existed; a placed file in that state is hashed
once, by the first install that sees it, which then notes the inode again for the others.

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


def changed_since_linked(store_root: Path, sha256: str, info: os.stat_result) -> bool:
    """Whether the blob's note shows something other than zoopm changed it since its last link
    (other than removing links: see the module's docstring)."""
    note = read_note(store_root, sha256)
    if note is None or note[:2] == (info.st_ino, info.st_ctime_ns):
        return False
    inode, _, links = note
    return inode != info.st_ino or info.st_nlink >= links


def write_note(store_root: Path, sha256: str, info: os.stat_result) -> None:
    """Notes info (of the blob's inode, as zoopm just left it or just proved it)."""
    path = note_path(store_root, sha256)
    text = f"{info.st_ino} {info.st_ctime_ns} {info.st_nlink}\n"
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text.encode(), durable=False)


def forget_notes(store_root: Path, sha256s: Iterable[str]) -> None:
    """Drops the notes of blobs gc removed (a note of a missing blob is harmless, just litter)."""
    for sha256 in sha256s:
        with contextlib.suppress(OSError):
            os.unlink(note_path(store_root, sha256))
