"""Properties of the project-file parsers and editors, over generated input.

- Parsing zoo.toml, zoo.lock and readme.md frontmatter of any input (text or bytes, random or
  nearly valid) gives a value or a ZoopmError, never another exception.
- Editing zoo.toml (add, remove, update's rev change) keeps every byte it does not change:
  comments, blank lines, other tables, other models, and the file's line ends.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.projects import REPO
from zoopm.errors import ZoopmError
from zoopm.formats.lockfile import parse_lock, read_lock
from zoopm.formats.manifest import (
    GistSource,
    LocalSource,
    ModelSpec,
    add_model,
    parse_manifest,
    read_manifest,
    remove_model,
    set_model_rev,
)
from zoopm.formats.modelinfo import parse_model_info

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ZOO_TOML = Path("/project/zoo.toml")
LOCK_EXAMPLE = (REPO / "zoo.lock.example").read_text(encoding="utf-8")
README_EXAMPLE = (REPO / "fixtures" / "tiny_net" / "readme.md").read_bytes()
REV = "9b891540183ddc834a02b2bd81b31afae71b2153"


def parses_or_refuses(parse: object, *args: object) -> None:
    """Calls parse; a ZoopmError is an answer, any other exception fails the property."""
    try:
        parse(*args)  # type: ignore[operator]
    except ZoopmError as error:
        assert error.message and "\n" not in error.message.strip()


def through_a_file(data: bytes, read: object) -> None:
    """Writes data to a real file and reads it with read, as the CLI does."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "file.toml"
        path.write_bytes(data)
        parses_or_refuses(read, path)


# --- generators: random, and nearly valid -------------------------------------------------------

KEYS = [
    "project", "models", "mirrors", "index", "tool", "models-dir", "link-mode", "tiny", "nin",
    "gist", "github", "path", "rev", "binary", "url", "version", "manifest-hash", "model",
    "file", "name", "source", "size", "sha1", "sha256", "urls", "caffemodel", "license",
    "caffe-commit", "a.b", '"quoted key"', "x\\y",
]  # fmt: skip
SCALARS = [
    '"models"', '"../up"', '"/abs"', '"a\\\\b"', '""', f'"{REV}"', '"d802a5849de39225bcc6"',
    '"BVLC/caffe"', '"http://x/"', '"file:///etc/passwd"', "true", "false", "0", "-1",
    "99999999999999999999999", "1.5", "inf", "nan", "1979-05-27", "1979-05-27T07:32:00Z",
    "[]", '["a", 1]', "{}", '{ path = "t" }', f'{{ gist = "1234", rev = "{REV}" }}',
    '{ github = "a/b", path = "m" }', '"""multi\nline"""', "'literal'", '"\\u0000"',
    '"sha256:00"', '{ path = "t", binary = "yes" }', "[[1], [2]]",
]  # fmt: skip
HEADERS = [
    "[project]", "[models]", "[mirrors]", "[[index]]", "[models.tiny]", "[tool.x]", "[[model]]",
    "[[model.file]]", "[model]", "[models.tiny.sub]", "[unknown]", "[[models]]",
]  # fmt: skip
JUNK = ["", "# comment", "=", "[", "]]", "{", '"', "key =", "= 1", "\t", "\x00", "\ufeff"]

toml_line = st.one_of(
    st.sampled_from(HEADERS),
    st.builds(lambda k, v: f"{k} = {v}", st.sampled_from(KEYS), st.sampled_from(SCALARS)),
    st.sampled_from(JUNK),
    st.text(max_size=20),
)


@st.composite
def nearly_valid_toml(draw: st.DrawFn) -> str:
    lines = draw(st.lists(toml_line, max_size=25))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return newline.join(lines) + draw(st.sampled_from(["", newline]))


@st.composite
def mutated(draw: st.DrawFn, base: str) -> str:
    """base with a few characters deleted, replaced or inserted, or lines dropped or repeated."""
    text = base
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["delete", "insert", "replace", "line"]))
        if action == "delete":
            text = text[:position] + text[position + 1 :]
        elif action == "insert":
            text = (
                text[:position]
                + draw(st.sampled_from(list('"=[]{},.\n#\\\x00é')))
                + text[position:]
            )
        elif action == "replace":
            text = text[:position] + draw(st.sampled_from(SCALARS)) + text[position + 5 :]
        else:
            lines = text.splitlines(keepends=True)
            if lines:
                index = draw(st.integers(0, len(lines) - 1))
                lines.insert(index, lines[index]) if draw(st.booleans()) else lines.pop(index)
            text = "".join(lines)
    return text


