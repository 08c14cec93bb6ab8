"""publish: the job of Caffe's upload_model_to_gist.sh, a model directory's info files to a gist.

The script sent every file of DIR except *.caffemodel* to a new secret gist, or to the gist
readme.md's gist_id names, then asked the user to add gist_id to the readme by hand. Here every
file is read and checked before anything is sent (names a consumer can install, non-empty UTF-8
text); an update sends only what changed and deletes what was deleted locally; GitHub's answer
is checked against what was sent; and gist_id is written into readme.md's frontmatter, then
sent once more, so that the gist holds exactly the directory's files.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoopm.atomic import TooLarge, atomic_write, read_regular
from zoopm.digest import git_blob_sha1
from zoopm.errors import ModelInfoError, SourceError, UsageError, ZoopmError, from_os_error
from zoopm.formats.manifest import GIST_ID_RE, REV_RE
from zoopm.formats.modelinfo import ModelInfo, find_readme, parse_model_info, set_frontmatter_key
from zoopm.locations import RECORD_NAME
from zoopm.network.github_api import GitHubClient, GitHubNotFound
from zoopm.paths import case_collision, relative_path_problem, shown
from zoopm.reporting import Reporter
from zoopm.sources.gist import newest_gist_rev
from zoopm.storage.record import ADOPTED, read_record

MAX_FILE_BYTES = 10 * 1024 * 1024  # GitHub's raw host serves gist files up to 10 MB
MAX_FILES = 300  # GitHub lists at most 300 files of a gist
BINARY_PATTERNS = ("*.caffemodel*", "*.solverstate*")  # as upload_model_to_gist.sh left them out
BINARY = "a binary"
_GISTFILE = re.compile(r"gistfile[0-9]+(\..*)?", re.IGNORECASE)
_RAW_BLOB = re.compile(r"/raw/([0-9a-f]{40})/")
# What Caffe's tools and `zoopm add` take: the id, after an optional "owner/" (a GitHub login).
_GIST_REF = re.compile(rf"(?:[A-Za-z0-9][A-Za-z0-9-]{{0,38}}/)?({GIST_ID_RE.pattern})")
_HINT_GIST_ID = (
    "remove the gist_id line to publish to a new gist, or write the id of your gist there "
    "(from its URL, https://gist.github.com/OWNER/ID)"
)
# A well-formed id for the dry run that checks, before anything is sent, that gist_id can be set.
_PROBE_ID = "0" * 32
_HINT_TEXT = "a gist holds text only: keep this file out of DIR, or make it UTF-8 text"


@dataclass(frozen=True)
class Skipped:
    """A directory entry that was not published, and why."""

    name: str
    reason: str

    @property
    def binary(self) -> bool:
        """Left out as the Caffe script left it out (no warning: that is expected)."""
        return self.reason == BINARY


@dataclass(frozen=True)
class PublishResult:
    """The gist a model directory was published to, at the revision that now holds it."""

    gist_id: str
    revision: str
    created: bool  # a new gist (readme.md had no gist_id)
    changed: bool  # False when the gist already held exactly these files (no new revision)
    files: tuple[str, ...]  # what the gist holds now
    deleted: tuple[str, ...]  # files deleted from the gist because they are gone locally
    skipped: tuple[Skipped, ...]
    readme_updated: bool  # gist_id was written into readme.md
    public: bool
    described: bool = False  # an existing gist's description was changed


@dataclass(frozen=True)
class _Local:
    """The directory as it will be published: file name -> bytes, and what was left out."""

    files: dict[str, bytes]
    skipped: tuple[Skipped, ...]
    readme: str


def publish(
    directory: Path,
    github: GitHubClient,
    reporter: Reporter,
    *,
    public: bool = False,
    description: str | None = None,
) -> PublishResult:
    """Creates a gist from directory's files, or updates the one its readme's gist_id names."""
    _refuse_installed(directory)
    if not github.has_token:
        raise UsageError(
            "publish needs GITHUB_TOKEN: GitHub takes gists only from a signed-in user",
            hint="create a token with the 'gist' scope (GitHub settings, Developer settings) "
            "and export GITHUB_TOKEN=<token>",
        )
    local = _read_directory(directory)
    for skipped in local.skipped:
        if not skipped.binary:
            reporter.warning(f"{_where(directory, skipped.name)}: not published: {skipped.reason}")
    readme_path = directory / local.readme
    info = _readme_info(local.files[local.readme], str(readme_path))
    if info is not None:
        for warning in info.warnings:
            reporter.warning(warning)
    gist_id = _gist_id(info, readme_path)
    if gist_id is None:
        title = description if description is not None else (info.name if info else None)
        return _create(directory, local, github, public=public, description=title)
    if public:
        reporter.warning(
            f"gist {gist_id}: --public applies to a new gist only; GitHub never changes an "
            "existing gist's visibility"
        )
    return _update(gist_id, local, github, description=description, readme_updated=False)


# --- reading the directory ---------------------------------------------------------------------


def _where(directory: Path, name: str) -> str:
    """directory/name for a message: the name as it is, or quoted with escapes when it holds
    characters a terminal would not show as themselves."""
    return f"{directory}/{name if name.isprintable() else shown(name)}"


def _refuse_installed(directory: Path) -> None:
    """Refuses a model directory whose files zoopm placed there from the model's source.

    Publishing one would send someone else's model as the user's own gist, and writing gist_id
    into its readme.md would change a file zoopm placed (verify and install then fail). Files
    zoopm adopted (a model kept in its own directory, `zoopm import`) are the user's own.
    """
    resolved = directory.resolve()
    # The directory as named (its parent resolved: models/x/, a symlink to models) and where it
    # really is (., ../x, a symlink to models/x): each is checked against its parent's record.
    for parent, name in dict.fromkeys(
        [(directory.parent.resolve(), directory.name), (resolved.parent, resolved.name)]
    ):
        if name in ("", ".", ".."):
            continue
        placed = read_record(parent).models.get(name, {})
        if any(entry.how != ADOPTED for entry in placed.values()):
            raise UsageError(
                f"{directory}: installed by zoopm from its source (model {name!r}, "
                f"{parent / RECORD_NAME}); publish sends a model directory of your own",
                hint=f"copy it out (cp -r {directory} my-models/{name}), edit the copy and "
                "publish that",
            )


def _read_directory(directory: Path) -> _Local:
    """Every regular file directly in directory, read and checked; what is left out, and why.

    Left out, as upload_model_to_gist.sh left them (it sent `find DIR -maxdepth 1 -type f`):
    binaries, subdirectories, symbolic links and other non-regular files; and, as zoopm's local
    model directories leave them, names starting with '.' (zoopm's own temp files among them).
    """
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except FileNotFoundError:
        raise UsageError(f"{directory}: no such directory", hint="give a model directory") from None
    except NotADirectoryError:
        raise UsageError(
            f"{directory}: not a directory", hint="give the model directory, not a file in it"
        ) from None
    except OSError as exc:
        raise from_os_error(exc, directory) from None
    files: dict[str, bytes] = {}
    skipped: list[Skipped] = []
    for entry in entries:
        name = entry.name
        path = directory / name
        reason = _left_out(entry)
        if reason is not None:
            skipped.append(Skipped(name, reason))
            continue
        _check_name(name, path)
        try:
            data = read_regular(path, MAX_FILE_BYTES, follow=False)
        except TooLarge:
            skipped.append(
                Skipped(name, "larger than 10 MiB (GitHub serves gist files up to 10 MB)")
            )
            continue
        except OSError as exc:
            raise from_os_error(exc, path) from None
        _check_content(data, path)
        files[name] = data
    collision = case_collision(files)
    if collision is not None:
        raise _collision(directory, *collision)
    readme = find_readme(files, str(directory))
    if readme is None:
        left = [s for s in skipped if s.name.lower() == "readme.md"]
        why = f"{left[0].name}: {left[0].reason}" if left else "readme.md: not found"
        raise ModelInfoError(
            f"{directory}/{why}",
            hint="publish sends a model directory; its readme.md describes the model",
        )
    if len(files) > MAX_FILES:
        raise UsageError(
            f"{directory}: {len(files)} files; GitHub lists at most {MAX_FILES} files of a gist",
            hint="a model-info gist holds readme.md and a few prototxt files",
        )
    return _Local(files, tuple(skipped), readme)


def _left_out(entry: os.DirEntry[str]) -> str | None:
    name = entry.name
    if name.startswith("."):
        return "a hidden file (its name starts with '.')"
    if any(fnmatch.fnmatch(name.lower(), pattern) for pattern in BINARY_PATTERNS):
        return BINARY
    try:
        mode = entry.stat(follow_symlinks=False).st_mode
    except OSError as exc:
        raise from_os_error(exc, entry.path) from None
    if stat.S_ISLNK(mode):
        return "a symbolic link (publish sends regular files only)"
    if stat.S_ISDIR(mode):
        return "a directory (a gist holds no directories)"
    if not stat.S_ISREG(mode):
        return "not a regular file"
    if entry.stat(follow_symlinks=False).st_size > MAX_FILE_BYTES:
        return "larger than 10 MiB (GitHub serves gist files up to 10 MB)"
    return None


def _collision(directory: Path, first: str, second: str) -> UsageError:
    """Two names that would be one file where the gist is installed, said as they differ."""
    if unicodedata.normalize("NFC", first) == unicodedata.normalize("NFC", second):
        what, where = "Unicode normalisation", "macOS"
    elif first.casefold() == second.casefold():
        what, where = "case", "macOS or Windows"
    else:
        what, where = "case and Unicode normalisation", "macOS"
    # Names that differ in normalisation look the same on screen: escapes show the difference
    # (é as one character, or as e and a combining accent).
    names = [shown(first), shown(second)] if what == "case" else [ascii(first), ascii(second)]
    return UsageError(
        f"{directory}: {names[0]} and {names[1]} differ only in {what}",
        hint=f"they would overwrite each other where the gist is installed on {where}; rename one",
    )


def _check_name(name: str, path: Path) -> None:
    """Refuses a name GitHub would refuse or rename, or `zoopm add` would not install."""
    problem = relative_path_problem(name)
    if problem is None and any(unicodedata.category(c) in ("Cc", "Cf") for c in name):
        problem = f"{shown(name)} contains a control or format character"
    if problem is None and _GISTFILE.fullmatch(name):
        problem = f"{shown(name)} is a name GitHub gives files itself ('gistfile' and a number)"
    if problem is not None:
        raise UsageError(
            f"{_where(path.parent, name)}: cannot publish this file name: {problem}",
            hint="rename the file; nothing was sent",
        )


def _check_content(data: bytes, path: Path) -> None:
    """Refuses what GitHub's API cannot take (non-UTF-8) or refuses (empty or blank text)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{path}: not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x}); the gist API "
            "takes text only",
            hint=_HINT_TEXT,
        ) from None
    if not text.strip():
        raise UsageError(
            f"{path}: {'empty' if not data else 'only white space'}; GitHub refuses such files "
            "in a gist",
            hint="remove the file from DIR or give it content; nothing was sent",
        )


