"""Model indexes: the built-in index, index files, lookup order and search."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zoopm.errors import EXIT_USAGE, ProjectError
from zoopm.formats.manifest import GistSource, GithubSource
from zoopm.index import (
    BUILTIN_ORIGIN,
    Index,
    IndexEntry,
    builtin_index,
    load_index,
    lookup,
    parse_index,
    search,
)
from zoopm.paths import model_name_problem

BVLC_REV = "9b891540183ddc834a02b2bd81b31afae71b2153"
BVLC_MODELS = (
    "bvlc_alexnet",
    "bvlc_googlenet",
    "bvlc_reference_caffenet",
    "bvlc_reference_rcnn_ilsvrc13",
    "finetune_flickr_style",
)

# Every gist id the Caffe wiki "Model Zoo" page linked (wiki-model-zoo-gists.tsv, 40 rows; the
# flowers gist 0179e52305ca768a601f is listed twice, under jgoode21 and under jimgoo).
WIKI_GISTS = (
    "034c6ac3865563b69e60",
    "866e2aa1fd707b89b913",
    "d802a5849de39225bcc6",
    "e56253735ef32c3c296d",
    "fd8800eeb36e276cd6f9",
    "f194575702fae63b2829",
    "78047f3591446d1d7b91",
    "f0f3d010e6d5f0100274",
    "976847408258292576a1",
    "a32c9063ec8e1118221a",
    "211839e770f7b538e2d8",
    "3785162f95cd2d5fee77",
    "ac410cad48a088710872",
    "d24098e083bec05e456e",
    "1bf3aa1e0b8e788d7e1d",
    "0179e52305ca768a601f",
    "f35e3a101e1478f721f5",
    "16db1e4ad3afc2614067",
    "dd1f5097af6b531bddcc",
    "80667189b218ad570e82",
    "08652f2ba191f64e619a",
    "91eece041c19ff8968ee",
    "0585ed9428dc5222981f",
    "27c1c0a7736ba66c2395",
    "266d4150a1db5810398e",
    "c9e99062283c719c03de",
    "3f2c75f3c8c71357f24c",
    "b90eb88e31cd745525ae",
    "edb330760338892d511e",
    "2ed6e13bfd5b57cf81d6",
    "45e9e8de2c13af6476ca",
    "0179e52305ca768a601f",
    "c6bd432f7347548b0187",
    "3761b9ad43f60db9ac3d",
    "842f948d568d7f1f0044",
    "54aee1b8b0397721aa4b",
    "38d087e140854fee4b14",
    "509111f8a00a9ece2c3d5dde6a750129",
    "339fd0a938ed026692267a60b44c0c58",
    "7ea9f8ac0da259866b854460f4526034",
)

EXAMPLE = f"""\
version = 1

[models.bvlc_googlenet]
github = "BVLC/caffe"
path = "models/bvlc_googlenet"
rev = "{BVLC_REV}"
description = "BAIR/BVLC GoogleNet Model (ILSVRC 2014)"

