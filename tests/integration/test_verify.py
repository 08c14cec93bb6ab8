"""zoopm verify: every installed file hashed again, each missing, changed or foreign one named;
--repair restores zoopm's own files from the store (a wrong blob fetched again) and never
touches the user's; --store hashes every blob against its name."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cli import Run, Zoopm
from tests.support.fileserver import FileServer
from tests.support.projects import serve_binary_elsewhere, write_project
from zoopm import Project
from zoopm.reporting import NullProgress, Progress, RecordingReporter

BINARY = "tiny_net.caffemodel"
BINARY_URL = "/models/tiny_net.caffemodel"


def remote_project(tmp_path: Path, tiny_net: Path, server: FileServer) -> Path:
    """A project whose binary is downloaded from server (so a bad blob can be fetched again)."""
    url = server.url(BINARY_URL)
    server.add_bytes(BINARY_URL, serve_binary_elsewhere(tiny_net, url))
    return write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})


def installed(
    zoopm: Zoopm, tmp_path: Path, tiny_net: Path, server: FileServer, mode: str = "auto"
) -> Path:
    project = remote_project(tmp_path, tiny_net, server)
    run = zoopm("install", "--link-mode", mode, project=project)
    assert run.exit_code == 0, run.stderr
    server.clear_log()
    return project


def blob_of(store: Path, data: bytes) -> Path:
    sha256 = hashlib.sha256(data).hexdigest()
    return store / "sha256" / sha256[:2] / sha256


def write_in_place(path: Path, data: bytes) -> None:
    """Writes into the very file (same inode), as root can even when it is read-only."""
    with path.open("r+b") as handle:
        handle.write(data)


def tree(root: Path) -> dict[str, tuple[str, bytes | str]]:
    """Every entry below root: its kind and bytes (or link target), links never followed.

    A file over 1 MiB is told by its size, inode and mtime instead: reading a 2 GiB test file
    whole, twice, cost a test 15 s and 4 GiB; a write to it would move its mtime.
    """
    found: dict[str, tuple[str, bytes | str]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path))
        elif path.is_file():
            info = path.stat()
            if info.st_size > 1024**2:
                found[rel] = ("file", f"{info.st_size} {info.st_ino} {info.st_mtime_ns}")
            else:
                found[rel] = ("file", path.read_bytes())
        else:
            found[rel] = ("dir", "")
    return found


def named(run: Run, kind: str, rel: str) -> str:
    """The line of verify's output naming rel (below models/) as kind; '' if there is none."""
    for line in run.stdout.splitlines():
        if line.split(" ", 1)[0] == kind and f"models/{rel}:" in line:
            return line
    return ""


# --- the "done when": tamper, name it, repair it, verify clean ----------------------