# --- readme.md ---------------------------------------------------------------------------------


def _readme_info(data: bytes, source: str) -> ModelInfo | None:
    """The readme's model information; None when it has none (publish then writes gist_id into
    it, adding a frontmatter if there is none). A frontmatter zoopm cannot read, a gist_id that
    names no gist, or one gist_id cannot be set in, stops here, before anything is sent."""
    try:
        info: ModelInfo | None = parse_model_info(data, source)
    except ModelInfoError as error:
        # Missing model information is all that may be wrong: once the readme names a model, it
        # must read. A dry run setting gist_id cannot tell that alone, since it replaces the very
        # line that may be wrong (a list or a mapping under gist_id).
        if not _reads(data, "name", "probe", source):
            if _reads(data, "gist_id", _PROBE_ID, source):
                raise ModelInfoError(error.message, _HINT_GIST_ID) from None
            raise
        info = None
    if info is None or info.gist_id is None:
        probe = set_frontmatter_key(data, "gist_id", _PROBE_ID, source)
        parse_model_info(probe, source)
    return info


def _reads(data: bytes, key: str, value: str, source: str) -> bool:
    """Whether the readme reads as model information once key is set to value."""
    try:
        parse_model_info(set_frontmatter_key(data, key, value, source), source)
    except ModelInfoError:
        return False
    return True


