"""Model indexes: short names mapped to sources, built in and configured."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from zoopm.atomic import TooLarge, read_regular
from zoopm.errors import ProjectError

# zoo.toml's own source rules, shared rather than copied: an index entry becomes a zoo.toml
# entry on `zoopm add`, so whatever an index accepts zoo.toml must accept too.
from zoopm.formats.manifest import GIST_ID_RE, REPO_RE, REV_RE, GistSource, GithubSource
from zoopm.formats.tomlerrors import load_toml
from zoopm.paths import model_name_problem, relative_path_problem

BUILTIN_ORIGIN = "built-in index"
INDEX_VERSION = 1

_LOGIN_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")
_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")
_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_URL_SCHEMES = ("http://", "https://", "file://")
_MAX_INDEX_BYTES = 64 * 1024 * 1024
_ENTRY_KEYS = ("gist", "github", "path", "rev", "description", "owner")
_HINT = "fix the index file; docs/index-format.md lists every key"
_ENTRY_HINT = "an index entry takes gist, or github and path; then rev, description and owner"
_LOCATION_HINT = (
    "fix the [[index]] entry in zoo.toml; a relative path is taken from the project root"
)


@dataclass(frozen=True)
class IndexEntry:
    """One short name of an index and the source it stands for."""

    name: str
    source: GistSource | GithubSource
    description: str
    owner: str | None
    origin: str

    def haystack(self) -> tuple[str, ...]:
        """The texts `search` looks in, casefolded."""
        source = self.source
        where = source.gist if isinstance(source, GistSource) else source.where
        texts = (self.name, self.description, self.owner or "", where)
        return tuple(text.casefold() for text in texts)


@dataclass(frozen=True)
class Index:
    """A whole index file, validated; entries sorted by name."""

    origin: str
    entries: tuple[IndexEntry, ...]


def parse_index(text: str, origin: str) -> Index:
    """An index from TOML text; every error names origin, line where found, and the key path."""
    data = load_toml(text, origin, lambda message: ProjectError(message, _HINT))
    return _Reader(text, origin).index(data)


@functools.cache
def builtin_index() -> Index:
    """The index shipped inside the package (zoopm/data/index.toml)."""
    resource = resources.files("zoopm") / "data" / "index.toml"
    return parse_index(resource.read_text(encoding="utf-8"), BUILTIN_ORIGIN)


def load_index(location: str, root: Path, fetch: Callable[[str], bytes]) -> Index:
    """The index at location: a path (relative to root) or a URL read through fetch.

    The index's origin is the location as written in zoo.toml, which is what the user knows it by.
    """
    if not location:
        raise ProjectError("zoo.toml: index: empty location", _LOCATION_HINT)
    if _URL_RE.match(location):
        if not location.startswith(_URL_SCHEMES):
            raise ProjectError(
                f"{location}: an index URL must be http, https or file", _LOCATION_HINT
            )
        data = fetch(location)
    else:
        path = root / location
        try:
            data = read_regular(path, _MAX_INDEX_BYTES)
        except TooLarge:
            raise ProjectError(f"{path}: larger than any index", _LOCATION_HINT) from None
        except FileNotFoundError:
            raise ProjectError(f"{path}: no such index file", _LOCATION_HINT) from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ProjectError(
                f"{path}: cannot read index file: {reason}", _LOCATION_HINT
            ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ProjectError(
            f"{location}: not an index: byte {exc.start} is not UTF-8 text", _HINT
        ) from None
    return parse_index(text, location)


def lookup(indexes: Sequence[Index], name: str) -> IndexEntry | None:
    """The entry for name (any case) in the first index that has it, or None."""
    wanted = name.casefold()
    for index in indexes:
        for entry in index.entries:
            if entry.name.casefold() == wanted:
                return entry
    return None


def search(indexes: Sequence[Index], term: str) -> list[IndexEntry]:
    """Entries whose name, description, owner, or gist id or repository path contains term.

    Shadowing is applied before matching, exactly as `lookup` would: an entry hidden by an earlier
    index with the same name never shows up, since `zoopm add NAME` could not reach it.
    """
    visible: dict[str, IndexEntry] = {}
    for index in indexes:
        for entry in index.entries:
            visible.setdefault(entry.name.casefold(), entry)
    needle = term.casefold()
    found = [e for e in visible.values() if any(needle in text for text in e.haystack())]
    return sorted(found, key=_by_name)


def _by_name(entry: IndexEntry) -> tuple[str, str]:
    return entry.name.casefold(), entry.name


class _Reader:
    """Validates decoded index TOML; failures name the key path and, where found, its line."""

    def __init__(self, text: str, origin: str) -> None:
        self.origin = origin
        self.locator = _Locator(text)

    def error(self, keys: Sequence[str], problem: str, hint: str = _HINT) -> ProjectError:
        line = self.locator.line_of(tuple(keys))
        where = f"{self.origin}:{line}" if line else self.origin
        return ProjectError(f"{where}: {_key_path(keys)}: {problem}", hint)

    def index(self, data: dict[str, Any]) -> Index:
        for key in data:
            if key not in ("version", "models"):
                raise self.error([key], "unknown key", hint="an index holds version and [models]")
        if "version" not in data:
            raise self.error(
                ["version"], f"missing: an index starts with version = {INDEX_VERSION}"
            )
        version = data["version"]
        if type(version) is not int or version != INDEX_VERSION:
            raise self.error(
                ["version"],
                f"{version!r} is not a version this zoopm reads (it reads {INDEX_VERSION})",
                hint=f"upgrade zoopm, or use an index written for version {INDEX_VERSION}",
            )
        models = data.get("models", {})
        if not isinstance(models, dict):
            raise self.error(["models"], f"expected a table, got {_kind(models)}")
        entries = [self.entry(name, spec) for name, spec in models.items()]
        seen: dict[str, str] = {}
        for entry in entries:
            other = seen.setdefault(entry.name.casefold(), entry.name)
            if other != entry.name:
                raise self.error(
                    ["models", entry.name],
                    f"same name as models.{other} apart from case",
                    hint="names are looked up ignoring case; keep one of them",
                )
        return Index(self.origin, tuple(sorted(entries, key=_by_name)))

    def entry(self, name: str, spec: object) -> IndexEntry:
        keys = ["models", name]
        problem = model_name_problem(name)
        if problem:
            raise self.error(keys, problem)
        if not isinstance(spec, dict):
            raise self.error(keys, f"expected a table, got {_kind(spec)}", hint=_ENTRY_HINT)
        for key, value in spec.items():
            if key not in _ENTRY_KEYS:
                raise self.error([*keys, key], "unknown key", hint=_ENTRY_HINT)
            if not isinstance(value, str):
                raise self.error([*keys, key], f"expected a string, got {_kind(value)}")
        rev = spec.get("rev")
        if rev is not None and not REV_RE.fullmatch(rev):
            raise self.error(
                [*keys, "rev"],
                f"{rev!r} is not a full 40-hex commit",
                hint="pin the full commit hash, lower-case",
            )
        source, implied_owner = self.source(keys, spec, rev)
        owner = spec.get("owner", implied_owner)
        if owner is not None and not _LOGIN_RE.fullmatch(owner):
            raise self.error([*keys, "owner"], f"{owner!r} is not a GitHub login")
        description = spec.get("description", "").strip()
        if "\n" in description or "\r" in description:
            raise self.error([*keys, "description"], "a description is one line")
        return IndexEntry(name, source, description, owner, self.origin)

    def source(
        self, keys: list[str], spec: dict[str, str], rev: str | None
    ) -> tuple[GistSource | GithubSource, str | None]:
        """The entry's source and the owner it implies (`owner/id` gists, repository owners)."""
        if "gist" in spec:
            if "github" in spec or "path" in spec:
                raise self.error(keys, "a gist entry takes no github or path", hint=_ENTRY_HINT)
            value = spec["gist"]
            prefix, _, gist = value.rpartition("/")
            if not GIST_ID_RE.fullmatch(gist):
                raise self.error(
                    [*keys, "gist"], f"{value!r} is not a gist id (20 or 32 hex digits, or digits)"
                )
            return GistSource(gist, rev), prefix if _LOGIN_RE.fullmatch(prefix) else None
        if "github" in spec:
            repo = spec["github"]
            if not REPO_RE.fullmatch(repo):
                raise self.error([*keys, "github"], f"{repo!r} is not OWNER/REPO")
            if "path" not in spec:
                raise self.error(
                    keys, "a github entry needs path, the model directory", hint=_ENTRY_HINT
                )
            repo_path = spec["path"].strip("/")
            problem = relative_path_problem(repo_path) if repo_path else None  # "": the root
            if problem:
                raise self.error([*keys, "path"], problem)
            return GithubSource(repo, repo_path, rev), repo.split("/", 1)[0]
        if "path" in spec:
            raise self.error(
                keys,
                "a local directory cannot come from an index",
                hint="give github and path for a directory inside a repository",
            )
        raise self.error(keys, "no source: give gist, or github and path", hint=_ENTRY_HINT)


