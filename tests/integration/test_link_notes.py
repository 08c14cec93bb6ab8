"""Link notes: projects sharing hard-linked blobs stay no-ops for each other, and a blob changed
behind zoopm's back is hashed before anyone links it again."""

from __future__ import annotations

import os
import shutil
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


def no_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object) -> None:
        raise AssertionError("hashed a file")

    monkeypatch.setattr("zoopm.digest.Hasher.update", refuse)


def test_after_a_sibling_is_deleted_one_project_hashes_and_the_others_need_not(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    projects = [hardlinked_project(tmp_path / name, tiny_net) for name in ("a", "b", "c")]
    for project in projects:
        assert zoopm("install", project=project).exit_code == 0
    shutil.rmtree(projects[1] / "models")  # unlinking moves every shared inode's ctime

    first = zoopm("install", project=projects[0])  # hashes once, and notes the inodes again
    no_hashing(monkeypatch)
    second = zoopm("install", project=projects[2])

    assert first.exit_code == 0, first.stderr
    assert second.exit_code == 0, second.stderr
    assert "Nothing to do" in second.stderr


def test_a_write_through_one_project_then_a_deleted_sibling_never_reaches_another_project(
    tmp_path: Path, served: Path, zoopm: Zoopm, store_dir: Path
) -> None:
    first = hardlinked_project(tmp_path / "first", served)
    sibling = hardlinked_project(tmp_path / "sibling", served)
    for project in (first, sibling):
        assert zoopm("install", project=project).exit_code == 0
    placed = first / "models" / "tiny" / BINARY
    good = placed.read_bytes()
    before = placed.stat()
    with placed.open("r+b") as handle:  # as root: 0444 does not stop it
        handle.write(b"EVIL")
    os.utime(placed, ns=(before.st_atime_ns, before.st_mtime_ns))
    shutil.rmtree(sibling)  # lowers the link count, as a cleanup would
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("zoo.toml", "zoo.lock"):
        (checkout / name).write_bytes((first / name).read_bytes())

    fresh = zoopm("install", "--frozen", project=checkout)
    again = zoopm("install", project=first)

    assert fresh.exit_code == 0, fresh.stderr
    assert (checkout / "models" / "tiny" / BINARY).read_bytes() == good
    assert again.exit_code == 0, again.stderr
    assert placed.read_bytes() == good
    assert zoopm("verify", project=first).exit_code == 0


def test_a_symlinked_notes_directory_is_never_written_through_nor_emptied_by_gc(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, store_dir: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    mine = outside / "mine.txt"
    mine.write_text("user data\n")
    store_dir.mkdir(parents=True)
    (store_dir / "linked").symlink_to(outside)
    project = hardlinked_project(tmp_path / "proj", tiny_net)

    installed = zoopm("install", project=project)
    shutil.rmtree(project)
    collected = zoopm("gc")

    assert installed.exit_code == 0, installed.stderr
    assert sorted(p.name for p in outside.iterdir()) == ["mine.txt"]
    assert mine.read_text() == "user data\n"
    assert collected.exit_code != 0  # gc names the linked directory and removes nothing
    assert "linked" in collected.error_line


def test_a_note_replaced_by_a_symlink_never_lends_its_mode_to_the_note_written_next(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, store_dir: Path
) -> None:
    first = hardlinked_project(tmp_path / "first", tiny_net)
    assert zoopm("install", project=first).exit_code == 0
    notes = [p for p in (store_dir / "linked").rglob("*") if p.is_file()]
    target = tmp_path / "wide-open"
    target.write_text("")
    target.chmod(0o666)
    notes[0].unlink()
    notes[0].symlink_to(target)

    assert (
        zoopm("install", project=hardlinked_project(tmp_path / "second", tiny_net)).exit_code == 0
    )

    assert not notes[0].is_symlink()
    assert notes[0].stat().st_mode & 0o022 == 0
    assert target.read_text() == ""
