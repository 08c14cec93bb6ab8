"""fetch-gist: the job of Caffe's download_model_from_gist.sh, pinned, verified and atomic.

The script fetched a gist's newest archive into DIR/<ID with / replaced by ->, checked nothing,
and left an empty directory behind on failure. Here the revision is a 40-hex commit (the
newest one, said to the caller, when none is given), every file is checked against the size
and git blob id the API lists for that revision and goes through the store, and the directory
is built beside the target under a temp name and renamed into place: the target is either as
it was or complete. With force, a non-empty target is replaced whole (swapped in one step
where the kernel can), also one another run placed meanwhile. All work below DIR goes through a
descriptor of DIR opened without following a link, so nothing is ever written outside it; the
directories a run made on the way to DIR are removed again when it fails.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import re
import shutil
import stat
import tempfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoopm.atomic import DIR_NO_FOLLOW, NEW_FILE_NO_FOLLOW, fsync_dir
from zoopm.digest import CHUNK_SIZE, Digest, git_blob_hasher
from zoopm.errors import (
    IntegrityError,
    SourceError,
    StoreError,
    UsageError,
    from_os_error,
)
from zoopm.formats.gistarchive import ARCHIVE_FORMATS, archive_bound, read_archive
from zoopm.formats.manifest import GIST_ID_RE, REV_RE
from zoopm.network.github_api import GitHubClient, GitHubNotFound
from zoopm.network.net import HttpClient
from zoopm.reporting import NullProgress
from zoopm.sources.gist import listed_files, newest_gist_rev
from zoopm.sources.hosted import HostedFile, check_names, fetch_file
from zoopm.storage.locks import host_tag, pid_alive
from zoopm.storage.store import Expected, Store
from zoopm.trust import Trust, url_problem

DEFAULT_PARENT = Path("models")
_OWNER = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})"
_OWNER_RE = re.compile(_OWNER)
_REF = re.compile(
    rf"(?:({_OWNER})/)?({GIST_ID_RE.pattern})(?:@([0-9a-fA-F]+))?",
)
_URL_PATH = re.compile(rf"/(?:({_OWNER})/)?({GIST_ID_RE.pattern})(?:/([0-9a-fA-F]+))?/?")
_SHORT_REV = re.compile(r"[0-9a-f]{7,39}")
_MAX_COMMIT_PAGES = 10  # 1,000 revisions: more than any model gist has
_TEMP = re.compile(r"\.zoopm-([0-9a-f]{8})-([0-9]{1,10})-[0-9a-f]+\.(?:fetch|old)")
_ABOVE_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC  # directories above DIR are followed
_OCCUPIED = (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR)
_SWAP_TRIES = 5
_RENAME_EXCHANGE = 2  # linux/fs.h


@dataclass(frozen=True)
class GistRef:
    """What the user named: a gist id, the owner if given (it names the directory), a revision
    (full or abbreviated) if given."""

    gist: str
    owner: str | None
    rev: str | None

    @property
    def dirname(self) -> str:
        """The script's directory name: the ID as typed, '/' replaced by '-'."""
        return f"{self.owner}-{self.gist}" if self.owner else self.gist

    def pinned(self, rev: str) -> str:
        """The ID as typed, at rev: what fetch-gist takes to get the same files again."""
        return (f"{self.owner}/" if self.owner else "") + f"{self.gist}@{rev}"


@dataclass(frozen=True)
class FetchedGist:
    """What fetch-gist placed: where, which gist at which commit, and the files."""

    ref: GistRef
    rev: str
    target: Path
    files: tuple[str, ...]
    size: int
    replaced: bool  # a non-empty directory was there and --force replaced it


def parse_gist_ref(text: str) -> GistRef:
    """ID, OWNER/ID, either with @REV, or a gist URL (…/OWNER/ID[/REV])."""
    text = text.strip()
    if text.startswith(("https://", "http://")):
        parts = urllib.parse.urlsplit(text)
        match = _URL_PATH.fullmatch(parts.path)
        if parts.hostname != "gist.github.com" or match is None:
            raise UsageError(
                f"{text}: not a gist URL",
                hint="a gist URL looks like https://gist.github.com/OWNER/ID",
            )
    else:
        match = _REF.fullmatch(text)
        if match is None:
            raise UsageError(
                f"cannot read {text!r} as a gist",
                hint="give ID, OWNER/ID or a gist URL, optionally @REV (a commit of the gist); "
                "an ID is 20 or 32 hex digits, or digits for old gists",
            )
    owner, gist, rev = match.group(1), match.group(2), match.group(3)
    if rev is not None:
        rev = rev.lower()
        if not REV_RE.fullmatch(rev) and not _SHORT_REV.fullmatch(rev):
            raise UsageError(
                f"{text}: {rev!r} is not a revision of a gist",
                hint="a revision is a commit id: 40 hex digits, or at least 7 of its first",
            )
    return GistRef(gist, owner, rev)


