"""zoopm fetch-gist ID[@REV] [DIR]: Caffe's download_model_from_gist.sh, pinned and verified.

As the script: the files go to DIR/<ID with / replaced by -> (DIR defaults to ./models).
Unlike it: the revision is a commit (the newest is printed with the command that pins it),
every file is checked against the API's size and git blob id, a non-empty directory is never
overwritten without --force, and a failure, Ctrl-C or SIGKILL leaves no directory behind.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import time
import warnings
import zipfile
from pathlib import Path

import pytest

from tests.support.cli import Zoopm
from tests.support.fileserver import FileServer
from tests.support.github import FIXTURES, GitHubEmulator
from tests.support.projects import mirrors_for

NIN = "d802a5849de39225bcc6"
OWNER = "mavenlin"
TARGET = f"{OWNER}-{NIN}"
NIN_FILES = FIXTURES / "gists" / NIN


def revision_files(index: int) -> dict[str, bytes]:
    """The NIN gist's files at revision index (1 = the oldest), from the fixtures."""
    return {p.name: p.read_bytes() for p in sorted((NIN_FILES / f"r{index}").iterdir())}


def tree(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".zoopm-"))


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with nothing in it (no zoo.toml anywhere)."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


# --- what it fetches ---------------------------------------------------------------------------


def test_without_a_revision_the_newest_is_fetched_and_printed_with_the_commands_that_pin_it(
    here: Path, zoopm: Zoopm, github: GitHubEmulator
) -> None:
    newest = github.gist_commits(NIN)[-1]

    run = zoopm("fetch-gist", f"{OWNER}/{NIN}")

    assert run.exit_code == 0, run.stderr
    assert tree(here / "models" / TARGET) == revision_files(3)
    assert f"Fetched models/{TARGET}: gist {NIN} at {newest}" in run.stdout
    assert f"  zoopm fetch-gist {OWNER}/{NIN}@{newest}\n" in run.stdout
    assert f"  zoopm add gist:{NIN}@{newest}\n" in run.stdout
    assert leftovers(here / "models") == []


def test_a_pinned_old_revision_gets_that_revisions_bytes(
    here: Path, zoopm: Zoopm, github: GitHubEmulator
) -> None:
    oldest = github.gist_commits(NIN)[0]

    run = zoopm("fetch-gist", f"{NIN}@{oldest}", "elsewhere")

    assert run.exit_code == 0, run.stderr
    assert tree(here / "elsewhere" / NIN) == revision_files(1)
    assert revision_files(1) != revision_files(3)
    assert "zoopm add" not in run.stdout  # pinned already: nothing to say about pinning


def test_an_abbreviated_revision_is_found_in_the_gists_commits_and_printed_in_full(
    here: Path, zoopm: Zoopm, github: GitHubEmulator
) -> None:
    middle = github.gist_commits(NIN)[1]

    run = zoopm("fetch-gist", f"{OWNER}/{NIN}@{middle[:8]}")

    assert run.exit_code == 0, run.stderr
    assert tree(here / "models" / TARGET) == revision_files(2)
    assert f"zoopm fetch-gist {OWNER}/{NIN}@{middle}" in run.stdout


def test_an_abbreviated_revision_that_matches_no_commit_is_refused(
    here: Path, zoopm: Zoopm, github: GitHubEmulator
) -> None:
    run = zoopm("fetch-gist", f"{NIN}@0000000")

    assert run.exit_code == 2
    assert run.error_line == f"error: gist {NIN}: no revision starts with 0000000"
    assert not (here / "models").exists()


def test_a_gist_url_is_accepted_and_names_the_directory_as_owner_dash_id(
    here: Path, zoopm: Zoopm, github: GitHubEmulator
) -> None:
    run = zoopm("fetch-gist", f"https://gist.github.com/{OWNER}/{NIN}")

    assert run.exit_code == 0, run.stderr
    assert tree(here / "models" / TARGET) == revision_files(3)


