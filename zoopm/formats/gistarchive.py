"""A gist's archive download (zip or tar.gz), read entry by entry under strict rules and bounds.

GitHub serves a gist at a revision as one top directory `{id}-{sha}/` holding the files, with
nothing nested (gists have no directories). The archive is someone else's bytes: every entry is
judged before one of its bytes is used. Links, devices, absolute paths, `..`, a second top
directory, a nested directory, a duplicate, a name the API did not list are refused; no entry
is read beyond the size the API listed for it, and a tar.gz is never unpacked beyond what the
listed files and their headers can take (a declared size is never trusted). stdlib only.
"""

from __future__ import annotations

import gzip
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from typing import BinaryIO, Protocol

from zoopm.digest import CHUNK_SIZE
from zoopm.errors import SourceError
from zoopm.paths import name_problem, shown

ARCHIVE_FORMATS = ("zip", "tar.gz")
_HINT = "the archive is not what GitHub serves for a gist; nothing was written"
# What tar puts around the files: a 512-byte header (more with pax names) and padding each,
# a pax global header, the top directory, two end blocks.
_TAR_SLACK = 64 * 1024
_TAR_PER_FILE = 4 * 1024
_READ_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    tarfile.TarError,
    gzip.BadGzipFile,
    zlib.error,
    EOFError,
    NotImplementedError,  # a zip compression method zipfile does not know
    RuntimeError,  # zipfile: an encrypted entry
    ValueError,
    OSError,
)


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def archive_bound(sizes: Mapping[str, int]) -> int:
    """The most bytes a gist archive of these files can take, compressed or not."""
    total = sum(sizes.values())
    # Deflate and gzip grow incompressible data by well under 1/64.
    return total + total // 64 + _TAR_SLACK + _TAR_PER_FILE * len(sizes)


def read_archive(
    stream: BinaryIO,
    form: str,
    *,
    top: str,
    sizes: Mapping[str, int],
    label: str,
    take: Callable[[str, Iterator[bytes]], None],
) -> None:
    """Calls take(name, chunks) for each file of the archive, after judging its entry.

    top is the one directory everything must be in (`{id}-{sha}`), sizes the API's listing
    (name -> bytes). chunks yields the entry's bytes and refuses any beyond the listed size;
    take must consume it before returning. Every listed file must be in the archive.
    """
    if form == "zip":
        seen = _read_zip(stream, top, sizes, label, take)
    elif form == "tar.gz":
        seen = _read_tar(stream, top, sizes, label, take)
    else:
        raise ValueError(f"not an archive format: {form!r}")
    missing = sorted(set(sizes) - seen)
    if missing:
        raise SourceError(
            f"{label}: the archive lacks {shown(missing[0])}, which the API lists", _HINT
        )


class _Judge:
    """The rules every entry meets, whatever the archive format."""

    def __init__(self, top: str, sizes: Mapping[str, int], label: str) -> None:
        self.top = top
        self.sizes = sizes
        self.label = label
        self.seen: set[str] = set()
        self.top_seen = False

    def refuse(self, entry: str, why: str) -> SourceError:
        return SourceError(f"{self.label}: archive entry {shown(entry)} {why}", _HINT)

    def directory(self, entry: str) -> None:
        name = entry.rstrip("/")
        self._path(entry, name)
        if name != self.top:
            if name.startswith(self.top + "/"):
                raise self.refuse(entry, "is a nested directory; a gist has none")
            raise self.refuse(entry, f"is a second top directory beside {shown(self.top)}")
        if self.top_seen:
            raise self.refuse(entry, "comes twice")
        self.top_seen = True

    def file(self, entry: str) -> str:
        """The file name the entry stands for (below top), once its path passed every rule."""
        self._path(entry, entry)
        head, _, name = entry.partition("/")
        if head != self.top:
            raise self.refuse(entry, f"is outside the one top directory {shown(self.top)}")
        if "/" in name:
            raise self.refuse(entry, "is in a nested directory; a gist has none")
        if name in self.seen:
            raise self.refuse(entry, "comes twice")
        if name not in self.sizes:
            raise self.refuse(entry, "is not a file the API lists for this revision")
        self.seen.add(name)
        return name

    def _path(self, entry: str, path: str) -> None:
        problem = name_problem(path)
        if problem:
            raise self.refuse(entry, f"is not a usable name: {problem}")
        if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
            raise self.refuse(entry, "is an absolute path")
        parts = path.split("/")
        if ".." in parts:
            raise self.refuse(entry, "climbs out with '..'")
        if any(part in ("", ".") for part in parts):
            raise self.refuse(entry, "has an empty or '.' segment")

    def chunks(self, entry: str, name: str, source: _Readable) -> Iterator[bytes]:
        """The entry's bytes, never more than the listed size (plus one byte, to notice)."""
        limit = self.sizes[name]
        read = 0
        while True:
            chunk = source.read(min(CHUNK_SIZE, limit - read + 1))
            if not chunk:
                break
            read += len(chunk)
            if read > limit:
                raise self.refuse(entry, f"holds more than the {limit} bytes the API lists")
            yield chunk
        if read != limit:
            raise self.refuse(entry, f"holds {read} bytes; the API lists {limit}")