YAML_VALUES = [
    "plain", '"double \\x41 \\e"', "'single'", "&a anchor", "*a", "[1, 2]", "{a: b}", "|\n  block",
    ">\n  folded", "!!python/object:os.system x", "!!binary aGk=", "~", "null", "yes", "0x1F",
    "2001-01-01", "- item", "? complex", "http://x/y.caffemodel", "file:///dev/zero", "", ": x",
    '"unterminated', "[unclosed", "a: b: c", "%YAML 1.1", "\t tab", "é ✓", "\x00", "\x1b[31m",
]  # fmt: skip
YAML_KEYS = [
    "name", "caffemodel", "caffemodel_url", "sha1", "caffe_commit", "caffe_version", "gist_id",
    "license", "Sha1", "extra", "<<", "? x", "- y", "",
]  # fmt: skip


@st.composite
def nearly_valid_frontmatter(draw: st.DrawFn) -> bytes:
    entries = draw(
        st.lists(
            st.builds(
                lambda k, v, indent: f"{' ' * indent}{k}: {v}",
                st.sampled_from(YAML_KEYS),
                st.sampled_from(YAML_VALUES),
                st.sampled_from([0, 0, 0, 1, 2]),
            ),
            max_size=12,
        )
    )
    opening = draw(st.sampled_from(["---", "---", "--- ", "...", "", "----"]))
    closing = draw(st.sampled_from(["---", "---", "...", "", "--- x"]))
    body = draw(st.sampled_from(["", "# Title\n\ntext: with colon\n", "---\nsecond: doc\n---\n"]))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = newline.join([opening, *entries, closing, body])
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1"]))
    return text.encode(encoding, errors="replace")


# --- parsing any input --------------------------------------------------------------------------


@FAST
@given(st.text())
def test_zoo_toml_parsing_of_any_text_gives_a_manifest_or_a_zoopm_error(text: str) -> None:
    parses_or_refuses(parse_manifest, text, ZOO_TOML)


@FAST
@given(nearly_valid_toml())
@example('models = { a = { path = "t" } }\n[models.b]\npath = "u"\n')
def test_zoo_toml_parsing_of_nearly_valid_toml_gives_a_manifest_or_a_zoopm_error(
    text: str,
) -> None:
    parses_or_refuses(parse_manifest, text, ZOO_TOML)


@FAST
@given(st.binary(max_size=300) | nearly_valid_toml().map(lambda t: t.encode("utf-8", "replace")))
def test_reading_zoo_toml_of_any_bytes_gives_a_manifest_or_a_zoopm_error(data: bytes) -> None:
    through_a_file(data, read_manifest)


@FAST
@given(st.text() | nearly_valid_toml() | mutated(LOCK_EXAMPLE))
def test_zoo_lock_parsing_of_any_text_gives_a_lock_or_a_zoopm_error(text: str) -> None:
    parses_or_refuses(parse_lock, text)


@FAST
@given(st.binary(max_size=300) | mutated(LOCK_EXAMPLE).map(lambda t: t.encode("utf-8", "replace")))
def test_reading_zoo_lock_of_any_bytes_gives_a_lock_or_a_zoopm_error(data: bytes) -> None:
    through_a_file(data, read_lock)


@FAST
@given(
    st.binary(max_size=400)
    | nearly_valid_frontmatter()
    | mutated(README_EXAMPLE.decode()).map(str.encode)
)
def test_frontmatter_parsing_of_any_bytes_gives_model_info_or_a_zoopm_error(data: bytes) -> None:
    parses_or_refuses(parse_model_info, data, "m/readme.md")


@FAST
@given(st.text())
def test_frontmatter_parsing_of_any_text_gives_model_info_or_a_zoopm_error(text: str) -> None:
    parses_or_refuses(parse_model_info, text.encode("utf-8", "surrogatepass"), "m/readme.md")


# --- editing keeps every byte it does not change -------------------------------------------------

NAMES = ["tiny", "nin", "vgg-16", "a.b", "m_2"]
LAYOUTS = ["table", "subtables", "inline"]


@dataclass(frozen=True)
class Layout:
    """A generated zoo.toml, and which of its lines belong to which model."""

    text: str
    newline: str
    layout: str
    models: dict[str, ModelSpec]
    lines_of: dict[str, list[str]]

    def lines_without(self, name: str) -> list[str]:
        own = self.lines_of.get(name, [])
        if self.layout == "inline":
            own = [
                line for line in self.text.splitlines(keepends=True) if line.startswith("models")
            ]
        lines = self.text.splitlines(keepends=True)
        return [line for line in lines if line not in own]


def key(name: str) -> str:
    return f'"{name}"' if "." in name else name


def spec_toml(spec: ModelSpec) -> str:
    return "{ " + ", ".join(f'{k} = "{v}"' for k, v in spec.canonical().items()) + " }"


sources = st.one_of(
    st.builds(LocalSource, st.sampled_from(["t", "../models/x", "/abs/dir"])),
    st.builds(GistSource, st.sampled_from(["d802a5849de39225bcc6", "790381"]), st.just(REV)),
)
comments = st.sampled_from(["", "# a comment", "  # indented comment", "#"])