def _gist_id(info: ModelInfo | None, readme: Path) -> str | None:
    if info is None or info.gist_id is None:
        return None
    # Caffe's tools took "user/id" (ksimonyan/211839e770f7b538e2d8); the API takes the id.
    # Anything else (null, true, a URL) is refused: looked up, it could name no gist or another.
    found = _GIST_REF.fullmatch(info.gist_id)
    if found is None:
        raise ModelInfoError(
            f"{readme}: gist_id {shown(info.gist_id)} is not a gist id (20 or 32 hex digits, "
            "or digits, after an optional 'owner/')",
            hint=_HINT_GIST_ID,
        )
    return found.group(1)


# --- talking to GitHub -------------------------------------------------------------------------


def _create(
    directory: Path,
    local: _Local,
    github: GitHubClient,
    *,
    public: bool,
    description: str | None,
) -> PublishResult:
    payload: dict[str, Any] = {
        "public": public,
        "files": {name: {"content": data.decode("utf-8")} for name, data in local.files.items()},
    }
    if description is not None:
        payload["description"] = description
    answer = github.send("POST", github.url("gists"), payload).data
    gist_id = _answered_id(answer)
    _check_answer(answer, local.files, f"gist {gist_id}")
    # Written at once, so that a rerun after any later failure updates this gist, not a new one.
    readme_path = directory / local.readme
    before = local.files[local.readme]
    try:
        after = set_frontmatter_key(before, "gist_id", gist_id, str(readme_path))
        _replace_readme(readme_path, before, after)
    except ZoopmError as exc:
        raise type(exc)(
            f"created gist {gist_id}, but {exc.message}",
            hint=f"add 'gist_id: {gist_id}' to the frontmatter of {readme_path} and run "
            "publish again",
        ) from exc
    # The gist's readme gets the gist_id line too, so that the gist equals the directory.
    updated = _Local({**local.files, local.readme: after}, local.skipped, local.readme)
    try:
        result = _update(gist_id, updated, github, description=None, readme_updated=True)
    except ZoopmError as exc:
        raise type(exc)(
            f"created gist {gist_id} and wrote its gist_id into {readme_path}, but sending that "
            f"readme.md failed: {exc.message}",
            hint="run publish again: it updates that gist now",
        ) from exc
    return PublishResult(
        gist_id,
        result.revision,
        created=True,
        changed=True,
        files=result.files,
        deleted=(),
        skipped=local.skipped,
        readme_updated=True,
        public=result.public,
    )