def fetch_gist(
    ref: GistRef,
    parent: Path,
    *,
    api: GitHubClient,
    http: HttpClient,
    store: Store,
    force: bool = False,
    archive: str | None = None,
) -> FetchedGist:
    """Makes parent/<ref.dirname> hold the gist's files at its revision, every one verified.

    archive: None to fetch each file from its raw_url, or "zip"/"tar.gz" to read the gist's
    archive download instead (checked entry by entry, then against the same listing).
    """
    if archive is not None and archive not in ARCHIVE_FORMATS:
        raise UsageError(f"--archive-format {archive!r}: not one of {', '.join(ARCHIVE_FORMATS)}")
    rev = _revision(api, ref)
    label = f"gist {ref.gist}@{rev[:12]}"
    data = _listing(api, ref.gist, rev, label)
    files = listed_files(data, label)
    if not files:
        raise SourceError(f"{label}: GitHub lists no file in it")
    check_names(files, label, flat=True)
    with _Parent.open(parent) as where:
        where.sweep()
        replacing = where.judge_target(ref.dirname, force)
        staging = where.make_temp()
        try:
            if archive is None:
                digests = [fetch_file(http, store, f, label).locked for f in files]
                stored = {d.path: d.sha256 for d in digests}
            else:
                url = _archive_url(data, ref.gist, rev, archive, label)
                stored = _from_archive(
                    http,
                    store,
                    files=files,
                    url=url,
                    form=archive,
                    top=f"{ref.gist}-{rev}",
                    label=label,
                    scratch=where.path,
                )
            for file in files:
                where.copy_in(staging, file.path, store.blob_path(stored[file.path]), file.size)
            where.sync(staging)
            replaced = where.swap_in(staging, ref.dirname, replacing, force)
        except BaseException:
            # Also after Ctrl-C: the half-built directory goes; the target is as it was.
            where.remove(staging)
            raise
    return FetchedGist(
        ref,
        rev,
        parent / ref.dirname,
        tuple(f.path for f in files),
        sum(f.size for f in files),
        replaced,
    )


def _revision(api: GitHubClient, ref: GistRef) -> str:
    if ref.rev is None:
        return newest_gist_rev(api, ref.gist)
    if REV_RE.fullmatch(ref.rev):
        return ref.rev
    return _expand(api, ref.gist, ref.rev)


def _expand(api: GitHubClient, gist: str, prefix: str) -> str:
    """The one commit of the gist whose id starts with prefix (from /commits, newest first)."""
    found: list[str] = []
    url: str | None = api.url(f"gists/{gist}/commits", {"per_page": "100"})
    pages = 0
    while url is not None and pages < _MAX_COMMIT_PAGES:
        try:
            result = api.get(url)
        except GitHubNotFound:
            raise GitHubNotFound(f"gist {gist}: not found on GitHub") from None
        pages += 1
        entries = result.data if isinstance(result.data, list) else []
        for entry in entries:
            version = entry.get("version") if isinstance(entry, dict) else None
            if (
                isinstance(version, str)
                and REV_RE.fullmatch(version)
                and version.startswith(prefix)
            ):
                found.append(version)
        url = result.links.get("next")
    if len(found) == 1:
        return found[0]
    if found:
        raise UsageError(
            f"gist {gist}: revision {prefix} is ambiguous ({', '.join(f[:12] for f in found)}…)",
            hint="give more digits of the commit id",
        )
    raise UsageError(
        f"gist {gist}: no revision starts with {prefix}",
        hint=f"the gist's revisions are at https://gist.github.com/{gist}/revisions",
    )


def _listing(api: GitHubClient, gist: str, rev: str, label: str) -> Any:
    try:
        return api.get(api.url(f"gists/{gist}/{rev}")).data
    except GitHubNotFound:
        raise GitHubNotFound(
            f"{label}: no such gist or revision on GitHub",
            hint="check the ID and the revision; without @REV fetch-gist takes the newest",
        ) from None


