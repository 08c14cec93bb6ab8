"""import: the verdict on each model directory of a models/ tree that Caffe's scripts filled.

A directory from download_model_from_gist.sh (named `<owner>-<id>` or `<id>`) or from a
checkout of BVLC/caffe (`models/bvlc_*`, binary from download_model_binary.py) becomes, in this
order: a gist source at the revision whose files equal the local ones; a repository source when
its files equal an index entry's at that entry's commit; else a local path source. Files are
compared by name and git blob id, so the API's listings suffice and nothing is downloaded to
decide. Reading is all this module does to the tree: it never writes, moves or follows a
symlink below it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fnmatch
import os
import posixpath
import re
import stat
import unicodedata
from collections.abc import Callable, Container, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zoopm.atomic import READ_NO_FOLLOW
from zoopm.digest import CHUNK_SIZE, Hasher, git_blob_hasher
from zoopm.errors import IntegrityError, ModelInfoError, StoreError
from zoopm.formats.lockfile import LockedModel
from zoopm.formats.manifest import GistSource, GithubSource, LocalSource, ModelSpec, Source
from zoopm.formats.modelinfo import INFO_HEAD_BYTES, find_readme, parse_model_info
from zoopm.network.github_api import GitHubNotFound
from zoopm.paths import model_name_problem, name_problem
from zoopm.reporting import Reporter
from zoopm.storage.materialize import ModelsTree
from zoopm.storage.record import ADOPTED, Record, read_record, write_record
from zoopm.storage.store import Expected, Store
from zoopm.tasks import CancelToken

if TYPE_CHECKING:
    from zoopm.index import Index, IndexEntry
    from zoopm.network.github_api import GitHubClient

# A gist's history is read newest first, one API request per revision compared: a gist edited
# more often than this is compared on its newest revisions only (the report says so).
MAX_GIST_REVISIONS = 100
# Repository listings (one API request per directory level) made per run for index entries.
MAX_INDEX_LISTINGS = 50
# A model directory is small and shallow; a tree beyond these is no model directory.
MAX_FILES = 1000
MAX_DEPTH = 8

# Other weights and solver snapshots are never model info (Caffe's upload script left them out
# of every gist, and a local source leaves them out too): they are not compared.
_WEIGHT_PATTERNS = ("*.caffemodel", "*.caffemodel.*", "*.solverstate", "*.solverstate.*")
# The gist ids of the Model Zoo: 20 or 32 hex digits, or the all-digit ids of the oldest gists.
_GIST_ID = re.compile(r"[0-9a-f]{20}|[0-9a-f]{32}|[0-9]{1,12}")


@dataclass(frozen=True)
class Verdict:
    """What import decided for one directory of MODELS_DIR, and why."""

    directory: str
    spec: ModelSpec | None  # None: skipped
    reason: str
    # The binary readme.md names, present in the directory with the SHA-1 readme.md gives.
    binary: Path | None = None
    binary_sha1: str | None = None

    @property
    def skipped(self) -> bool:
        return self.spec is None

    @property
    def where(self) -> str:
        """The chosen source as the report shows it: 'gist ID@REV', 'github …', 'local PATH'."""
        if self.spec is None:
            return "skipped"
        source = self.spec.source
        if isinstance(source, LocalSource):
            return f"local {source.path}"
        return source.describe()


class _Skip(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Candidate:
    gist: str
    said: str  # where the id came from, as the report names it


class Adopter:
    """Judges the directories of a models/ tree, reading the GitHub API only."""

    def __init__(
        self,
        *,
        api: Callable[[], GitHubClient],
        indexes: Sequence[Index],
        reporter: Reporter,
        token: CancelToken,
    ) -> None:
        self._api = api
        self._indexes = indexes
        self._reporter = reporter
        self._token = token
        self._listings: dict[tuple[str, str, str], dict[str, str] | None] = {}

    def survey(
        self,
        models_dir: Path,
        *,
        declared: Container[str],
        source_path: Callable[[Path], str],
        in_place: bool = False,
    ) -> list[Verdict]:
        """One verdict per subdirectory of models_dir (hidden names and plain files aside).

        declared: the names zoo.toml has already (such a directory is skipped, left as it is);
        source_path: how zoo.toml names a local directory; in_place: models_dir is the project's
        models-dir, so a local source would be the model's own directory, where zoopm writes
        nothing (its binary must be there already).
        """
        try:
            names = sorted(os.listdir(models_dir))
        except OSError as exc:
            from zoopm.errors import UsageError

            raise UsageError(
                f"{models_dir}: cannot list: {exc.strerror or exc}",
                hint="give the models directory Caffe's scripts filled (default: the "
                "project's models-dir)",
            ) from None
        verdicts = []
        for name in names:
            if name.startswith("."):
                continue  # zoopm's own (the install record, temp files) and hidden entries
            path = models_dir / name
            try:
                info = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISLNK(info.st_mode):
                if path.is_dir():
                    verdicts.append(
                        Verdict(name, None, "a symbolic link; import adopts only real directories")
                    )
                continue
            if not stat.S_ISDIR(info.st_mode):
                continue
            self._token.check()
            verdicts.append(self._judge(path, name, declared, source_path, in_place))
        return verdicts

    def _judge(
        self,
        directory: Path,
        name: str,
        declared: Container[str],
        source_path: Callable[[Path], str],
        in_place: bool,
    ) -> Verdict:
        try:
            files = _scan(directory)
            readme = find_readme([p for p in files if "/" not in p], name)
        except _Skip as skip:
            return Verdict(name, None, skip.reason)
        except ModelInfoError as exc:
            return Verdict(name, None, exc.message.removeprefix(f"{name}: "))
        if readme is None:
            return Verdict(name, None, "no readme.md")
        problem = model_name_problem(name)
        if problem is not None:
            return Verdict(
                name,
                None,
                f"{problem}; rename the directory (say to {_suggested(name)!r}) and import again",
            )
        if name in declared:
            return Verdict(name, None, f"zoo.toml already declares models.{name}; left as it is")
        try:
            info = parse_model_info(_read_head(directory / readme), f"{name}/{readme}")
        except ModelInfoError as exc:
            return Verdict(name, None, exc.message)
        except OSError as exc:
            return Verdict(name, None, f"cannot read {readme}: {exc.strerror or exc}")
        binary, binary_sha1 = None, None
        caffemodel = info.caffemodel
        if caffemodel is not None and caffemodel in files:
            try:
                sha1 = _sha1(directory / caffemodel)
            except OSError as exc:
                return Verdict(name, None, f"cannot read {caffemodel}: {exc.strerror or exc}")
            if info.sha1 is not None and sha1 != info.sha1:
                return Verdict(
                    name,
                    None,
                    f"{caffemodel} is not the binary readme.md names: its sha1 is {sha1}, "
                    f"readme.md says {info.sha1}; 'zoopm download-binary' fetches the right one",
                )
            if info.sha1 is not None:
                binary, binary_sha1 = directory / caffemodel, sha1
        try:
            local = {
                path: _git_blob(directory / path)
                for path in files
                if path != caffemodel and not _is_weights(path)
            }
        except OSError as exc:
            return Verdict(name, None, f"cannot read a file: {exc.strerror or exc}")
        notes: list[str] = []
        found = self._gist_match(name, info.gist_id, local, caffemodel, notes)
        if found is None:
            found = self._index_match(name, local, caffemodel, notes)
        # A readme naming no binary (model info only) is imported as such: without binary =
        # false, locking would stop the whole import on this one directory.
        has_binary = caffemodel is not None
        no_binary = "" if has_binary else "; readme.md names no caffemodel, so binary = false"
        if found is not None:
            source, reason = found
            spec = ModelSpec(name, source, has_binary)
            return Verdict(name, spec, reason + no_binary, binary, binary_sha1)
        reason = "; ".join(notes) or "no gist_id in readme.md and no index entry has these files"
        if in_place and caffemodel is not None and caffemodel not in files:
            return Verdict(
                name,
                None,
                f"{reason}; and its binary {caffemodel} is not here, while a model kept in its "
                "own directory must hold every file (zoopm writes nothing there): run "
                f"'zoopm download-binary {directory.parent.name}/{name}' and import again",
            )
        spec = ModelSpec(name, LocalSource(source_path(directory)), has_binary)
        return Verdict(name, spec, reason + no_binary, binary, binary_sha1)

    # --- step 1: a gist at the revision with these files --------------------------------------

    def _gist_match(
        self,
        name: str,
        gist_id: str | None,
        local: dict[str, str],
        binary: str | None,
        notes: list[str],
    ) -> tuple[Source, str] | None:
        candidates: list[_Candidate] = []
        if gist_id is not None:
            wanted = gist_id.strip().rsplit("/", 1)[-1]  # 'owner/id' as the gist script took it
            if _GIST_ID.fullmatch(wanted):
                candidates.append(_Candidate(wanted, f"gist_id {wanted}"))
            else:
                notes.append(f"gist_id {gist_id!r} is not a gist id")
        from_name = name.rsplit("-", 1)[-1]
        if _GIST_ID.fullmatch(from_name):
            candidates.append(_Candidate(from_name, f"gist {from_name} (the directory's name)"))
        for entry in self._entries():
            if entry.name == name and isinstance(entry.source, GistSource):
                said = f"gist {entry.source.gist} ({entry.origin} entry {entry.name})"
                candidates.append(_Candidate(entry.source.gist, said))
        seen: set[str] = set()
        for candidate in candidates:
            if candidate.gist in seen:
                continue
            seen.add(candidate.gist)
            found = self._gist_revision(candidate, local, binary, notes)
            if found is not None:
                return found
        return None

    def _gist_revision(
        self, candidate: _Candidate, local: dict[str, str], binary: str | None, notes: list[str]
    ) -> tuple[Source, str] | None:
        from zoopm.sources.gist import gist_files_at, gist_history

        api = self._api()
        gist = candidate.gist
        try:
            versions, complete = gist_history(api, gist, MAX_GIST_REVISIONS)
        except GitHubNotFound:
            notes.append(f"{candidate.said} not found on GitHub")
            return None
        for index, version in enumerate(versions):
            self._token.check()
            try:
                files = gist_files_at(api, gist, version)
            except GitHubNotFound:
                continue
            listed = {
                f.path: f.blob
                for f in files
                if f.path != binary and not _hidden(f.path) and not _is_weights(f.path)
            }
            if listed != local:
                continue
            newer = "; newer revisions differ" if index else ", the newest"
            if complete:
                where = f"revision {len(versions) - index} of {len(versions)} matches{newer}"
            else:
                where = (
                    f"the {_ordinal(index + 1)} newest revision matches{newer} (only the newest "
                    f"{MAX_GIST_REVISIONS} were examined)"
                )
            return GistSource(gist, version), where
        examined = (
            f"none of its {len(versions)} revisions"
            if complete
            else f"none of its newest {len(versions)} revisions (the most import examines)"
        )
        notes.append(f"{candidate.said}: {examined} has these files")
        return None

    # --- step 2: a repository directory an index names ----------------------------------------

    def _entries(self) -> list[IndexEntry]:
        return [entry for index in self._indexes for entry in index.entries]

    def _index_match(
        self, name: str, local: dict[str, str], binary: str | None, notes: list[str]
    ) -> tuple[Source, str] | None:
        repos = [e for e in self._entries() if isinstance(e.source, GithubSource)]
        named = [e for e in repos if name in (e.name, posixpath.basename(_repo(e).path))]
        for entry in [*named, *(e for e in repos if e not in named)]:
            listed = self._listing(entry)
            if listed is None:
                continue
            source, listing = listed
            theirs = {p: b for p, b in listing.items() if p != binary}
            if theirs == local:
                return source, f"files equal the {entry.origin} entry {entry.name}"
            if entry in named:
                notes.append(
                    f"differs from the {entry.origin} entry {entry.name} "
                    f"({_difference(local, theirs)})"
                )
        return None

    def _listing(self, entry: IndexEntry) -> tuple[GithubSource, dict[str, str]] | None:
        """The entry pinned to its commit and its files there (path → git blob id); None if
        GitHub has no such directory or this run has listed MAX_INDEX_LISTINGS already."""
        from zoopm.sources.github import newest_repo_rev, repo_files_at

        source = _repo(entry)
        api = self._api()
        try:
            rev = source.rev or newest_repo_rev(api, source.github, source.path)
        except GitHubNotFound:
            return None
        key = (source.github, source.path, rev)
        if key not in self._listings:
            if len(self._listings) >= MAX_INDEX_LISTINGS:
                return None
            self._token.check()
            try:
                files = repo_files_at(api, source.github, source.path, rev, self._reporter)
            except GitHubNotFound:
                self._listings[key] = None
            else:
                self._listings[key] = {
                    f.path: f.blob for f in files if not _hidden(f.path) and not _is_weights(f.path)
                }
        listing = self._listings[key]
        return None if listing is None else (dataclasses.replace(source, rev=rev), listing)


def _repo(entry: IndexEntry) -> GithubSource:
    assert isinstance(entry.source, GithubSource)
    return entry.source


# --- reading the tree, never writing or following links ----------------------------------------


def _scan(directory: Path) -> list[str]:
    """The regular files below directory as sorted POSIX paths, hidden names left out.

    A symlink anywhere, a device or a pipe, a name zoo.lock cannot hold, or a tree beyond
    MAX_FILES and MAX_DEPTH makes the whole directory skipped: import adopts plain files only.
    """
    found: list[str] = []

    def walk(path: Path, prefix: str) -> None:
        if prefix.count("/") >= MAX_DEPTH:
            raise _Skip(f"nested more than {MAX_DEPTH} directories deep; no model directory is")
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError as exc:
            where = prefix.rstrip("/") or "the directory"
            raise _Skip(f"cannot read {where}: {exc.strerror or exc}") from None
        for entry in entries:
            if entry.name.startswith("."):
                continue
            relative = prefix + entry.name
            problem = name_problem(relative)
            if problem is not None:
                raise _Skip(f"{problem}; zoo.lock cannot hold that name")
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError as exc:
                raise _Skip(f"cannot read {relative}: {exc.strerror or exc}") from None
            if stat.S_ISLNK(info.st_mode):
                raise _Skip(f"{relative} is a symbolic link; import adopts only regular files")
            if stat.S_ISDIR(info.st_mode):
                walk(Path(entry.path), relative + "/")
            elif stat.S_ISREG(info.st_mode):
                found.append(relative)
                if len(found) > MAX_FILES:
                    raise _Skip(f"more than {MAX_FILES} files; no model directory holds that many")
            else:
                raise _Skip(f"{relative} is not a regular file (a device, pipe or socket)")

    walk(directory, "")
    return sorted(found)


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[tuple[int, os.stat_result]]:
    """path opened for reading, never through a symlink; refused unless a regular file."""
    fd = os.open(path, READ_NO_FOLLOW)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        yield fd, info
    finally:
        os.close(fd)


def _read_head(path: Path) -> bytes:
    with _opened(path) as (fd, _):
        chunks, left = [], INFO_HEAD_BYTES + 1
        while left > 0 and (chunk := os.read(fd, min(left, CHUNK_SIZE))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)


def _git_blob(path: Path) -> str:
    """The git blob id of a regular file, never through a symlink."""
    with _opened(path) as (fd, info):
        hasher = git_blob_hasher(info.st_size)
        read = 0
        while chunk := os.read(fd, CHUNK_SIZE):
            hasher.update(chunk)
            read += len(chunk)
        if read != info.st_size:
            raise OSError(errno.EAGAIN, "changed while it was read", str(path))
        return hasher.hexdigest()


def _sha1(path: Path) -> str:
    with _opened(path) as (fd, _):
        hasher = Hasher()
        try:
            while chunk := os.read(fd, CHUNK_SIZE):
                hasher.update(chunk)
            return hasher.digest().sha1
        finally:
            hasher.close()


def _is_weights(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(name, pattern) for pattern in _WEIGHT_PATTERNS)


def _hidden(path: str) -> bool:
    return any(part.startswith(".") for part in path.split("/"))


def _difference(local: dict[str, str], listed: dict[str, str]) -> str:
    changed = [p for p in sorted(local) if p in listed and listed[p] != local[p]]
    parts = [f"{p} differs" for p in changed]
    parts += [f"{p} only here" for p in sorted(set(local) - set(listed))]
    parts += [f"{p} only there" for p in sorted(set(listed) - set(local))]
    return ", ".join(parts[:3]) + (f" and {len(parts) - 3} more" if len(parts) > 3 else "")


def _suggested(name: str) -> str:
    # Accents dropped first (café → cafe), then whatever is left outside the name alphabet.
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", plain).strip("._-")[:100]
    return cleaned or "model"


def _ordinal(number: int) -> str:
    if 10 <= number % 100 <= 20:
        return f"{number}th"
    return f"{number}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(number % 10, 'th') }"


# --- writing: the binary into the store, adopted files into the install record ------------------


def store_binary(store: Store, path: Path, sha1: str) -> None:
    """Copies a binary import found on disk into the store (unless it holds it already), so
    that locking takes its hashes from it rather than from a download."""
    if store.find_by_sha1(sha1) is not None:
        return
    try:
        with _opened(path) as (fd, _), store.writer(Expected(sha1=sha1), str(path)) as writer:
            while chunk := os.read(fd, CHUNK_SIZE):
                writer.write(chunk)
            writer.commit()
    except OSError as exc:
        raise StoreError(
            f"{path}: cannot read: {exc.strerror or exc}",
            hint="the binary changed or went away while zoopm imported it; run import again",
        ) from None
    except IntegrityError as exc:
        raise IntegrityError(
            f"{path}: changed while zoopm imported it ({exc.message})",
            hint="run import again once nothing writes to the models directory",
        ) from None


def record_adopted(
    models_dir: Path, models: Sequence[LockedModel], store: Store, project: str
) -> int:
    """Records as the user's own (adopted, never removed) every file of models that is a
    regular file already holding the locked bytes, hashed now; returns how many. A symlink,
    other bytes, or a file the record already names is left for install to judge."""
    record = read_record(models_dir)
    if record.models and record.project not in (None, project):
        return 0  # another project's record: install names the conflict
    entries = {name: dict(files) for name, files in record.models.items()}
    count = 0
    with ModelsTree(models_dir, store.blob_path) as tree:
        for model in models:
            for file in model.files:
                if record.placed(model.name, file.path) is not None:
                    continue
                found = tree.describe(f"{model.name}/{file.path}", file.sha256)
                if found is None or found.how != "copy":
                    continue
                adopted = dataclasses.replace(found, how=ADOPTED)
                entries.setdefault(model.name, {})[file.path] = adopted
                count += 1
    if count:
        write_record(models_dir, Record(entries, project, str(models_dir)))
    return count