@pytest.mark.parametrize("text", ["not-a-gist", f"{NIN}@xyz", "../../etc", f"a/b/{NIN}"])
def test_what_is_not_a_gist_is_a_usage_error(here: Path, zoopm: Zoopm, text: str) -> None:
    run = zoopm("fetch-gist", text)

    assert run.exit_code == 2
    assert run.error_line.startswith("error: ")
    assert not (here / "models").exists()


# --- the target directory ----------------------------------------------------------------------


def test_a_non_empty_target_is_refused_and_force_replaces_it_whole(
    here: Path, zoopm: Zoopm, github: GitHubEmulator
) -> None:
    target = here / "models" / TARGET
    target.mkdir(parents=True)
    (target / "readme.md").write_text("the user's own readme")
    (target / "notes.txt").write_text("added by the user")

    refused = zoopm("fetch-gist", f"{OWNER}/{NIN}")
    kept = tree(target)
    forced = zoopm("fetch-gist", "--force", f"{OWNER}/{NIN}")

    assert refused.exit_code == 2
    assert refused.error_line == f"error: {target}: already exists and is not empty"
    assert "--force" in refused.stderr
    assert kept == {"notes.txt": b"added by the user", "readme.md": b"the user's own readme"}
    assert forced.exit_code == 0, forced.stderr
    assert forced.stdout.startswith(f"Replaced models/{TARGET}")
    assert tree(target) == revision_files(3)  # notes.txt went with the old directory
    assert leftovers(here / "models") == []


def test_an_empty_target_left_by_the_old_script_is_filled_without_force(
    here: Path, zoopm: Zoopm, github: GitHubEmulator
) -> None:
    (here / "models" / TARGET).mkdir(parents=True)

    run = zoopm("fetch-gist", f"{OWNER}/{NIN}")

    assert run.exit_code == 0, run.stderr
    assert tree(here / "models" / TARGET) == revision_files(3)