@st.composite
def manifests(draw: st.DrawFn) -> Layout:
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    layout = draw(st.sampled_from(LAYOUTS))
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=4))
    models = {name: ModelSpec(name, draw(sources)) for name in names}
    before = [draw(comments), "[project]", 'models-dir = "models"', draw(comments)]
    after = draw(
        st.sampled_from(
            [
                [],
                ["[mirrors]", '"http://a/" = ["http://b/"]  # mirror'],
                ["[[index]]", 'path = "i"'],
            ]
        )
    )
    lines_of: dict[str, list[str]] = {}
    body: list[str] = []
    if layout == "table":
        body.append("[models]")
        for name, spec in models.items():
            body.append(draw(comments))
            body.append(
                f"{key(name)} = {spec_toml(spec)}{draw(st.sampled_from(['', '  # pinned']))}"
            )
            lines_of[name] = [body[-1] + newline]
    elif layout == "subtables":
        for name, spec in models.items():
            own = [f"[models.{key(name)}]"]
            own += [f'{k} = "{v}"' for k, v in spec.canonical().items()]
            body += own
            lines_of[name] = [line + newline for line in own]
            body.append("")
    else:
        entries = ", ".join(f"{key(name)} = {spec_toml(spec)}" for name, spec in models.items())
        body.append(f"models = {{ {entries} }}" if entries else "models = {}")
    # A top-level key must come before the first [table]; tables may come in any order.
    lines = [*body, *before, *after] if layout == "inline" else [*before, *body, *after]
    text = newline.join(lines) + newline
    return Layout(text, newline, layout, models, lines_of)


def parsed_models(text: str) -> dict[str, ModelSpec]:
    return {m.name: m for m in parse_manifest(text, ZOO_TOML).models}


def is_subsequence(needles: list[str], haystack: list[str]) -> bool:
    remaining = iter(haystack)
    return all(any(line == candidate for candidate in remaining) for line in needles)


def assert_line_ends_kept(layout: Layout, edited: str) -> None:
    lines = edited.splitlines(keepends=True)
    assert all(line.endswith(layout.newline) for line in lines), edited
    if layout.newline == "\n":
        assert "\r" not in edited


@FAST
@given(manifests(), st.sampled_from(["new", "tiny"]), sources)
def test_add_keeps_every_other_byte_and_the_line_ends(
    layout: Layout, name: str, source: LocalSource | GistSource
) -> None:
    if name in layout.models:
        name = "other"
    spec = ModelSpec(name, source)

    edited = add_model(layout.text, spec)

    assert parsed_models(edited) == {**layout.models, name: spec}
    assert is_subsequence(layout.lines_without(name), edited.splitlines(keepends=True)), edited
    assert_line_ends_kept(layout, edited)


@FAST
@given(manifests(), st.data())
def test_remove_keeps_every_other_byte_and_the_line_ends(
    layout: Layout, data: st.DataObject
) -> None:
    if not layout.models:
        with pytest.raises(ZoopmError):
            remove_model(layout.text, "tiny")
        return
    name = data.draw(st.sampled_from(sorted(layout.models)))

    edited = remove_model(layout.text, name)

    assert parsed_models(edited) == {k: v for k, v in layout.models.items() if k != name}
    kept = [line for line in layout.lines_without(name) if line.strip()]
    assert is_subsequence(kept, edited.splitlines(keepends=True)), edited
    assert_line_ends_kept(layout, edited)


@FAST
@given(manifests(), st.data())
def test_a_rev_change_keeps_every_other_byte_and_the_line_ends(
    layout: Layout, data: st.DataObject
) -> None:
    gists = sorted(n for n, m in layout.models.items() if isinstance(m.source, GistSource))
    if not gists:
        return
    name = data.draw(st.sampled_from(gists))
    new_rev = "f" * 40

    edited = set_model_rev(layout.text, name, new_rev)

    expected = dict(layout.models)
    expected[name] = ModelSpec(name, GistSource(expected[name].source.gist, new_rev))  # type: ignore[union-attr]
    assert parsed_models(edited) == expected
    assert is_subsequence(layout.lines_without(name), edited.splitlines(keepends=True)), edited
    assert len(edited.splitlines()) == len(layout.text.splitlines())
    assert_line_ends_kept(layout, edited)


@FAST
@given(nearly_valid_toml(), sources)
def test_editing_any_zoo_toml_gives_text_or_a_zoopm_error(text: str, source: LocalSource) -> None:
    edits: list[Callable[[], str]] = [
        lambda: add_model(text, ModelSpec("new", source)),
        lambda: remove_model(text, "tiny"),
        lambda: set_model_rev(text, "tiny", REV),
    ]
    for edit in edits:
        try:
            edited = edit()
        except ZoopmError:
            continue
        assert isinstance(edited, str)
