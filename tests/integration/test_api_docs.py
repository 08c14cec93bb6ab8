"""docs/api.md says what it does: every python example runs, and its export list is __all__."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import zoopm
from tests.support.clones import cloned_project
from tests.support.fileserver import FileServer
from tests.support.github import GitHubEmulator
from tests.support.projects import REPO

API_MD = REPO / "docs" / "api.md"


def python_examples() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", API_MD.read_text(encoding="utf-8"), re.M | re.S)


def exported_names() -> list[str]:
    """The backquoted names of the bullets under 'Everything zoopm exports'."""
    text = API_MD.read_text(encoding="utf-8")
    section = text.split("## Everything `zoopm` exports", 1)[1].split("\n## ", 1)[0]
    bullets = re.findall(r"^- (.*?)(?=^- |\Z)", section, re.M | re.S)
    names = []
    for bullet in bullets:
        listed = bullet.split(":", 1)[0]
        names += re.findall(r"`([A-Za-z_]+)`", listed)
    return names


@pytest.fixture
def fresh_clone(
    tmp_path: Path,
    github: GitHubEmulator,
    model_host: FileServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """What the page assumes: zoo.toml and zoo.lock pinning bvlc_googlenet, nothing installed,
    an empty store; the working directory is the project."""
    clone = cloned_project(tmp_path, model_host, monkeypatch, "bvlc_googlenet")
    monkeypatch.chdir(clone)
    return clone


def test_every_python_example_of_the_api_page_runs_in_order(fresh_clone: Path) -> None:
    examples = python_examples()
    assert len(examples) >= 4

    for number, example in enumerate(examples, 1):
        code = compile(example, f"docs/api.md example {number}", "exec")
        exec(code, {"__name__": f"api_example_{number}"})

    models = fresh_clone / "models"
    assert sorted(p.name for p in models.iterdir() if p.is_dir()) == [
        "bvlc_alexnet",
        "bvlc_googlenet",
        "bvlc_reference_caffenet",
    ]


def test_the_page_lists_exactly_what_zoopm_exports() -> None:
    listed = exported_names()

    assert len(listed) == len(set(listed)), "a name is listed twice"
    assert sorted(listed) == sorted(zoopm.__all__)
