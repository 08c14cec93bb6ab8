"""What `zoopm add` accepts, and the names it picks."""

from __future__ import annotations

from pathlib import Path

import pytest

from zoopm.addspec import AddSpec, default_name, parse_add_spec
from zoopm.errors import UsageError
from zoopm.formats.manifest import GistSource, GithubSource, LocalSource

REV = "9b891540183ddc834a02b2bd81b31afae71b2153"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gist:d802a5849de39225bcc6", GistSource("d802a5849de39225bcc6")),
        (f"gist:d802a5849de39225bcc6@{REV}", GistSource("d802a5849de39225bcc6", REV)),
        ("gist:mavenlin/d802a5849de39225bcc6", GistSource("d802a5849de39225bcc6")),
        ("gist:790381", GistSource("790381")),
        (
            "https://gist.github.com/mavenlin/d802a5849de39225bcc6",
            GistSource("d802a5849de39225bcc6"),
        ),
        (
            f"https://gist.github.com/ksimonyan/211839e770f7b538e2d8/{REV}",
            GistSource("211839e770f7b538e2d8", REV),
        ),
        (
            "https://gist.github.com/509111f8a00a9ece2c3d5dde6a750129",
            GistSource("509111f8a00a9ece2c3d5dde6a750129"),
        ),
        (
            f"github:BVLC/caffe/models/bvlc_googlenet@{REV}",
            GithubSource("BVLC/caffe", "models/bvlc_googlenet", REV),
        ),
        (
            "github:BVLC/caffe/models/bvlc_googlenet/",
            GithubSource("BVLC/caffe", "models/bvlc_googlenet"),
        ),
        # A model that is a whole repository: the root, path "".
        ("github:forresti/SqueezeNet", GithubSource("forresti/SqueezeNet", "")),
        (f"github:forresti/SqueezeNet@{REV}", GithubSource("forresti/SqueezeNet", "", REV)),
        ("github:forresti/SqueezeNet/", GithubSource("forresti/SqueezeNet", "")),
        (f"github:a/b.c/d@{REV}", GithubSource("a/b.c", "d", REV)),
    ],
)
def test_concrete_sources_parse(tmp_path: Path, text: str, expected: object) -> None:
    assert parse_add_spec(text, tmp_path, tmp_path) == AddSpec(expected)  # type: ignore[arg-type]


def test_a_plain_word_is_an_index_name(tmp_path: Path) -> None:
    assert parse_add_spec("bvlc_googlenet", tmp_path, tmp_path) == AddSpec(
        index_name="bvlc_googlenet"
    )


def test_a_directory_inside_the_project_is_stored_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / "models_src" / "mine").mkdir(parents=True)

    spec = parse_add_spec("./mine", tmp_path / "models_src", tmp_path)

    assert spec == AddSpec(LocalSource("models_src/mine"))


def test_a_directory_outside_the_project_is_stored_absolute(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "project").mkdir()

    spec = parse_add_spec("../elsewhere", tmp_path / "project", tmp_path / "project")

    assert spec == AddSpec(LocalSource(str(tmp_path / "elsewhere")))


@pytest.mark.parametrize(
    "text",
    ["https://example.org/model", "gist:not-hex!", "./missing-dir", "two words"],
)
def test_unreadable_specs_are_usage_errors(tmp_path: Path, text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_add_spec(text, tmp_path, tmp_path)

    assert caught.value.exit_code == 2


def test_default_names() -> None:
    assert default_name(GithubSource("BVLC/caffe", "models/bvlc_alexnet"), "x.caffemodel") == (
        "bvlc_alexnet"
    )
    assert default_name(GistSource("d802a5849de39225bcc6"), "nin_imagenet.caffemodel") == (
        "nin_imagenet"
    )
    assert default_name(GistSource("d802a5849de39225bcc6"), None) == "gist-d802a5849de39225bcc6"