def _read_zip(
    stream: BinaryIO,
    top: str,
    sizes: Mapping[str, int],
    label: str,
    take: Callable[[str, Iterator[bytes]], None],
) -> set[str]:
    judge = _Judge(top, sizes, label)
    try:
        archive = zipfile.ZipFile(stream)
    except _READ_ERRORS as exc:
        raise SourceError(f"{label}: not a zip archive ({_short(exc)})", _HINT) from None
    with archive:
        for info in archive.infolist():
            entry = info.filename
            mode = info.external_attr >> 16 if info.create_system == 3 else 0
            kind = stat.S_IFMT(mode)
            if kind == stat.S_IFLNK:
                raise judge.refuse(entry, "is a symbolic link")
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise judge.refuse(entry, "is a device, a FIFO or a socket, not a file")
            if info.flag_bits & 0x1:
                raise judge.refuse(entry, "is encrypted")
            if entry.endswith("/") or kind == stat.S_IFDIR:
                judge.directory(entry)
                continue
            name = judge.file(entry)
            try:
                with archive.open(info) as member:
                    take(name, judge.chunks(entry, name, member))
            except SourceError:
                raise
            except _READ_ERRORS as exc:
                raise judge.refuse(entry, f"cannot be read: {_short(exc)}") from None
    return judge.seen


class _Bounded:
    """A decompressed stream that refuses to yield more than limit bytes in all."""

    def __init__(self, source: _Readable, limit: int, label: str) -> None:
        self._source = source
        self._limit = limit
        self._label = label
        self.read_so_far = 0

    def read(self, size: int = -1, /) -> bytes:
        want = self._limit - self.read_so_far + 1 if size < 0 else size
        data = self._source.read(min(want, self._limit - self.read_so_far + 1))
        self.read_so_far += len(data)
        if self.read_so_far > self._limit:
            raise SourceError(
                f"{self._label}: the archive unpacks to more than {self._limit} bytes, more "
                "than the listed files can take",
                _HINT,
            )
        return data


def _read_tar(
    stream: BinaryIO,
    top: str,
    sizes: Mapping[str, int],
    label: str,
    take: Callable[[str, Iterator[bytes]], None],
) -> set[str]:
    judge = _Judge(top, sizes, label)
    bounded = _Bounded(gzip.GzipFile(fileobj=stream, mode="rb"), archive_bound(sizes), label)
    try:
        # "r|": one pass, front to back; the stream never seeks back into what it judged.
        with tarfile.open(fileobj=bounded, mode="r|") as archive:  # type: ignore[call-overload]
            for member in archive:
                entry = member.name + ("/" if member.isdir() else "")
                if member.issym() or member.islnk():
                    raise judge.refuse(entry, "is a link")
                if member.isdir():
                    judge.directory(entry)
                    continue
                if not member.isfile() or member.issparse():
                    raise judge.refuse(entry, "is a device, a FIFO or a sparse file, not a file")
                name = judge.file(entry)
                if member.size != sizes[name]:
                    raise judge.refuse(
                        entry, f"declares {member.size} bytes; the API lists {sizes[name]}"
                    )
                source = archive.extractfile(member)
                if source is None:
                    raise judge.refuse(entry, "has no contents")
                take(name, judge.chunks(entry, name, source))
    except SourceError:
        raise
    except _READ_ERRORS as exc:
        raise SourceError(
            f"{label}: not a readable tar.gz archive ({_short(exc)})", _HINT
        ) from None
    return judge.seen


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]
