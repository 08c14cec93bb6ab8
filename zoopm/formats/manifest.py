"""zoo.toml: the declared models, parsed into frozen values and edited with comments kept."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from zoopm.atomic import TooLarge, read_regular
from zoopm.errors import ManifestError
from zoopm.formats.tomlerrors import load_toml
from zoopm.locations import MANIFEST_NAME
from zoopm.paths import model_name_problem, relative_path_problem

if TYPE_CHECKING:
    from tomlkit import TOMLDocument
    from tomlkit.items import InlineTable

    from zoopm.remote_store.location import RemoteLocation

MAX_PROJECT_FILE = 64 * 1024 * 1024  # ten thousand models fit in one
DEFAULT_MODELS_DIR = "models"
LINK_MODES = ("auto", "hardlink", "symlink", "copy")

GIST_ID_RE = re.compile(r"[0-9a-f]{20}|[0-9a-f]{32}|[0-9]{1,12}")
REV_RE = re.compile(r"[0-9a-f]{40}")
REPO_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
_URL_SCHEMES = ("http://", "https://", "file://")


@dataclass(frozen=True)
class GistSource:
    """Model info in a GitHub gist, at a commit of that gist."""

    gist: str
    rev: str | None = None

    def canonical(self) -> dict[str, str]:
        return {"gist": self.gist} | ({"rev": self.rev} if self.rev else {})

    def describe(self) -> str:
        return f"gist {self.gist}" + (f"@{self.rev[:12]}" if self.rev else "")


@dataclass(frozen=True)
class GithubSource:
    """A model directory inside a GitHub repository, at a commit; path "" is the repository root."""

    github: str
    path: str
    rev: str | None = None

    @property
    def where(self) -> str:
        """OWNER/REPO/PATH, or OWNER/REPO for a model at the repository's root."""
        return f"{self.github}/{self.path}" if self.path else self.github

    def canonical(self) -> dict[str, str]:
        base = {"github": self.github, "path": self.path}
        return base | ({"rev": self.rev} if self.rev else {})

    def describe(self) -> str:
        return f"github {self.where}" + (f"@{self.rev[:12]}" if self.rev else "")


@dataclass(frozen=True)
class LocalSource:
    """A model directory on disk, relative to the project root (or absolute)."""

    path: str

    def canonical(self) -> dict[str, str]:
        return {"path": self.path}

    def describe(self) -> str:
        return f"directory {self.path}"


Source = GistSource | GithubSource | LocalSource


@dataclass(frozen=True)
class ModelSpec:
    """One entry of [models]: a name, where its files come from, whether to fetch the binary."""

    name: str
    source: Source
    binary: bool = True

    def canonical(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.source.canonical())
        if not self.binary:
            data["binary"] = False
        return data


@dataclass(frozen=True)
class IndexRef:
    """An extra model index named in [[index]]: a file path or a URL."""

    location: str