def _archive_url(data: Any, gist: str, rev: str, form: str, label: str) -> str:
    """The web host's archive URL for this revision, from the answer's html_url and owner.

    The API has no archive URL field; the web host serves /OWNER/ID/archive/SHA.zip (and
    .tar.gz), which redirects to codeload.
    """
    html_url = data.get("html_url") if isinstance(data, dict) else None
    owner = data.get("owner") if isinstance(data, dict) else None
    login = owner.get("login") if isinstance(owner, dict) else None
    if not isinstance(html_url, str) or not html_url.endswith("/" + gist):
        raise SourceError(
            f"{label}: GitHub's answer has no html_url ending in the gist id, so the archive "
            "download cannot be found",
            hint="fetch without --archive: each file is then read from its raw_url",
        )
    if not isinstance(login, str) or not _OWNER_RE.fullmatch(login):
        raise SourceError(
            f"{label}: GitHub's answer names no usable owner, so the archive download cannot "
            "be found",
            hint="fetch without --archive: each file is then read from its raw_url",
        )
    web = html_url[: -len(gist) - 1]
    url = f"{web}/{login}/{gist}/archive/{rev}.{form}"
    problem = url_problem(url, Trust.THIRD_PARTY)
    if problem:
        raise SourceError(
            f"{label}: the archive URL {url!r} derived from GitHub's html_url is refused: "
            f"{problem}",
            hint="is ZOOPM_GITHUB_API the real API? its answers may only name http(s) URLs",
        )
    return url


class _TempSink:
    """The archive download: an unnamed temp file (gone even after SIGKILL), size-bounded."""

    def __init__(self, handle: Any, limit: int, url: str) -> None:
        self.handle = handle
        self._limit = limit
        self._url = url
        self.written = 0

    def write(self, chunk: bytes) -> None:
        if self.written + len(chunk) > self._limit:
            raise SourceError(
                f"{self._url}: the archive is larger than {self._limit} bytes, more than the "
                "gist's listed files can take",
                hint="the archive is not what GitHub serves for this gist; nothing was written",
            )
        self.handle.write(chunk)
        self.written += len(chunk)

    def reset(self) -> None:
        self.handle.seek(0)
        self.handle.truncate()
        self.written = 0


def _from_archive(
    http: HttpClient,
    store: Store,
    *,
    files: list[HostedFile],
    url: str,
    form: str,
    top: str,
    label: str,
    scratch: Path,
) -> dict[str, str]:
    """Every listed file read from the archive into the store, verified; name -> sha256."""
    listed = {f.path: f for f in files}
    sizes = {f.path: f.size for f in files}
    stored: dict[str, str] = {}

    def take(name: str, chunks: Iterator[bytes]) -> None:
        stored[name] = _store_verified(store, listed[name], chunks, f"{label} {name}").sha256

    # Unnamed where the system allows (O_TMPFILE): nothing to sweep even after SIGKILL.
    with tempfile.TemporaryFile(prefix=".zoopm-archive-", dir=scratch) as handle:
        sink = _TempSink(handle, archive_bound(sizes), url)
        http.download(url, sink, NullProgress())
        handle.seek(0)
        read_archive(handle, form, top=top, sizes=sizes, label=f"{label} archive", take=take)
    return stored


def _store_verified(store: Store, file: HostedFile, chunks: Iterator[bytes], where: str) -> Digest:
    """One archive entry into the store, checked by size and git blob id as it streams."""
    with store.writer(Expected(size=file.size), where) as writer:
        git = git_blob_hasher(file.size)
        for chunk in chunks:
            writer.write(chunk)
            git.update(chunk)
        if writer.written != file.size:
            raise IntegrityError(
                f"{where}: size mismatch: listed {file.size} bytes, got {writer.written}"
            )
        if git.hexdigest() != file.blob:
            raise IntegrityError(
                f"{where}: git blob mismatch: expected {file.blob}, got {git.hexdigest()}",
                hint="the archive holds other bytes than the API lists; nothing was written",
            )
        return writer.commit().digest


