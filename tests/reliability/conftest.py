"""Fixtures of the reliability suite: a zoopm home, a project and an outside world to protect."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.reliability._support import FileState, snapshot


@dataclass(frozen=True)
class World:
    """Where one test's zoopm may write (project, home) and what it must leave alone (the rest)."""

    root: Path
    project: Path
    home: Path
    outside: Path
    sentinel: Path

    def untouched_state(self) -> dict[str, FileState]:
        """Everything under root except the project and the zoopm home."""
        return snapshot(self.root, exclude=(self.project, self.home))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    project = tmp_path / "proj"
    project.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    sentinel = outside / "precious.txt"
    sentinel.write_bytes(b"the user's own file; zoopm must never write here\n")
    yield World(tmp_path, project, tmp_path / "zoopm-home", outside, sentinel)
