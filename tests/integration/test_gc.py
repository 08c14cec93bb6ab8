"""zoopm gc: a store shared by projects keeps what some registered project's zoo.lock pins and
nothing else; it never removes anything outside the store, never follows a link, waits for
running installs, and a dry run changes nothing."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import Zoopm
from tests.support.fileserver import FileServer
from tests.support.projects import serve_binary_elsewhere, write_project
from zoopm import Project
from zoopm.formats.lockfile import read_lock
from zoopm.formats.modelinfo import set_frontmatter_key
from zoopm.storage.locks import hold_store_lock, host_tag
from zoopm.storage.store import register_key

BINARY = "tiny_net.caffemodel"


def model_copy(tiny_net: Path, name: str, deploy: str, extra: dict[str, str]) -> Path:
    """A copy of the tiny model with its own deploy.prototxt and extra files."""
    directory = tiny_net.parent / name
    shutil.copytree(tiny_net, directory)
    (directory / "deploy.prototxt").write_text(deploy)
    for file, text in extra.items():
        (directory / file).write_text(text)
    return directory


def installed_project(zoopm: Zoopm, root: Path, model_dir: Path) -> Path:
    project = write_project(root, {"tiny": f'{{ path = "{model_dir}" }}'})
    run = zoopm("install", project=project)
    assert run.exit_code == 0, run.stderr
    return project


def locked(project: Path) -> dict[str, int]:
    """sha256 → size of every file the project's zoo.lock pins."""
    lock = read_lock(project / "zoo.lock")
    assert lock is not None
    return {f.sha256: f.size for m in lock.models for f in m.files}


def sha1s(project: Path) -> dict[str, str]:
    """sha256 → sha1 of every file the project's zoo.lock pins."""
    lock = read_lock(project / "zoo.lock")
    assert lock is not None
    return {f.sha256: f.sha1 for m in lock.models for f in m.files}


def stored(store: Path) -> set[str]:
    return {p.name for p in (store / "sha256").glob("*/*")}


def listing(root: Path) -> dict[str, tuple[str, int, int, str]]:
    """Everything below root, links never followed: kind, mode, mtime and content (or target)."""
    found: dict[str, tuple[str, int, int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                content = os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                content = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                content = ""
            kind = stat.S_IFMT(info.st_mode)
            found[str(path.relative_to(root))] = (
                str(kind),
                info.st_mode,
                info.st_mtime_ns,
                content,
            )
    return found


@pytest.fixture
def two_projects(tmp_path: Path, tiny_net: Path, zoopm: Zoopm) -> tuple[Path, Path]:
    """Two installed projects sharing one store: most blobs shared, each with its own too."""
    first = installed_project(zoopm, tmp_path / "first", tiny_net)
    other = model_copy(tiny_net, "other", "name: 'other'\n", {"labels.txt": "cat\ndog\n"})
    second = installed_project(zoopm, tmp_path / "second", other)
    assert set(locked(first)) - set(locked(second))
    assert set(locked(second)) - set(locked(first))
    return first, second


# --- the "done when" ---------------------------------------------------------------


def test_deleting_one_of_two_projects_then_gc_frees_exactly_its_blobs(
    two_projects: tuple[Path, Path], zoopm: Zoopm, store_dir: Path
) -> None:
    first, second = two_projects
    only_first = {sha: size for sha, size in locked(first).items() if sha not in locked(second)}
    aliases = [sha1s(first)[sha] for sha in only_first]
    before = stored(store_dir)
    shutil.rmtree(first)

    run = zoopm("gc", project=second)
    listed = zoopm("gc", "--json", project=second)

    assert run.exit_code == 0, run.stderr
    assert stored(store_dir) == before - set(only_first)
    freed = sum(only_first.values())
    assert f"Removed {len(only_first)} blob ({freed} B)" in run.stderr
    assert f"freed {freed} B" in run.stderr
    assert f"Forgot project {first}: its zoo.lock is gone" in run.stderr
    for sha1 in aliases:
        assert not (store_dir / "sha1" / sha1[:2] / sha1).exists()
    again = json.loads(listed.stdout)
    assert again["blobs"]["removed"] == [] and again["freed_bytes"] == 0
    assert again["projects"] == [str(second.resolve() / "zoo.lock")]
    verified = zoopm("verify", "--store", project=second)
    assert verified.exit_code == 0, verified.stdout + verified.stderr


def test_gc_dry_run_changes_nothing(
    two_projects: tuple[Path, Path], zoopm: Zoopm, store_dir: Path
) -> None:
    first, second = two_projects
    old = store_dir / "quarantine" / f"{'ab' * 32}.1000"
    old.parent.mkdir(exist_ok=True)
    old.write_bytes(b"quarantined long ago")
    dead = store_dir / "tmp" / f"blob-{host_tag()}-{dead_pid()}-abc.part"
    dead.parent.mkdir(exist_ok=True)
    dead.write_bytes(b"half a download")
    shutil.rmtree(first)
    home = store_dir.parent
    before = listing(home)

    run = zoopm("gc", "--dry-run", project=second)
    as_json = zoopm("gc", "--dry-run", "--json", project=second)

    assert run.exit_code == 0, run.stderr
    assert listing(home) == before
    assert "Would forget project" in run.stderr and "Would remove 1 blob" in run.stderr
    document = json.loads(as_json.stdout)
    assert document["dry_run"] is True and len(document["blobs"]["removed"]) == 1
    assert document["quarantine"] == {"removed": 1, "bytes": len(b"quarantined long ago")}
    assert listing(home) == before


# --- what gc keeps ---------------------------------------------------------------------------


def test_a_project_that_only_locked_keeps_the_blobs_locking_stored(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm
) -> None:
    url = file_server.url("/models/tiny_net.caffemodel")
    file_server.add_bytes("/models/tiny_net.caffemodel", serve_binary_elsewhere(tiny_net, url))
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})
    assert zoopm("lock", project=project).exit_code == 0

    run = zoopm("gc", project=project)
    offline = zoopm("install", "--offline", project=project)

    assert run.exit_code == 0, run.stderr
    assert "Removed 0 blobs" in run.stderr
    assert offline.exit_code == 0, offline.stderr
    assert file_server.count("/models/tiny_net.caffemodel") == 1


