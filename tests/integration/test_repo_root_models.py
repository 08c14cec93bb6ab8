"""A model that is a whole repository: github:OWNER/REPO[@REV], and path = "" in zoo.toml."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.support.cli import Zoopm
from tests.support.fileserver import FileServer
from tests.support.github import GitHubEmulator
from tests.support.projects import write_project

OLD = "1" * 40
NEW = "2" * 40
WEIGHTS = b"SqueezeNet stand-in weights\n" * 64


def readme(host: FileServer) -> bytes:
    return (
        "---\n"
        "name: SqueezeNet v1.1 (a model published as a whole repository)\n"
        "caffemodel: squeezenet_v1.1.caffemodel\n"
        f"caffemodel_url: {host.url('/squeeze/squeezenet_v1.1.caffemodel')}\n"
        f"sha1: {hashlib.sha1(WEIGHTS).hexdigest()}\n"
        "license: BSD 2-Clause\n"
        "---\n"
        "Synthetic: a repository whose root is the model directory.\n"
    ).encode()


def squeezenet_repo(github: GitHubEmulator, host: FileServer) -> None:
    host.add_bytes("/squeeze/squeezenet_v1.1.caffemodel", WEIGHTS)
    files = {
        "readme.md": readme(host),
        "deploy.prototxt": b'name: "SqueezeNet"\n',
        "LICENSE": b"BSD 2-Clause\n",
    }
    github.add_repo_tree("forresti", "SqueezeNet", OLD, files)
    github.add_repo_tree(
        "forresti", "SqueezeNet", NEW, files | {"deploy.prototxt": b'name: "SqueezeNet v1.1"\n'}
    )
    github.set_repo_history("forresti", "SqueezeNet", [NEW, OLD])


def test_add_of_a_repository_root_installs_the_whole_repository_as_one_model(
    tmp_path: Path, github: GitHubEmulator, file_server: FileServer, zoopm: Zoopm
) -> None:
    squeezenet_repo(github, file_server)
    project = write_project(tmp_path / "proj", {})

    added = zoopm("add", f"github:forresti/SqueezeNet@{OLD}", project=project)

    assert added.exit_code == 0, added.stderr
    model = project / "models" / "SqueezeNet"
    assert sorted(p.name for p in model.iterdir()) == [
        "LICENSE",
        "deploy.prototxt",
        "readme.md",
        "squeezenet_v1.1.caffemodel",
    ]
    assert (model / "squeezenet_v1.1.caffemodel").read_bytes() == WEIGHTS
    assert (model / "deploy.prototxt").read_bytes() == b'name: "SqueezeNet"\n'
    toml = (project / "zoo.toml").read_text()
    assert f'SqueezeNet = {{github = "forresti/SqueezeNet", path = "", rev = "{OLD}"}}' in toml


def test_path_empty_in_zoo_toml_locks_the_newest_commit_of_the_repository(
    tmp_path: Path, github: GitHubEmulator, file_server: FileServer, zoopm: Zoopm
) -> None:
    squeezenet_repo(github, file_server)
    project = write_project(
        tmp_path / "proj", {"squeezenet": '{ github = "forresti/SqueezeNet", path = "" }'}
    )

    installed = zoopm("install", project=project)

    assert installed.exit_code == 0, installed.stderr
    assert f'rev = "{NEW}"' in (project / "zoo.lock").read_text()
    deploy = project / "models" / "squeezenet" / "deploy.prototxt"
    assert deploy.read_bytes() == b'name: "SqueezeNet v1.1"\n'
    shown = zoopm("show", "squeezenet", project=project)
    assert "github:forresti/SqueezeNet@" in shown.stdout, shown.stdout
    assert "SqueezeNet/@" not in shown.stdout


def test_update_follows_a_repository_root_model_to_the_newest_commit(
    tmp_path: Path, github: GitHubEmulator, file_server: FileServer, zoopm: Zoopm
) -> None:
    squeezenet_repo(github, file_server)
    project = write_project(tmp_path / "proj", {})
    assert zoopm("add", f"github:forresti/SqueezeNet@{OLD}", project=project).exit_code == 0

    updated = zoopm("update", "SqueezeNet", project=project)

    assert updated.exit_code == 0, updated.stderr
    assert f'rev = "{NEW}"' in (project / "zoo.toml").read_text()
