"""An offline bundle: zoo.toml, zoo.lock and the blobs they pin, as one uncompressed tar.

Layout, in this order (the reader requires it, so that it knows every blob before one arrives):

    zoopm-bundle.json       format, version, and every blob: sha256 and size, sorted
    zoo.toml                the project's bytes
    zoo.lock                the project's bytes
    blobs/sha256/<hex>      one entry per blob, sorted by name

Every header is a POSIX ustar header with mtime 0, uid and gid 0, no owner names and mode
0644, so the same inputs give the same bytes; a blob of 8 GiB or more gets a pax header
carrying only its size. The tar is uncompressed: model weights barely compress, and a plain
tar is read and written in one pass with every size known from its header.

The reader parses the headers itself rather than through tarfile, so that nothing it reads is
unbounded (a pax header is at most 4 KiB, each small entry has a limit, each blob is read
only up to the size the manifest lists) and so that everything zoopm does not write (links,
devices, directories, long-name extensions, absolute or climbing names, duplicates, a name
out of order) is refused before its bytes are used. stdlib only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from zoopm.digest import CHUNK_SIZE, is_sha256_hex
from zoopm.errors import BundleError
from zoopm.paths import shown

BUNDLE_JSON = "zoopm-bundle.json"
FORMAT_NAME = "zoopm-bundle"
FORMAT_VERSION = 1
BLOB_PREFIX = "blobs/sha256/"
HEAD_NAMES = (BUNDLE_JSON, "zoo.toml", "zoo.lock")
# What each small entry may hold: the same bounds zoopm reads zoo.toml and zoo.lock under.
HEAD_LIMITS = {BUNDLE_JSON: 64 * 1024**2, "zoo.toml": 64 * 1024**2, "zoo.lock": 256 * 1024**2}

BLOCK = 512
RECORD = 20 * BLOCK  # tar pads the archive to a multiple of this, as GNU tar does
_USTAR_MAX_SIZE = 8**11 - 1  # eleven octal digits
_MAX_PAX = 4096
_PAX_KEYS_IGNORED = ("mtime", "atime", "ctime")
_PAX_RECORD = re.compile(rb"(\d+) ")
_OCTAL = re.compile(rb"[0-7]*")


@dataclass(frozen=True)
class BundleBlob:
    """One blob of a bundle, as its manifest lists it."""

    sha256: str
    size: int

    @property
    def entry(self) -> str:
        return BLOB_PREFIX + self.sha256


@dataclass(frozen=True)
class BundleHead:
    """The entries before the blobs: the manifest, zoo.toml's and zoo.lock's bytes."""

    blobs: tuple[BundleBlob, ...]
    zoo_toml: bytes
    zoo_lock: bytes

    @property
    def size(self) -> int:
        return sum(blob.size for blob in self.blobs)


def render_manifest(blobs: Iterable[BundleBlob]) -> bytes:
    """zoopm-bundle.json: sorted, no timestamps, so the same lock gives the same bytes."""
    listed = sorted(set(blobs), key=lambda blob: blob.sha256)
    document = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "blobs": [{"sha256": blob.sha256, "size": blob.size} for blob in listed],
    }
    return (json.dumps(document, indent=1, sort_keys=True) + "\n").encode("ascii")


def parse_manifest(data: bytes, label: str) -> tuple[BundleBlob, ...]:
    """The blobs zoopm-bundle.json lists, read strictly."""
    where = f"{label}: {BUNDLE_JSON}"
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BundleError(f"{where}: not JSON ({str(exc)[:120]})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise BundleError(f"{where}: not a zoopm bundle manifest ('format' is not {FORMAT_NAME!r})")
    version = document.get("version")
    if version != FORMAT_VERSION:
        if isinstance(version, int) and not isinstance(version, bool) and version > 1:
            raise BundleError(
                f"{where}: format version {version} is newer than this zoopm understands "
                f"({FORMAT_VERSION})",
                hint="install the bundle with a newer zoopm, or make it with this one",
            )
        raise BundleError(f"{where}: 'version' is {version!r}, not {FORMAT_VERSION}")
    unknown = sorted(set(document) - {"format", "version", "blobs"})
    if unknown:
        raise BundleError(f"{where}: unknown key {unknown[0]!r}")
    listed = document.get("blobs")
    if not isinstance(listed, list):
        raise BundleError(f"{where}: 'blobs' is not a list")
    blobs: list[BundleBlob] = []
    for index, item in enumerate(listed):
        key = f"{where}: blobs[{index}]"
        if not isinstance(item, dict) or set(item) != {"sha256", "size"}:
            raise BundleError(f"{key}: expected exactly 'sha256' and 'size'")
        sha256, size = item["sha256"], item["size"]
        if not (isinstance(sha256, str) and is_sha256_hex(sha256) and sha256 == sha256.lower()):
            raise BundleError(f"{key}.sha256: expected 64 lower-case hex digits")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BundleError(f"{key}.size: expected a byte count")
        if blobs and sha256 <= blobs[-1].sha256:
            raise BundleError(f"{key}: not sorted, or listed twice")
        blobs.append(BundleBlob(sha256, size))
    return tuple(blobs)


# --- writing -----------------------------------------------------------------------------------


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


def write_bundle(
    out: _Sink,
    head: BundleHead,
    contents: Callable[[BundleBlob], Iterator[bytes]],
) -> int:
    """Writes the whole bundle to out; returns the bytes written.

    contents(blob) yields the blob's bytes; it is consumed to its end, so that it can verify
    what it read and raise (after its last chunk) before the entry counts as written. Exactly
    blob.size bytes must come.
    """
    written = 0

    def put(data: bytes) -> None:
        nonlocal written
        out.write(data)
        written += len(data)

    put(_header(BUNDLE_JSON, len(manifest := render_manifest(head.blobs))))
    put(_padded(manifest))
    for name, data in (("zoo.toml", head.zoo_toml), ("zoo.lock", head.zoo_lock)):
        put(_header(name, len(data)))
        put(_padded(data))
    for blob in sorted(head.blobs, key=lambda b: b.sha256):
        put(_header(blob.entry, blob.size))
        count = 0
        for chunk in contents(blob):
            count += len(chunk)
            if count > blob.size:
                raise BundleError(f"{blob.entry}: more than its {blob.size} bytes were read")
            put(chunk)
        if count != blob.size:
            raise BundleError(f"{blob.entry}: {count} bytes were read, not {blob.size}")
        put(bytes(-count % BLOCK))
    put(bytes(2 * BLOCK))
    put(bytes(-written % RECORD))
    return written


def _padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % BLOCK)


def _header(name: str, size: int) -> bytes:
    """The header of a regular file: ustar, or a pax size record then ustar for 8 GiB and more."""
    if size > _USTAR_MAX_SIZE:
        record = _pax_record("size", str(size))
        return _ustar("././@PaxHeader", len(record), b"x") + _padded(record) + _ustar(name, 0, b"0")
    return _ustar(name, size, b"0")


def _pax_record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n".encode()
    length = len(body)
    while len(str(length).encode()) + len(body) != length:
        length = len(str(length).encode()) + len(body)
    return str(length).encode() + body


def _ustar(name: str, size: int, kind: bytes) -> bytes:
    encoded = name.encode("ascii")
    assert len(encoded) <= 100
    header = bytearray(BLOCK)
    header[0 : len(encoded)] = encoded
    header[100:108] = b"0000644\0"
    header[108:116] = b"0000000\0"
    header[116:124] = b"0000000\0"
    header[124:136] = f"{size:011o}\0".encode()
    header[136:148] = b"00000000000\0"
    header[148:156] = b" " * 8
    header[156:157] = kind
    header[257:263] = b"ustar\0"
    header[263:265] = b"00"
    header[148:156] = f"{sum(header):06o}\0 ".encode()
    return bytes(header)


# --- reading -----------------------------------------------------------------------------------


def read_bundle(
    stream: BinaryIO,
    label: str,
    *,
    judge: Callable[[BundleHead], None],
    take: Callable[[BundleBlob, Iterator[bytes]], None],
) -> BundleHead:
    """Reads a bundle front to back in one pass.

    judge(head) is called once the manifest, zoo.toml and zoo.lock are read, before any blob;
    it raises to refuse the bundle. take(blob, chunks) is called for each blob in turn and
    must consume chunks, which yields exactly the blob's listed size and raises BundleError
    if the archive ends early. Every blob the manifest lists must come, once, in order.
    """
    reader = _Reader(stream, label)
    small: dict[str, bytes] = {}
    for name in HEAD_NAMES:
        entry, size = reader.next_entry()
        if entry is None:
            raise reader.refuse(f"ends before its {name} entry", truncated=True)
        if entry != name:
            raise reader.refuse(
                f"entry {shown(entry)} comes where {name} belongs; a zoopm bundle starts "
                f"with {', '.join(HEAD_NAMES)}"
            )
        limit = HEAD_LIMITS[name]
        if size > limit:
            raise reader.refuse(f"entry {name} declares {size} bytes, more than {limit}")
        small[name] = b"".join(reader.chunks(name, size))
    head = BundleHead(
        parse_manifest(small[BUNDLE_JSON], label), small["zoo.toml"], small["zoo.lock"]
    )
    judge(head)
    wanted = {blob.entry: blob for blob in head.blobs}
    seen: set[str] = set()
    last = ""
    while True:
        entry, size = reader.next_entry()
        if entry is None:
            break
        if entry in seen:
            raise reader.refuse(f"entry {shown(entry)} comes twice")
        if entry in HEAD_NAMES:
            raise reader.refuse(f"entry {entry} comes twice")
        blob = wanted.get(entry)
        if blob is None:
            raise reader.refuse(f"entry {shown(entry)} is not a blob {BUNDLE_JSON} lists")
        if entry < last:
            raise reader.refuse(f"entry {shown(entry)} is out of order")
        if size != blob.size:
            raise reader.refuse(
                f"entry {shown(entry)} declares {size} bytes; {BUNDLE_JSON} lists {blob.size}"
            )
        seen.add(entry)
        last = entry
        take(blob, reader.chunks(entry, size))
    missing = [blob for blob in head.blobs if blob.entry not in seen]
    if missing:
        raise reader.refuse(
            f"lacks {missing[0].entry}, which {BUNDLE_JSON} lists"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
            truncated=True,
        )
    return head


class _Reader:
    """tar headers and entry bytes, read strictly and never beyond what a header declares."""

    def __init__(self, stream: BinaryIO, label: str) -> None:
        self._stream = stream
        self._label = label
        self._pending = 0  # bytes (with padding) of the current entry not yet read
        self.ended = False

    def refuse(self, problem: str, *, truncated: bool = False) -> BundleError:
        hint = (
            "the bundle is incomplete (a copy that stopped early?): copy it again, or make it "
            "again with 'zoopm bundle'"
            if truncated
            else None
        )
        return BundleError(f"{self._label}: {problem}; nothing was installed", hint)

    def _read_exactly(self, size: int, what: str) -> bytes:
        parts: list[bytes] = []
        left = size
        while left:
            data = self._stream.read(min(left, CHUNK_SIZE))
            if not data:
                raise self.refuse(f"ends in the middle of {what}", truncated=True)
            parts.append(data)
            left -= len(data)
        return b"".join(parts)

    def _read_block(self) -> bytes:
        """One header block, or fewer bytes only at the end of the stream."""
        block = b""
        while len(block) < BLOCK:
            data = self._stream.read(BLOCK - len(block))
            if not data:
                break
            block += data
        return block

    def _skip_pending(self) -> None:
        while self._pending:
            data = self._stream.read(min(self._pending, CHUNK_SIZE))
            if not data:
                raise self.refuse("ends in the middle of an entry", truncated=True)
            self._pending -= len(data)

    def next_entry(self) -> tuple[str | None, int]:
        """The next regular file's name and size; (None, 0) at the end-of-archive marker."""
        self._skip_pending()
        size_override: int | None = None
        name_override: str | None = None
        while True:
            block = self._read_block()
            if len(block) < BLOCK:
                if not block:
                    raise self.refuse("ends without tar's end-of-archive marker", truncated=True)
                raise self.refuse("ends in the middle of a tar header", truncated=True)
            if block == bytes(BLOCK):
                if size_override is not None or name_override is not None:
                    raise self.refuse("ends after a pax header with no entry", truncated=True)
                self.ended = True
                return None, 0
            name, size, kind = self._parse_header(block)
            shown_name = shown(name_override if name_override is not None else name)
            if kind == b"x":
                if size > _MAX_PAX:
                    raise self.refuse(f"pax header before {shown_name} is over {_MAX_PAX} bytes")
                data = self._read_exactly(size + (-size % BLOCK), "a pax header")[:size]
                pax_size, pax_name = self._parse_pax(data)
                size_override = pax_size if pax_size is not None else size_override
                name_override = pax_name if pax_name is not None else name_override
                continue
            if name_override is not None:
                name = name_override
            if size_override is not None:
                size = size_override
            self._judge(name, kind)
            self._pending = size + (-size % BLOCK)
            return name, size

    def chunks(self, name: str, size: int) -> Iterator[bytes]:
        """The entry's bytes, size of them, then its padding is skipped."""
        left = size
        while left:
            data = self._stream.read(min(left, CHUNK_SIZE))
            if not data:
                raise self.refuse(f"ends in the middle of {shown(name)}", truncated=True)
            left -= len(data)
            self._pending -= len(data)
            yield data
        self._skip_pending()

    def _parse_header(self, block: bytes) -> tuple[str, int, bytes]:
        if block.startswith(b"\x1f\x8b"):
            raise BundleError(
                f"{self._label}: is gzip-compressed; a zoopm bundle is a plain tar; "
                "nothing was installed",
                hint=f"gunzip it first (zcat {self._label} > bundle.tar)",
            )
        stored = block[148:156]
        checksum = sum(block[:148]) + 8 * 32 + sum(block[156:])
        try:
            declared = int(stored.rstrip(b"\0 ").decode("ascii") or "x", 8)
        except ValueError:
            declared = -1
        if declared != checksum:
            raise self.refuse("holds a tar header with a wrong checksum (not a tar, or damaged)")
        if block[257:263] != b"ustar\0":
            raise self.refuse("holds a tar header zoopm does not write (not POSIX ustar)")
        try:
            name = block[0:100].split(b"\0", 1)[0].decode("utf-8")
            prefix = block[345:500].split(b"\0", 1)[0].decode("utf-8")
        except UnicodeDecodeError:
            raise self.refuse("holds an entry whose name is not UTF-8") from None
        if prefix:
            name = f"{prefix}/{name}"
        field = block[124:136]
        if field[0] & 0x80:
            raise self.refuse(f"entry {shown(name)} has a size zoopm does not write (base-256)")
        digits = field.rstrip(b"\0 ").strip()
        if not _OCTAL.fullmatch(digits):  # int() takes a sign, '_' and '+': a size has none
            raise self.refuse(f"entry {shown(name)} has an unreadable size")
        size = int(digits or b"0", 8)
        return name, size, block[156:157]

    def _parse_pax(self, data: bytes) -> tuple[int | None, str | None]:
        size: int | None = None
        name: str | None = None
        at = 0
        while at < len(data):
            match = _PAX_RECORD.match(data, at)
            length = int(match.group(1)) if match else 0
            record = data[at : at + length]
            if not match or length <= match.end() - at or not record.endswith(b"\n"):
                raise self.refuse("holds a malformed pax header")
            key, sep, value = record[match.end() - at : -1].partition(b"=")
            if not sep:
                raise self.refuse("holds a malformed pax header")
            try:
                text_key, text = key.decode("ascii"), value.decode("utf-8")
            except UnicodeDecodeError:
                raise self.refuse("holds a pax header that is not UTF-8") from None
            if text_key == "size":
                if not (text.isascii() and text.isdigit()) or len(text) > 20:
                    raise self.refuse("holds a pax size that is not a byte count")
                size = int(text)
            elif text_key == "path":
                name = text
            elif text_key not in _PAX_KEYS_IGNORED:
                raise self.refuse(
                    f"holds a pax header with {shown(text_key)}, which zoopm does not write"
                )
            at += length
        return size, name

    def _judge(self, name: str, kind: bytes) -> None:
        """Refuses any entry that is not a regular file under a plain relative name."""
        what = f"entry {shown(name)}"
        kinds = {
            b"1": "is a hard link",
            b"2": "is a symbolic link",
            b"3": "is a character device",
            b"4": "is a block device",
            b"5": "is a directory",
            b"6": "is a FIFO",
            b"7": "is a contiguous file",
            b"g": "is a pax global header",
            b"L": "is a GNU long name",
            b"K": "is a GNU long link name",
            b"S": "is a GNU sparse file",
        }
        if kind in kinds:
            raise self.refuse(f"{what} {kinds[kind]}; a zoopm bundle holds only files")
        if kind not in (b"0", b"\0"):
            raise self.refuse(f"{what} has type {kind!r}; a zoopm bundle holds only files")
        if name.startswith("/"):
            raise self.refuse(f"{what} is an absolute path")
        parts = name.split("/")
        if ".." in parts:
            raise self.refuse(f"{what} climbs out with '..'")
        if any(part in ("", ".") for part in parts) or "\\" in name:
            raise self.refuse(f"{what} is not a plain relative name")
        if name not in HEAD_NAMES and not (
            name.startswith(BLOB_PREFIX)
            and is_sha256_hex(name[len(BLOB_PREFIX) :])
            and name == name.lower()
        ):
            raise self.refuse(f"{what} is not an entry a zoopm bundle has")