@dataclass(frozen=True)
class Manifest:
    """The whole of zoo.toml, validated."""

    path: Path
    models: tuple[ModelSpec, ...]
    models_dir: str = DEFAULT_MODELS_DIR
    # None: zoo.toml does not say; the user configuration's default applies, else "auto".
    link_mode: str | None = None
    mirrors: tuple[tuple[str, tuple[str, ...]], ...] = ()
    indexes: tuple[IndexRef, ...] = ()
    # None: zoo.toml does not say; the user configuration's default applies, else true.
    archive_fallback: bool | None = None
    # [store] remote: the shared remote store (ZOOPM_REMOTE wins over it).
    remote: RemoteLocation | None = None

    @property
    def root(self) -> Path:
        return self.path.parent

    def model(self, name: str) -> ModelSpec | None:
        return next((m for m in self.models if m.name == name), None)

    def mirror_map(self) -> Mapping[str, tuple[str, ...]]:
        return dict(self.mirrors)

    def canonical_models(self) -> dict[str, dict[str, Any]]:
        return {m.name: m.canonical() for m in sorted(self.models, key=lambda m: m.name)}

    def manifest_hash(self) -> str:
        """A hash of what decides the lock's content: the models and their sources, nothing else."""
        text = json.dumps(self.canonical_models(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def read_manifest(path: Path) -> Manifest:
    return parse_manifest(read_manifest_text(path), path)


def read_manifest_text(path: Path) -> str:
    """zoo.toml's text, for parsing or for an edit that keeps its comments."""
    try:
        # Bytes, then decode: read_text would turn CRLF into LF and an edit would write that back.
        # Bounded and non-blocking: zoo.toml may be a symlink to /dev/zero, or a FIFO.
        # A byte order mark is dropped here, so edits (add, update) write the file without it.
        return read_regular(path, MAX_PROJECT_FILE).decode("utf-8").removeprefix("\ufeff")
    except TooLarge:
        raise ManifestError(
            f"{path}: larger than {MAX_PROJECT_FILE // 1024**2} MiB; "
            "zoopm reads no zoo.toml that large"
        ) from None
    except FileNotFoundError:
        raise ManifestError(
            f"{path.parent}: no zoo.toml here or in a directory above",
            hint="run 'zoopm init' to make this a project, or run zoopm in a project's directory",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read: {exc}") from None


def parse_manifest(text: str, path: Path) -> Manifest:
    data = load_toml(text, path.name, ManifestError)
    return _Parser(text, path).manifest(data)


class _Parser:
    """Validates the decoded TOML, naming the key path (and line, where it can be found)."""

    def __init__(self, text: str, path: Path) -> None:
        self.lines = text.splitlines()
        self.path = path

    def fail(self, key_path: str, problem: str, hint: str | None = None, needle: str = "") -> None:
        line = self._line_of(needle or key_path.rsplit(".", 1)[-1])
        where = f"{self.path.name}:{line}" if line else self.path.name
        raise ManifestError(f"{where}: {key_path}: {problem}", hint)

    def _line_of(self, key: str) -> int | None:
        pattern = re.compile(rf"""^\s*(\[\s*)?(["']?){re.escape(key)}\2\s*[=.\]]""")
        for number, line in enumerate(self.lines, start=1):
            if pattern.search(line) or re.search(rf"\[\s*\w+\.{re.escape(key)}\s*\]", line):
                return number
        return None

    def manifest(self, data: dict[str, Any]) -> Manifest:
        for key in data:
            if key not in ("project", "models", "mirrors", "index", "store", "tool"):
                self.fail(
                    key,
                    "unknown table",
                    hint="zoo.toml has [project], [models], [mirrors], [store] and [[index]]",
                )
        project = self.table(data.get("project", {}), "project")
        for key in project:
            if key not in ("models-dir", "link-mode", "archive-fallback"):
                self.fail(
                    f"project.{key}",
                    "unknown key",
                    hint="[project] takes models-dir, link-mode and archive-fallback",
                )
        models_dir = self.models_dir(project.get("models-dir", DEFAULT_MODELS_DIR))
        link_mode = project.get("link-mode")
        if link_mode is not None and link_mode not in LINK_MODES:
            self.fail("project.link-mode", f"{link_mode!r} is not one of {', '.join(LINK_MODES)}")
        archive_fallback = project.get("archive-fallback")
        if archive_fallback is not None and not isinstance(archive_fallback, bool):
            self.fail("project.archive-fallback", f"{archive_fallback!r} is not true or false")
        models_table = self.table(data.get("models", {}), "models")
        models = tuple(self.model(name, spec) for name, spec in models_table.items())
        mirrors = self.mirrors(self.table(data.get("mirrors", {}), "mirrors"))
        indexes = self.indexes(data.get("index", []))
        remote = self.remote(self.table(data.get("store", {}), "store"))
        return Manifest(
            self.path, models, models_dir, link_mode, mirrors, indexes, archive_fallback, remote
        )

    def remote(self, table: dict[str, Any]) -> RemoteLocation | None:
        for key in table:
            if key != "remote":
                self.fail(f"store.{key}", "unknown key", hint="[store] takes remote")
        if "remote" not in table:
            return None
        value = self.string(table["remote"], "store.remote")
        from zoopm.remote_store.location import URL_HINT, parse_remote

        try:
            return parse_remote(value, f"{self.path.name} [store] remote")
        except ValueError as exc:
            self.fail("store.remote", str(exc), hint=URL_HINT)
        raise AssertionError("unreachable")

    def table(self, value: object, key_path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(key_path, f"expected a table, got {_kind(value)}")
        assert isinstance(value, dict)
        return value

    def string(self, value: object, key_path: str) -> str:
        if not isinstance(value, str):
            self.fail(key_path, f"expected a string, got {_kind(value)}")
        assert isinstance(value, str)
        return value

    def models_dir(self, value: object) -> str:
        text = self.string(value, "project.models-dir").rstrip("/")
        problem = relative_path_problem(text)
        if problem:
            self.fail("project.models-dir", problem, hint="use a directory inside the project")
        return PurePosixPath(text).as_posix()

    def model(self, name: str, spec: object) -> ModelSpec:
        key_path = f"models.{name}"
        name_problem = model_name_problem(name)
        if name_problem:
            self.fail(key_path, name_problem, needle=name)
        if not isinstance(spec, dict):
            self.fail(
                key_path,
                f'expected a table such as {{ path = "..." }}, got {_kind(spec)}',
                needle=name,
            )
        assert isinstance(spec, dict)
        allowed = {"gist", "github", "path", "rev", "binary"}
        for key in spec:
            if key not in allowed:
                self.fail(
                    f"{key_path}.{key}",
                    "unknown key",
                    hint="a model takes gist, github, path, rev and binary",
                    needle=name,
                )
        binary = spec.get("binary", True)
        if not isinstance(binary, bool):
            self.fail(
                f"{key_path}.binary", f"expected true or false, got {_kind(binary)}", needle=name
            )
        return ModelSpec(name, self.source(key_path, spec), bool(binary))

    def source(self, key_path: str, spec: dict[str, Any]) -> Source:
        name = key_path.split(".", 1)[1]
        strings = {k: self.string(v, f"{key_path}.{k}") for k, v in spec.items() if k != "binary"}
        rev = strings.get("rev")
        if rev is not None and not REV_RE.fullmatch(rev):
            self.fail(
                f"{key_path}.rev",
                f"{rev!r} is not a full 40-hex commit",
                hint="pin the full commit hash, lower-case",
                needle=name,
            )
        if "gist" in strings:
            if "github" in strings or "path" in strings:
                self.fail(key_path, "a gist source takes only gist and rev", needle=name)
            return GistSource(self.gist_id(key_path, strings["gist"]), rev)
        if "github" in strings:
            repo = strings["github"]
            if not REPO_RE.fullmatch(repo):
                self.fail(f"{key_path}.github", f"{repo!r} is not OWNER/REPO", needle=name)
            if "path" not in strings:
                self.fail(key_path, "a github source needs path, the model directory", needle=name)
            repo_path = strings["path"].strip("/")
            # "" is the repository's root: several community models are whole repositories.
            problem = relative_path_problem(repo_path) if repo_path else None
            if problem:
                self.fail(f"{key_path}.path", problem, needle=name)
            return GithubSource(repo, repo_path, rev)
        if "path" in strings:
            if rev is not None:
                self.fail(f"{key_path}.rev", "a local directory has no revision", needle=name)
            if not strings["path"]:
                self.fail(f"{key_path}.path", "empty path", needle=name)
            return LocalSource(strings["path"])
        self.fail(
            key_path,
            "no source: give gist, github and path, or path",
            hint='for example tiny = { path = "fixtures/tiny_net" }',
            needle=name,
        )
        raise AssertionError("unreachable")

    def gist_id(self, key_path: str, value: str) -> str:
        gist = value.rsplit("/", 1)[-1]
        if not GIST_ID_RE.fullmatch(gist):
            self.fail(
                f"{key_path}.gist",
                f"{value!r} is not a gist id (20 or 32 hex digits, or digits)",
                needle=key_path.split(".", 1)[1],
            )
        return gist

    def mirrors(self, table: dict[str, Any]) -> tuple[tuple[str, tuple[str, ...]], ...]:
        result = []
        for prefix, targets in sorted(table.items()):
            problem = mirror_problem(prefix, targets)
            if problem:
                self.fail(f"mirrors.{prefix!r}", problem, needle=prefix)
            result.append((prefix, mirror_targets(targets)))
        return tuple(result)

    def indexes(self, value: object) -> tuple[IndexRef, ...]:
        if not isinstance(value, list):
            self.fail("index", "expected [[index]] tables")
        assert isinstance(value, list)
        refs = []
        for position, entry in enumerate(value):
            table = self.table(entry, f"index[{position}]")
            location = table.get("url", table.get("path"))
            if set(table) - {"url", "path"} or len(table) != 1 or location is None:
                self.fail(
                    f"index[{position}]",
                    "an index takes exactly one of url or path",
                    needle="index",
                )
            refs.append(IndexRef(self.string(location, f"index[{position}]")))
        return tuple(refs)


def mirror_problem(prefix: str, targets: object) -> str | None:
    """What is wrong with one [mirrors] entry (in zoo.toml or config.toml), or None."""
    if not prefix.startswith(_URL_SCHEMES):
        return "a mirror key is a URL prefix (http, https or file)"
    listed = [targets] if isinstance(targets, str) else targets
    if not isinstance(listed, list) or not all(isinstance(t, str) for t in listed):
        return "expected a URL prefix or a list of them"
    for target in listed:
        if not target.startswith(_URL_SCHEMES):
            return f"{target!r} is not an http, https or file URL"
    return None


def mirror_targets(targets: str | list[str]) -> tuple[str, ...]:
    return (targets,) if isinstance(targets, str) else tuple(targets)


def _kind(value: object) -> str:
    names = {dict: "a table", list: "an array", str: "a string", bool: "a boolean", int: "a number"}
    return names.get(type(value), type(value).__name__)


TEMPLATE = """\
# zoo.toml: the models this project needs. `zoopm lock` pins them in zoo.lock,
# `zoopm install` places them under models-dir. See docs/zoo-toml.md.

[project]
models-dir = "models"

[models]
# tiny = { path = "fixtures/tiny_net" }
# googlenet = { github = "BVLC/caffe", path = "models/bvlc_googlenet", rev = "<40-hex commit>" }
# nin = { gist = "d802a5849de39225bcc6", rev = "<40-hex commit>" }

[mirrors]
# "http://dl.caffe.berkeleyvision.org/" = ["https://mirror.example.org/caffe/"]
"""


def add_model(text: str, spec: ModelSpec) -> str:
    """zoo.toml text with one model set to spec; every comment and other entry is kept."""
    import tomlkit

    document = _edit_document(text)
    if "models" not in document:
        document["models"] = tomlkit.table()
    models = _models_table(document)
    entry = _inline(spec.canonical().items(), "")
    if isinstance(models, tomlkit.items.InlineTable):
        others = [(key, value) for key, value in models.items() if key != spec.name]
        document["models"] = _inline([*others, (spec.name, entry)], _padding(models))
    else:
        models[spec.name] = entry
    return _same_newlines(text, document.as_string())


def remove_model(text: str, name: str) -> str:
    """zoo.toml text without the named model; every comment and other entry is kept."""
    import tomlkit

    document = _edit_document(text)
    models = _models_table(document) if "models" in document else {}
    if name not in models:
        raise ManifestError(
            f"zoo.toml: models.{name}: no such model", hint="'zoopm list' shows them"
        )
    if isinstance(models, tomlkit.items.InlineTable):
        # tomlkit's own delete leaves the removed entry's separator behind ('{  b = ...').
        others = [(key, value) for key, value in models.items() if key != name]
        document["models"] = _inline(others, _padding(models))
    else:
        del models[name]
    return _same_newlines(text, document.as_string())


def set_model_rev(text: str, name: str, rev: str) -> str:
    """zoo.toml text with one model's rev changed; everything else is kept byte for byte."""
    document = _edit_document(text)
    models = _models_table(document) if "models" in document else {}
    entry = models.get(name)
    if not isinstance(entry, dict):
        raise ManifestError(
            f"zoo.toml: models.{name}: no such model", hint="'zoopm list' shows them"
        )
    entry["rev"] = rev
    return _same_newlines(text, document.as_string())


# --- editing helpers (tomlkit, imported lazily: reading zoo.toml needs only tomllib) ----------


def _edit_document(text: str) -> TOMLDocument:
    """zoo.toml as a tomlkit document; text tomlkit cannot read is a ManifestError."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        return tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ManifestError(f"{MANIFEST_NAME}: cannot edit: {_one_line(str(exc))}") from None
    except RecursionError:
        raise ManifestError(f"{MANIFEST_NAME}: arrays or tables nested too deeply") from None


def _models_table(document: TOMLDocument) -> MutableMapping[str, Any]:
    models = document["models"]
    if not isinstance(models, dict):
        raise ManifestError(
            f"{MANIFEST_NAME}: models: expected a table, got {_kind(models)}",
            hint='write [models] with one line per model, e.g. tiny = { path = "dir" }',
        )
    return models


def _padding(table: InlineTable) -> str:
    """The space the user put inside an inline table's braces, so a rebuilt one looks the same."""
    return " " if table.as_string().startswith("{ ") else ""


def _inline(pairs: Iterable[tuple[str, object]], pad: str) -> InlineTable:
    """An inline table {key = value, ...} with pad inside its braces.

    Values that came from the document keep their own text; new ones are rendered by tomlkit.
    """
    import tomlkit

    text = _inline_text(pairs, pad)
    value = tomlkit.parse(f"v = {text}")["v"]
    assert isinstance(value, tomlkit.items.InlineTable)
    return value


def _inline_text(pairs: Iterable[tuple[str, object]], pad: str) -> str:
    import tomlkit

    body = ", ".join(f"{tomlkit.key(key).as_string()} = {_value_text(v)}" for key, v in pairs)
    return f"{{{pad}{body}{pad}}}" if body else "{}"


def _value_text(value: object) -> str:
    """value as TOML text on one line: a document item as the user wrote it, else rendered."""
    import tomlkit

    if isinstance(value, dict) and not isinstance(value, tomlkit.items.InlineTable):
        # A table the user spelt with dotted keys or a [header] has no one-line text of its own.
        return _inline_text(value.items(), "")
    if isinstance(value, tomlkit.items.Item):
        return value.as_string().strip()
    return tomlkit.item(value).as_string().strip()


def _same_newlines(original: str, edited: str) -> str:
    """edited ending in a newline if original did, and with CRLF where original uses CRLF only.

    tomlkit writes LF for what it adds, and appends to the last table without a line end.
    """
    if original.endswith("\n") and edited and not edited.endswith("\n"):
        edited += "\n"
    if "\r\n" in original and re.search(r"(?<!\r)\n", original) is None:
        return re.sub(r"(?<!\r)\n", "\r\n", edited)
    return edited


def _one_line(text: str) -> str:
    return " ".join(text.split())