class _Parent:
    """DIR, held by a descriptor opened without following a link: every name below it is
    created, renamed and removed through that descriptor."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd

    @classmethod
    @contextlib.contextmanager
    def open(cls, path: Path) -> Iterator[_Parent]:
        held: list[int] = []
        made: list[_Made] = []
        try:
            parent = cls(path, _open_making(path, held, made))
            yield parent
            made.clear()  # it worked: what it made stays
        finally:
            # A failed or interrupted run leaves none of the directories it made (DIR and those
            # above it), deepest first: each only if still empty and still the one it made.
            for directory in reversed(made):
                directory.remove()
            for fd in reversed(held):
                os.close(fd)

    def sweep(self) -> None:
        """Removes what a killed fetch-gist (SIGKILL, power loss) left here: this host's temp
        directories of processes that are gone (a live one's is never touched)."""
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.fd):
                match = _TEMP.fullmatch(entry.name)
                if match and match.group(1) == host_tag() and not pid_alive(int(match.group(2))):
                    self.remove(entry.name)

    def judge_target(self, name: str, force: bool) -> bool:
        """Whether a non-empty directory is there to be replaced; refuses what may not be."""
        where = self.path / name
        try:
            info = os.lstat(name, dir_fd=self.fd)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise from_os_error(exc, where) from None
        if not stat.S_ISDIR(info.st_mode):
            raise _not_a_directory(where, info)
        try:
            fd = os.open(name, DIR_NO_FOLLOW, dir_fd=self.fd)
            try:
                empty = not os.listdir(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise from_os_error(exc, where) from None
        if not empty and not force:
            raise UsageError(
                f"{where}: already exists and is not empty",
                hint="add --force to replace it (files you added there are removed), or give "
                "another DIR",
            )
        return not empty

    def make_temp(self, suffix: str = "fetch") -> str:
        while True:
            name = f".zoopm-{host_tag()}-{os.getpid()}-{os.urandom(4).hex()}.{suffix}"
            try:
                os.mkdir(name, 0o777, dir_fd=self.fd)
                return name
            except FileExistsError:
                continue
            except OSError as exc:
                raise from_os_error(exc, self.path) from None

    def copy_in(self, staging: str, name: str, blob: Path, size: int) -> None:
        """Copies a stored blob to staging/name, hashing the copy against the blob's name."""
        where = self.path / staging / name
        try:
            directory = os.open(staging, DIR_NO_FOLLOW, dir_fd=self.fd)
            try:
                out = os.open(name, NEW_FILE_NO_FOLLOW, 0o666, dir_fd=directory)
            finally:
                os.close(directory)
            with open(blob, "rb") as source, os.fdopen(out, "wb") as sink:
                digest = hashlib.sha256()
                copied = 0
                while chunk := source.read(CHUNK_SIZE):
                    digest.update(chunk)
                    copied += len(chunk)
                    sink.write(chunk)
                sink.flush()
                os.fsync(sink.fileno())
        except OSError as exc:
            raise from_os_error(exc, where) from None
        if copied != size or digest.hexdigest() != blob.name:
            raise IntegrityError(
                f"{blob}: the stored copy of {name} changed on disk",
                hint="run 'zoopm verify --store --repair' or remove the blob, then fetch again",
            )

    def sync(self, staging: str) -> None:
        with contextlib.suppress(OSError):
            fd = os.open(staging, DIR_NO_FOLLOW, dir_fd=self.fd)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def swap_in(self, staging: str, name: str, replacing: bool, force: bool) -> bool:
        """Puts staging at name: one rename onto nothing (or an empty directory); with
        replacing, an exchange of the two, and the old one removed after. What was judged at
        the start may have changed since (another run placed the directory, or removed it):
        it is judged again, and with force a directory placed meanwhile is replaced as any
        other (the last run wins). Returns whether a non-empty directory was replaced."""
        where = self.path / name
        try:
            for _ in range(_SWAP_TRIES):
                if not replacing:
                    if self._rename_onto_nothing(staging, name):
                        fsync_dir(self.path)
                        return False
                    # A link or a file put there is refused here, with or without force.
                    replacing = self.judge_target(name, force=True)
                    if replacing and not force:
                        raise UsageError(
                            f"{where}: appeared while fetch-gist worked (another run, or "
                            "another program); left as it is",
                            hint="add --force to replace it, or give another DIR",
                        )
                    continue
                old = self._swap(staging, name, where)
                if old is None:  # removed meanwhile: a plain rename then
                    replacing = False
                    continue
                fsync_dir(self.path)
                self.remove(old)
                return True
        except OSError as exc:
            raise from_os_error(exc, where) from None
        raise StoreError(
            f"{where}: kept changing while fetch-gist placed its directory (other runs, or "
            "another program); left as it is",
            hint="run fetch-gist again when nothing else writes there",
        )

    def _rename_onto_nothing(self, staging: str, name: str) -> bool:
        """Renames staging to name if nothing (or an empty directory) is there; False if
        something is."""
        try:
            os.rename(staging, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except OSError as exc:
            if exc.errno in _OCCUPIED:
                return False
            raise
        return True

    def _swap(self, staging: str, name: str, where: Path) -> str | None:
        """Puts staging at name and the directory there at the returned name (to be removed);
        None if nothing is at name any more. Renames never follow a link, and a link or a file
        put at name since it was judged is put back and refused, never removed."""
        try:
            exchanged = _exchange(self.fd, staging, name)
        except FileNotFoundError:
            return None
        if exchanged:
            info = os.lstat(staging, dir_fd=self.fd)
            if not stat.S_ISDIR(info.st_mode):
                _exchange(self.fd, staging, name)
                raise _not_a_directory(where, info)
            return staging
        # Two renames where the kernel cannot exchange: the old directory is never removed
        # before the new one is in place.
        old = self.make_temp("old")
        os.rmdir(old, dir_fd=self.fd)
        try:
            os.rename(name, old, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except FileNotFoundError:
            return None
        info = os.lstat(old, dir_fd=self.fd)
        try:
            if not stat.S_ISDIR(info.st_mode):
                raise _not_a_directory(where, info)
            os.rename(staging, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException:
            os.rename(old, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
            raise
        return old

    def remove(self, name: str) -> None:
        """Removes name below DIR, never following a link in it."""
        with contextlib.suppress(OSError):
            info = os.lstat(name, dir_fd=self.fd)
            if stat.S_ISDIR(info.st_mode):
                shutil.rmtree(name, dir_fd=self.fd)
            else:
                os.unlink(name, dir_fd=self.fd)


@dataclass(frozen=True)
class _Made:
    """A directory this run made on the way to DIR: its name in its parent, both held by a
    descriptor, so that removing it never goes through a link or to another directory."""

    parent_fd: int
    name: str
    fd: int

    def remove(self) -> None:
        """Removes it if it is still the directory this run made and is empty."""
        with contextlib.suppress(OSError):
            mine = os.fstat(self.fd)
            there = os.lstat(self.name, dir_fd=self.parent_fd)
            if (there.st_dev, there.st_ino) == (mine.st_dev, mine.st_ino):
                os.rmdir(self.name, dir_fd=self.parent_fd)


def _open_making(path: Path, held: list[int], made: list[_Made]) -> int:
    """A descriptor of DIR, opened without following a link at DIR; the directories missing
    on the way are made one by one through their parent's descriptor. Every descriptor opened
    goes to held, every directory this run made to made (one another run made meanwhile is
    not this run's)."""
    missing: list[str] = []
    above = path
    try:
        while True:
            try:
                fd = os.open(above, DIR_NO_FOLLOW if above == path else _ABOVE_FLAGS)
                break
            except FileNotFoundError:
                if above.parent == above:
                    raise
                missing.append(above.name)
                above = above.parent
        held.append(fd)
        for name in reversed(missing):
            above = above / name
            try:
                os.mkdir(name, 0o777, dir_fd=fd)
                mine = True
            except FileExistsError:
                mine = False
            child = os.open(name, DIR_NO_FOLLOW, dir_fd=fd)
            held.append(child)
            if mine:
                made.append(_Made(fd, name, child))
            fd = child
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(above):
            raise StoreError(
                f"{above}: is a symbolic link; fetch-gist does not follow a link at the "
                "directory it writes in",
                hint=f"give the directory it points to ({os.path.realpath(above)})",
            ) from None
        raise from_os_error(exc, above) from None
    return fd


def _not_a_directory(where: Path, info: os.stat_result) -> StoreError:
    """The refusal of a link or a file at the target: never followed, never replaced."""
    if stat.S_ISLNK(info.st_mode):
        return StoreError(
            f"{where}: is a symbolic link; fetch-gist neither follows nor replaces it",
            hint="remove the link (or give another DIR), then run fetch-gist again",
        )
    return StoreError(
        f"{where}: is a file, not a directory; fetch-gist does not replace it",
        hint="move it away, then run fetch-gist again",
    )


def _exchange(dir_fd: int, first: str, second: str) -> bool:
    """Swaps two names in one step (Linux renameat2 with RENAME_EXCHANGE); False where the
    system or the file system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    renameat2.restype = ctypes.c_int
    if renameat2(dir_fd, os.fsencode(first), dir_fd, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), second)  # FileNotFoundError for ENOENT