def test_a_symlink_at_the_target_is_refused_even_with_force_and_never_followed(
    here: Path, zoopm: Zoopm, github: GitHubEmulator, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("keep me")
    (here / "models").mkdir()
    (here / "models" / TARGET).symlink_to(victim)

    plain = zoopm("fetch-gist", f"{OWNER}/{NIN}")
    forced = zoopm("fetch-gist", "--force", f"{OWNER}/{NIN}")

    for run in (plain, forced):
        assert run.exit_code == 1
        assert "is a symbolic link" in run.error_line
    assert tree(victim) == {"precious": b"keep me"}
    assert (here / "models" / TARGET).is_symlink()
    assert leftovers(here / "models") == []


def test_a_symlink_at_dir_is_refused_not_followed(
    here: Path, zoopm: Zoopm, github: GitHubEmulator, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (here / "models").symlink_to(elsewhere)

    run = zoopm("fetch-gist", f"{OWNER}/{NIN}")

    assert run.exit_code == 1
    assert "is a symbolic link" in run.error_line
    assert str(elsewhere) in run.stderr  # the hint names the directory to give instead
    assert list(elsewhere.iterdir()) == []


def test_a_file_at_the_target_is_refused(here: Path, zoopm: Zoopm, github: GitHubEmulator) -> None:
    (here / "models").mkdir()
    (here / "models" / TARGET).write_text("a file")

    run = zoopm("fetch-gist", "--force", f"{OWNER}/{NIN}")

    assert run.exit_code == 1
    assert "is a file, not a directory" in run.error_line
    assert (here / "models" / TARGET).read_text() == "a file"


# --- failures leave nothing ----------------------------------------------------------------------


def test_a_gist_github_does_not_know_is_one_error_line_and_no_directory(
    here: Path, zoopm: Zoopm, github: GitHubEmulator
) -> None:
    run = zoopm("fetch-gist", "0123456789abcdef0123")

    assert run.exit_code == 1
    assert run.error_line == "error: gist 0123456789abcdef0123: not found on GitHub"
    assert len(run.stderr.splitlines()) == 2
    assert not (here / "models").exists()


def test_an_unknown_revision_is_one_error_line_and_no_directory(
    here: Path, zoopm: Zoopm, github: GitHubEmulator
) -> None:
    run = zoopm("fetch-gist", f"{NIN}@{'1' * 40}")

    assert run.exit_code == 1
    assert "no such gist or revision" in run.error_line
    assert not (here / "models").exists()


def test_wrong_bytes_from_the_raw_host_are_refused_and_leave_no_directory(
    here: Path, zoopm: Zoopm, github: GitHubEmulator
) -> None:
    github.corrupt_raw("/deploy.prototxt")

    run = zoopm("fetch-gist", f"{OWNER}/{NIN}")

    assert run.exit_code == 1
    assert "deploy.prototxt: git blob mismatch" in run.error_line
    assert not (here / "models").exists()


def test_wrong_bytes_leave_an_existing_directory_as_it_was_even_with_force(
    here: Path, zoopm: Zoopm, github: GitHubEmulator
) -> None:
    target = here / "models" / TARGET
    target.mkdir(parents=True)
    (target / "mine.txt").write_text("mine")
    github.corrupt_raw("/readme.md")

    run = zoopm("fetch-gist", "--force", f"{OWNER}/{NIN}")

    assert run.exit_code == 1
    assert tree(target) == {"mine.txt": b"mine"}
    assert leftovers(here / "models") == []


HOSTILE = {
    "climbs": {"../x": b"x\n"},
    "absolute": {"/abs": b"x\n"},
    "backslash": {"a\\b": b"x\n"},
    "slash": {"sub/x": b"x\n"},
    "dot": {".": b"x\n"},
    "control": {"bell\x07": b"x\n"},
    "newline": {"two\nlines": b"x\n"},
    "case": {"deploy.prototxt": b"a\n", "Deploy.prototxt": b"b\n"},
    "readme-case": {"readme.md": b"one\n", "README.md": b"two\n"},
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_names_in_a_gist_listing_are_refused_and_nothing_is_written(
    here: Path, zoopm: Zoopm, github: GitHubEmulator, tmp_path: Path, case: str
) -> None:
    gist = "abcdef0123456789abcd"
    files = {"readme.md": b"---\nname: hostile\n---\n", **HOSTILE[case]}
    github.add_gist(gist, "mallory", [files])
    before = sorted(p.name for p in tmp_path.iterdir())

    run = zoopm("fetch-gist", gist)
    after = sorted(p.name for p in tmp_path.iterdir() if p.name != "zoopm-home")

    assert run.exit_code == 1
    assert f"gist {gist}@" in run.error_line
    assert "file name" in run.error_line or "differ only in case" in run.error_line
    assert not (here / "models").exists()
    assert after == before
    assert not Path("/abs").exists()


def test_temp_directories_of_a_killed_run_are_swept_and_a_live_ones_kept(
    here: Path, zoopm: Zoopm, github: GitHubEmulator
) -> None:
    from zoopm.storage.locks import host_tag

    models = here / "models"
    dead = models / f".zoopm-{host_tag()}-999999999-abcd.fetch"
    (dead / "half").mkdir(parents=True)
    live = models / f".zoopm-{host_tag()}-{os.getpid()}-abcd.fetch"
    live.mkdir()

    run = zoopm("fetch-gist", f"{OWNER}/{NIN}")

    assert run.exit_code == 0, run.stderr
    assert not dead.exists()
    assert live.exists()


def _zoopm_process(*args: str, cwd: Path) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "zoopm", "--no-progress", "fetch-gist", *args]
    return subprocess.Popen(
        argv,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


def _wait_for_temp(models: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        if models.is_dir() and leftovers(models):
            return
        time.sleep(0.02)
    raise AssertionError("fetch-gist never started building its directory")


def test_sigkill_mid_way_leaves_no_directory_and_the_next_run_sweeps_its_remains(
    here: Path, github: GitHubEmulator
) -> None:
    github.delay_archives(30)
    process = _zoopm_process("--archive", f"{OWNER}/{NIN}", cwd=here)
    _wait_for_temp(here / "models", process)
    process.kill()
    process.communicate(timeout=30)
    left = leftovers(here / "models")
    placed = (here / "models" / TARGET).exists()
    github.delay_archives(0)

    again = _zoopm_process(f"{OWNER}/{NIN}", cwd=here)
    _, stderr = again.communicate(timeout=60)

    assert left and not placed
    assert again.returncode == 0, stderr
    assert tree(here / "models" / TARGET) == revision_files(3)
    assert leftovers(here / "models") == []


def test_ctrl_c_mid_way_leaves_no_directory_and_no_temp(here: Path, github: GitHubEmulator) -> None:
    github.delay_archives(30)
    process = _zoopm_process("--archive", f"{OWNER}/{NIN}", cwd=here)
    _wait_for_temp(here / "models", process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert not (here / "models").exists()  # it made models/, and took it away again


def made(directory: Path) -> list[str]:
    """Everything below directory, as paths relative to it."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


@pytest.mark.parametrize("existing", [None, "a"])
def test_a_failed_fetch_removes_every_directory_it_made_on_the_way_and_no_other(
    here: Path, zoopm: Zoopm, github: GitHubEmulator, existing: str | None
) -> None:
    if existing is not None:
        (here / existing).mkdir()
    github.corrupt_raw("/deploy.prototxt")

    run = zoopm("fetch-gist", NIN, "a/b/c")

    assert run.exit_code == 1, run.stderr
    assert "deploy.prototxt: git blob mismatch" in run.error_line
    assert made(here) == ([existing] if existing is not None else [])


@pytest.mark.parametrize("users_file", [False, True])
def test_ctrl_c_removes_every_directory_it_made_unless_something_was_put_in_it(
    here: Path, github: GitHubEmulator, users_file: bool
) -> None:
    github.delay_archives(30)
    process = _zoopm_process("--archive", f"{OWNER}/{NIN}", "x/y/z", cwd=here)
    _wait_for_temp(here / "x" / "y" / "z", process)
    if users_file:
        (here / "x" / "notes.txt").write_text("put there while fetch-gist worked")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 130, stderr
    assert made(here) == (["x", "x/notes.txt"] if users_file else [])


# --- --archive -----------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["zip", "tar.gz"])
def test_the_archive_download_gives_the_same_verified_files(
    here: Path, zoopm: Zoopm, github: GitHubEmulator, form: str
) -> None:
    oldest = github.gist_commits(NIN)[0]
    flags = ["--archive"] if form == "zip" else ["--archive-format", form]

    run = zoopm("fetch-gist", *flags, f"{OWNER}/{NIN}@{oldest}")

    assert run.exit_code == 0, run.stderr
    assert tree(here / "models" / TARGET) == revision_files(1)
    fetched = [r.path for r in github.requests if r.server == "raw"]
    assert fetched == [
        f"/-/gist.github.com/{OWNER}/{NIN}/archive/{oldest}.{form}",
        f"/-/codeload.github.com/gist/{NIN}/{form.replace('.', '.')}/{oldest}",
    ]


def _zip(entries: list[tuple[str, bytes, int]]) -> bytes:
    """A zip of (name, data, unix mode) entries; a name ending in / is a directory."""
    buffer = io.BytesIO()
    with (
        warnings.catch_warnings(action="ignore"),  # a duplicate name is the point of one case
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
    ):
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name, (2015, 2, 15, 8, 0, 0))
            info.create_system = 3
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def _tar(entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                archive.addfile(entry)
                continue
            info = tarfile.TarInfo(entry[0])
            info.size = len(entry[1])
            archive.addfile(info, io.BytesIO(entry[1]))
    return buffer.getvalue()


def _hostile_zip(case: str, top: str, files: dict[str, bytes]) -> bytes:
    regular = [(f"{top}/{name}", data, 0o100644) for name, data in files.items()]
    head = [(f"{top}/", b"", 0o40755)]
    readme = files["readme.md"]
    extra = {
        "absolute": [("/etc/zoopm-evil", b"x", 0o100644)],
        "climbs": [(f"{top}/../evil", b"x", 0o100644)],
        "symlink": [(f"{top}/link", b"/etc/passwd", 0o120777)],
        "device": [(f"{top}/dev", b"", 0o020644)],
        "two-tops": [("other/", b"", 0o40755)],
        "nested": [(f"{top}/sub/", b"", 0o40755)],
        "duplicate": [(f"{top}/readme.md", readme, 0o100644)],
        "unlisted": [(f"{top}/extra.txt", b"x", 0o100644)],
    }
    if case == "bomb":
        # 64 MiB of zeros under a listed name: a few dozen KiB compressed.
        bomb = [(f"{top}/readme.md", b"\0" * (64 << 20), 0o100644)]
        return _zip(head + bomb + [r for r in regular if not r[0].endswith("/readme.md")])
    if case == "wrong-bytes":
        same_size = readme.swapcase()
        return _zip([*head, (f"{top}/readme.md", same_size, 0o100644), *regular[:1]])
    if case == "missing":
        return _zip(head + [r for r in regular if not r[0].endswith("/readme.md")])
    return _zip(head + regular + extra[case])


HOSTILE_ARCHIVES = {
    "absolute": "is an absolute path",
    "climbs": "climbs out with '..'",
    "symlink": "is a symbolic link",
    "device": "is a device",
    "two-tops": "is a second top directory",
    "nested": "is a nested directory",
    "duplicate": "comes twice",
    "unlisted": "is not a file the API lists",
    "bomb": "holds more than the",
    "wrong-bytes": "git blob mismatch",
    "missing": "the archive lacks 'readme.md'",
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ARCHIVES))
def test_hostile_zip_archives_are_refused_and_nothing_is_written(
    here: Path, zoopm: Zoopm, github: GitHubEmulator, tmp_path: Path, case: str
) -> None:
    newest = github.gist_commits(NIN)[-1]
    github.serve_archive(NIN, "zip", _hostile_zip(case, f"{NIN}-{newest}", revision_files(3)))

    run = zoopm("fetch-gist", "--archive", f"{OWNER}/{NIN}")

    assert run.exit_code == 1, run.stderr
    assert HOSTILE_ARCHIVES[case] in run.error_line
    assert not (here / "models").exists()
    assert not (tmp_path / "evil").exists() and not Path("/etc/zoopm-evil").exists()


def _tar_member(name: str, kind: bytes, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.linkname = link
    return info


TAR_CASES = {
    "absolute": ("/etc/zoopm-evil", "is an absolute path"),
    "climbs": ("../evil", "climbs out with '..'"),
    "symlink": ("link", "is a link"),
    "hardlink": ("hard", "is a link"),
    "fifo": ("fifo", "is a device"),
    "nested": ("sub/x", "is in a nested directory"),
    "declared-bomb": ("readme.md", "declares"),
}


@pytest.mark.parametrize("case", sorted(TAR_CASES))
def test_hostile_tar_archives_are_refused_and_nothing_is_written(
    here: Path, zoopm: Zoopm, github: GitHubEmulator, case: str
) -> None:
    newest = github.gist_commits(NIN)[-1]
    top = f"{NIN}-{newest}"
    files = revision_files(3)
    name, message = TAR_CASES[case]
    path = name if name.startswith(("/", "..")) else f"{top}/{name}"
    entries: list[tarfile.TarInfo | tuple[str, bytes]] = [_tar_member(top, tarfile.DIRTYPE)]
    entries += [(f"{top}/{n}", d) for n, d in files.items() if n != "readme.md"]
    if case == "symlink":
        entries.append(_tar_member(path, tarfile.SYMTYPE, link="/etc/passwd"))
    elif case == "hardlink":
        entries.append(_tar_member(path, tarfile.LNKTYPE, link="/etc/passwd"))
    elif case == "fifo":
        entries.append(_tar_member(path, tarfile.FIFOTYPE))
    elif case == "declared-bomb":
        entries.append((path, b"\0" * (8 << 20)))
    else:
        entries.append((path, b"x"))
    github.serve_archive(NIN, "tar.gz", _tar(entries))

    run = zoopm("fetch-gist", "--archive-format", "tar.gz", f"{OWNER}/{NIN}")

    assert run.exit_code == 1, run.stderr
    assert message in run.error_line
    assert not (here / "models").exists()


def test_an_archive_that_is_not_one_is_refused(
    here: Path, zoopm: Zoopm, github: GitHubEmulator
) -> None:
    github.serve_archive(NIN, "zip", b"PK\x03\x04 not really a zip")

    run = zoopm("fetch-gist", "--archive", f"{OWNER}/{NIN}")

    assert run.exit_code == 1
    assert "not a zip archive" in run.error_line
    assert not (here / "models").exists()


def test_an_archive_larger_than_the_listed_files_can_take_is_not_downloaded_whole(
    here: Path, zoopm: Zoopm, github: GitHubEmulator
) -> None:
    github.serve_archive(NIN, "zip", os.urandom(2 << 20))

    run = zoopm("fetch-gist", "--archive", f"{OWNER}/{NIN}")

    assert run.exit_code == 1
    assert "the archive is larger than" in run.error_line
    assert not (here / "models").exists()


# --- the old workflow, end to end ----------------------------------------------------------------


def test_fetch_gist_then_download_binary_twice_as_caffe_users_do(
    here: Path, zoopm: Zoopm, github: GitHubEmulator, model_host: FileServer
) -> None:
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "zoopm" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(mirrors_for(model_host))
    binary = FIXTURES / "binaries" / "nin_imagenet.caffemodel"

    fetched = zoopm("fetch-gist", f"{OWNER}/{NIN}")
    first = zoopm("download-binary", f"models/{TARGET}")
    second = zoopm("download-binary", f"models/{TARGET}")

    assert fetched.exit_code == 0, fetched.stderr
    assert first.exit_code == 0, first.stderr
    assert (here / "models" / TARGET / "nin_imagenet.caffemodel").read_bytes() == (
        binary.read_bytes()
    )
    assert second.exit_code == 0, second.stderr
    assert second.stdout == "Model already exists.\n"


def test_two_runs_at_once_one_places_the_directory_the_other_leaves_it_alone(
    here: Path, github: GitHubEmulator
) -> None:
    github.delay_archives(1)
    first = _zoopm_process("--archive", f"{OWNER}/{NIN}", cwd=here)
    second = _zoopm_process("--archive", f"{OWNER}/{NIN}", cwd=here)
    outcomes = sorted(
        (p.returncode, err) for p in (first, second) for _, err in [p.communicate(timeout=60)]
    )

    assert [code for code, _ in outcomes] == [0, 2], outcomes
    assert "appeared while fetch-gist worked" in outcomes[1][1]
    assert tree(here / "models" / TARGET) == revision_files(3)
    assert leftovers(here / "models") == []


def test_with_force_the_run_that_finishes_last_replaces_what_another_placed_meanwhile(
    here: Path, zoopm: Zoopm, github: GitHubEmulator
) -> None:
    oldest = github.gist_commits(NIN)[0]
    github.delay_archives(4)
    slow = _zoopm_process("--archive", "--force", f"{OWNER}/{NIN}@{oldest}", cwd=here)
    _wait_for_temp(here / "models", slow)  # past its look at the target: there was none

    fast = zoopm("fetch-gist", "--force", f"{OWNER}/{NIN}")
    placed_meanwhile = tree(here / "models" / TARGET)
    stdout, stderr = slow.communicate(timeout=60)

    assert fast.exit_code == 0, fast.stderr
    assert placed_meanwhile == revision_files(3)
    assert slow.returncode == 0, stderr
    assert stdout.startswith(f"Replaced models/{TARGET}: gist {NIN} at {oldest}")
    assert tree(here / "models" / TARGET) == revision_files(1)
    assert leftovers(here / "models") == []


def test_with_force_a_symlink_put_at_the_target_meanwhile_is_refused_and_never_followed(
    here: Path, github: GitHubEmulator, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("keep me")
    github.delay_archives(2)
    slow = _zoopm_process("--archive", "--force", f"{OWNER}/{NIN}", cwd=here)
    _wait_for_temp(here / "models", slow)
    (here / "models" / TARGET).symlink_to(victim)

    _, stderr = slow.communicate(timeout=60)

    assert slow.returncode == 1, stderr
    assert "is a symbolic link" in stderr
    assert tree(victim) == {"precious": b"keep me"}
    assert (here / "models" / TARGET).is_symlink()
    assert leftovers(here / "models") == []
