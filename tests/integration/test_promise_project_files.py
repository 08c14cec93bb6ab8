"""The project's own files, read and written faithfully: names, line endings, modes, symlinks.

Regression tests for issue 6, defects 17, 18, 19, 23 and 24, all through the CLI.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import Run, Zoopm
from tests.support.fileserver import FileServer
from tests.support.github import GitHubEmulator
from tests.support.projects import mirrors_for, write_project

NIN = "d802a5849de39225bcc6"
NIN_OLD = "24f213c3a4317a61e03f223759704b8b09b931b0"
NIN_NEW = "df938067a04ed42e98e00277eea599e8c45b3f86"


def tiny_project(tmp_path: Path, tiny_net: Path) -> Path:
    return write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})


def assert_one_clean_error(run: Run, *expected: str) -> None:
    lines = run.stderr.strip().splitlines()
    assert run.exit_code == 2, run.stderr
    assert lines[0].startswith("error: "), run.stderr
    for text in expected:
        assert text in lines[0], run.stderr
    assert len(lines) == 2 and lines[1].startswith("hint: "), run.stderr
    assert "Traceback" not in run.stderr


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


# --- 17: file names are checked where they enter ----------------------------------------------


def test_a_local_file_name_holding_a_backslash_is_refused_when_locking(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    (tiny_net / "notes\\a.txt").write_text("x")
    project = tiny_project(tmp_path, tiny_net)

    run = zoopm("install", project=project)

    assert_one_clean_error(run, str(tiny_net), "notes\\\\a.txt", "backslash")
    assert not (project / "zoo.lock").exists()


def test_a_local_file_name_that_is_not_utf8_is_refused_cleanly(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    fd = os.open(os.fsencode(tiny_net) + b"/caf\xe9.txt", os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(fd)
    project = tiny_project(tmp_path, tiny_net)

    run = zoopm("lock", project=project)

    assert_one_clean_error(run, str(tiny_net), "caf\\xe9.txt", "UTF-8")
    assert not (project / "zoo.lock").exists()


def test_a_local_file_name_holding_a_control_character_is_refused(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    (tiny_net / "two\nlines.txt").write_text("x")
    project = tiny_project(tmp_path, tiny_net)

    run = zoopm("lock", project=project)

    assert_one_clean_error(run, str(tiny_net), "two\\nlines.txt", "control character")


def test_local_file_names_that_differ_only_in_case_are_refused(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    (tiny_net / "Deploy.prototxt").write_bytes((tiny_net / "deploy.prototxt").read_bytes())
    project = tiny_project(tmp_path, tiny_net)

    run = zoopm("lock", project=project)

    assert_one_clean_error(run, str(tiny_net), "Deploy.prototxt", "deploy.prototxt", "case")


# --- 18: zoo.toml edits keep line endings and understand every valid layout -------------------


def test_add_and_remove_keep_a_crlf_zoo_toml_crlf(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    manifest = project / "zoo.toml"
    manifest.write_bytes(
        b'# my models\r\n[project]\r\nmodels-dir = "models"\r\n\r\n[models]\r\n# keep this\r\n'
    )

    added = zoopm("add", str(tiny_net), "--name", "tiny", "--no-install", project=project)
    after_add = manifest.read_bytes()
    removed = zoopm("remove", "tiny", "--no-install", project=project)
    after_remove = manifest.read_bytes()

    assert added.exit_code == 0, added.stderr
    assert b"tiny = " in after_add
    assert b"\n" not in after_add.replace(b"\r\n", b"")
    assert removed.exit_code == 0, removed.stderr
    assert b"tiny" not in after_remove
    assert b"\n" not in after_remove.replace(b"\r\n", b"")
    assert b"# my models\r\n" in after_remove and b"# keep this\r\n" in after_remove


def test_update_keeps_a_crlf_zoo_toml_crlf(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    manifest = project / "zoo.toml"
    text = f'[models]\nnin = {{ gist = "{NIN}", rev = "{NIN_OLD}" }}  # pinned\n'
    text += mirrors_for(model_host)
    manifest.write_bytes(text.replace("\n", "\r\n").encode())

    run = zoopm("update", project=project)

    assert run.exit_code == 0, run.stderr
    written = manifest.read_bytes()
    assert f'rev = "{NIN_NEW}" }}  # pinned\r\n'.encode() in written
    assert b"\n" not in written.replace(b"\r\n", b"")


def test_add_into_a_top_level_inline_models_table_keeps_the_others(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "zoo.toml").write_text(
        f'# inline\nmodels = {{ first = {{ path = "{tiny_net}" }} }}\n', encoding="utf-8"
    )

    run = zoopm("add", str(tiny_net), "--name", "second", "--no-install", project=project)
    listed = zoopm("list", "--json", project=project)

    assert run.exit_code == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert (project / "zoo.toml").read_text().startswith("# inline\n")
    assert listed.exit_code == 0, listed.stderr
    assert '"first"' in listed.stdout and '"second"' in listed.stdout


def test_remove_from_a_top_level_inline_models_table(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "zoo.toml").write_text(
        f'models = {{ a = {{ path = "{tiny_net}" }}, b = {{ path = "{tiny_net}" }} }}\n',
        encoding="utf-8",
    )

    run = zoopm("remove", "a", "--no-install", project=project)

    assert run.exit_code == 0, run.stderr
    assert (project / "zoo.toml").read_text() == f'models = {{ b = {{ path = "{tiny_net}" }} }}\n'


# --- 19: third-party text is printed literally --------------------------------------------------


@pytest.mark.parametrize("license_text", ["BSD [/see LICENSE]", "[red]x[/red]", ":smile: [b]"])
def test_list_prints_a_license_from_a_readme_literally(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, license_text: str
) -> None:
    readme = tiny_net / "readme.md"
    readme.write_text(
        readme.read_text().replace("license: unrestricted", f'license: "{license_text}"')
    )
    project = tiny_project(tmp_path, tiny_net)
    assert zoopm("lock", project=project).exit_code == 0

    run = zoopm("list", project=project)

    assert run.exit_code == 0, run.stderr
    assert license_text in run.stdout


def test_list_shows_control_characters_from_a_readme_as_escapes(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    readme = tiny_net / "readme.md"
    readme.write_text(
        readme.read_text().replace("license: unrestricted", 'license: "BSD \\e[31mred"')
    )
    project = tiny_project(tmp_path, tiny_net)
    assert zoopm("lock", project=project).exit_code == 0

    run = zoopm("list", project=project)

    assert run.exit_code == 0, run.stderr
    assert "\x1b" not in run.stdout
    assert "BSD \\x1b[31mred" in run.stdout


def test_search_prints_an_index_description_literally(tmp_path: Path, zoopm: Zoopm) -> None:
    (tmp_path / "index.toml").write_text(
        'version = 1\n[models.marked]\ngist = "d802a5849de39225bcc6"\n'
        'description = "[bold]net[/bold] [/x]"\n',
        encoding="utf-8",
    )
    project = write_project(tmp_path / "proj", {}, '\n[[index]]\npath = "../index.toml"\n')

    run = zoopm("search", "marked", project=project)

    assert run.exit_code == 0, run.stderr
    assert "[bold]net[/bold] [/x]" in run.stdout


# --- 23: files written for the user get the usual mode -----------------------------------------


def test_zoo_lock_and_zoo_toml_are_written_with_the_umask_mode(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, umask_022: None
) -> None:
    project = tmp_path / "proj"
    assert zoopm("init", project=project).exit_code == 0

    run = zoopm("add", str(tiny_net), "--name", "tiny", project=project)

    assert run.exit_code == 0, run.stderr
    assert mode(project / "zoo.toml") == 0o644
    assert mode(project / "zoo.lock") == 0o644


def test_a_group_writable_umask_is_honoured(tmp_path: Path, tiny_net: Path, zoopm: Zoopm) -> None:
    project = tiny_project(tmp_path, tiny_net)
    old = os.umask(0o002)
    try:
        run = zoopm("lock", project=project)
    finally:
        os.umask(old)

    assert run.exit_code == 0, run.stderr
    assert mode(project / "zoo.lock") == 0o664


def test_an_edited_zoo_toml_and_zoo_lock_keep_their_existing_mode(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, umask_022: None
) -> None:
    project = tiny_project(tmp_path, tiny_net)
    assert zoopm("lock", project=project).exit_code == 0
    (project / "zoo.toml").chmod(0o640)
    (project / "zoo.lock").chmod(0o604)

    run = zoopm("add", str(tiny_net), "--name", "again", "--no-install", project=project)

    assert run.exit_code == 0, run.stderr
    assert mode(project / "zoo.toml") == 0o640
    assert mode(project / "zoo.lock") == 0o604


def test_installed_files_stay_read_only_store_blobs(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, umask_022: None, store_dir: Path
) -> None:
    project = tiny_project(tmp_path, tiny_net)

    run = zoopm("install", "--link-mode", "copy", project=project)

    assert run.exit_code == 0, run.stderr
    blobs = [p for p in (store_dir / "sha256").rglob("*") if p.is_file()]
    assert blobs and all(mode(p) == 0o444 for p in blobs)


# --- 24: symlinks inside a local model directory are followed ----------------------------------


def test_a_symlinked_file_inside_a_local_model_directory_is_installed(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    elsewhere = tmp_path / "shared" / "solver.prototxt"
    elsewhere.parent.mkdir()
    elsewhere.write_text("base_lr: 0.01\n")
    (tiny_net / "solver.prototxt").symlink_to(elsewhere)
    project = tiny_project(tmp_path, tiny_net)

    run = zoopm("install", project=project)

    assert run.exit_code == 0, run.stderr
    placed = project / "models" / "tiny" / "solver.prototxt"
    assert placed.read_text() == "base_lr: 0.01\n"
    assert not placed.is_symlink()


def test_a_symlinked_directory_inside_a_local_model_directory_is_followed(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    shared = tmp_path / "shared" / "data"
    (shared / "deep").mkdir(parents=True)
    (shared / "mean.txt").write_text("104 117 123\n")
    (shared / "deep" / "labels.txt").write_text("cat\ndog\n")
    (tiny_net / "data").symlink_to(shared, target_is_directory=True)
    project = tiny_project(tmp_path, tiny_net)

    run = zoopm("install", project=project)

    assert run.exit_code == 0, run.stderr
    model = project / "models" / "tiny"
    assert (model / "data" / "mean.txt").read_text() == "104 117 123\n"
    assert (model / "data" / "deep" / "labels.txt").read_text() == "cat\ndog\n"


def test_a_symlink_loop_inside_a_local_model_directory_is_a_clear_error(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    (tiny_net / "sub").mkdir()
    (tiny_net / "sub" / "back").symlink_to(tiny_net, target_is_directory=True)
    project = tiny_project(tmp_path, tiny_net)

    run = zoopm("lock", project=project)

    assert_one_clean_error(run, str(tiny_net), "sub/back", "loop")
    assert not (project / "zoo.lock").exists()


def test_a_dangling_symlink_inside_a_local_model_directory_is_a_clear_error(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    (tiny_net / "gone.txt").symlink_to(tmp_path / "nowhere")
    project = tiny_project(tmp_path, tiny_net)

    run = zoopm("lock", project=project)

    assert_one_clean_error(run, str(tiny_net), "gone.txt")
