"""Shared test fixtures: an isolated ZOOPM_HOME for every test, a local file server, the CLI."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.fileserver import FileServer

if TYPE_CHECKING:
    from tests.support.cli import Zoopm
from tests.support.github import GitHubEmulator
from tests.support.projects import REPO, TINY_NET


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads or writes the user's cache or configuration."""
    home = tmp_path / "zoopm-home"
    monkeypatch.setenv("ZOOPM_HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    names = ("ZOOPM_OFFLINE", "GITHUB_TOKEN", "ZOOPM_GITHUB_API", "ZOOPM_JOBS", "ZOOPM_CONFIG")
    for name in (*names, "ZOOPM_REMOTE", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    # No test may reach the real web archive; tests of the dead-link fallback set a stand-in.
    monkeypatch.setenv("ZOOPM_ARCHIVE_API", "off")
    return home


@pytest.fixture
def store_dir(isolated_env: Path) -> Path:
    return isolated_env / "store"


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    with FileServer() as server:
        yield server


@pytest.fixture
def zoopm() -> Zoopm:
    from tests.support.cli import Zoopm

    return Zoopm()


@pytest.fixture
def tiny_net(tmp_path: Path) -> Path:
    """A writable copy of the real tiny Caffe model directory."""
    target = tmp_path / "src" / "tiny_net"
    shutil.copytree(TINY_NET, target)
    return target


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubEmulator]:
    """GitHub's API and raw hosts, emulated from fixtures/github; ZOOPM_GITHUB_API points there."""
    with GitHubEmulator() as emulator:
        emulator.load_fixtures(REPO / "fixtures" / "github")
        monkeypatch.setenv("ZOOPM_GITHUB_API", emulator.api_url)
        yield emulator


@pytest.fixture
def model_host(file_server: FileServer) -> FileServer:
    """A file server holding the stand-in binaries, reached through [mirrors]."""
    for binary in sorted((REPO / "fixtures" / "github" / "binaries").iterdir()):
        file_server.add_file(f"/caffe/{binary.name}", binary)
        file_server.add_file(f"/nin/{binary.name}", binary)
    return file_server
