"""A Caffe user's whole day with zoopm: the old scripts' habits, then a pinned project.

fetch-gist (download_model_from_gist.sh) → download-binary (download_model_binary.py), twice →
import → a fresh checkout's `zoopm install --frozen` reproduces the same tree, byte for byte.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import Zoopm
from tests.support.fileserver import FileServer
from tests.support.github import GitHubEmulator
from tests.support.projects import fresh_checkout, mirrors_for

NIN = "d802a5849de39225bcc6"
LENET = "4012587"


def tree(root: Path) -> dict[str, bytes]:
    """Every file below root (the install record aside), by relative path."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".zoopm-installed.json"
    }


@pytest.fixture
def caffe_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_host: FileServer) -> Path:
    """A directory a Caffe user works in, with the zoo's hosts mirrored in config.toml."""
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "zoopm" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(mirrors_for(model_host))
    work = tmp_path / "caffe"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_fetch_gist_download_binary_import_then_a_fresh_checkout_reproduces_the_tree(
    caffe_checkout: Path,
    github: GitHubEmulator,
    zoopm: Zoopm,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    paper_rev = github.gist_commits(NIN)[1]  # the revision a paper used, not the newest
    nin_dir, lenet_dir = f"models/mavenlin-{NIN}", f"models/{LENET}"

    fetched = [zoopm("fetch-gist", f"mavenlin/{NIN}@{paper_rev}"), zoopm("fetch-gist", LENET)]
    binaries = [
        zoopm("download-binary", nin_dir),
        zoopm("download-binary", nin_dir),
        zoopm("download-binary", lenet_dir),
    ]
    imported = zoopm("import")

    assert [run.exit_code for run in fetched] == [0, 0], [run.stderr for run in fetched]
    assert f"zoopm add gist:{LENET}@{github.gist_commits(LENET)[-1]}" in fetched[1].stdout
    assert [run.exit_code for run in binaries] == [0, 0, 0], [run.stderr for run in binaries]
    assert binaries[1].stdout == "Model already exists.\n"
    assert imported.exit_code == 0, imported.stderr
    lenet_line, nin_line = imported.stdout.splitlines()  # one line per directory, by name
    assert nin_line.startswith(f"mavenlin-{NIN}: gist {NIN}@{paper_rev[:12]} (revision 2 of 3")
    assert lenet_line.startswith(f"{LENET}: gist {LENET}@")
    assert zoopm("install", "--frozen").stderr.startswith("Nothing to do")
    assert zoopm("verify").exit_code == 0

    fresh = fresh_checkout(caffe_checkout, tmp_path / "fresh-checkout")
    monkeypatch.setenv("ZOOPM_HOME", str(tmp_path / "another-machine"))

    installed = zoopm("install", "--frozen", project=fresh)

    assert installed.exit_code == 0, installed.stderr
    assert tree(fresh / "models") == tree(caffe_checkout / "models")
    assert "nin_imagenet.caffemodel" in " ".join(tree(fresh / "models"))
