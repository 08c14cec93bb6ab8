"""Locks between processes: they name whom they wait for and give up after a bound (filelock)."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

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
    except OSError:
        return True
    return True


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
        owner.write_text(f"{os.getpid()} {socket.gethostname()}\n", encoding="utf-8")
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            owner.unlink()
        lock.release()


def _holder(path: Path) -> str:
    owner = path.with_name(path.name + ".owner")
    try:
        pid, _, host = owner.read_text(encoding="utf-8").strip().partition(" ")
    except OSError:
        return "another zoopm process"
    if not pid.isdigit():
        return "another zoopm process"
    here = host == socket.gethostname()
    return f"zoopm process {pid}" + ("" if here else f" on {host}")
