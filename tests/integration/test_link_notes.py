"""Link notes: projects sharing hard-linked blobs stay no-ops for each other, and a blob changed
behind zoopm's back is hashed before anyone links it again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import Zoopm
from tests.support.fileserver import FileServer
from tests.support.projects import serve_binary_elsewhere, write_project

BINARY = "tiny_net.caffemodel"


def hardlinked_project(root: Path, tiny_net: Path) -> Path:
    project = write_project(root, {"tiny": f'{{ path = "{tiny_net}" }}'})
    text = (project / "zoo.toml").read_text()
    (project / "zoo.toml").write_text(
        text.replace("[project]\n", '[project]\nlink-mode = "hardlink"\n')
    )
    return project


@pytest.fixture
def served(tiny_net: Path, file_server: FileServer) -> Path:
    """tiny_net whose binary is downloaded (so a wrong blob can be fetched again)."""
    url = file_server.url("/models/tiny_net.caffemodel")
    file_server.add_bytes("/models/tiny_net.caffemodel", serve_binary_elsewhere(tiny_net, url))
    return tiny_net


def test_a_projects_no_op_hashes_nothing_after_another_project_linked_the_same_blobs(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = hardlinked_project(tmp_path / "first", tiny_net)
    second = hardlinked_project(tmp_path / "second", tiny_net)
    assert zoopm("install", project=first).exit_code == 0
    assert zoopm("install", project=second).exit_code == 0  # moves the ctime of every blob
    record = (first / "models" / ".zoopm-installed.json").read_bytes()

    def refuse(*_args: object) -> None:
        raise AssertionError("a no-op install hashed a file")

    monkeypatch.setattr("zoopm.digest.Hasher.update", refuse)
    run = zoopm("install", project=first)

    assert run.exit_code == 0, run.stderr
    assert "Nothing to do" in run.stderr
    assert (first / "models" / ".zoopm-installed.json").read_bytes() == record


def test_a_write_through_one_project_is_still_caught_in_the_other(
    tmp_path: Path, served: Path, zoopm: Zoopm
) -> None:
    first = hardlinked_project(tmp_path / "first", served)
    second = hardlinked_project(tmp_path / "second", served)
    assert zoopm("install", project=first).exit_code == 0
    assert zoopm("install", project=second).exit_code == 0
    placed = first / "models" / "tiny" / BINARY
    good = placed.read_bytes()
    before = placed.stat()
    with placed.open("r+b") as handle:  # as root: 0444 does not stop it
        handle.write(b"EVIL")
    os.utime(placed, ns=(before.st_atime_ns, before.st_mtime_ns))

    run = zoopm("install", project=second)

    assert run.exit_code == 0, run.stderr
    assert (second / "models" / "tiny" / BINARY).read_bytes() == good


def test_a_blob_changed_with_its_stamp_put_back_is_hashed_before_a_new_project_links_it(
    tmp_path: Path, served: Path, zoopm: Zoopm, store_dir: Path
) -> None:
    first = hardlinked_project(tmp_path / "first", served)
    assert zoopm("install", project=first).exit_code == 0
    placed = first / "models" / "tiny" / BINARY
    good = placed.read_bytes()
    before = placed.stat()
    with placed.open("r+b") as handle:
        handle.write(b"EVIL")
    os.utime(placed, ns=(before.st_atime_ns, before.st_mtime_ns))
    fresh = tmp_path / "fresh"  # a checkout of the first project: zoo.lock is not resolved again
    fresh.mkdir()
    for name in ("zoo.toml", "zoo.lock"):
        (fresh / name).write_bytes((first / name).read_bytes())

    run = zoopm("install", "--frozen", project=fresh)

    assert run.exit_code == 0, run.stderr
    assert (fresh / "models" / "tiny" / BINARY).read_bytes() == good
    assert list((store_dir / "quarantine").iterdir())  # the written blob was moved aside
