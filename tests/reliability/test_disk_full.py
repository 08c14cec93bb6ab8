"""A disk that fills up during a download: one clear error, and the store and models/ intact.

Two ways to run out of space: RLIMIT_FSIZE below the binary's size (a write past it fails with
EFBIG), and a 1 MiB tmpfs holding ZOOPM_HOME (ENOSPC); where mounting is not allowed the tmpfs
case falls back to the file size limit, so both cases always run.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability._support import (
    assert_clean_failure,
    locked_files,
    models_problems,
    run,
    snapshot,
    stand_in_binary,
    store_problems,
    write_local_model,
)
from tests.reliability.conftest import World
from tests.support.fileserver import FileServer

BINARY_SIZE = 3 << 20
LIMIT = 1 << 20


@pytest.fixture(params=["rlimit", "tmpfs"])
def small_disk(request: pytest.FixtureRequest, world: World) -> Iterator[tuple[Path, int | None]]:
    """The zoopm home to use and the file size limit to run under (None on the tmpfs)."""
    if request.param == "rlimit":
        yield world.home, LIMIT
        return
    mount = world.root / "small-disk"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={LIMIT}", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        yield world.home, LIMIT
        return
    try:
        yield mount / "home", None
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def test_a_disk_full_during_a_download_is_one_clear_error_and_leaves_store_and_models_intact(
    world: World, file_server: FileServer, small_disk: tuple[Path, int | None]
) -> None:
    home, limit = small_disk
    small = write_local_model(world.root / "src" / "small", "small", None, None)
    binary = stand_in_binary("big", BINARY_SIZE)
    url = file_server.add_bytes("/big.caffemodel", binary)
    big = write_local_model(world.root / "src" / "big", "big", binary, url)
    toml = world.project / "zoo.toml"
    toml.write_text(f'[models]\nsmall = {{ path = "{small}", binary = false }}\n')
    first = run(["install"], project=world.project, home=home)
    assert first.returncode == 0, first.describe()
    toml.write_text(toml.read_text() + f'big = {{ path = "{big}" }}\n')
    # Locked from another home, so the install below has the binary to download.
    locked = run(["lock"], project=world.project, home=world.root / "lock-home")
    assert locked.returncode == 0, locked.describe()
    models_before = snapshot(world.project / "models")
    outside_before = snapshot(world.root, exclude=(world.project, world.home, home))

    outcome = run(["install"], project=world.project, home=home, file_size_limit=limit)

    assert_clean_failure(outcome, codes=(1,))
    assert store_problems(home) == []
    assert snapshot(world.project / "models") == models_before
    assert snapshot(world.root, exclude=(world.project, world.home, home)) == outside_before
    if limit is not None:
        # Room again: the same install completes and every file verifies.
        rerun = run(["install"], project=world.project, home=home)
        assert rerun.returncode == 0, rerun.describe()
        assert models_problems(world.project, locked_files(world.project), complete=True) == []
