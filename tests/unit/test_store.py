"""The store: verified, read-only, content-addressed blobs that never appear half-written."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from pathlib import Path

import pytest

from zoopm.errors import IntegrityError, ZoopmError
from zoopm.storage.store import Expected, Store

DATA = b"caffe weights" * 1000
SHA256 = hashlib.sha256(DATA).hexdigest()
SHA1 = hashlib.sha1(DATA).hexdigest()


def write(store: Store, data: bytes, expected: Expected) -> Path:
    with store.writer(expected, "test blob") as writer:
        for start in range(0, len(data), 4096):
            writer.write(data[start : start + 4096])
        return writer.commit().path


def test_a_blob_is_named_by_sha256_under_a_two_character_fan_out(tmp_path: Path) -> None:
    store = Store(tmp_path)

    path = write(store, DATA, Expected())

    assert path == tmp_path / "sha256" / SHA256[:2] / SHA256
    assert path.read_bytes() == DATA
    assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def test_a_caffe_sha1_finds_its_blob_through_the_alias(tmp_path: Path) -> None:
    store = Store(tmp_path)
    write(store, DATA, Expected())

    found = store.find_by_sha1(SHA1.upper())
    assert found is not None and found.sha256 == SHA256
    assert store.find_by_sha1("0" * 40) is None


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        (Expected(sha1="0" * 40), f"sha1 mismatch: expected {'0' * 40}, got {SHA1}"),
        (Expected(sha256="f" * 64), f"sha256 mismatch: expected {'f' * 64}, got {SHA256}"),
        (Expected(size=len(DATA) + 1), "size mismatch"),
        (Expected(size=10), "more than the pinned 10 bytes arrived"),
    ],
)
def test_bytes_that_do_not_match_leave_nothing_in_the_store(
    tmp_path: Path, expected: Expected, message: str
) -> None:
    store = Store(tmp_path)

    with pytest.raises(IntegrityError) as caught:
        write(store, DATA, expected)

    assert message in caught.value.message
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_an_abandoned_writer_removes_its_temp_file(tmp_path: Path) -> None:
    store = Store(tmp_path)

    with pytest.raises(RuntimeError), store.writer(Expected(), "x") as writer:
        writer.write(b"half")
        raise RuntimeError("connection lost")

    assert list((tmp_path / "tmp").iterdir()) == []


def test_reset_starts_the_hash_over(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with store.writer(Expected(sha256=SHA256), "x") as writer:
        writer.write(b"garbage from a server that ignored Range")
        writer.reset()
        writer.write(DATA)
        blob = writer.commit()

    assert blob.digest.sha256 == SHA256


def test_two_writers_of_the_same_bytes_both_succeed(tmp_path: Path) -> None:
    store = Store(tmp_path)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            write(store, DATA, Expected(sha256=SHA256))
        except BaseException as exc:  # pragma: no cover - the assertion reports it
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert store.verify(SHA256)


def test_verify_notices_a_blob_whose_bytes_changed(tmp_path: Path) -> None:
    store = Store(tmp_path)
    path = write(store, DATA, Expected())
    path.chmod(0o644)
    path.write_bytes(b"bit rot")

    assert not store.verify(SHA256)


def test_ctrl_c_while_the_writer_thread_is_behind_never_lets_it_write_into_another_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib
    import signal
    import threading
    import time

    import zoopm.storage.store as store_module

    real = store_module._write_all

    def slow_disk(fd: int, data: bytes | memoryview) -> None:
        time.sleep(0.1)  # each MiB takes a while: the writer thread falls behind
        real(fd, data)

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(store_module, "_write_all", slow_disk)
    previous = signal.signal(signal.SIGINT, interrupt)
    data = b"B" * (12 << 20)
    store = Store(tmp_path / "store")
    writer = store.writer(Expected(size=len(data), sha256=hashlib.sha256(data).hexdigest()), "b")
    for start in range(0, len(data), 1 << 20):
        writer.write(data[start : start + (1 << 20)])
    threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    try:
        with pytest.raises(KeyboardInterrupt):
            writer.commit()  # Ctrl-C lands while commit waits for the thread
        # The next files the process opens get the lowest free descriptor numbers, the
        # writer's old one among them.
        victims = [tmp_path / f"record-{n}.json" for n in range(64)]
        fds = [os.open(v, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) for v in victims]
        for fd in fds:
            os.write(fd, b"{}\n")
        time.sleep(1.5)  # long enough for a lost thread to write what it still had queued
        for fd in fds:
            os.close(fd)
    finally:
        signal.signal(signal.SIGINT, previous)

    assert {v.read_bytes() for v in victims} == {b"{}\n"}
    assert not list((tmp_path / "store" / "sha256").rglob("*"))


def test_an_interrupted_run_drops_the_temp_files_a_busy_thread_still_writes(
    tmp_path: Path,
) -> None:
    """A Ctrl-C ends the run about a second after it cancels its threads; one still inside a
    slow read must not leave its half-written temp file behind."""
    store = Store(tmp_path / "store")
    data = b"weights" * 1000
    writer = store.writer(Expected(sha256=hashlib.sha256(data).hexdigest()), "slow")
    writer.write(data[:100])  # the thread is here, waiting for its next bytes

    assert store.drop_temps() == 1

    assert list((tmp_path / "store" / "tmp").iterdir()) == []
    writer.write(data[100:])  # what it writes now goes nowhere
    with pytest.raises(ZoopmError):
        writer.commit()
    writer.abort()
    assert store.get(hashlib.sha256(data).hexdigest()) is None
    assert list((tmp_path / "store" / "tmp").iterdir()) == []
