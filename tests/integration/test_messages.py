"""Messages that point the right way: each hint names what fixes this case, not another."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.support.cli import Zoopm
from tests.support.fileserver import FileServer
from tests.support.projects import write_project

NIN = "d802a5849de39225bcc6"


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_add_with_an_abbreviated_revision_says_the_revision_is_the_problem(
    tmp_path: Path, zoopm: Zoopm
) -> None:
    project = write_project(tmp_path / "proj", {})

    run = zoopm("add", f"gist:{NIN}@8df5fd6", project=project)

    assert run.exit_code == 2
    assert run.error_line == f"error: gist:{NIN}@8df5fd6: '8df5fd6' is not a full 40-hex commit"


def test_add_with_a_malformed_gist_id_says_the_id_is_the_problem(
    tmp_path: Path, zoopm: Zoopm
) -> None:
    run = zoopm("add", "gist:not-an-id", project=write_project(tmp_path / "proj", {}))

    assert run.exit_code == 2
    assert "'not-an-id' is not a gist id" in run.error_line


def test_install_dry_run_on_a_stale_lock_says_to_lock_not_to_drop_frozen(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})
    assert zoopm("lock", project=project).exit_code == 0
    (project / "zoo.toml").write_text((project / "zoo.toml").read_text().replace("tiny", "t2"))

    run = zoopm("install", "--dry-run", project=project)

    assert run.exit_code != 0
    assert "--frozen" not in run.stderr
    assert "run 'zoopm lock' first: --dry-run" in run.stderr


def test_an_unreachable_api_does_not_suggest_mirrors(
    tmp_path: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZOOPM_GITHUB_API", closed_port_url())

    run = zoopm("add", f"gist:{NIN}", project=write_project(tmp_path / "proj", {}))

    assert run.exit_code == 1
    assert "mirrors" not in run.stderr
    assert "ZOOPM_GITHUB_API" in run.stderr


def test_update_of_a_local_model_says_it_has_no_revision(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})

    named = zoopm("update", "tiny", project=project)
    everything = zoopm("update", project=project)

    assert named.exit_code == 2
    assert (
        named.error_line == "error: models.tiny is a local directory: it has no revision to update"
    )
    assert everything.exit_code == 0
    assert "No gist or repository models to update" in everything.stderr
    assert "newest revision" not in everything.stderr


def test_a_missing_zoo_toml_under_c_does_not_suggest_passing_c(
    tmp_path: Path, zoopm: Zoopm
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()

    run = zoopm("list", project=empty)

    assert run.exit_code == 2
    assert "no zoo.toml here" in run.error_line
    assert "-C" not in run.stderr


def test_show_of_a_declared_but_unlocked_model_says_to_lock(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})
    assert zoopm("lock", project=project).exit_code == 0
    (project / "zoo.toml").write_text(
        (project / "zoo.toml").read_text() + f'tiny2 = {{ path = "{tiny_net}" }}\n'
    )

    run = zoopm("show", "tiny2", project=project)

    assert run.exit_code == 2
    assert "is in zoo.toml but not yet in zoo.lock" in run.error_line
    assert "zoopm lock" in run.stderr


def test_a_byte_order_mark_in_zoo_toml_is_read_past(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})
    manifest = project / "zoo.toml"
    manifest.write_bytes(b"\xef\xbb\xbf" + manifest.read_bytes())

    run = zoopm("install", project=project)

    assert run.exit_code == 0, run.stderr
    assert (project / "models" / "tiny" / "tiny_net.caffemodel").exists()


def test_a_directory_name_with_a_space_gives_a_model_name_close_to_it_and_says_so(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    project = write_project(tmp_path / "proj", {})
    tiny_net.rename(project / "my model")

    run = zoopm("add", "./my model", project=project)

    assert run.exit_code == 0, run.stderr
    assert "named the model 'my_model' ('my model' is not a model name)" in run.stderr
    assert (project / "models" / "my_model").is_dir()


def test_counts_of_one_are_singular(tmp_path: Path, file_server: FileServer, zoopm: Zoopm) -> None:
    model = tmp_path / "one"
    model.mkdir()
    (model / "readme.md").write_text("---\nname: one\n---\n")
    project = write_project(tmp_path / "proj", {"one": '{ path = "../one", binary = false }'})

    first = zoopm("install", project=project)
    again = zoopm("install", project=project)

    assert "placed 1 file " in first.stderr.lower(), first.stderr
    assert "Nothing to do: 1 file already in place" in again.stderr