def _update(
    gist_id: str,
    local: _Local,
    github: GitHubClient,
    *,
    description: str | None,
    readme_updated: bool,
) -> PublishResult:
    label = f"gist {gist_id}"
    try:
        current = github.get(github.url(f"gists/{gist_id}")).data
    except GitHubNotFound:
        raise GitHubNotFound(
            f"{label} (readme.md's gist_id): not found on GitHub",
            hint="check gist_id in readme.md, or remove it to publish to a new gist",
        ) from None
    listed = _listed_blobs(current, label)
    skipped_names = {s.name for s in local.skipped}
    # A file GitHub holds that is here but left out (a binary pushed with git, a file over
    # 10 MB) stays as it is; a file that is gone from the directory is deleted.
    deleted = sorted(n for n in listed if n not in local.files and n not in skipped_names)
    expected = dict(local.files)
    kept = {n: listed[n] for n in listed if n in skipped_names and n not in local.files}
    changes: dict[str, Any] = {
        name: {"content": data.decode("utf-8")}
        for name, data in local.files.items()
        if listed.get(name) != git_blob_sha1(data)
    }
    changes.update(dict.fromkeys(deleted))
    payload: dict[str, Any] = {}
    if changes:
        payload["files"] = changes
    if description is not None and description != current.get("description"):
        payload["description"] = description
    answer = current
    if payload:
        answer = github.send("PATCH", github.url(f"gists/{gist_id}"), payload).data
    _check_answer(answer, expected, label, kept=kept)
    revision = _revision(answer, github, gist_id)
    return PublishResult(
        gist_id,
        revision,
        created=False,
        changed=bool(changes),
        files=tuple(sorted({*expected, *kept})),
        deleted=tuple(deleted),
        skipped=local.skipped,
        readme_updated=readme_updated,
        public=answer.get("public") is True,
        described="description" in payload,
    )


