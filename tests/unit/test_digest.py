"""Hashing off the reader's critical path gives exactly the hashes of the bytes, and a large blob
written through threads is the blob hashed, also when it starts over or fails."""

from __future__ import annotations

import hashlib
import io
import random
import threading
from pathlib import Path

import pytest

from zoopm.digest import PARALLEL_AFTER, Hasher, digest_stream
from zoopm.errors import IntegrityError
from zoopm.storage.store import Expected, Store

SIZES = [0, 1, PARALLEL_AFTER - 1, PARALLEL_AFTER, PARALLEL_AFTER + 1, 3 * PARALLEL_AFTER + 12345]


def _chunks(data: bytes, rng: random.Random) -> list[bytes]:
    """data cut at random points, as a socket hands it over."""
    out, at = [], 0
    while at < len(data):
        step = rng.choice((1, 100, 4096, 65536, 1 << 20, 3 << 20))
        out.append(data[at : at + step])
        at += step
    return out


@pytest.mark.parametrize("size", SIZES)
def test_a_parallel_hasher_gives_the_hashes_of_the_bytes_however_they_are_cut(size: int) -> None:
    rng = random.Random(size)
    data = rng.randbytes(size)
    hasher = Hasher(parallel=True)

    for chunk in _chunks(data, rng):
        hasher.update(chunk)
    digest = hasher.digest()

    assert digest.size == size
    assert digest.sha1 == hashlib.sha1(data, usedforsecurity=False).hexdigest()
    assert digest.sha256 == hashlib.sha256(data).hexdigest()


def test_digest_stream_of_a_large_stream_matches_hashlib() -> None:
    data = random.Random(3).randbytes(5 * PARALLEL_AFTER + 7)

    digest = digest_stream(io.BytesIO(data))

    assert (digest.sha1, digest.sha256) == (
        hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        hashlib.sha256(data).hexdigest(),
    )


def test_an_abandoned_parallel_hasher_leaves_no_thread_behind() -> None:
    before = {t for t in threading.enumerate() if t.name == "zoopm-hash"}
    hasher = Hasher(parallel=True)
    for _ in range(20):
        hasher.update(b"x" * (1 << 20))
    hasher.close()

    for thread in {t for t in threading.enumerate() if t.name == "zoopm-hash"} - before:
        thread.join(5)
        assert not thread.is_alive()


def test_a_large_blob_written_through_threads_is_the_blob_hashed_also_after_a_reset(
    tmp_path: Path,
) -> None:
    rng = random.Random(5)
    data = rng.randbytes(6 * PARALLEL_AFTER + 99)
    store = Store(tmp_path)
    expected = Expected(sha256=hashlib.sha256(data).hexdigest())

    with store.writer(expected, "big") as writer:
        # A server that ignored a resume request: all of it, longer than the blob, thrown away.
        for chunk in _chunks(rng.randbytes(9 * PARALLEL_AFTER), rng):
            writer.write(chunk)
        writer.reset()
        for chunk in _chunks(data, rng):
            writer.write(chunk)
        blob = writer.commit()

    assert blob.path.read_bytes() == data
    assert [p for p in (tmp_path / "tmp").iterdir()] == []


def test_a_large_blob_with_one_wrong_byte_never_reaches_the_store(tmp_path: Path) -> None:
    data = random.Random(6).randbytes(6 * PARALLEL_AFTER)
    store = Store(tmp_path)
    expected = Expected(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    wrong = bytearray(data)
    wrong[len(data) // 2] ^= 1

    with pytest.raises(IntegrityError), store.writer(expected, "big") as writer:
        for start in range(0, len(wrong), 1 << 20):
            writer.write(bytes(wrong[start : start + (1 << 20)]))
        writer.commit()

    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
