"""`zoopm install` runs before the command-line framework loads, and says what the CLI says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import Zoopm
from tests.support.projects import write_project
from zoopm.fastpath import run_install


def zoopm_process(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real entry point in a child process, its imports listed on stderr."""
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "zoopm", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
        check=False,
    )


def imported(run: subprocess.CompletedProcess[str]) -> set[str]:
    return {line.split("|")[-1].strip() for line in run.stderr.splitlines() if "|" in line}


def said(run: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in run.stderr.splitlines() if not line.startswith("import time:")]


@pytest.fixture
def installed(tmp_path: Path, tiny_net: Path, zoopm: Zoopm) -> Path:
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})
    assert zoopm("install", project=project).exit_code == 0
    return project


@pytest.mark.parametrize(
    "args",
    [
        ["install"],
        ["install", "--frozen"],
        ["install", "--locked", "--offline"],
        ["--no-progress", "-v", "install"],
    ],
)
def test_a_no_op_install_loads_neither_typer_nor_rich_nor_the_network(
    installed: Path, args: list[str]
) -> None:
    run = zoopm_process(args, installed)

    assert run.returncode == 0, run.stderr
    assert said(run) == ["Nothing to do: 4 files already in place in models/"]
    loaded = imported(run)
    for heavy in ("typer", "click", "rich", "requests", "urllib3", "yaml", "tomlkit"):
        assert heavy not in loaded, heavy


@pytest.mark.parametrize("flags", [[], ["--json"]])
def test_the_fast_answer_is_word_for_word_the_clis(
    installed: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch, flags: list[str]
) -> None:
    monkeypatch.chdir(installed.parent)
    fast = zoopm_process(["-C", "proj", "install", *flags], installed.parent)
    full = zoopm("-C", "proj", "install", *flags)

    assert said(fast) == full.stderr.splitlines()
    assert fast.stdout == full.stdout
    assert fast.returncode == full.exit_code == 0
    assert not {"typer", "tomlkit"} & imported(fast)  # answered from the witness


def test_quiet_no_op_prints_nothing(installed: Path) -> None:
    run = zoopm_process(["-q", "install"], installed)

    assert run.returncode == 0
    assert said(run) == []


def test_an_install_with_work_to_do_runs_without_typer_too(installed: Path) -> None:
    (installed / "models" / "tiny" / "deploy.prototxt").unlink()

    run = zoopm_process(["install"], installed)

    assert run.returncode == 0, run.stderr
    assert "typer" not in imported(run)
    assert (installed / "models" / "tiny" / "deploy.prototxt").is_file()
    assert said(run) == ["Placed 1 file in models/, 3 unchanged"]


@pytest.mark.parametrize("flags", [[], ["--json"]])
def test_a_first_install_runs_without_typer_and_says_what_the_cli_says(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch, flags: list[str]
) -> None:
    for name in ("fast", "full"):
        write_project(tmp_path / name, {"tiny": f'{{ path = "{tiny_net}" }}'})
    monkeypatch.chdir(tmp_path)

    fast = zoopm_process(["-C", "fast", "install", *flags], tmp_path)
    monkeypatch.setenv("ZOOPM_HOME", str(tmp_path / "another-home"))  # an empty store again
    full = zoopm("-C", "full", "install", *flags)

    assert fast.returncode == full.exit_code == 0, fast.stderr
    assert "typer" not in imported(fast)
    assert [line.replace("fast/", "full/") for line in said(fast)] == full.stderr.splitlines()
    assert fast.stdout.replace("/fast/", "/full/") == full.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["install", "--link-mode", "copy"],
        ["install", "--dry-run"],
        ["install", "--jobs", "2"],
        ["install", "extra"],
        ["lock"],
        ["list"],
        ["-C"],
        ["--version", "install"],
        ["install", "--help"],
    ],
)
def test_anything_but_a_plain_install_is_left_to_the_full_cli(
    installed: Path, args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(installed)

    assert run_install(args) is None


def test_a_broken_zoo_toml_gets_the_clis_error_and_hint(installed: Path) -> None:
    (installed / "zoo.toml").write_text("[models\n")

    run = zoopm_process(["install"], installed)

    assert run.returncode == 2
    assert said(run)[0].startswith("error: zoo.toml:1")
    assert said(run)[1].startswith("hint: ")


def test_a_stale_lock_is_not_a_no_op(installed: Path, tiny_net: Path) -> None:
    text = (installed / "zoo.toml").read_text()
    (installed / "zoo.toml").write_text(text + f'other = {{ path = "{tiny_net}" }}\n')

    frozen = zoopm_process(["install", "--frozen"], installed)

    assert frozen.returncode == 1
    assert "does not match zoo.toml" in frozen.stderr


def test_a_c_option_naming_no_directory_is_refused_before_typer_loads_too(installed: Path) -> None:
    run = zoopm_process(["-C", "no/such/dir", "install"], installed)

    assert run.returncode == 2
    assert said(run)[0] == "error: -C no/such/dir: no such directory"