def test_a_zoo_lock_that_cannot_be_read_stops_gc_and_names_it(
    two_projects: tuple[Path, Path], zoopm: Zoopm, store_dir: Path
) -> None:
    first, second = two_projects
    shutil.rmtree(first)
    (second / "zoo.lock").write_text("this is [not a lock\n")
    before = without_locks(listing(store_dir))

    run = zoopm("gc", project=second)

    assert run.exit_code == 1
    lock = second.resolve() / "zoo.lock"
    assert f"gc: {lock} cannot be read as a lock" in run.error_line
    assert f"rm {store_dir / 'projects' / register_key(lock)}" in run.stderr
    assert without_locks(listing(store_dir)) == before


def without_locks(
    found: dict[str, tuple[str, int, int, str]],
) -> dict[str, tuple[str, int, int, str]]:
    """A listing without locks/, where taking a lock leaves its trace."""
    return {rel: entry for rel, entry in found.items() if rel.split("/")[0] != "locks"}


def test_a_registered_lock_that_is_a_symlink_to_dev_zero_stops_gc_without_hanging(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, store_dir: Path
) -> None:
    project = installed_project(zoopm, tmp_path / "proj", tiny_net)
    planted = tmp_path / "planted" / "zoo.lock"
    planted.parent.mkdir()
    planted.symlink_to("/dev/zero")
    register(store_dir, planted)

    run = subprocess.run(
        [sys.executable, "-m", "zoopm", "-C", str(project), "gc"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert run.returncode == 1, run.stderr
    assert f"error: gc: {planted} cannot be read as a lock" in run.stderr
    assert len(stored(store_dir)) == len(locked(project))


def register(store: Path, lock: Path) -> Path:
    """An entry in the project register as zoopm writes it."""
    entry = store / "projects" / register_key(lock)
    entry.write_text(f"{lock}\n")
    return entry


@pytest.mark.parametrize("hostile", ["symlink", "not-a-lock", "garbage", "relative", "misnamed"])
def test_a_hostile_register_entry_is_forgotten_never_followed_nor_read_through(
    two_projects: tuple[Path, Path], zoopm: Zoopm, store_dir: Path, tmp_path: Path, hostile: str
) -> None:
    first, second = two_projects
    secret = tmp_path / "secret.txt"
    secret.write_text("keep me\n")
    projects = store_dir / "projects"
    if hostile == "symlink":
        # Pointing at a real project's zoo.lock: still not an entry zoopm wrote.
        entry = projects / register_key(secret)
        entry.symlink_to(first / "zoo.lock")
    elif hostile == "not-a-lock":
        entry = register(store_dir, secret)
    elif hostile == "garbage":
        entry = projects / ("0" * 32)
        entry.write_bytes(b"\xff\xfe\x00garbage" * 100)
    elif hostile == "relative":
        entry = projects / register_key(Path("first/zoo.lock"))
        entry.write_text("first/zoo.lock\n")
    else:
        entry = projects / ("1" * 32)
        entry.write_text(f"{first / 'zoo.lock'}\n")
    lock_before = (first / "zoo.lock").read_bytes()
    shutil.rmtree(second)

    run = zoopm("gc", project=first)

    assert run.exit_code == 0, run.stderr
    assert "warning:" in run.stderr and str(entry) in run.stderr
    assert not os.path.lexists(entry)
    assert secret.read_text() == "keep me\n"
    assert (first / "zoo.lock").read_bytes() == lock_before
    assert stored(store_dir) == set(locked(first))


# --- nothing outside the store, no link followed --------------------------------------------


def test_symlinks_planted_in_the_store_are_removed_as_links_never_followed(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, store_dir: Path
) -> None:
    project = installed_project(zoopm, tmp_path / "proj", tiny_net)
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim"
    victim.write_text("not the store's\n")
    name = "ab" * 32
    (store_dir / "sha256" / "ab").mkdir(exist_ok=True)
    planted = store_dir / "sha256" / "ab" / name
    planted.symlink_to(victim)
    hidden = outside / ("ee" * 32)
    hidden.write_text("behind a planted fan-out directory\n")
    (store_dir / "sha256" / "ee").symlink_to(outside)

    run = zoopm("gc", project=project)

    assert run.exit_code == 0, run.stderr
    assert not os.path.lexists(planted)
    assert victim.read_text() == "not the store's\n"
    assert hidden.read_text() == "behind a planted fan-out directory\n"
    assert sorted(p.name for p in outside.iterdir()) == sorted(["victim", "ee" * 32])
    assert set(locked(project)) <= stored(store_dir)


@pytest.mark.parametrize("kind", ["projects", "quarantine", "sha256", "tmp"])
def test_a_store_directory_replaced_by_a_symlink_stops_gc_and_nothing_outside_is_touched(
    two_projects: tuple[Path, Path], tmp_path: Path, zoopm: Zoopm, store_dir: Path, kind: str
) -> None:
    first, second = two_projects
    shutil.rmtree(first)
    outside = tmp_path / "outside"
    outside.mkdir()
    # Names gc would take for its own: a register entry, an old quarantined file, a blob, a
    # partial download of a dead process.
    for name in (
        "0" * 32,
        f"{'ab' * 32}.1000",
        "ab" * 32,
        f"blob-{host_tag()}-{dead_pid()}-x.part",
    ):
        (outside / name).write_text("not the store's\n")
    before = listing(outside)
    real = store_dir / kind
    if real.exists():
        shutil.move(real, tmp_path / f"moved-{kind}")
    real.symlink_to(outside)

    run = zoopm("gc", project=second)

    assert run.exit_code == 1
    assert f"{real}: is not a directory of the store" in run.error_line
    assert listing(outside) == before


def test_old_quarantine_stale_partials_and_orphan_aliases_go_recent_ones_stay(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, store_dir: Path
) -> None:
    project = installed_project(zoopm, tmp_path / "proj", tiny_net)
    quarantine = store_dir / "quarantine"
    quarantine.mkdir(exist_ok=True)
    old = quarantine / f"{'cd' * 32}.1000000000"
    old.write_bytes(b"x" * 100)
    recent = quarantine / f"{'cd' * 32}.{time.time_ns()}"
    recent.write_bytes(b"y" * 10)
    dead = store_dir / "tmp" / f"blob-{host_tag()}-{dead_pid()}-abc.part"
    dead.write_bytes(b"z" * 50)
    orphan = store_dir / "sha1" / "99" / ("99" * 20)
    orphan.parent.mkdir()
    orphan.write_text("ff" * 32)

    run = zoopm("gc", "--json", project=project)

    assert run.exit_code == 0, run.stderr
    document = json.loads(run.stdout)
    assert document["quarantine"] == {"removed": 1, "bytes": 100}
    assert document["partials"]["removed"] >= 1 and document["partials"]["bytes"] >= 50
    assert document["aliases_removed"] == 1
    assert document["freed_bytes"] >= 150
    assert not old.exists() and recent.exists() and not dead.exists()
    assert not orphan.exists()


def dead_pid() -> int:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(gone.stdout)


# --- concurrency: an install never loses a blob to gc --------------------------------------


@pytest.fixture
def store_held(store_dir: Path) -> Iterator[threading.Event]:
    """A thread holding the store shared, as a running install does, until the event is set."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with hold_store_lock(
            store_dir / "locks" / "store.lock", "installing in a test", shared=True, timeout=5
        ):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(10)
    yield release
    release.set()
    thread.join()


def test_gc_waits_for_a_run_holding_the_store_and_gives_up_naming_it(
    two_projects: tuple[Path, Path],
    zoopm: Zoopm,
    store_dir: Path,
    store_held: threading.Event,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = two_projects
    shutil.rmtree(first)
    before = listing(store_dir / "sha256")
    monkeypatch.setenv("ZOOPM_LOCK_TIMEOUT", "1.5")

    run = zoopm("gc", project=second)

    assert run.exit_code == 1
    assert f"zoopm process {os.getpid()} (installing in a test)" in run.error_line
    assert "waiting for" in run.stderr
    assert listing(store_dir / "sha256") == before
    store_held.set()
    assert zoopm("gc", project=second).exit_code == 0


def test_an_install_running_while_gc_starts_keeps_every_blob_it_fetched(
    two_projects: tuple[Path, Path],
    tmp_path: Path,
    tiny_net: Path,
    file_server: FileServer,
    zoopm: Zoopm,
    store_dir: Path,
) -> None:
    first, second = two_projects
    shutil.rmtree(first)
    # A new project, never locked nor registered, with two binaries of its own: one arrives at
    # once, one stalls. While it stalls, the first is in the store and pinned by no zoo.lock
    # gc could read: only the store lock keeps gc from taking it (and the install from
    # downloading it twice).
    quick, quick_data = served_model(tiny_net, "quick", file_server)
    slow, slow_data = served_model(tiny_net, "slow", file_server)
    file_server.stall("/slow/tiny_net.caffemodel", after_bytes=100, delay_seconds=3)
    fresh = write_project(
        tmp_path / "fresh",
        {"quick": f'{{ path = "{quick}" }}', "slow": f'{{ path = "{slow}" }}'},
    )
    installing = subprocess.Popen(
        [sys.executable, "-m", "zoopm", "-C", str(fresh), "install"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (
        file_server.bytes_sent("/slow/tiny_net.caffemodel")
        and hashlib.sha256(quick_data).hexdigest() in stored(store_dir)
    ):
        time.sleep(0.02)
    assert installing.poll() is None, "the install ended before gc started"

    collected = zoopm("gc", "--json", project=second)
    _, install_err = installing.communicate(timeout=60)

    assert installing.returncode == 0, install_err
    assert collected.exit_code == 0, collected.stderr
    assert "waiting for zoopm process" in collected.stderr
    document = json.loads(collected.stdout)
    assert str(fresh.resolve() / "zoo.lock") in document["projects"]
    for data in (quick_data, slow_data):
        assert hashlib.sha256(data).hexdigest() in stored(store_dir)
    assert file_server.count("/quick/tiny_net.caffemodel") == 1
    assert stored(store_dir) == set(locked(second)) | set(locked(fresh))
    assert zoopm("verify", "--store", project=fresh).exit_code == 0


def served_model(tiny_net: Path, name: str, server: FileServer) -> tuple[Path, bytes]:
    """A copy of the tiny model whose own binary (other bytes) is downloaded from server."""
    data = (tiny_net / BINARY).read_bytes() + name.encode()
    model = model_copy(tiny_net, name, f"name: '{name}'\n", {})
    (model / BINARY).unlink()
    readme = model / "readme.md"
    text = readme.read_bytes()
    path = f"/{name}/{BINARY}"
    for key, value in (("caffemodel_url", server.url(path)), ("sha1", sha1_of(data))):
        text = set_frontmatter_key(text, key, value, str(readme))
    readme.write_bytes(text)
    server.add_bytes(path, data)
    return model, data


def sha1_of(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


# --- the Python API -------------------------------------------------------------------------


def test_the_python_api_returns_what_gc_removed(
    two_projects: tuple[Path, Path], store_dir: Path
) -> None:
    first, second = two_projects
    only_first = set(locked(first)) - set(locked(second))
    shutil.rmtree(first)

    with Project(second) as project:
        dry = project.gc(dry_run=True)
        done = project.gc()

    assert dry.dry_run and set(dry.removed_blobs) == only_first and dry.partials is None
    assert set(done.removed_blobs) == only_first and not done.dry_run
    assert done.freed_bytes == done.removed_bytes > 0
    assert [gone.lock_path for gone in done.forgotten] == [first.resolve() / "zoo.lock"]
    assert stored(store_dir) == set(locked(second))
