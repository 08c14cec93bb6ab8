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
from zoopm.fastpath import noop_install
from zoopm.storage import freshness


@pytest.fixture(autouse=True)
def no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    # Files placed a moment ago count as settled; each tampering below waits a few ms first so
    # that its change shows in a ctime.
    monkeypatch.setattr(freshness, "RACY_NS", 0)


@pytest.fixture
def project(tmp_path: Path, tiny_net: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})
    assert zoopm("install", project=root).exit_code == 0
    monkeypatch.chdir(root)
    time.sleep(0.02)
    assert noop_install(["install"]) == 0  # a full check: it writes the witness
    assert witness(root).is_file()
    return root


def witness(root: Path) -> Path:
    return freshness.witness_path(Path(os.environ["ZOOPM_HOME"]), root)


def full_check_says_noop(root: Path) -> bool:
    return Project.discover(root).noop_plan() is not None


def fast_answer(monkeypatch: pytest.MonkeyPatch, *, full_check: bool = True) -> int | None:
    """What `zoopm install` answers before the CLI loads; without full_check, only the witness
    may answer (the full check fails as a broken project would, so the fast path declines)."""
    if full_check:
        return noop_install(["install"])

    def refuse(self: Project, *args: object) -> None:
        raise RuntimeError("the full check ran")

    with monkeypatch.context() as patch:
        patch.setattr(Project, "noop_plan", refuse)
        return noop_install(["install"])


def test_an_unchanged_project_is_answered_from_the_witness_alone(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()

    assert fast_answer(monkeypatch, full_check=False) == 0
    assert capsys.readouterr().err == "Nothing to do: 4 files already in place in models/\n"


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
    project: Path, monkeypatch: pytest.MonkeyPatch, tamper: Callable[[Path], None]
) -> None:
    time.sleep(0.02)
    tamper(project)

    expected = 0 if full_check_says_noop(project) else None

    assert fast_answer(monkeypatch) == expected


def test_a_changed_environment_is_not_answered_from_the_witness(
    project: Path, monkeypatch: pytest.MonkeyPatch, zoopm: Zoopm
) -> None:
    monkeypatch.setenv("ZOOPM_JOBS", "many")

    assert fast_answer(monkeypatch) is None
    assert zoopm("install").exit_code == 2  # the full CLI says what is wrong


def test_a_witness_is_not_written_for_files_changed_within_the_racy_window(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(freshness, "RACY_NS", 60_000_000_000)
    root = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})
    assert zoopm("install", project=root).exit_code == 0
    monkeypatch.chdir(root)

    assert noop_install(["install"]) == 0

    assert not witness(root).exists()


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"[]", b'{"format": 1}', b"x" * (17 * 1024 * 1024)],
    ids=["empty", "broken", "list", "partial", "huge"],
)
def test_a_damaged_witness_only_costs_the_full_check(
    project: Path, monkeypatch: pytest.MonkeyPatch, content: bytes
) -> None:
    witness(project).write_bytes(content)

    assert fast_answer(monkeypatch, full_check=False) is None
    assert fast_answer(monkeypatch) == 0  # answered by the full check, which writes it anew
    assert json.loads(witness(project).read_bytes())["format"] == freshness.FORMAT


def test_a_witness_of_another_project_does_not_answer_for_this_one(
    project: Path, tmp_path: Path, tiny_net: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = write_project(tmp_path / "other", {"tiny": f'{{ path = "{tiny_net}" }}'})
    assert zoopm("lock", project=other).exit_code == 0
    witness(other).symlink_to(witness(project))
    monkeypatch.chdir(other)

    assert fast_answer(monkeypatch) is None  # other's models are not installed


def test_a_witness_copied_from_another_project_does_not_answer_for_this_one(
    project: Path, tmp_path: Path, tiny_net: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = write_project(tmp_path / "other", {"tiny": f'{{ path = "{tiny_net}" }}'})
    assert zoopm("lock", project=other).exit_code == 0
    shutil.copyfile(witness(project), witness(other))
    monkeypatch.chdir(other)

    assert fast_answer(monkeypatch) is None


def test_in_symlink_mode_a_blob_gone_from_the_store_is_noticed(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})
    text = (
        (root / "zoo.toml").read_text().replace("[project]\n", '[project]\nlink-mode = "symlink"\n')
    )
    (root / "zoo.toml").write_text(text)
    assert zoopm("install", project=root).exit_code == 0
    monkeypatch.chdir(root)
    time.sleep(0.02)
    assert fast_answer(monkeypatch) == 0
    assert fast_answer(monkeypatch, full_check=False) == 0
    blob = (root / "models" / "tiny" / "deploy.prototxt").resolve()

    blob.unlink()

    assert not full_check_says_noop(root)
    assert fast_answer(monkeypatch) is None