[models.nin_imagenet]
gist = "d802a5849de39225bcc6"
owner = "mavenlin"
description = "Network in Network, ImageNet"
"""


def gist_entry(name: str, gist: str, description: str = "", owner: str | None = None) -> str:
    owner_line = f'owner = "{owner}"\n' if owner else ""
    return f'[models.{name}]\ngist = "{gist}"\ndescription = "{description}"\n{owner_line}'


def index_of(origin: str, *entries: str) -> Index:
    return parse_index("version = 1\n" + "\n".join(entries), origin)


def names(entries: list[IndexEntry]) -> list[str]:
    return [entry.name for entry in entries]


def parse_error(text: str, origin: str = "my-index.toml") -> ProjectError:
    with pytest.raises(ProjectError) as caught:
        parse_index(text, origin)
    return caught.value


# The built-in index


def test_the_builtin_index_parses_and_every_entry_names_it_as_origin() -> None:
    index = builtin_index()

    assert index.origin == BUILTIN_ORIGIN
    assert index.entries
    assert {entry.origin for entry in index.entries} == {BUILTIN_ORIGIN}


def test_the_builtin_index_pins_exactly_the_five_bvlc_repository_models() -> None:
    repository = [e for e in builtin_index().entries if isinstance(e.source, GithubSource)]

    assert [e.name for e in repository] == list(BVLC_MODELS)
    for entry in repository:
        assert entry.source == GithubSource("BVLC/caffe", f"models/{entry.name}", BVLC_REV)
        assert entry.owner == "BVLC"
        assert entry.description


def test_every_wiki_gist_is_in_the_builtin_index_exactly_once() -> None:
    gists = [e.source.gist for e in builtin_index().entries if isinstance(e.source, GistSource)]

    assert sorted(gists) == sorted(set(WIKI_GISTS))


def test_builtin_gists_are_unpinned_and_say_who_owns_them_and_what_they_are() -> None:
    for entry in builtin_index().entries:
        if isinstance(entry.source, GistSource):
            assert entry.source.rev is None, entry.name
            assert entry.owner, entry.name
            assert entry.description, entry.name


def test_builtin_names_are_unique_valid_and_lower_snake_case() -> None:
    entry_names = [entry.name for entry in builtin_index().entries]

    assert len({name.casefold() for name in entry_names}) == len(entry_names)
    for name in entry_names:
        assert model_name_problem(name) is None
        assert re.fullmatch(r"[a-z0-9]+(?:_[a-z0-9]+)*", name), name


def test_gists_that_copy_a_bvlc_model_leave_the_short_name_to_the_repository_pin() -> None:
    indexes = [builtin_index()]

    assert lookup(indexes, "bvlc_googlenet") == IndexEntry(
        "bvlc_googlenet",
        GithubSource("BVLC/caffe", "models/bvlc_googlenet", BVLC_REV),
        "BAIR/BVLC GoogleNet Model (ILSVRC 2014)",
        "BVLC",
        BUILTIN_ORIGIN,
    )
    googlenet_gist = lookup(indexes, "bvlc_googlenet_gist")
    flickr_gist = lookup(indexes, "finetune_flickr_style_gist")
    assert googlenet_gist is not None and flickr_gist is not None
    assert googlenet_gist.source == GistSource("866e2aa1fd707b89b913")
    assert flickr_gist.source == GistSource("034c6ac3865563b69e60")


def test_the_gist_listed_under_two_owners_is_one_entry_found_by_either_owner() -> None:
    by_old_owner = search([builtin_index()], "jgoode21")
    by_new_owner = search([builtin_index()], "jimgoo")

    assert by_old_owner == by_new_owner
    assert len(by_old_owner) == 1
    assert by_old_owner[0].source == GistSource("0179e52305ca768a601f")


def test_the_builtin_index_is_parsed_once() -> None:
    assert builtin_index() is builtin_index()


# Index files


def test_an_index_file_holds_gist_and_repository_entries() -> None:
    index = parse_index(EXAMPLE, "my-index.toml")

    assert index == Index(
        "my-index.toml",
        (
            IndexEntry(
                "bvlc_googlenet",
                GithubSource("BVLC/caffe", "models/bvlc_googlenet", BVLC_REV),
                "BAIR/BVLC GoogleNet Model (ILSVRC 2014)",
                "BVLC",
                "my-index.toml",
            ),
            IndexEntry(
                "nin_imagenet",
                GistSource("d802a5849de39225bcc6"),
                "Network in Network, ImageNet",
                "mavenlin",
                "my-index.toml",
            ),
        ),
    )


def test_entries_are_sorted_by_name_whatever_the_file_order() -> None:
    index = index_of(
        "x",
        gist_entry("zeta", "d802a5849de39225bcc6"),
        gist_entry("Alpha", "e56253735ef32c3c296d"),
        gist_entry("mid", "790381"),
    )

    assert [entry.name for entry in index.entries] == ["Alpha", "mid", "zeta"]


def test_an_owner_slash_id_gist_keeps_the_id_and_implies_the_owner() -> None:
    index = index_of("x", '[models.nin]\ngist = "mavenlin/d802a5849de39225bcc6"\n')

    assert index.entries[0].source == GistSource("d802a5849de39225bcc6")
    assert index.entries[0].owner == "mavenlin"


def test_a_gist_entry_may_pin_a_rev_and_leave_out_description_and_owner() -> None:
    index = index_of("x", f'[models.nin]\ngist = "d802a5849de39225bcc6"\nrev = "{BVLC_REV}"\n')

    assert index.entries[0] == IndexEntry(
        "nin", GistSource("d802a5849de39225bcc6", BVLC_REV), "", None, "x"
    )


def test_an_empty_index_has_no_entries() -> None:
    assert parse_index("version = 1\n", "x") == Index("x", ())


@pytest.mark.parametrize(
    ("text", "key_path", "problem"),
    [
        (
            'version = 1\n[models.vgg16]\ngist = "x"\n',
            "my-index.toml:3: models.vgg16.gist: ",
            "'x' is not a gist id",
        ),
        (
            'version = 1\n[models.vgg16]\ngist = "d802a5849de39225bcc6"\nrevision = "abc"\n',
            "my-index.toml:4: models.vgg16.revision: ",
            "unknown key",
        ),
        ("version = 1\nmirrors = {}\n", "my-index.toml:2: mirrors: ", "unknown key"),
        ("version = 2\n", "my-index.toml:1: version: ", "2 is not a version this zoopm reads"),
        ('version = "1"\n', "my-index.toml:1: version: ", "'1' is not a version"),
        ("[models]\n", "my-index.toml: version: ", "missing"),
        (
            'version = 1\n[models]\nnin = { gist = "d802a5849de39225bcc6", rev = "ABC" }\n',
            "my-index.toml:3: models.nin.rev: ",
            "'ABC' is not a full 40-hex commit",
        ),
        (
            'version = 1\n[models.caffe]\ngithub = "BVLC"\npath = "models/x"\n',
            "my-index.toml:3: models.caffe.github: ",
            "'BVLC' is not OWNER/REPO",
        ),
        (
            'version = 1\n[models.caffe]\ngithub = "BVLC/caffe"\n',
            "my-index.toml:2: models.caffe: ",
            "needs path",
        ),
        (
            'version = 1\n[models.caffe]\ngithub = "BVLC/caffe"\npath = "../up"\n',
            "my-index.toml:4: models.caffe.path: ",
            "climbs out",
        ),
        (
            'version = 1\n[models.mine]\npath = "my_model"\n',
            "my-index.toml:2: models.mine: ",
            "a local directory cannot come from an index",
        ),
        (
            'version = 1\n[models.nin]\ndescription = "no source"\n',
            "my-index.toml:2: models.nin: ",
            "no source",
        ),
        (
            'version = 1\n[models.nin]\ngist = "d802a5849de39225bcc6"\nowner = "no one"\n',
            "my-index.toml:4: models.nin.owner: ",
            "not a GitHub login",
        ),
        (
            'version = 1\n[models.nin]\ngist = "d802a5849de39225bcc6"\ndescription = 3\n',
            "my-index.toml:4: models.nin.description: ",
            "expected a string",
        ),
        (
            'version = 1\n[models.".hidden"]\ngist = "d802a5849de39225bcc6"\n',
            'my-index.toml:2: models.".hidden": ',
            "is not a model name",
        ),
        (
            'version = 1\n[models.NIN]\ngist = "790381"\n[models.nin]\ngist = "790382"\n',
            "my-index.toml:4: models.nin: ",
            "same name as models.NIN apart from case",
        ),
    ],
)
def test_a_malformed_index_is_a_project_error_naming_file_line_and_key(
    text: str, key_path: str, problem: str
) -> None:
    error = parse_error(text)

    assert error.message.startswith(key_path)
    assert problem in error.message
    assert error.hint
    assert error.exit_code == EXIT_USAGE


def test_an_index_that_is_not_toml_is_an_error_naming_file_and_line() -> None:
    error = parse_error('version = 1\n\n[models.nin\ngist = "d802a5849de39225bcc6"\n')

    assert error.message.startswith("my-index.toml:3:")
    assert "not valid TOML" in error.message
    assert error.exit_code == EXIT_USAGE


# Lookup


def test_a_configured_index_shadows_the_builtin_one() -> None:
    mine = index_of("my-index.toml", gist_entry("bvlc_googlenet", "790381", "my own googlenet"))

    found = lookup([mine, builtin_index()], "bvlc_googlenet")

    assert found is not None
    assert found.origin == "my-index.toml"
    assert found.source == GistSource("790381")


def test_a_name_only_the_builtin_index_has_is_still_found_behind_a_configured_one() -> None:
    mine = index_of("my-index.toml", gist_entry("mine", "790381"))

    found = lookup([mine, builtin_index()], "nin_imagenet")

    assert found is not None and found.origin == BUILTIN_ORIGIN


@pytest.mark.parametrize("typed", ["nin_imagenet", "NIN_ImageNet", "NIN_IMAGENET"])
def test_lookup_ignores_case(typed: str) -> None:
    found = lookup([builtin_index()], typed)

    assert found is not None and found.name == "nin_imagenet"


def test_lookup_of_a_name_no_index_has_is_none() -> None:
    assert lookup([builtin_index()], "no_such_model") is None
    assert lookup([], "nin_imagenet") is None


# Search

SEARCHABLE = index_of(
    "x",
    gist_entry("nin_imagenet", "d802a5849de39225bcc6", "Network in Network", "mavenlin"),
    gist_entry("vgg_cnn_s", "fd8800eeb36e276cd6f9", "Return of the Devil", "ksimonyan"),
    '[models.googlenet]\ngithub = "BVLC/caffe"\npath = "models/bvlc_googlenet"\n',
)


@pytest.mark.parametrize(
    ("term", "found"),
    [
        ("vgg", ["vgg_cnn_s"]),
        ("devil", ["vgg_cnn_s"]),
        ("mavenlin", ["nin_imagenet"]),
        ("d802a58", ["nin_imagenet"]),
        ("caffe/models/bvlc", ["googlenet"]),
        ("bvlc", ["googlenet"]),
        ("NETWORK", ["nin_imagenet"]),
        ("net", ["googlenet", "nin_imagenet"]),
        ("", ["googlenet", "nin_imagenet", "vgg_cnn_s"]),
        ("resnet", []),
    ],
)
def test_search_matches_name_description_owner_and_source_ignoring_case(
    term: str, found: list[str]
) -> None:
    assert names(search([SEARCHABLE], term)) == found


def test_search_lists_a_shadowed_name_once_with_the_first_index_entry() -> None:
    mine = index_of("mine", gist_entry("nin_imagenet", "790381", "my NIN build"))

    results = search([mine, builtin_index()], "nin")

    shadowed = [entry for entry in results if entry.name == "nin_imagenet"]
    assert len(shadowed) == 1
    assert shadowed[0].origin == "mine"


def test_search_never_shows_a_shadowed_entry_even_when_only_it_matches() -> None:
    mine = index_of("mine", gist_entry("nin_imagenet", "790381", "my build"))

    assert search([mine, builtin_index()], "d802a5849de39225bcc6") == []


def test_search_results_are_sorted_by_name_across_indexes() -> None:
    first = index_of("a", gist_entry("zz_net", "790381", "a net"))
    second = index_of("b", gist_entry("aa_net", "790382", "a net"))

    assert names(search([first, second], "net")) == ["aa_net", "zz_net"]


@given(st.text(max_size=6))
def test_search_finds_only_what_lookup_would_return_once_each_in_order(term: str) -> None:
    indexes = [SEARCHABLE, builtin_index()]

    results = search(indexes, term)

    assert [lookup(indexes, entry.name) for entry in results] == results
    keys = [entry.name.casefold() for entry in results]
    assert keys == sorted(set(keys))


# Loading configured indexes


def test_an_index_path_is_read_relative_to_the_project_root(tmp_path: Path) -> None:
    (tmp_path / "indexes").mkdir()
    (tmp_path / "indexes" / "my-index.toml").write_text(EXAMPLE, encoding="utf-8")

    def no_network(url: str) -> bytes:
        raise AssertionError(f"fetched {url}")

    index = load_index("indexes/my-index.toml", tmp_path, no_network)

    assert index == parse_index(EXAMPLE, "indexes/my-index.toml")


@pytest.mark.parametrize(
    "url", ["https://example.org/zoo/index.toml", "file:///srv/zoo/index.toml"]
)
def test_an_index_url_is_read_through_the_injected_fetch(tmp_path: Path, url: str) -> None:
    asked: list[str] = []

    def fetch(requested: str) -> bytes:
        asked.append(requested)
        return EXAMPLE.encode()

    index = load_index(url, tmp_path, fetch)

    assert asked == [url]
    assert index == parse_index(EXAMPLE, url)


def test_a_missing_index_file_is_a_project_error_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(ProjectError) as caught:
        load_index("missing.toml", tmp_path, lambda url: b"")

    assert str(tmp_path / "missing.toml") in caught.value.message
    assert caught.value.exit_code == EXIT_USAGE


def test_an_unreadable_index_path_is_a_project_error_naming_the_path(tmp_path: Path) -> None:
    (tmp_path / "a-directory").mkdir()

    with pytest.raises(ProjectError) as caught:
        load_index("a-directory", tmp_path, lambda url: b"")

    assert str(tmp_path / "a-directory") in caught.value.message


def test_a_malformed_fetched_index_names_the_url(tmp_path: Path) -> None:
    url = "https://example.org/index.toml"

    with pytest.raises(ProjectError) as caught:
        load_index(url, tmp_path, lambda _: b'version = 1\n[models.x]\ngist = "nope"\n')

    assert caught.value.message.startswith(f"{url}:3: models.x.gist: ")


def test_a_fetched_index_that_is_not_utf8_names_the_url(tmp_path: Path) -> None:
    url = "https://example.org/index.toml"

    with pytest.raises(ProjectError) as caught:
        load_index(url, tmp_path, lambda _: b"version = 1\n# \xff\n")

    assert caught.value.message.startswith(f"{url}: ")
    assert "UTF-8" in caught.value.message


def test_an_index_url_of_another_scheme_is_refused_without_fetching(tmp_path: Path) -> None:
    def no_network(url: str) -> bytes:
        raise AssertionError(f"fetched {url}")

    with pytest.raises(ProjectError) as caught:
        load_index("ftp://example.org/index.toml", tmp_path, no_network)

    assert "http, https or file" in caught.value.message


def test_an_index_entry_may_name_a_repository_root_with_an_empty_path() -> None:
    index = index_of("mine.toml", '[models.squeeze]\ngithub = "forresti/SqueezeNet"\npath = ""\n')

    (entry,) = index.entries
    assert entry.source == GithubSource("forresti/SqueezeNet", "")
    assert "forresti/squeezenet" in entry.haystack()
