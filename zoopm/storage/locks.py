"""Locks between processes: they name whom they wait for and give up after a bound (filelock)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from zoopm.atomic import TooLarge, atomic_write, read_regular
from zoopm.errors import BusyError, from_os_error
from zoopm.tasks import CancelToken

_POLL_SECONDS = 0.1
_SAY_AFTER_SECONDS = 1.0


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (zoopm's own pid counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError, ValueError):
        return pid > 0 and pid < 1 << 31
    return True


@functools.cache
def host_tag() -> str:
    """A short tag of this machine's name, put in temp file names: a store or models directory
    shared with another machine or container is never swept of that one's live files."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


@contextlib.contextmanager
def hold_lock(
    path: Path,
    what: str,
    *,
    timeout: float,
    token: CancelToken | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Holds the lock file at path; waits at most timeout seconds, saying once whom it waits for.

    The holder writes its pid and host beside the lock, so a waiter can name it. Ctrl-C (the
    token) ends the wait at once.
    """
    from filelock import FileLock, Timeout

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise from_os_error(exc, path.parent) from None
    lock = FileLock(str(path), thread_local=False)
    start = time.monotonic()
    told = False
    while True:
        try:
            lock.acquire(timeout=_POLL_SECONDS, poll_interval=_POLL_SECONDS / 2)
            break
        except Timeout:
            pass
        except OSError as exc:
            raise from_os_error(exc, path) from None
        if token is not None:
            token.check()
        waited = time.monotonic() - start
        if not told and waited >= _SAY_AFTER_SECONDS and on_wait is not None:
            on_wait(f"waiting for {_holder(path)} ({what})")
            told = True
        if waited >= timeout:
            raise BusyError(
                f"{path}: {_holder(path)} has held this lock for over {timeout:.0f} s ({what})",
                hint="if that zoopm is stopped (Ctrl-Z) resume or end it; ZOOPM_LOCK_TIMEOUT sets "
                "how long to wait",
            )
    owner = path.with_name(path.name + ".owner")
    with contextlib.suppress(OSError):
        # A rename, never a write into what is there: a symlink or hard link planted at the
        # owner file's name is replaced, not written through.
        note = f"{os.getpid()} {socket.gethostname()}\n".encode()
        atomic_write(owner, note, mode=0o644, durable=False)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            owner.unlink()
        lock.release()


def _holder(path: Path) -> str:
    owner = path.with_name(path.name + ".owner")
    try:
        text = read_regular(owner, 4096, follow=False).decode("utf-8", "replace")
    except (OSError, TooLarge):
        return "another zoopm process"
    pid, _, host = text.strip().partition(" ")
    if not (pid.isascii() and pid.isdigit()) or len(pid) > 10:
        return "another zoopm process"
    here = host == socket.gethostname()
    return f"zoopm process {pid}" + ("" if here else f" on {host}")
