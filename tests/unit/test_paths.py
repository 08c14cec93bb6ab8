"""Paths and names read from untrusted files can never leave their directory."""

from __future__ import annotations

import pytest

from zoopm.paths import model_name_problem, relative_path_problem


@pytest.mark.parametrize("path", ["deploy.prototxt", "sub/model.caffemodel", "a.b/c-d_e"])
def test_plain_relative_paths_are_usable(path: str) -> None:
    assert relative_path_problem(path) is None


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("", "empty path"),
        ("../x", "climbs out"),
        ("a/../../x", "climbs out"),
        ("/etc/passwd", "absolute"),
        ("C:/x", "absolute"),
        ("a\\b", "backslash"),
        ("a\0b", "NUL"),
        ("a//b", "empty or '.' segment"),
        ("./a", "empty or '.' segment"),
        ("a/", "empty or '.' segment"),
    ],
)
def test_hostile_paths_are_refused_with_the_reason(path: str, problem: str) -> None:
    found = relative_path_problem(path)

    assert found is not None and problem in found


@pytest.mark.parametrize("name", ["..", ".hidden", "a/b", "", "x" * 101, "sp ace"])
def test_names_that_are_not_plain_directory_names_are_refused(name: str) -> None:
    assert model_name_problem(name) is not None
