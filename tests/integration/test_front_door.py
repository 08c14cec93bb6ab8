"""README's main command on the embedded example, the committed locks, and a light start-up."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.projects import REPO


def readme_main_command() -> list[str]:
    """The one zoopm command README gives for the main job, as argv after 'zoopm'."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    commands: list[str] = re.findall(r"^\.venv/bin/zoopm (.+)$", text, flags=re.MULTILINE)
    assert len(commands) == 1, commands
    return commands[0].split()


def example_checkout(tmp_path: Path) -> Path:
    """A copy of the parts of the repository the example uses, laid out the same way."""
    root = tmp_path / "checkout"
    shutil.copytree(REPO / "examples", root / "examples", ignore=shutil.ignore_patterns("models"))
    shutil.copytree(REPO / "fixtures" / "tiny_net", root / "fixtures" / "tiny_net")
    return root


def zoopm_process(args: list[str], cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *extra, "-m", "zoopm", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
        check=False,
    )


def test_the_readme_example_installs_then_has_nothing_to_do(tmp_path: Path) -> None:
    checkout = example_checkout(tmp_path)
    args = readme_main_command()

    first = zoopm_process(args, checkout)
    second = zoopm_process(args, checkout, "-X", "importtime")

    assert first.returncode == 0, first.stderr
    installed = checkout / "examples" / "quickstart" / "models" / "tiny_net"
    assert sorted(p.name for p in installed.iterdir()) == [
        "deploy.prototxt",
        "expected_output.json",
        "readme.md",
        "tiny_net.caffemodel",
    ]
    assert second.returncode == 0, second.stderr
    assert "Nothing to do" in second.stderr
    imported = {line.split("|")[-1].strip() for line in second.stderr.splitlines() if "|" in line}
    # Zero network: the HTTP stack is not even imported, nor the progress-bar library.
    assert "requests" not in imported
    assert "urllib3" not in imported
    assert "rich" not in imported
    assert "yaml" not in imported


def test_the_committed_locks_are_what_zoopm_lock_writes_today(tmp_path: Path) -> None:
    checkout = example_checkout(tmp_path)
    project = checkout / "examples" / "quickstart"
    (project / "zoo.lock").unlink()

    run = zoopm_process(["lock"], project)

    assert run.returncode == 0, run.stderr
    fresh = (project / "zoo.lock").read_bytes()
    assert fresh == (REPO / "examples" / "quickstart" / "zoo.lock").read_bytes()
    assert fresh == (REPO / "zoo.lock.example").read_bytes()


@pytest.mark.parametrize("args", [["--version"], ["--help"]])
def test_python_dash_m_zoopm_is_the_same_command(tmp_path: Path, args: list[str]) -> None:
    run = zoopm_process(args, tmp_path)

    assert run.returncode == 0, run.stderr
    assert "zoopm" in run.stdout
