"""The install path keeps its promise: nothing outside models/ is written, no unproven blob is
linked, the install record stays true, and no state is left that the next run refuses."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.cli import Zoopm
from tests.support.fileserver import FileServer
from tests.support.github import GitHubEmulator
from tests.support.locks import hold, project_lock
from tests.support.projects import serve_binary_elsewhere, write_project
from zoopm.storage.locks import host_tag

BINARY = "tiny_net.caffemodel"
RECORD = ".zoopm-installed.json"


def local_project(tmp_path: Path, tiny_net: Path, extra: str = "") -> Path:
    return write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'}, extra)


def remote_project(tmp_path: Path, tiny_net: Path, server: FileServer, name: str = "proj") -> Path:
    url = server.url("/models/tiny_net.caffemodel")
    if (tiny_net / BINARY).exists():
        server.add_bytes("/models/tiny_net.caffemodel", serve_binary_elsewhere(tiny_net, url))
    return write_project(tmp_path / name, {"tiny": f'{{ path = "{tiny_net}" }}'})


def install_in_a_process(project: Path) -> subprocess.CompletedProcess[str]:
    """zoopm install as its own process, for what must not hang or crash the test runner."""
    return subprocess.run(
        [sys.executable, "-m", "zoopm", "-C", str(project), "install"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def blob_of(store: Path, data: bytes) -> Path:
    sha256 = hashlib.sha256(data).hexdigest()
    return store / "sha256" / sha256[:2] / sha256


def outside_sentinel(tmp_path: Path) -> tuple[Path, bytes]:
    outside = tmp_path / "outside"
    outside.mkdir()
    sentinel = outside / BINARY
    sentinel.write_bytes(b"not zoopm's")
    return sentinel, sentinel.read_bytes()


# --- 1, 2: never write through a symlink, decide ownership at the write ---------------------


def test_install_never_writes_through_a_symlink_planted_at_models_name(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    project = local_project(tmp_path, tiny_net)
    assert zoopm("install", project=project).exit_code == 0
    sentinel, before = outside_sentinel(tmp_path)
    model_dir = project / "models" / "tiny"
    for child in model_dir.iterdir():
        child.unlink()
    model_dir.rmdir()
    model_dir.symlink_to(sentinel.parent)

    run = zoopm("install", project=project)

    assert run.exit_code == 1
    assert "symbolic link" in run.error_line and "models/tiny" in run.error_line
    assert sentinel.read_bytes() == before
    assert sorted(p.name for p in sentinel.parent.iterdir()) == [BINARY]


def test_a_symlink_planted_at_a_placed_file_is_left_alone_not_followed(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    project = local_project(tmp_path, tiny_net)
    assert zoopm("install", project=project).exit_code == 0
    sentinel, before = outside_sentinel(tmp_path)
    placed = project / "models" / "tiny" / BINARY
    placed.unlink()
    placed.symlink_to(sentinel)

    run = zoopm("install", project=project)

    assert run.exit_code == 1
    assert "not placed by zoopm" in run.error_line and BINARY in run.error_line
    assert sentinel.read_bytes() == before
    assert placed.is_symlink()


def test_a_file_saved_over_a_placed_one_is_the_users_and_never_overwritten(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    project = local_project(tmp_path, tiny_net)
    assert zoopm("install", project=project).exit_code == 0
    placed = project / "models" / "tiny" / "deploy.prototxt"
    mine = placed.with_name("deploy.prototxt.new")
    mine.write_text("name: 'my edit'\n")
    mine.replace(placed)  # how an editor saves: a new file renamed over the old one

    run = zoopm("install", project=project)

    assert run.exit_code == 1
    assert "not placed by zoopm" in run.error_line
    assert placed.read_text() == "name: 'my edit'\n"


def test_a_file_created_at_a_target_while_downloading_is_never_replaced(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm
) -> None:
    project = remote_project(tmp_path, tiny_net, file_server)
    assert zoopm("lock", project=project).exit_code == 0
    _wipe_store()
    file_server.clear_log()
    file_server.slow("/models/tiny_net.caffemodel", 1.0)
    target = project / "models" / "tiny" / BINARY

    def plant_while_downloading() -> None:
        deadline = time.monotonic() + 10
        while file_server.count("/models/tiny_net.caffemodel") == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"the user's own file")

    planter = threading.Thread(target=plant_while_downloading)
    planter.start()
    run = zoopm("install", project=project)
    planter.join()

    assert run.exit_code == 1
    assert "exists and was not placed by zoopm" in run.error_line
    assert target.read_bytes() == b"the user's own file"


def _wipe_store() -> None:
    store = Path(os.environ["ZOOPM_HOME"]) / "store"
    if not store.exists():
        return
    for blob in store.rglob("*"):
        if blob.is_file():
            blob.chmod(0o644)
    shutil.rmtree(store)


# --- 3: the install record is read as strictly as zoo.lock -----------------------------------


@pytest.mark.parametrize("hostile", ["../../outside/tiny_net.caffemodel", "/etc/hostname"])
def test_an_install_record_entry_that_leaves_models_is_refused_and_removes_nothing(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, hostile: str
) -> None:
    project = local_project(tmp_path, tiny_net)
    assert zoopm("install", project=project).exit_code == 0
    sentinel, before = outside_sentinel(tmp_path)
    record_path = project / "models" / RECORD
    record = json.loads(record_path.read_text())
    entry = next(iter(record["models"]["tiny"].values()))
    record["models"]["tiny"][hostile] = entry
    record_path.write_text(json.dumps(record))
    (project / "zoo.toml").write_text('[project]\nmodels-dir = "models"\n\n[models]\n')

    run = zoopm("install", project=project)

    assert run.exit_code == 1
    assert RECORD in run.error_line and hostile in run.error_line
    assert "hint:" in run.stderr
    assert sentinel.read_bytes() == before
    assert (project / "models" / "tiny" / BINARY).exists()


# --- 5, 6: a blob is proven before it is linked again ---------------------------------------


def test_writing_into_a_hardlinked_file_never_corrupts_what_install_places(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    project = remote_project(tmp_path, tiny_net, file_server)
    assert zoopm("install", "--link-mode", "hardlink", project=project).exit_code == 0
    placed = project / "models" / "tiny" / BINARY
    good = placed.read_bytes()
    placed.chmod(0o644)
    with placed.open("r+b") as handle:
        handle.write(b"EDITED")
    file_server.clear_log()

    run = zoopm("install", "--link-mode", "hardlink", project=project)

    assert run.exit_code == 0, run.stderr
    assert placed.read_bytes() == good
    assert blob_of(store_dir, good).read_bytes() == good
    assert file_server.count("/models/tiny_net.caffemodel") == 1
    assert any((store_dir / "quarantine").iterdir())


def test_a_truncated_blob_is_fetched_again_not_placed(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    project = remote_project(tmp_path, tiny_net, file_server)
    assert zoopm("install", "--link-mode", "copy", project=project).exit_code == 0
    placed = project / "models" / "tiny" / BINARY
    good = placed.read_bytes()
    blob = blob_of(store_dir, good)
    blob.chmod(0o644)
    blob.write_bytes(good[:5])
    placed.unlink()

    run = zoopm("install", "--link-mode", "copy", project=project)

    assert run.exit_code == 0, run.stderr
    assert placed.read_bytes() == good
    assert blob.read_bytes() == good


def test_symlink_mode_notices_a_wiped_store(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm
) -> None:
    project = remote_project(tmp_path, tiny_net, file_server)
    assert zoopm("install", "--link-mode", "symlink", project=project).exit_code == 0
    _wipe_store()

    listed = zoopm("list", "--json", project=project)
    run = zoopm("install", "--link-mode", "symlink", project=project)

    assert json.loads(listed.stdout)[0]["installed"] is False
    assert run.exit_code == 0, run.stderr
    assert "Nothing to do" not in run.stderr
    assert (project / "models" / "tiny" / BINARY).read_bytes()[:2] == b"\x0a\x08"


def test_a_sha1_alias_pointing_at_another_blob_never_pins_the_other_bytes(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    project = remote_project(tmp_path, tiny_net, file_server)
    assert zoopm("install", project=project).exit_code == 0
    good = (project / "models" / "tiny" / BINARY).read_bytes()
    sha1 = hashlib.sha1(good).hexdigest()
    other = b"another model's weights"
    other_sha256 = hashlib.sha256(other).hexdigest()
    other_blob = store_dir / "sha256" / other_sha256[:2] / other_sha256
    other_blob.parent.mkdir(parents=True, exist_ok=True)
    other_blob.write_bytes(other)
    alias = store_dir / "sha1" / sha1[:2] / sha1
    alias.write_text(other_sha256)
    second = remote_project(tmp_path, tiny_net, file_server, name="second")

    run = zoopm("lock", project=second)

    assert run.exit_code == 0, run.stderr
    lock = (second / "zoo.lock").read_text()
    assert hashlib.sha256(good).hexdigest() in lock
    assert other_sha256 not in lock


# --- 9: an interrupted or failed install never leaves a state the next run refuses ----------


def test_a_failure_while_placing_keeps_zoopms_own_files_in_the_record(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    other = tmp_path / "src" / "other"
    other.mkdir(parents=True)
    for name in ("readme.md", "deploy.prototxt", BINARY):
        (other / name).write_bytes((tiny_net / name).read_bytes())
    project = write_project(
        tmp_path / "proj",
        {"a": f'{{ path = "{tiny_net}" }}', "b": f'{{ path = "{other}" }}'},
    )
    assert zoopm("install", project=project).exit_code == 0
    # Both models change. a's file is placed first and fails (the user put a directory where
    # zoopm's file was); b's file, zoopm's own, is never reached.
    for directory in (tiny_net, other):
        (directory / "deploy.prototxt").write_text("name: 'changed'\n")
    assert zoopm("lock", project=project).exit_code == 0
    a_deploy = project / "models" / "a" / "deploy.prototxt"
    a_deploy.unlink()
    a_deploy.mkdir()

    failed = zoopm("install", project=project)
    a_deploy.rmdir()
    rerun = zoopm("install", project=project)

    assert failed.exit_code == 1
    assert rerun.exit_code == 0, rerun.stderr
    for name, directory in (("a", tiny_net), ("b", other)):
        placed = project / "models" / name / "deploy.prototxt"
        assert placed.read_bytes() == (directory / "deploy.prototxt").read_bytes()


# --- 11: partial downloads of killed runs are swept -----------------------------------------


def test_partial_downloads_left_by_a_killed_zoopm_are_swept(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(gone.stdout)
    here = host_tag()
    leftover = store_dir / "tmp" / f"blob-{here}-{dead_pid}-abc123.part"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"x" * 1000)
    mine = store_dir / "tmp" / f"blob-{here}-{os.getpid()}-live.part"
    # Another machine's download (a store shared over NFS, another container) is never swept.
    elsewhere = store_dir / "tmp" / f"blob-00000000-{dead_pid}-other.part"
    elsewhere.write_bytes(b"theirs")
    mine.write_bytes(b"in use")
    project = remote_project(tmp_path, tiny_net, file_server)

    assert zoopm("install", project=project).exit_code == 0

    assert not leftover.exists()
    assert mine.exists()
    assert elsewhere.exists()


# --- 12: a held lock is named and waited for within a bound ---------------------------------


def test_a_held_download_lock_is_named_and_given_up_after_the_timeout(
    tmp_path: Path,
    tiny_net: Path,
    file_server: FileServer,
    zoopm: Zoopm,
    store_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = remote_project(tmp_path, tiny_net, file_server)
    assert zoopm("lock", project=project).exit_code == 0
    _wipe_store()
    lock = (project / "zoo.lock").read_text()
    binary_sha256 = lock.split(f'path = "{BINARY}"', 1)[1].split('sha256 = "', 1)[1][:64]
    holder = hold(store_dir / "locks" / f"{binary_sha256}.lock")
    try:
        monkeypatch.setenv("ZOOPM_LOCK_TIMEOUT", "2")
        started = time.monotonic()
        run = zoopm("install", project=project)
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()

    assert run.exit_code == 1
    assert f"zoopm process {holder.pid}" in run.stderr
    assert "waiting for" in run.stderr
    assert "hint:" in run.stderr
    assert waited < 10


# --- 13: the real error wins over the cancellation it caused --------------------------------


def test_one_failed_download_among_many_reports_the_real_error(
    tmp_path: Path, file_server: FileServer, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = {}
    for i in range(12):
        directory = tmp_path / "src" / f"m{i}"
        directory.mkdir(parents=True)
        data = f"weights {i}".encode() * 5000
        file_server.add_bytes(f"/w{i}.caffemodel", data)
        sha1 = hashlib.sha1(data).hexdigest()
        (directory / "readme.md").write_text(
            f"---\ncaffemodel: w.caffemodel\ncaffemodel_url: {file_server.url(f'/w{i}.caffemodel')}"
            f"\nsha1: {sha1}\n---\n"
        )
        models[f"m{i}"] = f'{{ path = "{directory}" }}'
    project = write_project(tmp_path / "proj", models)
    assert zoopm("lock", project=project).exit_code == 0
    _wipe_store()
    file_server.fail("/w5.caffemodel", status=404, times=10)
    for i in range(12):
        file_server.slow(f"/w{i}.caffemodel", 0.2)
    monkeypatch.setenv("ZOOPM_JOBS", "4")

    run = zoopm("install", project=project)

    assert run.exit_code == 1
    assert "HTTP 404" in run.error_line and "w5.caffemodel" in run.error_line
    assert "internal error" not in run.stderr
    assert not (project / "models").exists()


# --- 14: one zoopm at a time edits a project -------------------------------------------------


def test_two_adds_at_once_keep_both_models(tmp_path: Path, tiny_net: Path) -> None:
    project = write_project(tmp_path / "proj", {})
    sources = []
    for name in ("first", "second"):
        directory = tmp_path / "src" / name
        directory.mkdir(parents=True)
        for file in ("readme.md", "deploy.prototxt", BINARY):
            (directory / file).write_bytes((tiny_net / file).read_bytes())
        sources.append(directory)
    env = dict(os.environ)

    for _ in range(6):
        adds = [
            subprocess.Popen(
                [sys.executable, "-m", "zoopm", "-C", str(project), "add", str(d), "--no-install"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for d in sources
        ]
        codes = [add.wait(60) for add in adds]
        manifest = (project / "zoo.toml").read_text()
        lock = (project / "zoo.lock").read_text()
        assert codes == [0, 0]
        assert "first" in manifest and "second" in manifest
        assert 'name = "first"' in lock and 'name = "second"' in lock
        for name in ("first", "second"):
            removed = subprocess.run(
                [sys.executable, "-m", "zoopm", "-C", str(project), "remove", name],
                env=env,
                capture_output=True,
                check=False,
            )
            assert removed.returncode == 0, removed.stderr


# --- 16: operating-system errors are the user's to fix, not bugs ---------------------------


def test_a_zoopm_home_that_is_a_file_is_a_clear_error(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home-is-a-file"
    home.write_text("")
    monkeypatch.setenv("ZOOPM_HOME", str(home))
    project = local_project(tmp_path, tiny_net)

    run = zoopm("install", project=project)

    assert run.exit_code == 1
    assert "internal error" not in run.stderr
    assert str(home) in run.error_line and "Not a directory" in run.error_line
    assert "hint:" in run.stderr


def test_a_zoo_lock_that_cannot_be_written_is_a_clear_error(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    project = local_project(tmp_path, tiny_net)
    (project / "zoo.lock").mkdir()

    run = zoopm("lock", project=project)

    assert run.exit_code in (1, 2)
    assert "internal error" not in run.stderr
    assert "zoo.lock" in run.error_line


# --- 21, 22: add takes paths from -C and undoes itself when its install fails --------------


def test_add_takes_a_relative_path_from_the_project_given_with_C(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = write_project(tmp_path / "proj", {})
    mine = project / "m2"
    mine.mkdir()
    for file in ("readme.md", "deploy.prototxt", BINARY):
        (mine / file).write_bytes((tiny_net / file).read_bytes())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    run = zoopm("-C", str(project), "add", "./m2")

    assert run.exit_code == 0, run.stderr
    assert "m2" in (project / "zoo.toml").read_text()
    assert [p.parent.name for p in (project / "models").glob(f"*/{BINARY}")] != []


def test_add_whose_install_fails_leaves_zoo_toml_and_zoo_lock_as_they_were(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    project = write_project(tmp_path / "proj", {})
    assert zoopm("lock", project=project).exit_code == 0
    manifest, lock = (project / "zoo.toml").read_bytes(), (project / "zoo.lock").read_bytes()
    blocked = project / "models" / "mine" / "deploy.prototxt"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("my own prototxt\n")

    run = zoopm("add", str(tiny_net), "--name", "mine", project=project)

    assert run.exit_code == 1
    assert "not placed by zoopm" in run.error_line
    assert (project / "zoo.toml").read_bytes() == manifest
    assert (project / "zoo.lock").read_bytes() == lock
    assert blocked.read_text() == "my own prototxt\n"


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Callable[[Path], Path]]:
    """Turns a populated directory into a read-only mount of its copy (needs root; else skip)."""
    mounts: list[Path] = []

    def make(source: Path) -> Path:
        target = tmp_path / f"ro-{len(mounts)}"
        target.mkdir()
        if (
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(target)],
                capture_output=True,
                check=False,
            ).returncode
            != 0
        ):
            pytest.skip("cannot mount a tmpfs here")
        mounts.append(target)
        shutil.copytree(source, target, dirs_exist_ok=True, symlinks=True)
        subprocess.run(["mount", "-o", "remount,ro", str(target)], check=True)
        return target

    yield make
    for mount in reversed(mounts):
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_read_only_project_is_a_clear_error_naming_zoo_lock(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, read_only_dir: Callable[[Path], Path]
) -> None:
    project = read_only_dir(local_project(tmp_path, tiny_net))

    run = zoopm("lock", project=project)

    assert run.exit_code == 1
    assert "internal error" not in run.stderr
    assert "zoo.lock" in run.error_line and "Read-only file system" in run.error_line
    assert "read-only" in run.stderr.split("hint:", 1)[1]


def test_a_read_only_zoopm_home_is_a_clear_error(
    tmp_path: Path,
    tiny_net: Path,
    zoopm: Zoopm,
    read_only_dir: Callable[[Path], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    empty = tmp_path / "empty-home"
    empty.mkdir()
    monkeypatch.setenv("ZOOPM_HOME", str(read_only_dir(empty)))
    project = local_project(tmp_path, tiny_net)

    run = zoopm("install", project=project)

    assert run.exit_code == 1
    assert "internal error" not in run.stderr
    assert "Read-only file system" in run.error_line
    assert not (project / "models").exists()


# --- found by review: adoption, stale entries, interrupted intents, shared paths -----------


def test_files_that_were_there_before_zoopm_are_adopted_and_never_removed(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    project = write_project(tmp_path / "proj", {})
    checkout = project / "models" / "tiny"
    checkout.mkdir(parents=True)
    for name in ("readme.md", "deploy.prototxt"):
        (checkout / name).write_bytes((tiny_net / name).read_bytes())
    inode = (checkout / "deploy.prototxt").stat().st_ino

    added = zoopm("add", str(tiny_net), "--name", "tiny", project=project)
    with (checkout / "readme.md").open("a") as readme:
        readme.write("my own note\n")  # an adopted file stays the user's to edit
    edited = zoopm("install", project=project)
    removed = zoopm("remove", "tiny", project=project)

    assert added.exit_code == 0, added.stderr
    assert edited.exit_code == 1 and "not placed by zoopm" in edited.error_line
    assert (checkout / "readme.md").read_text().endswith("my own note\n")
    assert removed.exit_code == 0, removed.stderr
    assert (checkout / "deploy.prototxt").stat().st_ino == inode
    assert "left in place" in removed.stderr
    assert not (checkout / BINARY).exists()


def test_a_local_model_inside_the_models_directory_is_refused(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    # Under another model's name: models/m1 is m1's to place and remove. (A model's own
    # directory, models/<name>, is installed in place instead: test_import.py.)
    project = write_project(tmp_path / "proj", {"other": '{ path = "models/m1" }'})
    shutil.copytree(tiny_net, project / "models" / "m1")
    (project / "models" / "m1" / "notes.txt").write_text("my notes\n")

    run = zoopm("install", project=project)

    assert run.exit_code == 2
    assert "inside the models directory" in run.error_line
    assert (project / "models" / "m1" / "notes.txt").read_text() == "my notes\n"


def test_a_forgotten_model_never_lets_install_overwrite_the_users_file_at_its_path(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    project = local_project(tmp_path, tiny_net)
    assert zoopm("install", project=project).exit_code == 0
    shutil.rmtree(project / "models" / "tiny")
    assert zoopm("remove", "tiny", project=project).exit_code == 0
    mine = project / "models" / "tiny" / "deploy.prototxt"
    mine.parent.mkdir(parents=True)
    mine.write_text("name: 'mine'\n")

    run = zoopm("add", str(tiny_net), "--name", "tiny", project=project)

    assert run.exit_code == 1
    assert "not placed by zoopm" in run.error_line
    assert mine.read_text() == "name: 'mine'\n"


def test_a_placement_an_interrupted_run_finished_is_still_zoopms_when_the_lock_moves_on(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    project = local_project(tmp_path, tiny_net)
    assert zoopm("install", project=project).exit_code == 0
    record_path = project / "models" / RECORD
    record = json.loads(record_path.read_text())
    # As a run killed right after placing deploy.prototxt leaves it: the entry still pending.
    entry = record["models"]["tiny"]["deploy.prototxt"]
    record["models"]["tiny"]["deploy.prototxt"] = {**entry, "how": "pending", "inode": 0}
    record_path.write_text(json.dumps(record))
    (tiny_net / "deploy.prototxt").write_text("name: 'changed'\n")
    assert zoopm("lock", project=project).exit_code == 0

    run = zoopm("install", project=project)

    assert run.exit_code == 0, run.stderr
    assert (project / "models" / "tiny" / "deploy.prototxt").read_text() == "name: 'changed'\n"


def test_a_write_that_puts_the_mtime_back_is_still_caught_and_never_spread(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    project = remote_project(tmp_path, tiny_net, file_server)
    assert zoopm("install", "--link-mode", "hardlink", project=project).exit_code == 0
    placed = project / "models" / "tiny" / BINARY
    good = placed.read_bytes()
    before = placed.stat()
    with placed.open("r+b") as handle:  # as root: 0444 does not stop it
        handle.write(b"EVIL")
    os.utime(placed, ns=(before.st_atime_ns, before.st_mtime_ns))

    listed = zoopm("list", "--json", project=project)
    run = zoopm("install", "--link-mode", "hardlink", project=project)

    assert json.loads(listed.stdout)[0]["installed"] is False
    assert run.exit_code == 0, run.stderr
    assert placed.read_bytes() == good
    assert blob_of(store_dir, good).read_bytes() == good


def test_two_projects_sharing_one_models_directory_never_remove_each_others_files(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    shared = tmp_path / "big" / "models"
    shared.mkdir(parents=True)
    first = local_project(tmp_path, tiny_net)
    (first / "models").symlink_to(shared)
    second = write_project(tmp_path / "second", {})
    (second / "models").symlink_to(shared)
    assert zoopm("install", project=first).exit_code == 0

    run = zoopm("install", project=second)

    assert run.exit_code == 1
    assert "another project" in run.error_line
    assert (shared / "tiny" / BINARY).exists()


def test_a_symlinked_project_path_is_the_same_project_for_the_lock(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = write_project(tmp_path / "proj", {})
    link = tmp_path / "link"
    link.symlink_to(project)
    lock_file = project_lock(project)
    holder = hold(lock_file)
    try:
        monkeypatch.setenv("ZOOPM_LOCK_TIMEOUT", "1")
        run = zoopm("-C", str(link), "add", str(tiny_net), "--no-install")
    finally:
        holder.kill()
        holder.wait()

    assert run.exit_code == 1
    assert f"zoopm process {holder.pid}" in run.error_line


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_a_link_planted_at_a_lock_owner_file_never_redirects_the_write(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, link: str
) -> None:
    project = local_project(tmp_path, tiny_net)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    owner = project_lock(project).with_name(project_lock(project).name + ".owner")
    owner.parent.mkdir(parents=True)
    if link == "symlink":
        owner.symlink_to(victim)
    else:
        os.link(victim, owner)

    run = zoopm("lock", project=project)

    assert run.exit_code == 0, run.stderr
    assert victim.read_text() == "precious\n"


def test_odd_things_planted_in_the_store_and_models_never_hang_or_crash(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    project = remote_project(tmp_path, tiny_net, file_server)
    assert zoopm("install", project=project).exit_code == 0
    good = (project / "models" / "tiny" / BINARY).read_bytes()
    sha1 = hashlib.sha1(good).hexdigest()
    alias = store_dir / "sha1" / sha1[:2] / sha1
    alias.unlink()
    os.mkfifo(alias)
    (project / "models" / "tiny" / ".zoopm-99999999999999999999-deadbeef.tmp").write_text("")
    (project / "models" / "tiny" / BINARY).unlink()

    run = install_in_a_process(project)

    assert run.returncode == 0, run.stderr
    assert (project / "models" / "tiny" / BINARY).read_bytes() == good


def test_a_long_non_ascii_file_name_is_placed(tmp_path: Path, tiny_net: Path, zoopm: Zoopm) -> None:
    name = "模" * 80 + ".txt"  # 244 bytes: legal, but no room for a longer temp name
    (tiny_net / name).write_text("label\n")
    project = local_project(tmp_path, tiny_net)

    run = zoopm("install", project=project)

    assert run.exit_code == 0, run.stderr
    assert (project / "models" / "tiny" / name).read_text() == "label\n"


@pytest.mark.parametrize("planted", ["dev-zero", "fifo", "deep", "dotted"])
@pytest.mark.parametrize("which", ["zoo.toml", "zoo.lock"])
def test_a_project_file_that_is_a_device_a_fifo_or_nested_too_deep_is_one_clear_error(
    tmp_path: Path, tiny_net: Path, which: str, planted: str
) -> None:
    project = local_project(tmp_path, tiny_net)
    target = project / which
    target.unlink(missing_ok=True)
    if planted == "dev-zero":
        target.symlink_to("/dev/zero")
    elif planted == "fifo":
        os.mkfifo(target)
    else:
        head = "[models]\n" if which == "zoo.toml" else "version = 1\n"
        if planted == "deep":
            target.write_text(head + "x = " + "[" * 5000 + "]" * 5000 + "\n")
        else:  # 100 KB that would cost gigabytes in Python's TOML parser
            target.write_text(head + "a." * 50000 + "b = 1\n")

    run = install_in_a_process(project)

    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith(f"error: {target}") or f"error: {which}" in run.stderr
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr


def _catches(pid: int, sig: int) -> bool:
    """Whether process pid has a handler for sig (Linux: the SigCgt mask of /proc/PID/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True  # gone already, or no /proc: nothing to wait for
    mask = next((line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), "")
    return bool(mask) and bool(int(mask, 16) >> (sig - 1) & 1)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("delay", [0.12, 0.25])
def test_a_signal_while_zoopm_is_still_starting_exits_cleanly(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, sig: int, code: int, delay: float
) -> None:
    project = remote_project(tmp_path, tiny_net, file_server)
    # The binary answers only after 5 s, so the run is always still going when the signal lands.
    file_server.slow("/models/tiny_net.caffemodel", 5.0, times=5)
    started = subprocess.Popen(
        [sys.executable, "-m", "zoopm", "-C", str(project), "install"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Before zoopm's first line runs, the interpreter itself is starting and no program can
    # catch a signal; on a loaded machine that alone can take longer than delay. So the signal
    # goes at delay, or as soon as zoopm's handlers are in if that is later: SIGTERM's, which
    # zoopm sets right after SIGINT's (Python sets one for SIGINT itself, so that says nothing).
    time.sleep(delay)
    deadline = time.monotonic() + 20
    while not _catches(started.pid, signal.SIGTERM) and time.monotonic() < deadline:
        time.sleep(0.005)
    started.send_signal(sig)
    _, stderr = started.communicate(timeout=30)

    assert started.returncode == code, stderr
    assert "Traceback" not in stderr
    assert stderr.startswith("error: ")


def test_a_repository_listing_nested_without_end_is_refused_not_walked_for_ever(
    tmp_path: Path, github: GitHubEmulator, zoopm: Zoopm
) -> None:
    commit = "ab" * 20
    deep = "models/net/" + "/".join(f"d{i}" for i in range(12)) + "/notes.txt"
    github.add_repo_tree(
        "someone", "zoo", commit, {"models/net/readme.md": b"---\nname: net\n---\n", deep: b"x"}
    )
    project = write_project(
        tmp_path / "proj",
        {"net": f'{{ github = "someone/zoo", path = "models/net", rev = "{commit}" }}'},
    )

    run = zoopm("lock", project=project)

    assert run.exit_code == 1
    assert "more than 8 deep" in run.error_line
    assert "internal error" not in run.stderr


def test_a_models_dir_that_names_a_file_is_a_clear_error(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})
    (project / "zoo.toml").write_text(
        (project / "zoo.toml").read_text().replace('models-dir = "models"', 'models-dir = "afile"')
    )
    (project / "afile").write_text("mine\n")

    run = zoopm("install", project=project)

    assert run.exit_code == 2
    assert "models-dir 'afile' is not a directory" in run.error_line
    assert (project / "afile").read_text() == "mine\n"


def test_a_tampered_local_blob_is_taken_again_from_the_local_directory(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    project = local_project(tmp_path, tiny_net)
    assert zoopm("install", "--link-mode", "hardlink", project=project).exit_code == 0
    placed = project / "models" / "tiny" / BINARY
    before = placed.stat()
    with placed.open("r+b") as handle:
        handle.write(b"EVIL")
    os.utime(placed, ns=(before.st_atime_ns, before.st_mtime_ns))

    run = zoopm("install", "--link-mode", "hardlink", project=project)

    assert run.exit_code == 0, run.stderr
    assert placed.read_bytes() == (tiny_net / BINARY).read_bytes()


def test_a_touched_adopted_file_stays_adopted_and_is_never_removed(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    project = local_project(tmp_path, tiny_net)
    assert zoopm("lock", project=project).exit_code == 0
    mine = project / "models" / "tiny" / "deploy.prototxt"
    mine.parent.mkdir(parents=True)
    mine.write_bytes((tiny_net / "deploy.prototxt").read_bytes())
    inode = mine.stat().st_ino
    assert zoopm("install", project=project).exit_code == 0
    os.utime(mine)  # a touch, a git checkout: same bytes, new times

    again = zoopm("install", project=project)
    removed = zoopm("remove", "tiny", project=project)

    assert again.exit_code == 0, again.stderr
    assert removed.exit_code == 0, removed.stderr
    assert mine.stat().st_ino == inode


def test_changing_the_link_mode_places_installed_files_again(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    project = local_project(tmp_path, tiny_net)
    assert zoopm("install", "--link-mode", "hardlink", project=project).exit_code == 0
    placed = project / "models" / "tiny" / BINARY
    assert placed.stat().st_nlink == 2

    run = zoopm("install", "--link-mode", "copy", project=project)

    assert run.exit_code == 0, run.stderr
    assert placed.stat().st_nlink == 1
    assert placed.read_bytes() == (tiny_net / BINARY).read_bytes()


def test_symlink_mode_notices_a_blob_rewritten_with_its_stamp_put_back(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, store_dir: Path
) -> None:
    project = local_project(tmp_path, tiny_net)
    assert zoopm("install", "--link-mode", "symlink", project=project).exit_code == 0
    blob = Path(os.readlink(project / "models" / "tiny" / "deploy.prototxt"))
    good = blob.read_bytes()
    blob.chmod(0o644)
    with blob.open("r+b") as handle:
        handle.write(b"EVIL")
    blob.chmod(0o444)
    os.utime(blob, ns=(1_000_000_000, 1_000_000_000))

    listed = zoopm("list", "--json", project=project)
    run = zoopm("install", "--link-mode", "symlink", project=project)

    assert json.loads(listed.stdout)[0]["installed"] is False
    assert run.exit_code == 0, run.stderr
    assert (project / "models" / "tiny" / "deploy.prototxt").read_bytes() == good


def test_a_file_that_was_there_first_stays_the_users_even_if_the_first_install_dies(
    tmp_path: Path, tiny_net: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zoopm import Project
    from zoopm.storage.materialize import ModelsTree

    project_dir = local_project(tmp_path, tiny_net)
    mine = project_dir / "models" / "tiny" / "deploy.prototxt"
    mine.parent.mkdir(parents=True)
    mine.write_bytes((tiny_net / "deploy.prototxt").read_bytes())
    inode = mine.stat().st_ino

    def killed(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt  # the run dies right after writing its intents

    with monkeypatch.context() as patch:
        patch.setattr(ModelsTree, "place", killed)
        with Project(project_dir) as project, pytest.raises(KeyboardInterrupt):
            project.install()
    with Project(project_dir) as project:
        project.install()
        project.remove("tiny")

    assert mine.stat().st_ino == inode


def test_remove_whose_install_fails_leaves_zoo_toml_and_zoo_lock_as_they_were(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    other = tmp_path / "src" / "other"
    shutil.copytree(tiny_net, other)
    project = write_project(
        tmp_path / "proj", {"a": f'{{ path = "{tiny_net}" }}', "b": f'{{ path = "{other}" }}'}
    )
    assert zoopm("install", project=project).exit_code == 0
    (other / "labels.txt").write_text("cat\n")  # b gains a file whose path the user has taken
    (project / "models" / "b" / "labels.txt").mkdir()
    manifest, lock = (project / "zoo.toml").read_bytes(), (project / "zoo.lock").read_bytes()

    run = zoopm("remove", "a", project=project)

    assert run.exit_code == 1
    assert (project / "zoo.toml").read_bytes() == manifest
    assert (project / "zoo.lock").read_bytes() == lock
