"""Readmes as the zoo really published them: the VGG family installs, pinned on first use."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import pytest

from tests.support.cli import Zoopm
from tests.support.fileserver import FileServer
from tests.support.github import FIXTURES, GitHubEmulator
from tests.support.projects import fresh_checkout, mirrors_for, write_project

BINARIES = FIXTURES / "binaries"
VGG = [
    # index name, gist, the binary's name as the readme gives it, the file its URL serves
    ("vgg_ilsvrc_16_layers", "211839e770f7b538e2d8", "VGG_ILSVRC_16_layers"),
    ("vgg_ilsvrc_19_layers", "3785162f95cd2d5fee77", "VGG_ILSVRC_19_layers"),
    ("vgg_cnn_s", "fd8800eeb36e276cd6f9", "VGG_CNN_S"),
]


def project_with(tmp_path: Path, host: FileServer) -> Path:
    return write_project(tmp_path / "proj", {}, mirrors_for(host))


def locked_binary(project: Path, name: str) -> dict[str, object]:
    lock = tomllib.loads((project / "zoo.lock").read_text())
    (model,) = [m for m in lock["model"] if m["name"] == name]
    (binary,) = [f for f in model["file"] if f.get("binary")]
    return dict(binary)


@pytest.mark.parametrize(("index_name", "gist", "caffemodel"), VGG)
def test_add_installs_a_vgg_model_under_the_name_its_readme_gives(
    tmp_path: Path,
    github: GitHubEmulator,
    model_host: FileServer,
    zoopm: Zoopm,
    index_name: str,
    gist: str,
    caffemodel: str,
) -> None:
    project = project_with(tmp_path, model_host)

    added = zoopm("add", index_name, project=project)

    assert added.exit_code == 0, added.stderr
    served = (BINARIES / f"{caffemodel}.caffemodel").read_bytes()
    model = project / "models" / index_name
    assert (model / caffemodel).read_bytes() == served
    assert (model / f"{caffemodel}_deploy.prototxt").read_bytes() == (
        FIXTURES / "gists" / gist / "r1" / f"{caffemodel}_deploy.prototxt"
    ).read_bytes()
    binary = locked_binary(project, index_name)
    assert binary["path"] == caffemodel
    assert binary["size"] == len(served)


def test_a_readme_without_sha1_is_pinned_on_first_use_with_one_warning(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    project = project_with(tmp_path, model_host)

    added = zoopm("add", "vgg_ilsvrc_16_layers", project=project)

    assert added.exit_code == 0, added.stderr
    served = (BINARIES / "VGG_ILSVRC_16_layers.caffemodel").read_bytes()
    sha1 = hashlib.sha1(served).hexdigest()
    assert locked_binary(project, "vgg_ilsvrc_16_layers")["sha1"] == sha1
    pinned = [line for line in added.stderr.splitlines() if "no sha1" in line]
    assert len(pinned) == 1, added.stderr
    assert sha1 in pinned[0]
    assert "README.md" in pinned[0]


def test_once_pinned_the_lock_is_the_contract_and_other_bytes_are_refused(
    tmp_path: Path,
    github: GitHubEmulator,
    model_host: FileServer,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = project_with(tmp_path, model_host)
    assert zoopm("add", "vgg_ilsvrc_16_layers", "--no-install", project=project).exit_code == 0
    fresh = fresh_checkout(project, tmp_path / "fresh")
    monkeypatch.setenv("ZOOPM_HOME", str(tmp_path / "another-home"))  # another machine
    # The host now serves other bytes under the same URL (as finetune_flickr_style's did).
    model_host.add_bytes("/caffe/VGG_ILSVRC_16_layers.caffemodel", b"other weights\n" * 200)

    installed = zoopm("install", "--frozen", project=fresh)

    assert installed.exit_code != 0
    assert "VGG_ILSVRC_16_layers" in installed.error_line
    assert not (fresh / "models" / "vgg_ilsvrc_16_layers" / "VGG_ILSVRC_16_layers").exists()


def test_the_warnings_say_what_is_off_in_the_readme(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    project = project_with(tmp_path, model_host)

    added = zoopm("add", "vgg_cnn_s", project=project)

    assert added.exit_code == 0, added.stderr
    warnings = [line for line in added.stderr.splitlines() if line.startswith("warning: ")]
    assert any("no frontmatter" in line and "README.md" in line for line in warnings), warnings
    shown = zoopm("show", "vgg_cnn_s", project=project)
    assert "non-commercial use only" in shown.stdout


def test_the_first_use_warning_is_given_once_not_on_every_lock_or_install(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    project = project_with(tmp_path, model_host)
    assert zoopm("add", "vgg_ilsvrc_16_layers", project=project).exit_code == 0
    (project / "models").rename(tmp_path / "gone")

    again = [zoopm("lock", project=project), zoopm("install", project=project)]

    assert [run.exit_code for run in again] == [0, 0]
    assert not any("no sha1" in run.stderr for run in again), [run.stderr for run in again]
