"""Locks between processes: they name whom they wait for and give up after a bound.

flock(2) throughout: the kernel lets go when a holder dies (even after SIGKILL), and the
store-wide lock needs its shared mode. (filelock was used before; it cost 25 ms of imports on
every command that takes a lock, for portability zoopm has no use for: it needs POSIX anyway.)
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import secrets
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
    """A short tag of this machine's name and process-id namespace, put in temp file names: a
    store or models directory shared with another machine or container (even one with the
    same host name, whose process ids this one cannot see) is never swept of its live files."""
    namespace = ""
    with contextlib.suppress(OSError):
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    return hashlib.sha256(f"{socket.gethostname()}\0{namespace}".encode()).hexdigest()[:8]


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
    token) ends the wait at once. flock(2), so the kernel lets go when the holder dies.
    """
    # The note is replaced by a rename, never written into: a symlink or hard link planted at
    # the owner file's name is replaced, not written through.
    with _holding(
        path,
        _exclusive(),
        note=path.with_name(path.name + ".owner"),
        note_text=f"{os.getpid()} {socket.gethostname()}\n",
        timeout=timeout,
        token=token,
        on_wait=on_wait,
        waiting=lambda: f"waiting for {_holder(path)} ({what})",
        busy=lambda: (
            f"{path}: {_holder(path)} has held this lock for over {timeout:.0f} s ({what})"
        ),
    ):
        yield


@contextlib.contextmanager
def _holding(
    path: Path,
    kind: int,
    *,
    note: Path,
    note_text: str,
    timeout: float,
    token: CancelToken | None,
    on_wait: Callable[[str], None] | None,
    waiting: Callable[[], str],
    busy: Callable[[], str],
    when_taken: Callable[[], None] | None = None,
) -> Iterator[None]:
    """Holds the flock of kind on the lock file at path, with a note naming the holder beside
    it while held (see _take for the waiting)."""
    fd = _open_lock(path)
    try:
        _take(
            fd,
            kind,
            path,
            timeout=timeout,
            token=token,
            on_wait=on_wait,
            waiting=waiting,
            busy=busy,
        )
        if when_taken is not None:
            when_taken()
        with contextlib.suppress(OSError):
            atomic_write(note, note_text.encode(), mode=0o644, durable=False)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                note.unlink()
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def _open_lock(path: Path) -> int:
    """The lock file's descriptor, created if need be; never through a symlink at its name
    (the file's bytes are never used: only its flock)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise from_os_error(exc, path) from None


def _exclusive() -> int:
    import fcntl

    return fcntl.LOCK_EX


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


@contextlib.contextmanager
def hold_store_lock(
    path: Path,
    what: str,
    *,
    shared: bool,
    timeout: float,
    token: CancelToken | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Holds the store-wide lock at path: shared by installs, exclusive for gc (flock(2)).

    Installs and locks hold it shared while they fetch, place and register, so any number run
    at once; gc holds it exclusive, so it never sees a blob written by a zoopm that has not yet
    registered the lock needing it. The kernel drops the lock when its holder dies (even after
    SIGKILL). Waiting is as in hold_lock: the holders are named after a second, Ctrl-C ends the
    wait, and after timeout seconds it gives up naming them. Each holder leaves its own note
    beside the lock (shared holders are many), removed when it lets go.
    """
    import fcntl

    with _holding(
        path,
        fcntl.LOCK_SH if shared else fcntl.LOCK_EX,
        note=path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.owner"),
        note_text=f"{os.getpid()} {socket.gethostname()}\n{what}\n",
        timeout=timeout,
        token=token,
        on_wait=on_wait,
        waiting=lambda: f"waiting for {_store_holders(path)} to let go of the store",
        busy=lambda: f"{path}: {_store_holders(path)} has held the store for over {timeout:.0f} s",
        when_taken=None if shared else lambda: _sweep_notes(path),
    ):
        yield


def _take(
    fd: int,
    kind: int,
    path: Path,
    *,
    timeout: float,
    token: CancelToken | None,
    on_wait: Callable[[str], None] | None,
    waiting: Callable[[], str],
    busy: Callable[[], str],
) -> None:
    """Takes the flock of kind on fd, polling: Ctrl-C ends the wait, waiting() is said once
    after a second, and after timeout seconds BusyError(busy()) gives up."""
    import fcntl

    start = time.monotonic()
    told = False
    while True:
        try:
            fcntl.flock(fd, kind | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        except OSError as exc:
            raise from_os_error(exc, path) from None
        if token is not None:
            token.check()
        waited = time.monotonic() - start
        if not told and waited >= _SAY_AFTER_SECONDS and on_wait is not None:
            on_wait(waiting())
            told = True
        if waited >= timeout:
            raise BusyError(
                busy(),
                hint="if that zoopm is stopped (Ctrl-Z) resume or end it; ZOOPM_LOCK_TIMEOUT sets "
                "how long to wait",
            )
        # The token's sleep wakes the moment the run is cancelled (Ctrl-C seen by another thread).
        (token.sleep if token is not None else time.sleep)(_POLL_SECONDS)


def _sweep_notes(path: Path) -> None:
    """Removes the notes of holders that died without removing theirs (SIGKILL): taken while
    the lock is held exclusive, so a note whose pid does not run here is no live holder's."""
    with contextlib.suppress(OSError):
        for entry in os.listdir(path.parent):
            if not (entry.startswith(path.name + ".") and entry.endswith(".owner")):
                continue
            pid = entry[len(path.name) + 1 :].split(".", 1)[0]
            if pid.isascii() and pid.isdigit() and len(pid) <= 10 and not pid_alive(int(pid)):
                with contextlib.suppress(OSError):
                    os.unlink(path.parent / entry)


def _store_holders(path: Path) -> str:
    """The holders of a store lock, named from their notes: 'zoopm process 12 (installing …)'."""
    named: list[str] = []
    with contextlib.suppress(OSError):
        for entry in sorted(os.listdir(path.parent))[:1000]:
            if not (entry.startswith(path.name + ".") and entry.endswith(".owner")):
                continue
            try:
                raw = read_regular(path.parent / entry, 4096, follow=False)
                text = raw.decode("utf-8", "replace")
            except (OSError, TooLarge):
                continue
            first, _, doing = text.partition("\n")
            pid, _, host = first.strip().partition(" ")
            if not (pid.isascii() and pid.isdigit()) or len(pid) > 10:
                continue
            if host == socket.gethostname() and not pid_alive(int(pid)):
                continue  # a note left by a process that was killed
            here = "" if host == socket.gethostname() else f" on {host}"
            doing = " ".join(doing.split())[:200]
            named.append(f"zoopm process {pid}{here}" + (f" ({doing})" if doing else ""))
    if not named:
        return "another zoopm process"
    more = f" and {len(named) - 3} more" if len(named) > 3 else ""
    return ", ".join(named[:3]) + more