def test_a_file_written_in_place_is_named_repaired_from_a_good_blob_and_then_verifies(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    project = installed(zoopm, tmp_path, tiny_net, file_server, "hardlink")
    placed = project / "models" / "tiny" / BINARY
    good = placed.read_bytes()
    write_in_place(placed, b"EVIL")  # a hard link: the blob in the store is written too

    found = zoopm("verify", project=project)
    repaired = zoopm("verify", "--repair", project=project)
    clean = zoopm("verify", project=project)

    assert found.exit_code == 1
    assert named(found, "modified", f"tiny/{BINARY}")
    assert repaired.exit_code == 0, repaired.stdout + repaired.stderr
    assert "restored" in repaired.stdout
    assert placed.read_bytes() == good
    # The blob shared the file's inode, so it was wrong too: quarantined, downloaded again.
    assert blob_of(store_dir, good).read_bytes() == good
    assert file_server.count(BINARY_URL) == 1
    assert list((store_dir / "quarantine").iterdir())
    assert clean.exit_code == 0, clean.stdout
    assert clean.stdout == ""


def test_install_also_restores_a_file_verify_names(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm
) -> None:
    project = installed(zoopm, tmp_path, tiny_net, file_server)
    placed = project / "models" / "tiny" / "deploy.prototxt"
    good = placed.read_bytes()
    write_in_place(placed, b"layer")

    assert zoopm("verify", project=project).exit_code == 1
    assert zoopm("install", project=project).exit_code == 0
    assert placed.read_bytes() == good
    assert zoopm("verify", project=project).exit_code == 0


def test_a_missing_file_is_named_and_restored(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm
) -> None:
    project = installed(zoopm, tmp_path, tiny_net, file_server)
    placed = project / "models" / "tiny" / "deploy.prototxt"
    good = placed.read_bytes()
    placed.unlink()

    found = zoopm("verify", project=project)
    repaired = zoopm("verify", "--repair", project=project)

    assert found.exit_code == 1
    assert named(found, "missing", "tiny/deploy.prototxt")
    assert repaired.exit_code == 0, repaired.stdout + repaired.stderr
    assert placed.read_bytes() == good
    assert file_server.count(BINARY_URL) == 0


def test_verify_reads_every_byte_and_never_trusts_the_stat(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm
) -> None:
    project = installed(zoopm, tmp_path, tiny_net, file_server, "copy")
    placed = project / "models" / "tiny" / BINARY
    good = placed.read_bytes()
    before = placed.stat()
    write_in_place(placed, b"EVIL")
    os.utime(placed, ns=(before.st_atime_ns, before.st_mtime_ns))
    record = project / "models" / ".zoopm-installed.json"
    # As an older record without ctimes: size, mtime and inode all agree with it.
    data = json.loads(record.read_text())
    data["models"]["tiny"][BINARY].pop("ctime_ns", None)
    record.write_text(json.dumps(data))

    found = zoopm("verify", project=project)
    repaired = zoopm("verify", "--repair", project=project)

    assert found.exit_code == 1
    assert named(found, "modified", f"tiny/{BINARY}")
    assert repaired.exit_code == 0, repaired.stdout + repaired.stderr
    assert placed.read_bytes() == good
    assert placed.stat().st_nlink == 1  # placed again as it was: a copy


# --- the user's files: named, never touched ------------------------------------------------


def test_a_file_an_editor_saved_over_a_placed_one_is_named_and_repair_leaves_it(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm
) -> None:
    project = installed(zoopm, tmp_path, tiny_net, file_server)
    placed = project / "models" / "tiny" / "deploy.prototxt"
    mine = placed.with_name("deploy.prototxt.new")
    mine.write_text("name: 'my edit'\n")
    mine.replace(placed)  # a new inode renamed over zoopm's file

    found = zoopm("verify", "--json", project=project)
    repaired = zoopm("verify", "--repair", project=project)

    assert found.exit_code == 1
    [problem] = json.loads(found.stdout)["problems"]
    assert problem["path"] == "deploy.prototxt" and problem["kind"] == "modified"
    assert problem["owner"] == "user"
    assert repaired.exit_code == 1
    assert "it is yours" in repaired.stdout
    assert placed.read_text() == "name: 'my edit'\n"


def test_a_symlink_planted_at_an_installed_file_is_named_never_followed_never_replaced(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm
) -> None:
    project = installed(zoopm, tmp_path, tiny_net, file_server)
    placed = project / "models" / "tiny" / BINARY
    placed.unlink()
    placed.symlink_to("/dev/zero")  # followed, hashing it would never end

    found = subprocess.run(
        [sys.executable, "-m", "zoopm", "-C", str(project), "verify", "--repair"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert found.returncode == 1, found.stderr
    assert f"models/tiny/{BINARY}: a symbolic link zoopm did not place" in found.stdout
    assert os.readlink(placed) == "/dev/zero"


def test_foreign_entries_below_a_model_are_named_and_never_removed(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm
) -> None:
    project = installed(zoopm, tmp_path, tiny_net, file_server)
    model = project / "models" / "tiny"
    (model / "notes.txt").write_text("mine\n")
    (model / "snapshots").mkdir()
    (model / "snapshots" / "iter_100.caffemodel").write_bytes(b"weights")
    (model / "elsewhere").symlink_to(tmp_path)
    before = tree(model)

    found = zoopm("verify", project=project)
    repaired = zoopm("verify", "--repair", "--json", project=project)

    assert found.exit_code == 1
    for name in ("notes.txt", "snapshots", "elsewhere"):
        assert named(found, "foreign", f"tiny/{name}")
    assert "iter_100" not in found.stdout  # a foreign directory is named once, not walked
    assert repaired.exit_code == 1
    kinds = {p["path"]: (p["kind"], p["owner"]) for p in json.loads(repaired.stdout)["problems"]}
    assert kinds == dict.fromkeys(["elsewhere", "notes.txt", "snapshots"], ("foreign", "user"))
    assert tree(model) == before


def test_a_symlink_planted_at_a_model_directory_is_never_followed(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm
) -> None:
    project = installed(zoopm, tmp_path, tiny_net, file_server)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "deploy.prototxt").write_text("not zoopm's\n")
    model = project / "models" / "tiny"
    for child in model.iterdir():
        child.unlink()
    model.rmdir()
    model.symlink_to(outside)

    found = zoopm("verify", "--repair", project=project)

    assert found.exit_code == 1
    assert "models/tiny is a symbolic link, which zoopm never follows" in found.stdout
    assert [p.name for p in outside.iterdir()] == ["deploy.prototxt"]
    assert (outside / "deploy.prototxt").read_text() == "not zoopm's\n"


# --- the store: every blob against its name ------------------------------------------------


@pytest.mark.parametrize("mode", ["hardlink", "copy"])
def test_verify_store_finds_a_blob_corrupted_on_disk_and_repair_fetches_it_again(
    tmp_path: Path,
    tiny_net: Path,
    file_server: FileServer,
    zoopm: Zoopm,
    store_dir: Path,
    mode: str,
) -> None:
    project = installed(zoopm, tmp_path, tiny_net, file_server, mode)
    placed = project / "models" / "tiny" / BINARY
    good = placed.read_bytes()
    blob = blob_of(store_dir, good)
    write_in_place(blob, b"ROT")
    os.utime(blob, ns=(1_000_000_000, 1_000_000_000))  # bit rot keeps the stamp

    found = zoopm("verify", "--store", project=project)
    repaired = zoopm("verify", "--store", "--repair", project=project)
    clean = zoopm("verify", "--store", project=project)

    assert found.exit_code == 1
    assert f"corrupt   store blob {blob.name}: holds other bytes" in found.stdout
    if mode == "hardlink":
        assert named(found, "modified", f"tiny/{BINARY}")  # the same inode
    else:
        assert "models/tiny" not in found.stdout  # the copy is still right
    assert repaired.exit_code == 0, repaired.stdout + repaired.stderr
    assert file_server.count(BINARY_URL) == 1
    assert blob.read_bytes() == good
    assert placed.read_bytes() == good
    assert clean.exit_code == 0, clean.stdout


def test_a_symlink_planted_at_a_blob_is_quarantined_and_never_followed(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    project = installed(zoopm, tmp_path, tiny_net, file_server, "copy")
    good = (project / "models" / "tiny" / BINARY).read_bytes()
    blob = blob_of(store_dir, good)
    blob.chmod(0o644)
    blob.unlink()
    blob.symlink_to("/dev/zero")

    found = subprocess.run(
        [sys.executable, "-m", "zoopm", "-C", str(project), "verify", "--store", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert found.returncode == 1, found.stderr
    [problem] = json.loads(found.stdout)["store"]["problems"]
    assert problem == {
        "sha256": blob.name,
        "kind": "corrupt",
        "detail": "is a symbolic link (never followed)",
        "needed": True,
        "refetched": False,
    }
    assert not os.path.lexists(blob)
    [moved] = (store_dir / "quarantine").iterdir()
    assert os.readlink(moved) == "/dev/zero"


def test_a_corrupt_blob_in_symlink_mode_is_named_by_its_file_and_fetched_again(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    project = installed(zoopm, tmp_path, tiny_net, file_server, "symlink")
    placed = project / "models" / "tiny" / BINARY
    good = placed.read_bytes()
    blob = blob_of(store_dir, good)
    write_in_place(blob, b"ROT")
    os.utime(blob, ns=(1_000_000_000, 1_000_000_000))

    found = zoopm("verify", project=project)
    repaired = zoopm("verify", "--repair", project=project)

    assert found.exit_code == 1
    assert f"models/tiny/{BINARY}: its blob in the store holds other bytes" in found.stdout
    assert repaired.exit_code == 0, repaired.stdout + repaired.stderr
    assert placed.is_symlink() and placed.read_bytes() == good
    assert file_server.count(BINARY_URL) == 1


def test_ctrl_c_during_verify_store_exits_130_and_changes_nothing(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    project = installed(zoopm, tmp_path, tiny_net, file_server)
    # 2 GiB of zeros filed under a wrong name (sparse: no disk used), seconds to hash.
    big = store_dir / "sha256" / "00" / ("00" * 32)
    big.parent.mkdir()
    with big.open("wb") as handle:
        handle.truncate(2 * 1024**3)
    before = tree(store_dir)
    started = subprocess.Popen(
        [sys.executable, "-m", "zoopm", "-C", str(project), "verify", "--store"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    assert started.poll() is None, "verify --store ended before Ctrl-C"
    started.send_signal(signal.SIGINT)
    _, stderr = started.communicate(timeout=30)

    assert started.returncode == 130, stderr
    assert stderr.startswith("error: interrupted")
    assert "Traceback" not in stderr
    after = {rel: entry for rel, entry in tree(store_dir).items() if not rel.startswith("locks")}
    assert after == {rel: entry for rel, entry in before.items() if not rel.startswith("locks")}


# --- choosing models, the JSON document, the Python API ------------------------------------


def test_verify_checks_only_the_models_named_and_refuses_an_unknown_name(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm
) -> None:
    project = installed(zoopm, tmp_path, tiny_net, file_server)
    (project / "models" / "tiny" / "deploy.prototxt").unlink()

    named = zoopm("verify", "tiny", project=project)
    unknown = zoopm("verify", "nope", project=project)

    assert named.exit_code == 1
    assert unknown.exit_code == 2
    assert "no model named 'nope' in zoo.lock" in unknown.error_line


def test_verify_json_is_one_document_on_stdout(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm
) -> None:
    project = installed(zoopm, tmp_path, tiny_net, file_server)
    placed = project / "models" / "tiny" / "deploy.prototxt"
    expected = hashlib.sha256(placed.read_bytes()).hexdigest()
    write_in_place(placed, b"x")
    found_sha256 = hashlib.sha256(placed.read_bytes()).hexdigest()

    run = zoopm("verify", "--json", project=project)

    assert run.exit_code == 1
    document = json.loads(run.stdout)
    assert document["ok"] is False and document["store"] is None
    assert document["files"] == 4 and document["models"] == ["tiny"]
    assert document["problems"] == [
        {
            "model": "tiny",
            "path": "deploy.prototxt",
            "kind": "modified",
            "detail": f"holds other bytes (sha256 {found_sha256})",
            "owner": "zoopm",
            "expected_sha256": expected,
            "found_sha256": found_sha256,
            "repaired": False,
            "remaining": True,
        }
    ]


class Bar(NullProgress):
    """One progress bar as the library drives it: its total and the bytes advanced so far."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.done = 0

    def advance(self, nbytes: int) -> None:
        self.done += nbytes


class CountingReporter(RecordingReporter):
    """Keeps each progress bar the library asked for, by label."""

    def __init__(self) -> None:
        super().__init__()
        self.bars: dict[str, Bar] = {}

    def transfer(self, label: str, total: int | None) -> Progress:
        self.bars[label] = Bar(total)
        return self.bars[label]


def test_the_python_api_returns_the_problems_and_reports_progress(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm
) -> None:
    project = installed(zoopm, tmp_path, tiny_net, file_server)
    (project / "models" / "tiny" / "deploy.prototxt").unlink()
    reporter = CountingReporter()

    with Project(project, reporter=reporter) as api:
        found = api.verify(store=True)
        repaired = api.verify(repair=True)

    assert not found.ok
    assert [(p.rel, p.kind, p.zoopms) for p in found.problems] == [
        ("tiny/deploy.prototxt", "missing", True)
    ]
    assert found.blobs == 4 and found.store_problems == ()
    tree_bar, store_bar = reporter.bars["verifying models/"], reporter.bars["verifying the store"]
    assert tree_bar.total is not None and 0 < found.hashed_bytes == tree_bar.done < tree_bar.total
    assert store_bar.total == store_bar.done > 0
    assert repaired.ok and repaired.repaired == ("tiny/deploy.prototxt",)


def test_verify_checks_zoo_lock_and_says_when_zoo_toml_has_moved_on(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm
) -> None:
    project = installed(zoopm, tmp_path, tiny_net, file_server)
    (project / "zoo.toml").write_text('[project]\nmodels-dir = "models"\n\n[models]\n')

    run = zoopm("verify", project=project)

    assert run.exit_code == 0, run.stderr
    assert "warning: zoo.lock does not match zoo.toml" in run.stderr
    assert "Verified 4 files of 1 model" in run.stderr


def _users_file_with_the_same_inode(path: Path, text: str) -> bool:
    """Deletes the file zoopm placed at path and saves the user's own there, with the inode
    number the old one had (file systems hand a freed number out again); False if none came."""
    inode = path.stat().st_ino
    path.unlink()
    spare = path.parent / ".spare"
    for number in range(500):
        candidate = spare.with_name(f".spare{number}")
        candidate.write_text(text)
        if candidate.stat().st_ino == inode:
            candidate.rename(path)
            break
    for leftover in path.parent.glob(".spare*"):
        leftover.unlink()
    return path.exists() and path.stat().st_ino == inode


@pytest.mark.parametrize("command", [("verify", "--repair"), ("install",)])
def test_a_users_new_file_given_the_old_inode_number_is_never_taken_for_zoopms(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, command: tuple[str, ...]
) -> None:
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})
    assert zoopm("install", "--link-mode", "copy", project=project).exit_code == 0
    placed = project / "models" / "tiny" / "deploy.prototxt"
    if not _users_file_with_the_same_inode(placed, "name: 'mine'\n"):
        pytest.skip("this file system did not reuse the inode number")

    run = zoopm(*command, project=project)

    assert run.exit_code != 0
    assert placed.read_text() == "name: 'mine'\n"


def test_verify_store_counts_store_problems_and_names_the_command_that_fixes_them(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    project = installed(zoopm, tmp_path, tiny_net, file_server)
    data = (project / "models" / "tiny" / "deploy.prototxt").read_bytes()
    blob_of(store_dir, data).unlink()

    run = zoopm("verify", "--store", project=project)
    repaired = zoopm("verify", "--store", "--repair", project=project)

    assert run.exit_code == 1
    assert "1 problem left" in run.stderr
    assert "'zoopm verify --store --repair'" in run.stderr
    assert "(or 'zoopm install')" not in run.stderr
    assert repaired.exit_code == 0, repaired.stderr
    assert blob_of(store_dir, data).read_bytes() == data