class _Locator:
    """Finds the line that defines a key path, by a light scan of the TOML text.

    Good enough for error messages: it knows [table] headers, dotted and quoted keys, and that
    an inline table's keys sit on its parent's line; it does not follow multi-line strings.
    """

    _HEADER = re.compile(r"\s*\[\[?([^\[\]]+)\]\]?\s*(?:#.*)?$")
    _PART = re.compile(r"""\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*""")

    def __init__(self, text: str) -> None:
        self.paths: list[tuple[str, ...] | None] = []
        table: tuple[str, ...] = ()
        for line in text.splitlines():
            header = self._HEADER.match(line)
            if header:
                table = self._key(header.group(1)) or table
                self.paths.append(table)
                continue
            before, equals, _ = line.partition("=")
            key = self._key(before) if equals else None
            self.paths.append(table + key if key else None)

    def _key(self, text: str) -> tuple[str, ...] | None:
        parts: list[str] = []
        position = 0
        while True:
            match = self._PART.match(text, position)
            if not match or match.end() == match.start():
                return None
            parts.append(next(g for g in match.groups() if g is not None))
            position = match.end()
            if position == len(text):
                return tuple(parts)
            if text[position] != ".":
                return None
            position += 1

    def line_of(self, keys: tuple[str, ...]) -> int | None:
        """The line defining keys, else the deepest line that holds them (an inline table)."""
        best: tuple[int, int] | None = None
        for number, path in enumerate(self.paths, start=1):
            if path is None:
                continue
            if path[: len(keys)] == keys:
                return number
            if keys[: len(path)] == path and (best is None or len(path) > best[0]):
                best = (len(path), number)
        return best[1] if best else None


def _key_path(keys: Sequence[str]) -> str:
    """keys as TOML writes them, so a name holding a dot reads as one key: models."v1.0".rev."""
    return ".".join(key if _BARE_KEY_RE.fullmatch(key) else f'"{key}"' for key in keys)


def _kind(value: object) -> str:
    names = {dict: "a table", list: "an array", str: "a string", bool: "a boolean", int: "a number"}
    return names.get(type(value), type(value).__name__)