def _answered_id(answer: Any) -> str:
    gist_id = answer.get("id") if isinstance(answer, dict) else None
    if not isinstance(gist_id, str) or not GIST_ID_RE.fullmatch(gist_id):
        raise SourceError(
            "GitHub: POST /gists answered without a usable gist id",
            hint="check on https://gist.github.com whether a gist was created before running "
            "publish again",
        )
    return gist_id


def _listed_blobs(answer: Any, label: str) -> dict[str, str]:
    """file name -> git blob id, from the raw_urls of a gist answer (what git names the bytes)."""
    files = answer.get("files") if isinstance(answer, dict) else None
    if not isinstance(files, dict) or answer.get("truncated") is True:
        raise SourceError(f"{label}: GitHub's answer has no complete file list")
    blobs: dict[str, str] = {}
    for name, entry in files.items():
        raw_url = entry.get("raw_url") if isinstance(entry, dict) else None
        found = _RAW_BLOB.search(raw_url) if isinstance(raw_url, str) else None
        if found is None:
            raise SourceError(f"{label}: GitHub lists {shown(str(name))} without a blob id")
        blobs[str(name)] = found.group(1)
    return blobs


def _check_answer(
    answer: Any, expected: dict[str, bytes], label: str, *, kept: dict[str, str] | None = None
) -> None:
    """GitHub's answer must list exactly the files sent (and those kept), with their bytes."""
    listed = _listed_blobs(answer, label)
    wanted = {name: git_blob_sha1(data) for name, data in expected.items()} | (kept or {})
    if listed == wanted:
        return
    differ = sorted(n for n in {*listed, *wanted} if listed.get(n) != wanted.get(n))
    raise SourceError(
        f"{label}: GitHub's answer does not hold what was sent: {', '.join(differ[:5])} differ",
        hint="someone else may have changed the gist meanwhile; look at it on gist.github.com, "
        "then run publish again",
    )


def _revision(answer: dict[str, Any], github: GitHubClient, gist_id: str) -> str:
    history = answer.get("history")
    if isinstance(history, list) and history and isinstance(history[0], dict):
        version = history[0].get("version")
        if isinstance(version, str) and REV_RE.fullmatch(version):
            return version
    return newest_gist_rev(github, gist_id)


def _replace_readme(path: Path, before: bytes, after: bytes) -> None:
    """Writes readme.md anew, atomically, unless it changed since it was read."""
    try:
        now: bytes | None = read_regular(path, MAX_FILE_BYTES, follow=False)
    except TooLarge:
        now = None
    except OSError as exc:
        raise ModelInfoError(
            f"{path} {_what_became(path, exc)} while publishing; nothing was written to it"
        ) from None
    if now != before:
        raise ModelInfoError(f"{path} changed while publishing; nothing was written to it")
    try:
        atomic_write(path, after)
    except OSError as exc:
        raise from_os_error(exc, path) from None


def _what_became(path: Path, exc: OSError) -> str:
    """What happened to a readme.md that was read before and cannot be read now."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return "was removed"
    except OSError:
        return f"could not be read again ({exc.strerror or exc})"
    if stat.S_ISLNK(mode):
        return "became a symbolic link"
    if not stat.S_ISREG(mode):
        return "became something other than a regular file"
    return f"could not be read again ({exc.strerror or exc})"
