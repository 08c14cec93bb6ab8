"""Malformed zoo.toml, zoo.lock and readme.md: one line naming the file and line or key, exit 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.cli import Zoopm
from tests.support.projects import REPO, write_project

BAD = REPO / "fixtures" / "bad"

MANIFESTS = {
    "unclosed_inline_table.toml": "zoo.toml:5:",
    "unknown_model_key.toml": "zoo.toml:2: models.tiny.revision: unknown key",
    "short_rev.toml": "zoo.toml:2: models.vgg.rev: 'abc123' is not a full 40-hex commit",
    "bad_gist_id.toml": "zoo.toml:2: models.vgg.gist: 'not-a-gist!' is not a gist id",
    "hostile_model_name.toml": "models.../evil: '../evil' is not a model name",
    "models_dir_escapes.toml": "zoo.toml:2: project.models-dir: '../outside' climbs out",
    "model_not_a_table.toml": "zoo.toml:2: models.tiny: expected a table",
    "model_without_source.toml": "zoo.toml:2: models.tiny: no source",
    "binary_not_bool.toml": "zoo.toml:2: models.tiny.binary: expected true or false",
    "mirror_not_url.toml": "mirrors.'dl.caffe.berkeleyvision.org': a mirror key is a URL prefix",
    "bad_link_mode.toml": "zoo.toml:3: project.link-mode: 'teleport' is not one of",
    "misspelt_table.toml": "zoo.toml:1: modles: unknown table",
    "github_without_path.toml": "zoo.toml:2: models.bvlc: a github source needs path",
}

LOCKS = {
    "path_climbs_out.lock": "zoo.lock: model[tiny].file[0].path: '../../etc/passwd' climbs out",
    "bad_sha1.lock": "zoo.lock: model[tiny].file[0].sha1: expected 40 lower-case hex digits",
    "broken_toml.lock": "zoo.lock:3:8: not valid TOML: expected ']]'",
    "future_version.lock": "zoo.lock: version 7 is newer than this zoopm understands",
    "size_not_a_number.lock": "zoo.lock: model[tiny].file[0].size: expected int",
}


def assert_one_clean_error(run_stderr: str, expected: str) -> None:
    lines = run_stderr.strip().splitlines()
    assert lines[0].startswith("error: "), run_stderr
    assert expected in lines[0]
    assert len(lines) == 2 and lines[1].startswith("hint: ")
    assert "Traceback" not in run_stderr


@pytest.mark.parametrize(("name", "expected"), sorted(MANIFESTS.items()))
def test_a_malformed_zoo_toml_is_one_line_naming_file_and_line_or_key(
    tmp_path: Path, zoopm: Zoopm, name: str, expected: str
) -> None:
    shutil.copy(BAD / "manifests" / name, tmp_path / "zoo.toml")

    run = zoopm("install", project=tmp_path)

    assert run.exit_code == 2
    assert_one_clean_error(run.stderr, expected)
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize(("name", "expected"), sorted(LOCKS.items()))
def test_a_malformed_zoo_lock_is_one_line_naming_the_key(
    tmp_path: Path, zoopm: Zoopm, name: str, expected: str, tiny_net: Path
) -> None:
    write_project(tmp_path, {"tiny": f'{{ path = "{tiny_net}" }}'})
    shutil.copy(BAD / "locks" / name, tmp_path / "zoo.lock")

    run = zoopm("install", "--frozen", project=tmp_path)

    assert run.exit_code == 2
    assert_one_clean_error(run.stderr, expected)
    assert not (tmp_path / "models").exists()


def test_a_malformed_readme_is_one_line_naming_the_file_and_line(
    tmp_path: Path, zoopm: Zoopm, tiny_net: Path
) -> None:
    readme = tiny_net / "readme.md"
    readme.write_text(readme.read_text().replace("sha1: 0e667a4b", "sha1: zz667a4b"))
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})

    run = zoopm("lock", project=project)

    assert run.exit_code == 2
    assert_one_clean_error(run.stderr, "readme.md:6:")
    assert "sha1" in run.error_line
    assert not (project / "zoo.lock").exists()


def test_a_missing_zoo_toml_says_how_to_make_one(tmp_path: Path, zoopm: Zoopm) -> None:
    run = zoopm("install", project=tmp_path)

    assert run.exit_code == 2
    assert "no zoo.toml here" in run.error_line
    assert "zoopm init" in run.stderr


def test_a_model_path_that_is_not_a_directory_names_the_key(tmp_path: Path, zoopm: Zoopm) -> None:
    project = write_project(tmp_path, {"tiny": '{ path = "nowhere" }'})

    run = zoopm("lock", project=project)

    assert run.exit_code == 2
    assert_one_clean_error(run.stderr, "models.tiny.path: 'nowhere' is not a directory")
