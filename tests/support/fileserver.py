"""A real HTTP/1.1 file server on 127.0.0.1 with fault injection, for integration tests."""

from __future__ import annotations

import email.utils
import hashlib
import re
import threading
import time
from collections import deque
from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from tests.support.loopback import LoopbackServer, QuietHandler

CHUNK_SIZE = 64 * 1024

LOGIN_PAGE = (
    b"<!DOCTYPE html><html><head><title>Sign in</title></head>"
    b'<body><h1>Sign in</h1><form method="post" action="/login">login page'
    b'<input name="user"><input name="password" type="password"></form></body></html>'
)

_XOR_FF = bytes(i ^ 0xFF for i in range(256))
_RANGE_RE = re.compile(r"\s*bytes\s*=\s*([0-9]*)\s*-\s*([0-9]*)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class RequestRecord:
    """One request the server answered, as the client sent it plus the status it got."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    status: int


@dataclass(frozen=True)
class _Content:
    content_type: str
    size: int
    etag: str | None
    last_modified: int | None
    data: bytes | None = None
    file: Path | None = None

    def read(self, start: int, length: int) -> Generator[bytes, None, None]:
        if self.data is not None:
            end = start + length
            for offset in range(start, end, CHUNK_SIZE):
                yield self.data[offset : min(offset + CHUNK_SIZE, end)]
            return
        assert self.file is not None
        with self.file.open("rb") as stream:
            stream.seek(start)
            remaining = length
            while remaining > 0:
                chunk = stream.read(min(CHUNK_SIZE, remaining))
                if not chunk:
                    # The file shrank since it was added; the caller notices the short count.
                    return
                remaining -= len(chunk)
                yield chunk


@dataclass(frozen=True)
class _Redirect:
    location: str
    status: int


@dataclass(frozen=True)
class _Fault:
    kind: Literal[
        "none",
        "fail",
        "cut",
        "corrupt",
        "html",
        "slow",
        "length",
        "headers",
        "unannounced",
        "stall",
        "ignore_range",
    ]
    status: int = 500
    headers: tuple[tuple[str, str], ...] = ()
    after_bytes: int = 0
    delay: float = 0.0
    length_error: int = 0


_NO_FAULT = _Fault("none")


class _Unsatisfiable(Exception):
    pass


class _State:
    """Everything the handler threads and the test thread share, behind one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[str, _Content | _Redirect] = {}
        self.faults: dict[str, deque[_Fault]] = {}
        self.log: list[RequestRecord] = []
        # Body bytes sent per path, and the send rate per connection (None: full speed).
        self.sent: dict[str, int] = {}
        self.bytes_per_second: float | None = None
        # Set on stop so handlers sleeping in a `slow` fault wake up instead of holding stop().
        self.stopping = threading.Event()

    def lookup(self, path: str, take_fault: bool) -> tuple[_Content | _Redirect | None, _Fault]:
        with self.lock:
            fault = _NO_FAULT
            queue = self.faults.get(path)
            if take_fault and queue:
                fault = queue.popleft()
                if not queue:
                    del self.faults[path]
            return self.entries.get(path), fault

    def record(self, entry: RequestRecord) -> None:
        with self.lock:
            self.log.append(entry)

    def count_sent(self, path: str, nbytes: int) -> float | None:
        """Adds nbytes to what path has sent; returns the rate to send at."""
        with self.lock:
            self.sent[path] = self.sent.get(path, 0) + nbytes
            return self.bytes_per_second


class _Server(LoopbackServer):
    def __init__(self, state: _State) -> None:
        self.state = state
        super().__init__(_Handler)


class _Handler(QuietHandler):
    server: _Server

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_POST(self) -> None:
        self._not_allowed()

    def do_PUT(self) -> None:
        self._not_allowed()

    def do_DELETE(self) -> None:
        self._not_allowed()

    def do_PATCH(self) -> None:
        self._not_allowed()

    def do_OPTIONS(self) -> None:
        self._not_allowed()

    def do_TRACE(self) -> None:
        self._not_allowed()

    def do_CONNECT(self) -> None:
        self._not_allowed()

    def _start(self, status: int) -> None:
        # Logged before the status line goes out, so a client that has its answer sees the record.
        path, _, query = self.path.partition("?")
        headers = {name.lower(): str(value) for name, value in self.headers.items()}
        self.server.state.record(RequestRecord(self.command, path, query, headers, status))
        self.send_response(status)

    def _not_allowed(self) -> None:
        # The request body is never read, so the connection cannot carry another request.
        self.close_connection = True
        self._simple(405, b"method not allowed\n", head=False, extra=(("Allow", "GET, HEAD"),))

    def _simple(
        self,
        status: int,
        body: bytes,
        head: bool,
        content_type: str = "text/plain; charset=utf-8",
        extra: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self._start(status)
        for name, value in extra:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        if status in (204, 304):
            self.end_headers()
            return
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _serve(self, head: bool) -> None:
        state = self.server.state
        path = self.path.partition("?")[0]
        # Faults model a flaky download, so only GET consumes them; a probing HEAD does not.
        entry, fault = state.lookup(path, take_fault=not head)
        if path != self.path:
            # Content added at a path with a ?query answers that exact query before the path's.
            with state.lock:
                entry = state.entries.get(self.path, entry)
        if fault.kind == "slow":
            state.stopping.wait(fault.delay)
        if fault.kind == "fail":
            body = f"injected failure: {fault.status}\n".encode()
            self._simple(fault.status, body, head, extra=fault.headers)
        elif fault.kind == "html":
            self._simple(200, LOGIN_PAGE, head, content_type="text/html; charset=utf-8")
        elif entry is None:
            self._simple(404, b"not found\n", head)
        elif isinstance(entry, _Redirect):
            self._simple(entry.status, b"", head, extra=(("Location", entry.location),))
        else:
            cut = fault.after_bytes if fault.kind == "cut" else None
            self._send_content(entry, head, cut=cut, corrupt=fault.kind == "corrupt", fault=fault)

    def _send_content(
        self,
        content: _Content,
        head: bool,
        cut: int | None,
        corrupt: bool,
        fault: _Fault = _NO_FAULT,
    ) -> None:
        size = content.size
        status, start, length = 200, 0, size
        range_header = self.headers.get("Range")
        if fault.kind == "ignore_range":
            range_header = None
        if range_header is not None and _if_range_holds(self.headers.get("If-Range"), content):
            try:
                chosen = _parse_range(range_header, size)
            except _Unsatisfiable:
                self._start(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self._send_validators(content)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if chosen is not None:
                status, start, length = 206, chosen[0], chosen[1] - chosen[0] + 1

        self._start(status)
        self.send_header("Content-Type", content.content_type)
        if fault.kind == "unannounced":
            # No length: the body ends when the connection closes (HTTP/1.0 style).
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(max(length + fault.length_error, 0)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{start + length - 1}/{size}")
        if fault.kind == "headers":
            self.send_header("X-Padding", "p" * fault.after_bytes)
        self._send_validators(content)
        self.end_headers()
        if head:
            return

        limit = length if cut is None else min(cut, length)
        stall_at = fault.after_bytes if fault.kind == "stall" else None
        sent = 0
        with closing(content.read(start, limit)) as chunks:
            for chunk in chunks:
                pieces = [chunk]
                if stall_at is not None and sent + len(chunk) > stall_at:
                    pieces = [chunk[: stall_at - sent], chunk[stall_at - sent :]]
                for index, piece in enumerate(pieces):
                    if index:
                        # The client holds the first bytes, then hears nothing for a while.
                        self.wfile.flush()
                        self.server.state.stopping.wait(fault.delay)
                        stall_at = None
                    self.wfile.write(piece.translate(_XOR_FF) if corrupt else piece)
                    sent += len(piece)
                    rate = self.server.state.count_sent(self.path.partition("?")[0], len(piece))
                    if rate is not None and self.server.state.stopping.wait(len(piece) / rate):
                        return
        if sent < length or fault.length_error:
            # The body does not match its Content-Length: closing is the only honest end.
            self.wfile.flush()
            self.close_connection = True

    def _send_validators(self, content: _Content) -> None:
        if content.etag is not None:
            self.send_header("ETag", content.etag)
        if content.last_modified is not None:
            self.send_header("Last-Modified", _http_date(content.last_modified))
        self.send_header("Accept-Ranges", "bytes")


def _http_date(seconds: int) -> str:
    return email.utils.formatdate(seconds, usegmt=True)


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) a Range header asks for; None means answer in full."""
    if "," in header:
        # Multiple ranges would need multipart/byteranges; RFC 9110 lets us send 200 instead.
        return None
    match = _RANGE_RE.fullmatch(header)
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text:
        if not last_text:
            return None
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise _Unsatisfiable
        return max(size - suffix, 0), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        # An invalid range-spec makes the whole header ignorable (RFC 9110 section 14.2).
        return None
    if first >= size:
        raise _Unsatisfiable
    return first, min(last, size - 1)


def _if_range_holds(value: str | None, content: _Content) -> bool:
    if value is None:
        return True
    value = value.strip()
    if value.startswith(('"', "W/")):
        # If-Range needs a strong match: a weak tag never matches, not even itself.
        return not value.startswith("W/") and value == content.etag
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return content.last_modified is not None and int(when.timestamp()) == content.last_modified


def _check_path(path: str) -> None:
    if not path.startswith("/"):
        raise ValueError(f"path must start with '/': {path!r}")


def _check_times(times: int) -> None:
    if times < 1:
        raise ValueError(f"times must be at least 1, not {times}")


def _short_hash(text: bytes) -> str:
    return '"' + hashlib.sha256(text).hexdigest()[:16] + '"'


class FileServer:
    """Serves registered bytes, files and redirects on 127.0.0.1:<free port> until stopped.

    Faults queue per path in the order they were added; each GET of the path takes the
    next one, and once the queue is empty the path is served normally again.
    """

    def __init__(self) -> None:
        self._state = _State()
        self._server: _Server | None = None
        self._stopped = False
        self._lifecycle = threading.Lock()

    def start(self) -> Self:
        with self._lifecycle:
            if self._server is not None or self._stopped:
                raise RuntimeError("a FileServer can be started only once")
            server = _Server(self._state)
            server.serve_in_thread(f"FileServer:{server.server_port}")
            self._server = server
        return self

    def stop(self) -> None:
        with self._lifecycle:
            server = self._server
            self._server = None
            self._stopped = True
        if server is None:
            return
        self._state.stopping.set()
        server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        server = self._server
        if server is None:
            raise RuntimeError("the FileServer is not running")
        return f"http://127.0.0.1:{server.server_port}"

    def url(self, path: str) -> str:
        _check_path(path)
        return self.base_url + path

    def add_bytes(
        self,
        path: str,
        data: bytes,
        content_type: str = "application/octet-stream",
        *,
        etag: str | None = "",
        last_modified: bool = True,
    ) -> str:
        """Serves data at path. The ETag is a hash of data unless given (None: no ETag; a weak
        one such as 'W/"v1"' is sent as given); last_modified=False sends no Last-Modified."""
        _check_path(path)
        data = bytes(data)
        content = _Content(
            content_type=content_type,
            size=len(data),
            etag=_short_hash(data) if etag == "" else etag,
            last_modified=int(time.time()) if last_modified else None,
            data=data,
        )
        return self._put(path, content)

    def add_file(
        self, path: str, file: Path, content_type: str = "application/octet-stream"
    ) -> str:
        _check_path(path)
        info = file.stat()
        # Hashing the content would mean reading a possibly huge file; size+mtime identify it.
        identity = f"{file.resolve()}\0{info.st_size}\0{info.st_mtime_ns}".encode()
        content = _Content(
            content_type=content_type,
            size=info.st_size,
            etag=_short_hash(identity),
            last_modified=int(info.st_mtime),
            file=file,
        )
        return self._put(path, content)

    def redirect(self, path: str, to_url: str, status: int = 302) -> str:
        _check_path(path)
        if not 300 <= status <= 399:
            raise ValueError(f"a redirect status is 3xx, not {status}")
        return self._put(path, _Redirect(to_url, status))

    def fail(
        self,
        path: str,
        status: int = 500,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        if not 200 <= status <= 599:
            raise ValueError(f"a failure status is 200..599, not {status}")
        extra = tuple((headers or {}).items())
        self._queue(path, _Fault("fail", status=status, headers=extra), times)

    def cut(self, path: str, after_bytes: int, times: int = 1) -> None:
        if after_bytes < 0:
            raise ValueError(f"after_bytes must be >= 0, not {after_bytes}")
        self._queue(path, _Fault("cut", after_bytes=after_bytes), times)

    def corrupt(self, path: str, times: int = 1) -> None:
        self._queue(path, _Fault("corrupt"), times)

    def html(self, path: str, times: int = 1) -> None:
        self._queue(path, _Fault("html"), times)

    def slow(self, path: str, delay_seconds: float, times: int = 1) -> None:
        if delay_seconds < 0:
            raise ValueError(f"delay_seconds must be >= 0, not {delay_seconds}")
        self._queue(path, _Fault("slow", delay=delay_seconds), times)

    def misstate_length(self, path: str, by: int, times: int = 1) -> None:
        """Announces a Content-Length off by `by` bytes (more if > 0), sends the body, closes."""
        if by == 0:
            raise ValueError("by must not be 0: that is the true length")
        self._queue(path, _Fault("length", length_error=by), times)

    def huge_headers(self, path: str, size: int = 100_000, times: int = 1) -> None:
        """Adds one response header whose value is `size` bytes long."""
        if size < 1:
            raise ValueError(f"size must be at least 1, not {size}")
        self._queue(path, _Fault("headers", after_bytes=size), times)

    def unannounced(self, path: str, times: int = 1) -> None:
        """Sends the body with no Content-Length, ending it by closing the connection."""
        self._queue(path, _Fault("unannounced"), times)

    def stall(self, path: str, after_bytes: int, delay_seconds: float, times: int = 1) -> None:
        """Sends after_bytes of the body, then goes quiet for delay_seconds before the rest."""
        if after_bytes < 0 or delay_seconds < 0:
            raise ValueError("after_bytes and delay_seconds must be >= 0")
        self._queue(path, _Fault("stall", after_bytes=after_bytes, delay=delay_seconds), times)

    def ignore_range(self, path: str, times: int = 1) -> None:
        """Answers a Range request with 200 and the whole body, as some servers do."""
        self._queue(path, _Fault("ignore_range"), times)

    def throttle(self, bytes_per_second: float | None) -> None:
        """Sends every body at most this fast per connection (None: full speed again)."""
        if bytes_per_second is not None and bytes_per_second <= 0:
            raise ValueError(f"bytes_per_second must be > 0, not {bytes_per_second}")
        with self._state.lock:
            self._state.bytes_per_second = bytes_per_second

    def bytes_sent(self, path: str) -> int:
        """Body bytes sent for path so far (every request, whole or ranged)."""
        with self._state.lock:
            return self._state.sent.get(path, 0)

    def redirect_loop(self, path: str) -> str:
        """Makes path redirect to a second path that redirects back to it, forever."""
        _check_path(path)
        other = path + ".loop"
        self.redirect(other, self.url(path))
        return self.redirect(path, self.url(other))

    @property
    def requests(self) -> list[RequestRecord]:
        with self._state.lock:
            return list(self._state.log)

    def clear_log(self) -> None:
        with self._state.lock:
            self._state.log.clear()

    def count(self, path: str | None = None) -> int:
        with self._state.lock:
            if path is None:
                return len(self._state.log)
            return sum(1 for entry in self._state.log if entry.path == path)

    def _put(self, path: str, entry: _Content | _Redirect) -> str:
        url = self.url(path)
        with self._state.lock:
            self._state.entries[path] = entry
        return url

    def _queue(self, path: str, fault: _Fault, times: int) -> None:
        _check_path(path)
        _check_times(times)
        with self._state.lock:
            self._state.faults.setdefault(path, deque()).extend([fault] * times)
