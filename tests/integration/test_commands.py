"""init, list and show, as a user sees them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import Zoopm
from tests.support.projects import serve_binary_elsewhere, write_project
from zoopm import Project
from zoopm.reporting import RecordingReporter
from zoopm.ui import human_size


def test_init_writes_a_zoo_toml_that_locks_to_an_empty_lock(tmp_path: Path, zoopm: Zoopm) -> None:
    run = zoopm("init", project=tmp_path)

    assert run.exit_code == 0, run.stderr
    assert "[models]" in (tmp_path / "zoo.toml").read_text()
    assert zoopm("lock", project=tmp_path).exit_code == 0
    assert "[[model]]" not in (tmp_path / "zoo.lock").read_text()


def test_init_refuses_to_replace_an_existing_zoo_toml(tmp_path: Path, zoopm: Zoopm) -> None:
    (tmp_path / "zoo.toml").write_text("# mine\n")

    run = zoopm("init", project=tmp_path)

    assert run.exit_code == 2
    assert "already exists" in run.error_line
    assert (tmp_path / "zoo.toml").read_text() == "# mine\n"


def test_commands_find_zoo_toml_in_a_parent_directory(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})
    (project / "src" / "deep").mkdir(parents=True)

    run = zoopm("install", project=project / "src" / "deep")

    assert run.exit_code == 0, run.stderr
    assert (project / "models" / "tiny" / "deploy.prototxt").is_file()


def test_list_shows_each_locked_model_and_whether_it_is_installed(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})
    assert zoopm("lock", project=project).exit_code == 0
    before = json.loads(zoopm("list", "--json", project=project).stdout)
    assert zoopm("install", project=project).exit_code == 0

    after = json.loads(zoopm("list", "--json", project=project).stdout)
    table = zoopm("list", project=project).stdout

    assert [m["name"] for m in before] == ["tiny"]
    assert before[0]["installed"] is False
    assert after[0]["installed"] is True
    assert after[0]["license"] == "unrestricted"
    assert "tiny" in table and "installed" in table


def test_show_gives_source_model_info_and_every_file(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})
    assert zoopm("install", project=project).exit_code == 0

    text = zoopm("show", "tiny", project=project).stdout
    data = json.loads(zoopm("show", "tiny", "--json", project=project).stdout)

    assert "caffe_commit:  9b891540183ddc834a02b2bd81b31afae71b2153" in text
    assert "tiny_net.caffemodel  3583 bytes" in text
    binary = next(f for f in data["files"] if f["binary"])
    assert binary["sha1"] == "0e667a4b306f07d7b35ff680847fe0db329955da"
    # Every file's hashes in full, in the text as in the JSON: Caffe users compare the sha1.
    for file in data["files"]:
        assert f"sha1    {file['sha1']}" in text
        assert f"sha256  {file['sha256']}" in text
        assert len(file["sha1"]) == 40 and len(file["sha256"]) == 64
    assert data["source"] == {"path": str(tiny_net)}


def test_show_of_an_unknown_model_is_a_usage_error(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})
    assert zoopm("lock", project=project).exit_code == 0

    run = zoopm("show", "nope", project=project)

    assert run.exit_code == 2
    assert "no model named 'nope'" in run.error_line


def test_quiet_prints_nothing_on_success(tmp_path: Path, tiny_net: Path, zoopm: Zoopm) -> None:
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})

    run = zoopm("-q", "install", project=project)

    assert run.exit_code == 0
    assert run.stderr == "" and run.stdout == ""


def test_a_binary_can_come_from_a_file_url(tmp_path: Path, tiny_net: Path, zoopm: Zoopm) -> None:
    elsewhere = tmp_path / "weights" / "tiny_net.caffemodel"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes((tiny_net / "tiny_net.caffemodel").read_bytes())
    serve_binary_elsewhere(tiny_net, elsewhere.as_uri())
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})

    run = zoopm("install", project=project)

    assert run.exit_code == 0, run.stderr
    assert (project / "models" / "tiny" / "tiny_net.caffemodel").read_bytes() == (
        elsewhere.read_bytes()
    )


def test_binary_false_installs_the_info_files_only(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    project = write_project(
        tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}", binary = false }}'}
    )

    run = zoopm("install", project=project)

    assert run.exit_code == 0, run.stderr
    assert sorted(p.name for p in (project / "models" / "tiny").iterdir()) == [
        "deploy.prototxt",
        "expected_output.json",
        "readme.md",
    ]


def test_other_weights_in_a_local_directory_are_left_out_with_a_warning(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    (tiny_net / "snapshot_iter_100.caffemodel").write_bytes(b"old weights")
    (tiny_net / ".git").mkdir()
    (tiny_net / ".git" / "HEAD").write_text("ref\n")
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})

    run = zoopm("install", project=project)

    assert run.exit_code == 0, run.stderr
    assert "snapshot_iter_100.caffemodel: left out" in run.stderr
    installed = {p.name for p in (project / "models" / "tiny").iterdir()}
    assert "snapshot_iter_100.caffemodel" not in installed
    assert ".git" not in installed


def test_the_python_api_installs_and_reports_without_printing(
    tmp_path: Path, tiny_net: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project_dir = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})
    reporter = RecordingReporter()

    with Project(project_dir, reporter=reporter) as project:
        first = project.install()
        second = project.install(frozen=True)

    assert first.placed == 4
    assert second.plan.nothing_to_do
    assert capsys.readouterr() == ("", "")


def test_dry_run_prints_the_plan_and_changes_nothing(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, store_dir: Path
) -> None:
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})
    assert zoopm("lock", project=project).exit_code == 0
    lock_before = (project / "zoo.lock").read_bytes()

    run = zoopm("install", "--dry-run", project=project)

    assert run.exit_code == 0, run.stderr
    assert "fetch   tiny/deploy.prototxt (567 B)" in run.stdout
    assert "place   " in run.stdout and "tiny/tiny_net.caffemodel" in run.stdout
    assert "0 files already in place" in run.stdout
    assert not (project / "models").exists()
    assert not (store_dir / "sha256").exists()
    assert (project / "zoo.lock").read_bytes() == lock_before


def test_the_install_summary_counts_blobs_stored_not_files_placed(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    # Two models from one directory: twice the files, the same bytes, so one set of blobs.
    models = {name: f'{{ path = "{tiny_net}" }}' for name in ("a", "b")}
    project = write_project(tmp_path / "proj", models)
    files = sorted(p for p in tiny_net.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in files)

    run = zoopm("install", project=project)

    assert run.exit_code == 0, run.stderr
    blobs = len({p.read_bytes() for p in files})
    assert f"Placed {2 * len(files)} files in" in run.stderr
    assert f"{blobs} new blobs in the store ({human_size(size)})" in run.stderr


@pytest.mark.parametrize("command", [("remove", "tiny"), ("install",), ("list",)])
def test_a_c_option_naming_no_directory_is_a_usage_error_never_the_enclosing_project(
    tmp_path: Path,
    tiny_net: Path,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
    command: tuple[str, ...],
) -> None:
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})
    assert zoopm("install", project=project).exit_code == 0
    monkeypatch.chdir(project)
    before = (project / "zoo.toml").read_bytes()

    run = zoopm("-C", "no/such/dir", *command)

    assert run.exit_code == 2
    assert "-C no/such/dir: no such directory" in run.error_line
    assert (project / "zoo.toml").read_bytes() == before
    assert (project / "models" / "tiny" / "deploy.prototxt").is_file()


def test_a_no_op_install_of_a_moved_project_registers_it_so_gc_keeps_its_blobs(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, store_dir: Path
) -> None:
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})
    assert zoopm("install", project=project).exit_code == 0
    moved = project.rename(tmp_path / "moved")

    assert "Nothing to do" in zoopm("install", project=moved).stderr
    assert zoopm("gc").exit_code == 0

    assert zoopm("verify", "--store", project=moved).exit_code == 0
