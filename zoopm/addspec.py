"""Add specs: what a user types after `zoopm add`, parsed into a source or an index name."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from zoopm.errors import UsageError
from zoopm.formats.manifest import GIST_ID_RE, REV_RE, GistSource, GithubSource, LocalSource, Source

_GIST_ID = f"(?:{GIST_ID_RE.pattern})"
_REV = REV_RE.pattern
_GIST_SPEC = re.compile(rf"gist:(?:[A-Za-z0-9-]+/)?({_GIST_ID})(?:@({_REV}))?")
_GITHUB_SPEC = re.compile(rf"github:([A-Za-z0-9-]+/[A-Za-z0-9._-]+?)(?:/(.*?))?(?:@({_REV}))?")
_GIST_URL_PATH = re.compile(rf"/(?:[A-Za-z0-9-]+/)?({_GIST_ID})(?:/({_REV}))?/?")
_INDEX_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class AddSpec:
    """A parsed add argument: a concrete source, or a name to look up in the indexes."""

    source: Source | None = None
    index_name: str | None = None


def parse_add_spec(text: str, cwd: Path, root: Path) -> AddSpec:
    text = text.strip()
    if match := _GIST_SPEC.fullmatch(text):
        return AddSpec(GistSource(match.group(1), match.group(2)))
    if match := _GITHUB_SPEC.fullmatch(text):
        path = (match.group(2) or "").strip("/")  # "": a model at the repository's root
        return AddSpec(GithubSource(match.group(1), path, match.group(3)))
    if text.startswith(("gist:", "github:")):
        raise _source_problem(text)
    if text.startswith(("https://", "http://")):
        return AddSpec(_gist_url(text))
    if text.startswith((".", "/", "~")) or (cwd / text).is_dir():
        return AddSpec(LocalSource(_local_path(Path(text).expanduser(), cwd, root)))
    if _INDEX_NAME.fullmatch(text):
        return AddSpec(index_name=text)
    raise UsageError(
        f"cannot read {text!r} as a model",
        hint="give an index name (zoopm search), gist:ID[@REV], a gist URL, "
        "github:OWNER/REPO[/PATH][@REV], or ./dir",
    )


def _source_problem(text: str) -> UsageError:
    """What is wrong with a gist:… or github:… that does not parse, as zoo.toml would say it."""
    kind, _, rest = text.partition(":")
    where, at, rev = rest.rpartition("@") if "@" in rest else (rest, "", "")
    if at and not REV_RE.fullmatch(rev):
        return UsageError(
            f"{text}: {rev!r} is not a full 40-hex commit",
            hint="give the full commit hash (zoopm pins it for you if you leave @REV out)",
        )
    if kind == "gist":
        return UsageError(
            f"{text}: {where!r} is not a gist id (20 or 32 hex digits, or digits)",
            hint="copy the id from the gist's URL: gist:ID or gist:OWNER/ID",
        )
    return UsageError(
        f"{text}: not github:OWNER/REPO[/PATH][@REV]",
        hint="for example github:BVLC/caffe/models/bvlc_googlenet",
    )


def _gist_url(text: str) -> GistSource:
    parts = urllib.parse.urlsplit(text)
    match = _GIST_URL_PATH.fullmatch(parts.path)
    if parts.hostname != "gist.github.com" or match is None:
        raise UsageError(
            f"{text}: not a gist URL",
            hint="a gist URL looks like https://gist.github.com/OWNER/ID",
        )
    return GistSource(match.group(1), match.group(2))


def _local_path(path: Path, cwd: Path, root: Path) -> str:
    """The path as zoo.toml should hold it: relative to the project when inside it."""
    absolute = (cwd / path).resolve()
    if not absolute.is_dir():
        raise UsageError(f"{path}: not a directory", hint="give the model directory's path")
    try:
        return absolute.relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(absolute)


def default_name(source: Source, caffemodel: str | None) -> str:
    """A model name when the user gave none: a directory's name, or a gist's binary's stem."""
    if not isinstance(source, GistSource):
        where = source.where if isinstance(source, GithubSource) else source.path.rstrip("/")
        # 'my model' becomes 'my_model', not a name taken from elsewhere ('model').
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", where.rsplit("/", 1)[-1]).strip("._-")
        if _INDEX_NAME.fullmatch(name):
            return name
    if caffemodel:
        stem = caffemodel.rsplit("/", 1)[-1].split(".", 1)[0]
        if _INDEX_NAME.fullmatch(stem):
            return stem
    return f"gist-{source.gist}" if isinstance(source, GistSource) else "model"
