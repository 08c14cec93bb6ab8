"""What zoopm reads from a model's readme.md, and how it sets one key in place."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zoopm.errors import EXIT_USAGE, ModelInfoError
from zoopm.formats.modelinfo import (
    INFO_HEAD_BYTES,
    KNOWN_KEYS,
    ModelInfo,
    find_readme,
    parse_model_info,
    set_frontmatter_key,
)

READMES = Path(__file__).resolve().parents[2] / "fixtures" / "readmes"


def source_of(name: str) -> str:
    return f"fixtures/readmes/{name}"


def read(name: str) -> ModelInfo:
    return parse_model_info((READMES / name).read_bytes(), source_of(name))


def parse(text: str | bytes) -> ModelInfo:
    data = text.encode() if isinstance(text, str) else text
    return parse_model_info(data, "readme.md")


def rejection(name: str) -> ModelInfoError:
    with pytest.raises(ModelInfoError) as caught:
        read(name)
    return caught.value


def assert_precise(error: ModelInfoError, name: str, line: int | None) -> None:
    """An error names the file (and the line where one is known) on one line, with a hint."""
    where = source_of(name) + (f":{line}: " if line is not None else ": ")
    assert error.message.startswith(where), error.message
    assert "\n" not in error.message
    assert error.hint
    assert "\n" not in error.hint
    assert error.exit_code == EXIT_USAGE == 2


def field(info: ModelInfo | None, key: str) -> str | None:
    if info is None:
        return None
    if key in KNOWN_KEYS:
        value: str | None = getattr(info, key)
        return value
    return dict(info.extra).get(key)


SHA1_A = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
FRONT = f"---\nname: Net\ncaffemodel: net.caffemodel\nsha1: {SHA1_A}\n---\n"


# --- well-formed readmes ----------------------------------------------------------------------


def test_the_tiny_net_readme_gives_every_field_it_sets_and_no_warning() -> None:
    assert read("tiny_net.md") == ModelInfo(
        name="tiny_net test model",
        caffemodel="tiny_net.caffemodel",
        caffemodel_url="http://models.zoopm.invalid/tiny_net/tiny_net.caffemodel",
        sha1="0e667a4b306f07d7b35ff680847fe0db329955da",
        caffe_commit="9b891540183ddc834a02b2bd81b31afae71b2153",
        caffe_version=None,
        gist_id=None,
        license="unrestricted",
        extra=(),
        warnings=(),
    )


def test_a_bvlc_style_readme_reads_its_frontmatter_and_ignores_the_markdown_body() -> None:
    info = read("bvlc_googlenet.md")
    assert info.name == "BAIR/BVLC GoogleNet Model"
    assert info.caffemodel == "bvlc_googlenet.caffemodel"
    assert info.caffemodel_url == "http://dl.caffe.berkeleyvision.org/bvlc_googlenet.caffemodel"
    assert info.sha1 == "405fc5acd08a3bb12de8ee5e23a96bec22f08204"
    assert info.caffe_commit == "bc614d1bd91896e3faceaf40b23b72dab47d44f5"
    assert info.license == "unrestricted"
    assert info.extra == ()
    assert info.warnings == ()


def test_a_hex_gist_id_is_read_as_written() -> None:
    info = read("flickr_style_gist.md")
    assert info.gist_id == "034c6ac3865563b69e60"
    assert info.license == "non-commercial"
    assert info.warnings == ()


# --- every value stays a string ---------------------------------------------------------------


def test_an_all_digit_gist_id_stays_a_string() -> None:
    assert read("digit_gist_id.md").gist_id == "0123456789"


def test_values_yaml_would_turn_into_numbers_or_booleans_stay_the_text_written() -> None:
    info = read("digit_gist_id.md")
    assert info.name == "2015"
    assert info.sha1 == "0123456789012345678901234567890123456789"
    assert info.caffe_commit == "1e5"
    assert info.caffe_version == "1.0"
    assert info.license == "no"
    assert info.extra == (("epochs", "010"),)
    assert info.warnings == ()


@pytest.mark.parametrize("written", ["null", "~", "true", "2015-01-01", "0x1F", "1_000", ".inf"])
def test_yaml_keywords_stay_text(written: str) -> None:
    assert parse(f"---\nname: {written}\n---\n").name == written


def test_an_empty_sha1_and_an_empty_quoted_gist_id_are_absent() -> None:
    info = read("empty_sha1.md")
    assert info.sha1 is None
    assert info.gist_id is None
    assert info.caffemodel == "unpinned.caffemodel"
    assert info.warnings == ()


def test_caffe_version_free_text_is_kept_as_written() -> None:
    info = read("caffe_version_text.md")
    assert info.caffe_version == "master branch of early 2015, with the cuDNN v2 patch"
    assert info.caffe_commit is None
    assert info.warnings == ()


def test_quoted_values_lose_their_quotes_and_keep_their_escapes() -> None:
    info = parse("---\nname: \"Net \\u00e9\"\nlicense: 'it''s free'\n---\n")
    assert info.name == "Net \u00e9"
    assert info.license == "it's free"


def test_a_comment_after_a_value_is_not_part_of_it() -> None:
    assert parse("---\nname: Net # the short name\n---\n").name == "Net"


# --- where the model information is -----------------------------------------------------------


def test_key_lines_without_any_dashes_are_read_with_a_warning() -> None:
    info = read("no_dashes.md")
    assert (info.name, info.caffemodel) == ("Net without frontmatter", "plain.caffemodel")
    assert info.sha1 == "1" * 40
    assert info.warnings == (
        "fixtures/readmes/no_dashes.md:1: no frontmatter (no '---' lines); "
        "read the 'key: value' lines 1-4",
    )


def test_key_lines_after_a_heading_are_read_with_a_warning() -> None:
    info = read("heading_then_keys.md")
    assert info.name == "Scene Net"
    assert info.sha1 == "2" * 40
    assert info.warnings == (
        "fixtures/readmes/heading_then_keys.md:3: no frontmatter (no '---' lines); "
        "read the 'key: value' lines 3-6",
    )


def test_the_vgg_layout_a_heading_without_a_space_then_spaced_key_lines_is_read() -> None:
    info = read("heading_without_space_blank_lines.md")
    assert info.name == '16-layer model from the paper: "Very Deep Networks: a synthetic example"'
    assert info.caffemodel == "VGG_ILSVRC_16_layers"
    assert info.caffemodel_url is not None
    assert info.caffemodel_url.endswith("/VGG_ILSVRC_16_layers.caffemodel")
    assert info.sha1 is None
    assert info.caffe_version == "trained using a custom Caffe-based framework"
    assert info.gist_id == "211839e770f7b538e2d8"
    assert info.warnings == (
        "fixtures/readmes/heading_without_space_blank_lines.md:3: no frontmatter "
        "(no '---' lines); read the 'key: value' lines 3-13",
    )


def test_a_single_dash_line_is_a_markdown_rule_and_the_key_lines_above_it_are_read() -> None:
    info = read("single_rule.md")
    assert info.caffemodel == "rule.caffemodel"
    assert info.sha1 == "3" * 40
    assert info.warnings == (
        "fixtures/readmes/single_rule.md:1: no frontmatter (only one '---' line (line 5), "
        "which Markdown reads as a rule); read the 'key: value' lines 1-4",
    )


def test_a_frontmatter_that_is_never_closed_is_read_as_key_lines_with_a_warning() -> None:
    info = read("unclosed_frontmatter.md")
    assert info.caffemodel == "open.caffemodel"
    assert info.sha1 == "4" * 40
    assert len(info.warnings) == 1
    assert info.warnings[0].startswith("fixtures/readmes/unclosed_frontmatter.md:2: no frontmatter")


def test_key_lines_stop_at_the_first_line_of_prose() -> None:
    info = parse("name: Net\nTrained by: the lab\n\nPlain prose.\nlicense: BSD\n")
    assert info.extra == (("Trained by", "the lab"),)
    assert info.license is None


def test_a_frontmatter_that_does_not_start_on_line_1_is_read_with_a_warning() -> None:
    info = read("late_frontmatter.md")
    assert info.name == "Age Net"
    assert info.sha1 == "5" * 40
    assert info.warnings == (
        "fixtures/readmes/late_frontmatter.md:5: the frontmatter starts on line 5, not line 1 "
        "(Caffe reads it there; other tools may not)",
    )


def test_only_the_first_two_dash_lines_count_and_a_later_model_block_is_a_warning() -> None:
    info = read("second_model_block.md")
    assert info.caffemodel == "first.caffemodel"
    assert info.sha1 == "d" * 40
    assert info.warnings == (
        "fixtures/readmes/second_model_block.md:11: another 'caffemodel:' line after the "
        "frontmatter; only the frontmatter is read (one model per readme)",
    )


def test_dash_lines_with_surrounding_blanks_still_delimit_the_frontmatter() -> None:
    assert parse("  --- \nname: Net\n\t---\nbody\n").name == "Net"


# --- YAML that does not parse, and layout -----------------------------------------------------


def test_a_name_holding_colon_and_quotes_is_read_as_plain_key_lines_with_a_warning() -> None:
    info = read("bad_yaml_name_colon.md")
    assert info.name == 'VGG Face: "Deep Face Recognition"'
    assert info.caffemodel == "vgg_face.caffemodel"
    assert info.sha1 == "6" * 40
    assert info.warnings == (
        "fixtures/readmes/bad_yaml_name_colon.md:2: the frontmatter is not valid YAML "
        "(mapping values are not allowed here); read it as plain 'key: value' lines",
    )


def test_a_frontmatter_that_is_neither_yaml_nor_key_lines_is_an_error_naming_the_line() -> None:
    error = rejection("bad_yaml_prose.md")
    assert_precise(error, "bad_yaml_prose.md", 3)
    assert "'trained by our lab in 2015' is not a 'key: value' line" in error.message
    assert "mapping values are not allowed here, line 2" in error.message


def test_a_key_without_a_space_after_its_colon_is_an_error_that_says_so() -> None:
    error = rejection("missing_space_after_colon.md")
    assert_precise(error, "missing_space_after_colon.md", 4)
    assert error.message.endswith("put a space after the ':'")


def test_blank_and_comment_lines_between_keys_are_fine() -> None:
    info = read("blank_lines_between_keys.md")
    assert info.caffemodel_url == "https://models.zoopm.invalid/spaced.caffemodel"
    assert info.sha1 == "7" * 40
    assert info.warnings == ()


def test_indented_yaml_is_read_as_written_with_a_warning_that_caffe_cannot() -> None:
    info = read("indented_block_license.md")
    assert info.license == "Free for research.\n  Ask the authors before any commercial use."
    assert info.warnings == (
        "fixtures/readmes/indented_block_license.md:7: indented frontmatter: Caffe's downloader "
        "strips indentation and then fails: could not find expected ':', line 8; "
        "read as YAML as written",
    )


def test_stray_indentation_is_read_as_caffe_reads_it_with_a_warning() -> None:
    info = parse(f"---\nname: Net\n  sha1: {SHA1_A}\n---\n")
    assert info.sha1 == SHA1_A
    assert len(info.warnings) == 1
    assert info.warnings[0].startswith("readme.md:3: the frontmatter's indentation is not valid")


def test_uniformly_indented_yaml_is_read_without_a_warning() -> None:
    info = parse(f"---\n  name: Net\n  sha1: {SHA1_A}\n---\n")
    assert (info.name, info.sha1, info.warnings) == ("Net", SHA1_A, ())


# --- keys -------------------------------------------------------------------------------------


def test_keys_with_spaces_or_capitals_are_read_as_the_known_key_with_a_warning() -> None:
    info = read("keys_with_spaces.md")
    assert info.name == "Net with spoken keys"
    assert info.caffemodel == "spoken.caffemodel"
    assert info.caffemodel_url == "https://models.zoopm.invalid/spoken.caffemodel"
    assert info.sha1 == "9" * 40
    assert info.caffe_commit == "709dc15af4a06bebda027c1eb2b3f3e3375d5077"
    prefix = "fixtures/readmes/keys_with_spaces.md"
    assert info.warnings == (
        f"{prefix}:2: key 'Name' read as 'name'",
        f"{prefix}:3: key 'Caffemodel' read as 'caffemodel'",
        f"{prefix}:4: key 'Caffemodel URL' read as 'caffemodel_url'",
        f"{prefix}:5: key 'SHA1' read as 'sha1'",
        f"{prefix}:6: key 'Caffe Commit' read as 'caffe_commit'",
    )


def test_an_unknown_key_with_spaces_is_kept_in_extra_as_written() -> None:
    assert read("keys_with_spaces.md").extra == (("Model Size", "233 MB"),)


def test_extra_keys_are_kept_sorted_by_key_and_a_list_among_them_as_one_line() -> None:
    info = read("extra_keys.md")
    assert info.extra == (
        ("author", "A. Researcher"),
        ("datasets", "[ImageNet, Places]"),
        ("paper", "https://papers.zoopm.invalid/more.pdf"),
    )
    assert info.warnings == ()


def test_a_key_given_twice_is_an_error_naming_both_lines_and_suggesting_a_split() -> None:
    error = rejection("two_models.md")
    assert_precise(error, "two_models.md", 6)
    assert "'caffemodel' is given twice, on lines 3 and 6" in error.message
    assert "its own directory" in error.hint


def test_the_same_key_in_two_spellings_is_given_twice() -> None:
    with pytest.raises(ModelInfoError, match=r"readme.md:3: 'sha1' is given twice, on lines 2"):
        parse(f"---\nsha1: {SHA1_A}\nSHA-1: {SHA1_A}\n---\n")


def test_a_list_where_text_is_expected_is_an_error() -> None:
    error = rejection("list_value.md")
    assert_precise(error, "list_value.md", 4)
    assert "license holds a list ('[BSD 2-Clause, CC BY 4.0]')" in error.message


def test_a_mapping_where_text_is_expected_is_an_error() -> None:
    error = rejection("mapping_value.md")
    assert_precise(error, "mapping_value.md", 4)
    assert "caffemodel_url holds a mapping" in error.message


# --- bytes: line endings, byte order mark, encodings ------------------------------------------


def test_crlf_line_endings_are_handled_silently() -> None:
    assert b"\r\n" in (READMES / "crlf.md").read_bytes()
    info = read("crlf.md")
    assert (info.name, info.sha1, info.warnings) == ("Net saved on Windows", "f" * 40, ())


def test_a_byte_order_mark_and_a_missing_final_newline_are_handled_silently() -> None:
    data = (READMES / "bom_no_final_newline.md").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert not data.endswith(b"\n")
    info = read("bom_no_final_newline.md")
    assert (info.caffemodel, info.warnings) == ("bom.caffemodel", ())


def test_old_mac_line_endings_are_line_endings() -> None:
    assert parse(FRONT.replace("\n", "\r")).sha1 == SHA1_A


def test_non_utf8_bytes_are_read_as_latin1_with_a_warning() -> None:
    info = read("latin1.md")
    assert info.name == "R\u00e9seau de l'Universit\u00e9"
    assert info.license == "\u00a9 2015, usage non commercial"
    assert info.warnings == (
        "fixtures/readmes/latin1.md:2: not UTF-8 (byte 0xE9); read as Latin-1",
    )


def test_non_ascii_text_and_trailing_blanks_are_handled_silently() -> None:
    info = read("non_ascii_trailing_spaces.md")
    assert info.name == (
        "\u0421\u0435\u0442\u044c \u0434\u043b\u044f "
        "\u0440\u0430\u0441\u043f\u043e\u0437\u043d\u0430\u0432\u0430\u043d\u0438\u044f"
    )
    assert info.caffemodel == "net.caffemodel"
    assert info.sha1 == "0" * 39 + "3"
    assert info.license == "\u975e\u5546\u4e1a\u7528\u9014"
    assert info.warnings == ()


# --- sha1 -------------------------------------------------------------------------------------


def test_a_sha1_that_is_not_hex_is_an_error_naming_the_line() -> None:
    error = rejection("sha1_not_hex.md")
    assert_precise(error, "sha1_not_hex.md", 5)
    assert "sha1 must be 40 hex digits, not '4c8d77deb20ea792f84eb5e6d0a11ca0a8660a4g'" in (
        error.message
    )


@pytest.mark.parametrize(
    "sha1", ["a" * 39, "a" * 41, "sha1:" + "a" * 40, "a" * 20 + " " + "a" * 20]
)
def test_a_sha1_of_the_wrong_length_or_shape_is_an_error(sha1: str) -> None:
    with pytest.raises(ModelInfoError, match=r"^readme.md:2: sha1 must be 40 hex digits"):
        parse(f"---\nsha1: {sha1}\n---\n")


def test_an_upper_case_sha1_is_stored_lower_case() -> None:
    info = read("sha1_uppercase.md")
    assert info.sha1 == "4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46"
    assert info.warnings == ()


# --- caffemodel -------------------------------------------------------------------------------


def test_a_caffemodel_path_that_climbs_out_is_an_error() -> None:
    error = rejection("caffemodel_escapes.md")
    assert_precise(error, "caffemodel_escapes.md", 3)
    assert "climbs out of the model directory" in error.message


def test_an_absolute_caffemodel_path_is_an_error() -> None:
    error = rejection("caffemodel_absolute.md")
    assert_precise(error, "caffemodel_absolute.md", 3)
    assert "is an absolute path" in error.message


def test_a_windows_caffemodel_path_is_an_error() -> None:
    error = rejection("caffemodel_windows.md")
    assert_precise(error, "caffemodel_windows.md", 3)
    assert "is an absolute path" in error.message


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ("sub\\\\net.caffemodel", "holds a backslash"),
        ("\\\\server\\\\net.caffemodel", "is an absolute path"),
        ("sub//net.caffemodel", "has an empty or '.' path segment"),
        ("./net.caffemodel", "has an empty or '.' path segment"),
        ("sub/", "has an empty or '.' path segment"),
        ("sub/../../net.caffemodel", "climbs out"),
        ("net\\0.caffemodel", "holds a control character"),
        ("https://host.invalid/net.caffemodel", "is a URL"),
        ("c:net.caffemodel", "is an absolute path"),
    ],
)
def test_a_caffemodel_that_is_not_a_plain_relative_path_is_an_error(
    written: str, problem: str
) -> None:
    with pytest.raises(ModelInfoError) as caught:
        parse(f'---\nname: Net\ncaffemodel: "{written}"\n---\n')
    assert caught.value.message.startswith("readme.md:3: caffemodel ")
    assert problem in caught.value.message


def test_a_caffemodel_in_a_subdirectory_is_accepted() -> None:
    info = read("caffemodel_subdir.md")
    assert info.caffemodel == "snapshots/net_iter_40000.caffemodel"
    assert info.warnings == ()


def test_a_caffemodel_without_an_extension_is_accepted() -> None:
    assert read("caffemodel_no_extension.md").caffemodel == "weights"


# --- caffemodel_url ---------------------------------------------------------------------------


def test_a_url_with_another_scheme_is_an_error() -> None:
    error = rejection("bad_scheme.md")
    assert_precise(error, "bad_scheme.md", 4)
    assert "uses the scheme 'ftp:'" in error.message


def test_a_url_without_a_scheme_is_an_error() -> None:
    error = rejection("url_without_scheme.md")
    assert_precise(error, "url_without_scheme.md", 4)
    assert "has no scheme" in error.message


def test_an_http_url_without_a_host_is_an_error() -> None:
    with pytest.raises(ModelInfoError, match="has no host name"):
        parse("---\ncaffemodel_url: http:///net.caffemodel\n---\n")


@pytest.mark.parametrize(
    "url",
    [
        "http://dl.caffe.berkeleyvision.org/bvlc_alexnet.caffemodel",
        "HTTPS://host.invalid/net.caffemodel",
        "file:///srv/models/net.caffemodel",
        "https://www.dropbox.com/s/abc/net.caffemodel?dl=1",
        "https://github.com/someone/nets/blob/master/net.caffemodel?raw=true",
    ],
)
def test_http_https_and_file_urls_are_accepted_without_a_warning(url: str) -> None:
    info = parse(f"---\ncaffemodel_url: {url}\n---\n")
    assert (info.caffemodel_url, info.warnings) == (url, ())


def test_a_dropbox_link_with_dl_0_is_accepted_with_a_warning_that_it_needs_dl_1() -> None:
    info = read("dropbox_dl0.md")
    assert info.caffemodel_url == (
        "https://www.dropbox.com/s/abcdefghijklmno/shared.caffemodel?dl=0"
    )
    assert info.warnings == (
        "fixtures/readmes/dropbox_dl0.md:4: caffemodel_url is a Dropbox link with dl=0, which "
        "returns a web page, not the file: it needs dl=1",
    )


def test_a_github_blob_page_is_accepted_with_a_warning() -> None:
    info = read("github_blob.md")
    assert len(info.warnings) == 1
    assert info.warnings[0].startswith("fixtures/readmes/github_blob.md:4: caffemodel_url is a")


# --- no model information ---------------------------------------------------------------------


def test_an_empty_frontmatter_is_an_error() -> None:
    error = rejection("empty_frontmatter.md")
    assert_precise(error, "empty_frontmatter.md", 1)
    assert "no model information: the frontmatter (lines 1-2) is empty" in error.message


def test_a_frontmatter_without_known_keys_is_an_error() -> None:
    error = rejection("no_model_keys.md")
    assert_precise(error, "no_model_keys.md", 1)
    assert "no model information" in error.message


def test_a_readme_of_prose_only_is_an_error_without_a_line() -> None:
    error = rejection("no_model_info.md")
    assert_precise(error, "no_model_info.md", None)
    assert "no model information" in error.message


def test_a_frontmatter_whose_known_keys_are_all_empty_is_an_error() -> None:
    with pytest.raises(ModelInfoError, match="no model information"):
        parse("---\nsha1:\nname: ''\n---\n")


ERROR_FIXTURES = [
    "bad_scheme.md",
    "bad_yaml_prose.md",
    "caffemodel_absolute.md",
    "caffemodel_escapes.md",
    "caffemodel_windows.md",
    "empty_frontmatter.md",
    "list_value.md",
    "mapping_value.md",
    "missing_space_after_colon.md",
    "no_model_keys.md",
    "sha1_not_hex.md",
    "two_models.md",
    "url_without_scheme.md",
]


@pytest.mark.parametrize("name", ERROR_FIXTURES)
def test_every_error_is_one_line_naming_the_file_and_line_with_exit_code_2(name: str) -> None:
    error = rejection(name)
    assert re.match(rf"{re.escape(source_of(name))}:\d+: \S", error.message)
    assert_precise(error, name, int(error.message.split(":")[1]))


@pytest.mark.parametrize(
    "name",
    sorted(path.name for path in READMES.iterdir() if path.name not in ERROR_FIXTURES),
)
def test_every_warning_is_one_line_starting_with_file_and_line(name: str) -> None:
    if name == "no_model_info.md":
        return
    for warning in read(name).warnings:
        assert re.match(rf"{re.escape(source_of(name))}:\d+: \S", warning)
        assert "\n" not in warning


# --- finding readme.md ------------------------------------------------------------------------


def test_find_readme_returns_the_name_as_the_directory_spells_it() -> None:
    assert find_readme(["deploy.prototxt", "readme.md"], "models/net") == "readme.md"
    assert find_readme(["README.md", "solver.prototxt"], "models/net") == "README.md"
    assert find_readme(["Readme.MD"], "models/net") == "Readme.MD"


def test_find_readme_returns_none_when_there_is_no_readme() -> None:
    assert find_readme(["deploy.prototxt", "README.markdown", "readme.txt"], "models/net") is None
    assert find_readme([], "models/net") is None


def test_several_readmes_differing_only_in_case_are_an_error_naming_them() -> None:
    with pytest.raises(ModelInfoError) as caught:
        find_readme(["readme.md", "deploy.prototxt", "README.md"], "gist 034c6ac3@abc readme")
    assert caught.value.message == (
        "gist 034c6ac3@abc readme: several readme files that differ only in case: "
        "README.md, readme.md"
    )
    assert caught.value.exit_code == 2


# --- setting one key in place -----------------------------------------------------------------


def set_key(data: bytes, key: str, value: str) -> bytes:
    return set_frontmatter_key(data, key, value, "readme.md")


def test_setting_an_existing_key_replaces_only_its_value() -> None:
    data = b"---\r\nname: Net   # short\r\n  sha1:   # unknown yet\r\n---\r\nbody"
    assert set_key(data, "name", "Other Net") == (
        b"---\r\nname: Other Net   # short\r\n  sha1:   # unknown yet\r\n---\r\nbody"
    )
    assert set_key(data, "sha1", SHA1_A) == (
        b"---\r\nname: Net   # short\r\n  sha1: " + SHA1_A.encode() + b"   # unknown yet\r\n"
        b"---\r\nbody"
    )


def test_setting_a_new_key_inserts_it_last_before_the_closing_dashes() -> None:
    data = b"\xef\xbb\xbf---\r\nname: Net\r\n---\r\nbody"
    assert set_key(data, "gist_id", "abc") == (
        b"\xef\xbb\xbf---\r\nname: Net\r\ngist_id: abc\r\n---\r\nbody"
    )


def test_setting_a_key_in_a_readme_without_model_information_prepends_a_frontmatter() -> None:
    data = b"\xef\xbb\xbf# Net\r\n\r\nProse only.\r\n"
    assert set_key(data, "name", "Net") == (
        b"\xef\xbb\xbf---\r\nname: Net\r\n---\r\n# Net\r\n\r\nProse only.\r\n"
    )
    assert set_key(b"", "name", "Net") == b"---\nname: Net\n---\n"


def test_setting_a_key_in_loose_key_lines_edits_them_without_adding_dashes() -> None:
    data = f"# Net\n\nname: Net\nsha1: {SHA1_A}".encode()
    assert set_key(data, "gist_id", "abc") == data + b"\ngist_id: abc"
    assert set_key(data, "name", "New") == data.replace(b"name: Net", b"name: New")


def test_setting_a_key_written_another_way_keeps_its_spelling() -> None:
    data = b"---\nCaffemodel URL: http://old.invalid/a\n---\n"
    assert set_key(data, "caffemodel_url", "https://new.invalid/a") == (
        b"---\nCaffemodel URL: https://new.invalid/a\n---\n"
    )


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("0123", '"0123"'),
        ("0123456789", '"0123456789"'),
        ("1.0", '"1.0"'),
        ("1e5", '"1e5"'),
        ("0123abc", "0123abc"),
        ("yes", '"yes"'),
        ("null", '"null"'),
        ("a: b", '"a: b"'),
        ("a #b", '"a #b"'),
        ("'q'", "\"'q'\""),
        ('say "hi"', 'say "hi"'),
        ("- item", '"- item"'),
        ("[x]", '"[x]"'),
        ("*alias", '"*alias"'),
        ("line\nbreak", '"line\\nbreak"'),
        ("tab\there", '"tab\\there"'),
        ("caf\u00e9\u2028x", '"caf\u00e9\\u2028x"'),
        ("\u00fcber \U0001f600", "\u00fcber \U0001f600"),
        ("BSD 2-Clause", "BSD 2-Clause"),
    ],
)
def test_values_are_double_quoted_only_when_plain_yaml_would_read_them_otherwise(
    value: str, written: str
) -> None:
    result = set_key(FRONT.encode(), "license", value)
    assert f"\nlicense: {written}\n---\n".encode() in result
    assert parse(result).license == value


def test_a_multi_line_value_is_replaced_by_one_line() -> None:
    data = b"---\nname: Net\nlicense: |\n  long\n    text\n\ncaffemodel: a.caffemodel\n---\n"
    assert set_key(data, "license", "MIT") == (
        b"---\nname: Net\nlicense: MIT\n\ncaffemodel: a.caffemodel\n---\n"
    )


def test_a_value_in_a_latin1_file_is_written_with_ascii_escapes() -> None:
    data = (READMES / "latin1.md").read_bytes()
    result = set_key(data, "license", "\u00e9\u20ac")
    assert b'license: "\\xE9\\u20AC"' in result
    assert parse(result).license == "\u00e9\u20ac"
    assert parse(result).name == "R\u00e9seau de l'Universit\u00e9"


def test_setting_a_key_where_the_yaml_does_not_parse_keeps_the_plain_reading() -> None:
    data = (READMES / "bad_yaml_name_colon.md").read_bytes()
    result = set_key(data, "gist_id", "0123")
    info = parse(result)
    assert info.gist_id == "0123"
    assert info.name == 'VGG Face: "Deep Face Recognition"'


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("sha1", "abc", "sha1 must be 40 hex digits"),
        ("caffemodel", "../x.caffemodel", "climbs out"),
        ("caffemodel_url", "ftp://host.invalid/x", "uses the scheme 'ftp:'"),
        ("name", "", "the value is empty"),
        ("name", " padded", "starts or ends with white space"),
        ("Name", "Net", "keys are lower-case words"),
        ("caffe_model_url", "http://x.invalid/a", "keys are lower-case words"),
        ("two words", "x", "keys are lower-case words"),
    ],
)
def test_setting_an_unusable_key_or_value_is_an_error(key: str, value: str, problem: str) -> None:
    with pytest.raises(ModelInfoError) as caught:
        set_key(FRONT.encode(), key, value)
    assert caught.value.message.startswith("readme.md: ")
    assert problem in caught.value.message


def test_setting_a_key_in_a_readme_with_a_key_given_twice_is_an_error() -> None:
    with pytest.raises(ModelInfoError, match="given twice"):
        set_key((READMES / "two_models.md").read_bytes(), "gist_id", "abc")


def test_setting_a_key_that_would_not_read_back_is_refused() -> None:
    with pytest.raises(ModelInfoError, match="cannot set name in place"):
        set_key(b"---\n{name: x, caffemodel: y}\n---\n", "name", "a, b")


# --- the set-one-key invariant, over varied readmes and values ---------------------------------

SAFE_TEXT = string.ascii_letters + string.digits + " .-/()"
BODY_LINES = ["Trained for the tests.", "", "## Training", "More prose, no keys here."]
SPELLINGS = {"caffemodel_url": ["Caffemodel URL"], "sha1": ["SHA1", "SHA-1"], "name": ["Name"]}
EXTRA_KEYS = ["author", "paper_url"]


@dataclass(frozen=True)
class Readme:
    data: bytes
    layout: str  # "frontmatter", "loose" or "none"


def simple_value(key: str) -> st.SearchStrategy[str]:
    if key == "sha1":
        return st.text("0123456789abcdefABCDEF", min_size=40, max_size=40)
    if key == "caffemodel":
        return st.from_regex(r"[a-z0-9_]{1,8}(/[a-z0-9_]{1,8})?\.caffemodel", fullmatch=True)
    if key == "caffemodel_url":
        return st.from_regex(r"https?://[a-z]{1,8}\.invalid/[a-z0-9_]{1,8}", fullmatch=True)
    first = st.sampled_from(string.ascii_letters + string.digits)
    return st.tuples(first, st.text(SAFE_TEXT, max_size=12)).map(lambda p: (p[0] + p[1]).strip())


@st.composite
def entry_lines(draw: st.DrawFn, loose: bool) -> list[str]:
    known = draw(st.lists(st.sampled_from(KNOWN_KEYS), min_size=1, max_size=6, unique=True))
    extra = draw(st.lists(st.sampled_from(EXTRA_KEYS), max_size=2, unique=True))
    keys = draw(st.permutations([*known, *extra]))
    broken = not loose and "name" in keys and draw(st.booleans())
    styles = ["plain", "double", "single", "comment", "blanks", "empty"]
    lines: list[str] = []
    for key in keys:
        written = draw(st.sampled_from([key, *SPELLINGS.get(key, [])]))
        value = draw(simple_value(key))
        # The first known key has a value, so that the readme holds model information.
        style = draw(st.sampled_from(styles[:-1] if key == known[0] else styles))
        if key == "name" and broken:
            text = f'{written}: Net: "{value}"'
        elif style == "empty":
            text = f"{written}:"
        elif style == "double":
            text = f'{written}: "{value}"'
        elif style == "single":
            text = f"{written}: '{value}'"
        elif style == "comment":
            text = f"{written}: {value}  # note"
        elif style == "blanks":
            text = f"{written}:   {value} \t"
        else:
            text = f"{written}: {value}"
        lines.append(text)
        if not loose:
            lines += draw(st.sampled_from([[], [""], ["# a comment"]]))
    return lines


@st.composite
def readmes(draw: st.DrawFn) -> Readme:
    layout = draw(st.sampled_from(["frontmatter", "loose", "none"]))
    heading = draw(st.sampled_from([[], ["# A Net", ""], ["A Net", "====="]]))
    body = draw(st.lists(st.sampled_from(BODY_LINES), max_size=4))
    if layout == "frontmatter":
        lines = [*heading, "---", *draw(entry_lines(loose=False)), "---", *body]
    elif layout == "loose":
        lines = [*heading, *draw(entry_lines(loose=True)), "", "Trained for the tests.", *body]
    else:
        lines = [*heading, "Trained for the tests.", *body]
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = newline.join(lines) + draw(st.sampled_from([newline, ""]))
    bom = draw(st.sampled_from([b"", b"\xef\xbb\xbf"]))
    return Readme(bom + text.encode(), layout)


def set_values(key: str) -> st.SearchStrategy[str]:
    if key in ("sha1", "caffemodel_url"):
        return simple_value(key)
    if key == "caffemodel":
        segment = st.text(
            st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="/\\"),
            min_size=1,
            max_size=6,
        ).filter(lambda s: s not in (".", ".."))
        paths = st.lists(segment, min_size=1, max_size=3).map("/".join)
        return paths.filter(
            lambda p: p == p.strip() and "://" not in p and not re.match(r"[A-Za-z]:", p)
        )
    tricky = st.sampled_from(
        ["0123", "1e5", "yes", "~", "- a", "a: b", "#x", "'q'", '"q"', "[a]", "{a}", "&a", "*a",
         "!t", "|", ">", "%p", "@x", "`x`", "a #b", "---", "...", "? x", "a\nb", "x\u2028x"]
    )  # fmt: skip
    return st.one_of(tricky, st.text(min_size=1).filter(lambda v: v == v.strip()))


def line_breaks(data: bytes) -> int:
    return len(re.findall(rb"\r\n|\r|\n", data))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(readme=readmes(), data=st.data())
def test_setting_a_key_reads_back_and_changes_nothing_else(
    readme: Readme, data: st.DataObject
) -> None:
    before = None if readme.layout == "none" else parse_model_info(readme.data, "r.md")
    keys = KNOWN_KEYS if before is None else (*KNOWN_KEYS, *EXTRA_KEYS, "new_key")
    key = data.draw(st.sampled_from(keys))
    value = data.draw(set_values(key))

    after = set_frontmatter_key(readme.data, key, value, "r.md")
    info = parse_model_info(after, "r.md")

    assert field(info, key) == (value.lower() if key == "sha1" else value)
    for other in KNOWN_KEYS:
        if other != key:
            assert field(info, other) == field(before, other)
    extras_before = {k: v for k, v in (before.extra if before else ()) if k != key}
    assert {k: v for k, v in info.extra if k != key} == extras_before

    # Only one line changed (or one line, or the three frontmatter lines, were added).
    prefix = 0
    while prefix < min(len(after), len(readme.data)) and after[prefix] == readme.data[prefix]:
        prefix += 1
    suffix = 0
    room = min(len(after), len(readme.data)) - prefix
    while suffix < room and after[-1 - suffix] == readme.data[-1 - suffix]:
        suffix += 1
    old_middle = readme.data[prefix : len(readme.data) - suffix]
    assert b"\n" not in old_middle
    assert b"\r" not in old_middle
    added = line_breaks(after) - line_breaks(readme.data)
    assert added == (3 if readme.layout == "none" else added)
    assert added in ((3,) if readme.layout == "none" else (0, 1))


GOOD_FIXTURES = sorted(
    path.name
    for path in READMES.iterdir()
    if path.name not in ERROR_FIXTURES and path.name != "no_model_info.md"
)


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(GOOD_FIXTURES), data=st.data())
def test_setting_a_key_in_every_accepted_fixture_reads_back_and_changes_nothing_else(
    name: str, data: st.DataObject
) -> None:
    original = (READMES / name).read_bytes()
    before = parse_model_info(original, name)
    settable = [k for k, _ in before.extra if re.fullmatch(r"[a-z][a-z0-9_]*", k)]
    key = data.draw(st.sampled_from([*KNOWN_KEYS, *settable, "new_key"]))
    value = data.draw(set_values(key))

    after = set_frontmatter_key(original, key, value, name)
    info = parse_model_info(after, name)

    assert field(info, key) == (value.lower() if key == "sha1" else value)
    for other in KNOWN_KEYS:
        if other != key:
            assert field(info, other) == field(before, other)
    assert [item for item in info.extra if item[0] != key] == [
        item for item in before.extra if item[0] != key
    ]
    # A value written over several lines becomes one line; every other edit touches one line.
    multi_line_value = name == "indented_block_license.md" and key == "license"
    assert line_breaks(after) - line_breaks(original) in ((-2,) if multi_line_value else (0, 1))
    unchanged = [line for line in original.splitlines(keepends=True) if line in after]
    assert len(original.splitlines()) - len(unchanged) <= (3 if multi_line_value else 1)


FRAGMENTS = [
    "---", "name: Net", "sha1: " + SHA1_A, "caffemodel: a.caffemodel", "SHA1:", "# Title", "",
    "  indented: x", "license: |", "  text", "- item", "key: [a, b]", 'name: a: "b"', "{a: b}",
    "gist_id: 0123", "&anchor x", "*alias", "\t", "\ufeff", "caf\xe9", "\x85", "\x00", ":", "'",
]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=200),
        st.lists(st.sampled_from(FRAGMENTS), max_size=12).map(lambda ls: "\n".join(ls).encode()),
    ),
    value=st.text(min_size=1, max_size=10).filter(lambda v: v == v.strip()),
)
def test_any_input_gives_model_info_or_a_model_info_error(data: bytes, value: str) -> None:
    try:
        parse_model_info(data, "r.md")
    except ModelInfoError as error:
        assert error.message.startswith("r.md")
        assert "\n" not in error.message
    try:
        after = set_frontmatter_key(data, "name", value, "r.md")
    except ModelInfoError as error:
        assert "\n" not in error.message
    else:
        try:
            assert parse_model_info(after, "r.md").name == value
        except ModelInfoError as error:
            # The name is set, so there is model information; another key may still be wrong.
            assert "no model information" not in error.message


def test_a_readme_larger_than_the_head_is_read_from_its_first_mebibyte() -> None:
    body = b"lorem ipsum\n" * ((INFO_HEAD_BYTES // 12) + 1000)
    data = b"---\ncaffemodel: big.caffemodel\nsha1: " + b"a" * 40 + b"\n---\n" + body

    info = parse_model_info(data, "big/readme.md")

    assert info.caffemodel == "big.caffemodel"


def test_frontmatter_that_does_not_close_within_the_head_says_where_zoopm_stops_reading() -> None:
    notes = b"note: x\n" * (INFO_HEAD_BYTES // 8 + 10)
    data = b"---\ncaffemodel: big.caffemodel\n" + notes + b"---\n"

    with pytest.raises(ModelInfoError) as caught:
        parse_model_info(data, "big/readme.md")

    assert "first 1024 KiB of readme.md" in caught.value.message
