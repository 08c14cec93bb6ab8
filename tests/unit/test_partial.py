"""Store.clean_partials: what gc (and each download) removes from the store's tmp/."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from zoopm.digest import digest_bytes
from zoopm.storage.locks import host_tag
from zoopm.storage.partial import STALE_SECONDS, ResumeKey
from zoopm.storage.store import Expected, Store

DAY = 24 * 3600.0


def _kept(tmp: Path, key: str, size: int, *, age: float = 0.0, host: str | None = None) -> Path:
    """A kept partial of size bytes with its sidecar, last touched age seconds ago."""
    stem = f"dl-{host or host_tag()}-{key}"
    part = tmp / f"{stem}.part"
    part.write_bytes(b"k" * size)
    sidecar = tmp / f"{stem}.json"
    pins = {"size": None, "sha1": None, "sha256": None}
    sidecar.write_text(
        json.dumps({"version": 1, "url": "http://x/y", "validator": '"v"', "size": 0, "pins": pins})
    )
    when = time.time() - age
    for path in (part, sidecar):
        os.utime(path, (when, when))
    return part


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


def test_stale_partials_of_this_host_go_and_everything_else_stays(tmp_path: Path) -> None:
    store = Store(tmp_path)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    stale = _kept(tmp, "sha256-" + "a" * 64, 1000, age=8 * DAY)
    fresh = _kept(tmp, "sha256-" + "b" * 64, 2000, age=1 * DAY)
    elsewhere = _kept(tmp, "sha256-" + "c" * 64, 3000, age=30 * DAY, host="00000000")
    live = _kept(tmp, "sha1-" + "d" * 40, 4000, age=30 * DAY)
    dead_temp = tmp / f"blob-{host_tag()}-{_dead_pid()}-xyz.part"
    dead_temp.write_bytes(b"t" * 500)
    own_temp = tmp / f"blob-{host_tag()}-{os.getpid()}-xyz.part"
    own_temp.write_bytes(b"mine")
    fd = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a live process writing it

        removed = store.clean_partials(STALE_SECONDS)
    finally:
        os.close(fd)

    assert removed == (2, 1500)
    assert not stale.exists() and not stale.with_suffix(".json").exists()
    assert not dead_temp.exists()
    for kept in (fresh, elsewhere, live, own_temp):
        assert kept.exists()
    assert fresh.with_suffix(".json").exists()


def test_a_partial_whose_blob_is_stored_or_that_lost_its_sidecar_goes_at_once(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path)
    digest = digest_bytes(b"the whole blob")
    store.add_bytes(b"the whole blob", Expected(sha256=digest.sha256), "blob")
    tmp = tmp_path / "tmp"
    _kept(tmp, f"sha256-{digest.sha256}", 100)
    half = _kept(tmp, "sha256-" + "e" * 64, 200)
    half.with_suffix(".json").unlink()
    orphan = _kept(tmp, "sha256-" + "f" * 64, 300).with_suffix(".json")
    orphan.with_suffix(".part").unlink()

    assert store.clean_partials(STALE_SECONDS) == (3, 300)
    assert sorted(tmp.iterdir()) == []


def test_clean_partials_of_a_store_without_tmp_removes_nothing(tmp_path: Path) -> None:
    assert Store(tmp_path / "none").clean_partials(0.0) == (0, 0)


def test_a_partial_another_process_is_writing_is_left_alone_and_a_temp_file_used(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path)
    data = b"the blob" * 1000
    digest = digest_bytes(data)
    key = ResumeKey(f"sha256-{digest.sha256}", "http://host/blob")
    (tmp_path / "tmp").mkdir()
    busy = _kept(tmp_path / "tmp", key.key, 10)
    fd = os.open(busy, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another zoopm is writing it

        with store.writer(Expected(sha256=digest.sha256), "blob", resume=key) as writer:
            assert writer.written == 0
            writer.write(data)
            blob = writer.commit()
    finally:
        os.close(fd)

    assert blob.path.read_bytes() == data
    assert busy.read_bytes() == b"k" * 10
