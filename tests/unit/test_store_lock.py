"""The store lock: shared holders run side by side, an exclusive one waits for them all, names
them, gives up after its timeout, and stops waiting at once when cancelled (Ctrl-C)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from zoopm.errors import BusyError, Cancelled, FileSystemError
from zoopm.storage.locks import hold_store_lock
from zoopm.tasks import CancelToken


@contextlib.contextmanager
def held(path: Path, what: str, *, shared: bool) -> Iterator[None]:
    """The lock held by a thread of this process (its own open file, as another process would)."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with hold_store_lock(path, what, shared=shared, timeout=5):
            taken.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    assert taken.wait(10)
    try:
        yield
    finally:
        release.set()
        thread.join()


def take(path: Path, what: str, **options: Any) -> None:
    """Takes the lock and lets go at once (raising what waiting for it raised)."""
    with hold_store_lock(path, what, **options):
        pass


def test_shared_holders_run_side_by_side(tmp_path: Path) -> None:
    lock = tmp_path / "store.lock"
    with held(lock, "installing a", shared=True):
        started = time.monotonic()
        with hold_store_lock(lock, "installing b", shared=True, timeout=5):
            assert time.monotonic() - started < 1


def test_an_exclusive_holder_gives_up_naming_every_shared_one(tmp_path: Path) -> None:
    lock = tmp_path / "store.lock"
    told: list[str] = []
    with (
        held(lock, "installing in /a", shared=True),
        held(lock, "installing in /b", shared=True),
        pytest.raises(BusyError) as caught,
    ):
        take(lock, "gc", shared=False, timeout=1.5, on_wait=told.append)
    me = f"zoopm process {os.getpid()}"
    assert f"{me} (installing in /a)" in caught.value.message
    assert f"{me} (installing in /b)" in caught.value.message
    assert told and told[0].startswith(f"waiting for {me}")


def test_a_shared_holder_waits_for_an_exclusive_one(tmp_path: Path) -> None:
    lock = tmp_path / "store.lock"
    with held(lock, "collecting garbage", shared=False), pytest.raises(BusyError) as caught:
        take(lock, "installing", shared=True, timeout=1)
    assert "(collecting garbage)" in caught.value.message


def test_cancelling_ends_the_wait_at_once(tmp_path: Path) -> None:
    lock = tmp_path / "store.lock"
    token = CancelToken()
    threading.Timer(0.3, token.cancel).start()
    started = time.monotonic()
    with held(lock, "installing", shared=True), pytest.raises(Cancelled):
        take(lock, "gc", shared=False, timeout=60, token=token)
    assert time.monotonic() - started < 3


def test_a_killed_holder_leaves_the_store_free(tmp_path: Path) -> None:
    lock = tmp_path / "store.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from zoopm.storage.locks import hold_store_lock\n"
            "with hold_store_lock(Path(sys.argv[1]), 'installing', shared=False, timeout=5):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(60)\n",
            str(lock),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    with pytest.raises(BusyError) as caught:
        take(lock, "gc", shared=False, timeout=0.5)
    assert f"zoopm process {holder.pid} (installing)" in caught.value.message
    holder.kill()
    holder.wait()
    assert list(tmp_path.glob("store.lock.*.owner"))  # SIGKILL left its note behind

    take(lock, "gc", shared=False, timeout=5)

    assert not list(tmp_path.glob("store.lock.*.owner"))  # swept by the next exclusive holder


def test_a_symlink_planted_at_the_lock_is_never_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    lock = tmp_path / "store.lock"
    lock.symlink_to(victim)

    with pytest.raises(FileSystemError) as caught:
        take(lock, "gc", shared=False, timeout=1)

    assert "store.lock" in str(caught.value)
    assert victim.read_text() == "precious\n"
