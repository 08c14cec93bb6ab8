"""zoo.toml: the three source forms, the manifest hash, and edits that keep comments."""

from __future__ import annotations

from pathlib import Path

import pytest

from zoopm.errors import ManifestError
from zoopm.formats.manifest import (
    TEMPLATE,
    GistSource,
    GithubSource,
    LocalSource,
    ModelSpec,
    add_model,
    parse_manifest,
    remove_model,
)

REV = "9b891540183ddc834a02b2bd81b31afae71b2153"
PATH = Path("/p/zoo.toml")


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_manifest(text, PATH)


def test_all_three_source_forms_parse_into_frozen_values() -> None:
    manifest = parse(
        f"""
[project]
models-dir = "weights"
[models]
nin = {{ gist = "mavenlin/d802a5849de39225bcc6", rev = "{REV}", binary = false }}
googlenet = {{ github = "BVLC/caffe", path = "models/bvlc_googlenet/", rev = "{REV}" }}
mine = {{ path = "../my_model" }}
[mirrors]
"http://dl.caffe.berkeleyvision.org/" = "https://mirror.example/caffe/"
"""
    )

    assert manifest.models_dir == "weights"
    assert manifest.model("nin") == ModelSpec("nin", GistSource("d802a5849de39225bcc6", REV), False)
    assert manifest.model("googlenet") == ModelSpec(
        "googlenet", GithubSource("BVLC/caffe", "models/bvlc_googlenet", REV)
    )
    assert manifest.model("mine") == ModelSpec("mine", LocalSource("../my_model"))
    assert manifest.mirror_map() == {
        "http://dl.caffe.berkeleyvision.org/": ("https://mirror.example/caffe/",)
    }


@pytest.mark.parametrize(
    "gist", ["034c6ac3865563b69e60", "509111f8a00a9ece2c3d5dde6a750129", "790381"]
)
def test_gist_ids_come_as_20_hex_32_hex_or_digits(gist: str) -> None:
    manifest = parse(f'[models]\nm = {{ gist = "{gist}" }}\n')

    assert manifest.models[0].source == GistSource(gist, None)


def test_the_manifest_hash_ignores_formatting_order_comments_and_mirrors() -> None:
    one = parse('[models]\na = { path = "x" }\nb = { path = "y" }\n')
    two = parse(
        '# comment\n[mirrors]\n"http://a/" = ["http://b/"]\n[models.b]\npath = "y"\n'
        '[models.a]\npath = "x"\n'
    )

    assert one.manifest_hash() == two.manifest_hash()


def test_the_manifest_hash_changes_when_a_source_changes() -> None:
    one = parse('[models]\na = { path = "x" }\n')
    two = parse('[models]\na = { path = "x", binary = false }\n')

    assert one.manifest_hash() != two.manifest_hash()


def test_the_template_parses_and_declares_no_models() -> None:
    manifest = parse(TEMPLATE)

    assert manifest.models == ()
    assert manifest.models_dir == "models"


def test_add_model_keeps_comments_and_other_entries() -> None:
    text = '# my models\n[models]\n# the tiny one\ntiny = { path = "t" }  # inline note\n'

    edited = add_model(text, ModelSpec("nin", GistSource("d802a5849de39225bcc6", REV)))

    assert edited.startswith(text.rstrip("\n"))
    assert f'nin = {{gist = "d802a5849de39225bcc6", rev = "{REV}"}}' in edited
    assert parse(edited).model("nin") == ModelSpec("nin", GistSource("d802a5849de39225bcc6", REV))


def test_remove_model_keeps_everything_else_byte_for_byte() -> None:
    text = '# top\n[models]\ntiny = { path = "t" }  # keep me\nold = { path = "o" }\n'

    assert remove_model(text, "old") == '# top\n[models]\ntiny = { path = "t" }  # keep me\n'


def test_removing_an_unknown_model_names_it() -> None:
    with pytest.raises(ManifestError, match=r"models\.nope: no such model"):
        remove_model("[models]\n", "nope")


def test_an_empty_repository_path_is_the_repository_root() -> None:
    manifest = parse('[models]\nsqueeze = { github = "forresti/SqueezeNet", path = "" }\n')

    source = manifest.model("squeeze").source
    assert source == GithubSource("forresti/SqueezeNet", "")
    assert isinstance(source, GithubSource)
    assert source.describe() == "github forresti/SqueezeNet"


@pytest.mark.parametrize("path", ["..", "a/../b", "a\\b", "a//b"])
def test_a_repository_path_that_climbs_or_is_not_posix_is_still_refused(path: str) -> None:
    with pytest.raises(ManifestError):
        parse(f'[models]\nm = {{ github = "o/r", path = "{path}" }}\n'.replace("\\", "\\\\"))
