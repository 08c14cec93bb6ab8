"""A project locked on another machine and cloned onto this one: zoo.toml and zoo.lock only."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.fileserver import FileServer
from tests.support.projects import fresh_checkout, mirrors_for, write_project
from zoopm.project import Project


def user_config(tmp_path: Path) -> Path:
    """The config.toml zoopm reads in these tests (conftest points XDG_CONFIG_HOME here)."""
    return tmp_path / "xdg-config" / "zoopm" / "config.toml"


def cloned_project(
    tmp_path: Path, host: FileServer, monkeypatch: pytest.MonkeyPatch, *models: str
) -> Path:
    """A clone of a project that added models (index names) without installing them, on a
    machine whose store is empty; the model hosts are reached through config.toml's mirrors,
    so zoo.toml holds nothing but the models. The host's log starts empty."""
    config = user_config(tmp_path)
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(mirrors_for(host), encoding="utf-8")
    with Project(write_project(tmp_path / "origin", {})) as origin:
        for model in models:
            origin.add(model, install=False)
    monkeypatch.setenv("ZOOPM_HOME", str(tmp_path / "this-machine"))
    host.clear_log()  # what the other machine fetched while locking
    return fresh_checkout(origin.root, tmp_path / "clone")
