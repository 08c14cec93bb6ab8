"""The no-op witness: a fast "nothing to do" only while every input of the full check is unchanged.

Specification: whatever happens to the project, the store or the environment, the fast answer
is the full check's answer. The full check (Project.noop_plan) is the reference.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cli import Zoopm
from tests.support.projects import write_project
from zoopm import Project
from zoopm.fastpath import run_install
from zoopm.storage import freshness


@pytest.fixture(autouse=True)
def no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    # Files placed a moment ago count as settled; each tampering below waits a few ms first so
    # that its change shows in a ctime.
    monkeypatch.setattr(freshness, "RACY_NS", 0)


class _InstallRan(Exception):
    pass


def says_nothing_to_do(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *,
    witness_only: bool = False,
) -> bool:
    """Whether `zoopm install`, run as __main__ runs it (before the CLI loads), says there is
    nothing to do. With witness_only, only the witness may answer: running the install (and
    its full check) is refused, and counts as not saying it."""

    def refuse(*_args: object) -> None:
        raise _InstallRan

    capsys.readouterr()
    with monkeypatch.context() as patch:
        if witness_only:
            patch.setattr("zoopm.runner.run", refuse)
        try:
            code = run_install(["install"])
        except _InstallRan:
            return False
    return code == 0 and capsys.readouterr().err.startswith("Nothing to do")


@pytest.fixture
def project(
    tmp_path: Path,
    tiny_net: Path,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Path:
    root = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})
    assert zoopm("install", project=root).exit_code == 0
    monkeypatch.chdir(root)
    time.sleep(0.02)
    assert says_nothing_to_do(capsys, monkeypatch)  # a full check: it writes the witness
    assert witness(root).is_file()
    return root


def witness(root: Path) -> Path:
    return freshness.witness_path(Path(os.environ["ZOOPM_HOME"]), root)


def full_check_says_noop(root: Path) -> bool:
    return Project.discover(root).noop_plan() is not None


def test_an_unchanged_project_is_answered_from_the_witness_alone(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()

    assert run_install(["install"]) == 0
    assert capsys.readouterr().err == "Nothing to do: 4 files already in place in models/\n"
    assert says_nothing_to_do(capsys, monkeypatch, witness_only=True)


def _rewrite_same_size(root: Path) -> None:
    placed = root / "models" / "tiny" / "deploy.prototxt"
    data = placed.read_bytes()
    os.chmod(placed, 0o644)
    placed.write_bytes(data[::-1])


def _delete(root: Path) -> None:
    (root / "models" / "tiny" / "deploy.prototxt").unlink()


def _edit_zoo_toml(root: Path) -> None:
    text = (root / "zoo.toml").read_text()
    (root / "zoo.toml").write_text(text.replace("[models]", "[models]\nother = { path = '.' }"))


def _drop_model_from_lock(root: Path) -> None:
    text = (root / "zoo.lock").read_text()
    (root / "zoo.lock").write_text(text[: text.index("[[model]]")])


def _models_dir_becomes_a_symlink(root: Path) -> None:
    shutil.copytree(root / "models", root / "elsewhere", symlinks=True)
    shutil.rmtree(root / "models")
    (root / "models").symlink_to(root / "elsewhere")


def _model_dir_becomes_a_symlink(root: Path) -> None:
    shutil.copytree(root / "models" / "tiny", root / "tiny-copy", symlinks=True)
    shutil.rmtree(root / "models" / "tiny")
    (root / "models" / "tiny").symlink_to(root / "tiny-copy")


def _record_removed(root: Path) -> None:
    (root / "models" / ".zoopm-installed.json").unlink()


def _user_config_asks_for_copies(root: Path) -> None:
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "zoopm" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[defaults]\nlink-mode = "copy"\n')


def _file_hardlinked_elsewhere(root: Path) -> None:
    # Another name for the placed file: its ctime moves, which the full check hashes for.
    os.link(root / "models" / "tiny" / "deploy.prototxt", root / "extra-link")


def _placed_file_touched_back(root: Path) -> None:
    placed = root / "models" / "tiny" / "deploy.prototxt"
    info = placed.stat()
    os.chmod(placed, 0o644)
    placed.write_bytes(placed.read_bytes()[::-1])
    os.utime(placed, ns=(info.st_atime_ns, info.st_mtime_ns))
    os.chmod(placed, info.st_mode)


TAMPERINGS: dict[str, Callable[[Path], None]] = {
    "placed file rewritten, same size": _rewrite_same_size,
    "placed file rewritten, mtime and mode put back": _placed_file_touched_back,
    "placed file deleted": _delete,
    "zoo.toml edited": _edit_zoo_toml,
    "model dropped from zoo.lock": _drop_model_from_lock,
    "models dir swapped for a symlink to a copy": _models_dir_becomes_a_symlink,
    "model dir swapped for a symlink to a copy": _model_dir_becomes_a_symlink,
    "install record removed": _record_removed,
    "user configuration asks for copies": _user_config_asks_for_copies,
    "placed file hard-linked elsewhere": _file_hardlinked_elsewhere,
}


@pytest.mark.parametrize("tamper", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_after_any_change_the_fast_answer_is_the_full_checks(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tamper: Callable[[Path], None],
) -> None:
    time.sleep(0.02)
    tamper(project)

    expected = full_check_says_noop(project)

    assert says_nothing_to_do(capsys, monkeypatch) == expected


def test_a_changed_environment_is_not_answered_from_the_witness(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ZOOPM_JOBS", "many")

    assert not says_nothing_to_do(capsys, monkeypatch, witness_only=True)
    assert run_install(["install"]) == 2  # and the install says what is wrong
    assert "ZOOPM_JOBS" in capsys.readouterr().err


def test_a_witness_is_not_written_for_files_changed_within_the_racy_window(
    tmp_path: Path,
    tiny_net: Path,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(freshness, "RACY_NS", 60_000_000_000)
    root = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})
    assert zoopm("install", project=root).exit_code == 0
    monkeypatch.chdir(root)

    assert says_nothing_to_do(capsys, monkeypatch)

    assert not witness(root).exists()


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"[]", b'{"format": 1}', b"x" * (17 * 1024 * 1024)],
    ids=["empty", "broken", "list", "partial", "huge"],
)
def test_a_damaged_witness_only_costs_the_full_check(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
) -> None:
    witness(project).write_bytes(content)

    assert not says_nothing_to_do(capsys, monkeypatch, witness_only=True)
    assert says_nothing_to_do(capsys, monkeypatch)  # the full check, which writes it anew
    assert json.loads(witness(project).read_bytes())["format"] == freshness.FORMAT


def _other_project(tmp_path: Path, tiny_net: Path, zoopm: Zoopm) -> Path:
    other = write_project(tmp_path / "other", {"tiny": f'{{ path = "{tiny_net}" }}'})
    assert zoopm("lock", project=other).exit_code == 0  # locked, not installed
    return other


def test_a_witness_of_another_project_does_not_answer_for_this_one(
    project: Path,
    tmp_path: Path,
    tiny_net: Path,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    other = _other_project(tmp_path, tiny_net, zoopm)
    witness(other).symlink_to(witness(project))
    monkeypatch.chdir(other)

    assert not says_nothing_to_do(capsys, monkeypatch)
    assert (other / "models" / "tiny" / "deploy.prototxt").is_file()  # it was installed


def test_a_witness_copied_from_another_project_does_not_answer_for_this_one(
    project: Path,
    tmp_path: Path,
    tiny_net: Path,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    other = _other_project(tmp_path, tiny_net, zoopm)
    shutil.copyfile(witness(project), witness(other))
    monkeypatch.chdir(other)

    assert not says_nothing_to_do(capsys, monkeypatch)
    assert (other / "models" / "tiny" / "deploy.prototxt").is_file()


def test_in_symlink_mode_a_blob_gone_from_the_store_is_noticed(
    tmp_path: Path,
    tiny_net: Path,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})
    text = (root / "zoo.toml").read_text()
    (root / "zoo.toml").write_text(
        text.replace("[project]\n", '[project]\nlink-mode = "symlink"\n')
    )
    assert zoopm("install", project=root).exit_code == 0
    monkeypatch.chdir(root)
    time.sleep(0.02)
    assert says_nothing_to_do(capsys, monkeypatch)
    assert says_nothing_to_do(capsys, monkeypatch, witness_only=True)
    blob = (root / "models" / "tiny" / "deploy.prototxt").resolve()

    blob.unlink()

    assert not full_check_says_noop(root)
    assert not says_nothing_to_do(capsys, monkeypatch)


def test_a_forged_witness_that_leaves_out_the_inputs_is_not_believed(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    forged = json.loads(witness(project).read_bytes())
    forged["stats"], forged["realpaths"] = [], []
    witness(project).write_text(json.dumps(forged))
    shutil.rmtree(project / "models")

    assert not says_nothing_to_do(capsys, monkeypatch, witness_only=True)


def test_a_configuration_edited_after_it_was_read_gets_no_witness(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    witness(project).unlink()
    stale = Project.discover(project)  # reads config.toml now
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "zoopm" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[defaults]\nlink-mode = "symlink"\n')

    assert stale.noop_plan() is not None  # its verdict is for the configuration it read

    assert not witness(project).exists()
    assert not says_nothing_to_do(capsys, monkeypatch)  # the files are placed again, linked


def test_a_change_during_the_check_gets_no_witness_whatever_the_clock_says(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    witness(project).unlink()
    real_plan = Project._current_plan
    calls = 0

    def plan_then_edit(self: Project, *args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        plan = real_plan(self, *args, **kwargs)  # type: ignore[arg-type]
        if calls == 1:  # zoo.toml changes right after the first check read it
            text = (project / "zoo.toml").read_text()
            (project / "zoo.toml").write_text(text.replace('"models"', '"weights"'))
        return plan

    real_ns = time.time_ns
    with monkeypatch.context() as patch:
        patch.setattr(Project, "_current_plan", plan_then_edit)
        # A network file system whose clock is 10 s behind: the wall clock cannot tell.
        patch.setattr(time, "time_ns", lambda: real_ns() + 10_000_000_000)
        Project.discover(project).noop_plan()

    assert not witness(project).exists()
    assert not says_nothing_to_do(capsys, monkeypatch)
    assert (project / "weights" / "tiny" / "deploy.prototxt").is_file()


def test_a_symlinked_state_directory_is_never_written_through(
    tmp_path: Path,
    tiny_net: Path,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    home = Path(os.environ["ZOOPM_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "state").symlink_to(outside)
    root = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})
    assert zoopm("install", project=root).exit_code == 0
    monkeypatch.chdir(root)
    time.sleep(0.02)

    assert says_nothing_to_do(capsys, monkeypatch)

    assert list(outside.rglob("*")) == []
