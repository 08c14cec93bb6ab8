"""HTTP downloads: retries, resume, no web pages posing as binaries (the only requests user)."""

from __future__ import annotations

import contextlib
import http.client
import random
import re
import socket
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

import requests
import urllib3

from zoopm import __version__
from zoopm.digest import CHUNK_SIZE
from zoopm.errors import NetworkError, OfflineError, ZoopmError
from zoopm.reporting import Progress
from zoopm.trust import MAX_DOWNLOAD_BYTES

if TYPE_CHECKING:
    from zoopm.tasks import CancelToken

USER_AGENT = f"zoopm/{__version__} (+https://github.com/zoopm/zoopm)"
# An API answer is JSON of kilobytes; this bound keeps a wrong or hostile server from filling RAM.
MAX_ANSWER_BYTES = 32 * 1024 * 1024
_RETRY_STATUSES = {408, 429, 500, 502, 503, 504}
_MAX_RETRY_AFTER = 60.0
_LFS_POINTER = b"version https://git-lfs.github.com/spec/"
# Query parameters that are credentials: GitHub puts a short-lived one on private raw URLs.
_SECRET_PARAMS = frozenset({"token"})
_TOKEN_IN_TEXT = re.compile(r"[?&]token=[^&#'\"\s]*", re.IGNORECASE)
# What a socket, urllib3 or http.client raise while a body streams: all of them mean "broken".
_STREAM_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)

T = TypeVar("T")


class Sink(Protocol):
    """Where downloaded bytes go (the store's BlobWriter)."""

    @property
    def written(self) -> int: ...

    def write(self, chunk: bytes) -> None: ...

    def reset(self) -> None: ...


@runtime_checkable
class ResumableSink(Sink, Protocol):
    """A sink that may hold bytes kept by an earlier run, and records what the server says
    its bytes are, so that a later run can resume them."""

    @property
    def validator(self) -> str | None: ...

    def started(self, validator: str | None) -> None: ...


@dataclass(frozen=True)
class HttpResponse:
    """A whole, small HTTP answer (an API call); header names are lower-case."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes


class _Retry(Exception):
    """A transient failure; the download is tried again."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


@dataclass
class _Resume:
    """What a later attempt needs to continue where a broken one stopped."""

    validator: str | None = None


class HttpClient:
    """One requests.Session per run, with timeouts, bounded retries and resumable downloads.

    Every failure leaves as a ZoopmError: NetworkError for what the network or a server did
    (so a caller can try the next mirror), Cancelled when the cancel token was set.
    """

    def __init__(
        self,
        *,
        offline: bool = False,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        attempts: int = 4,
        backoff: float = 0.5,
        sleep: Callable[[float], None] | None = None,
        cancel: CancelToken | None = None,
        max_answer: int = MAX_ANSWER_BYTES,
        max_download: int = MAX_DOWNLOAD_BYTES,
    ) -> None:
        self.offline = offline
        self._timeout = (connect_timeout, read_timeout)
        self._attempts = attempts
        self._backoff = backoff
        self._cancel = cancel
        # A cancel token's sleep wakes the moment the run is cancelled; time.sleep would not.
        self._sleep = sleep or (cancel.sleep if cancel is not None else time.sleep)
        self._max_answer = max_answer
        self._max_download = max_download
        self._session: requests.Session | None = None

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            session = requests.Session()
            session.headers["User-Agent"] = USER_AGENT
            self._session = session
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()

    def get(self, url: str, headers: dict[str, str]) -> HttpResponse:
        """One GET read whole (up to max_answer bytes), retried on connection errors and 5xx.

        Other statuses are returned for the caller to judge.
        """
        if self.offline:
            raise OfflineError(f"{without_token(url)}: offline, and this request is not cached")
        return self._retrying(url, lambda: self._get_once(url, headers))

    def _retrying(self, url: str, attempt_once: Callable[[], T]) -> T:
        """attempt_once's result, trying again after each _Retry with backoff, up to the limit."""
        for attempt in range(1, self._attempts + 1):
            self._check_cancel()
            try:
                return attempt_once()
            except _Retry as retry:
                if attempt == self._attempts:
                    raise NetworkError(
                        f"{without_token(url)}: {retry.reason} (gave up after {attempt} attempts)"
                    ) from None
                self.pause(attempt, retry.wait)
        raise AssertionError("unreachable")

    def _get_once(self, url: str, headers: dict[str, str]) -> HttpResponse:
        with self._send(url, headers) as response:
            if response.status_code >= 500:
                raise _Retry(
                    f"HTTP {response.status_code}",
                    _retry_after(response.headers.get("Retry-After")),
                )
            limit = self._max_answer
            if _content_length(response) > limit:
                raise self._too_large(url, "the answer", limit)
            body = bytearray()
            try:
                for chunk in response.iter_content(CHUNK_SIZE):
                    self._check_cancel()
                    body += chunk
                    if len(body) > limit:
                        raise self._too_large(url, "the answer", limit)
            except _STREAM_ERRORS as exc:
                raise _Retry(self._broken(url, len(body), exc)) from None
            return HttpResponse(
                response.url,
                response.status_code,
                {k.lower(): v for k, v in response.headers.items()},
                bytes(body),
            )

    def send(self, method: str, url: str, headers: dict[str, str], body: bytes) -> HttpResponse:
        """One request with a body (an API write), its answer read whole (up to max_answer).

        Never retried and no redirect followed: a write that reached the server must not be
        made twice, and a redirected POST would arrive as a GET. Every status is returned.
        """
        where = without_token(url)
        if self.offline:
            raise OfflineError(f"{where}: offline, and {method} needs the network")
        self._check_cancel()
        unknown = "the server may or may not have made the change"
        try:
            response = self.session.request(
                method,
                url,
                headers=headers,
                data=body,
                stream=True,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            reason = _connection_problem(url, exc, self._timeout[1])
            raise NetworkError(f"{where}: {method} failed: {reason}; {unknown}") from None
        except (requests.RequestException, ValueError) as exc:
            raise NetworkError(f"{where}: {method} failed: {_short(exc)}") from None
        with response:
            limit = self._max_answer
            if _content_length(response) > limit:
                raise self._too_large(url, "the answer", limit)
            answer = bytearray()
            try:
                for chunk in response.iter_content(CHUNK_SIZE):
                    answer += chunk
                    if len(answer) > limit:
                        raise self._too_large(url, "the answer", limit)
            except _STREAM_ERRORS as exc:
                reason = self._broken(url, len(answer), exc)
                raise NetworkError(f"{where}: {method} answer lost: {reason}; {unknown}") from None
            return HttpResponse(
                response.url or url,
                response.status_code,
                {k.lower(): v for k, v in response.headers.items()},
                bytes(answer),
            )

    def pause(self, attempt: int, wait: float | None = None) -> None:
        """Sleeps before retry number attempt: wait if the server said, else backoff with jitter."""
        delay = wait if wait is not None else self._backoff * 2 ** (attempt - 1)
        self._sleep(delay + random.uniform(0, self._backoff / 2))
        self._check_cancel()

    def download(self, url: str, sink: Sink, progress: Progress) -> None:
        """Streams url into sink, resuming with Range after a cut, retrying transient failures."""
        if self.offline:
            raise OfflineError(f"{without_token(url)}: offline, and this file is not in the store")
        self._check_cancel()
        try:
            scheme = urllib.parse.urlsplit(url).scheme
        except ValueError as exc:
            raise NetworkError(f"{without_token(url)}: not a URL: {exc}") from None
        if scheme == "file":
            self._copy_file(url, sink, progress)
            return
        if scheme not in ("http", "https"):
            raise NetworkError(
                f"{without_token(url)}: unsupported URL scheme {scheme!r}", hint="use http or https"
            )
        # Bytes kept by an earlier run go on with the validator they were recorded with.
        kept = sink.validator if isinstance(sink, ResumableSink) and sink.written else None
        if kept:
            progress.advance(sink.written)
        resume = _Resume(kept)
        self._retrying(url, lambda: self._attempt(url, sink, progress, resume))

    def _attempt(self, url: str, sink: Sink, progress: Progress, resume: _Resume) -> None:
        where = without_token(url)
        # Identity encoding: the hashes are of the file's bytes, and Range counts those bytes.
        headers = {"Accept-Encoding": "identity"}
        offset = sink.written
        if offset and resume.validator:
            headers |= {"Range": f"bytes={offset}-", "If-Range": resume.validator}
        elif offset:
            sink.reset()
            progress.restart()
            offset = 0
        with self._send(url, headers) as response:
            status = response.status_code
            if status in _RETRY_STATUSES:
                raise _Retry(f"HTTP {status}", _retry_after(response.headers.get("Retry-After")))
            if status == 416 and offset and _complete_at(response, offset):
                # The previous answer broke off after its last byte (a Content-Length that
                # promised more than the file has): every byte is here already.
                return
            if status not in (200, 206):
                error = NetworkError(
                    f"{without_token(url)}: HTTP {status} {response.reason or ''}".rstrip()
                )
                error.status = status
                raise error
            if status == 206 and not _resumes_at(response.headers.get("Content-Range"), offset):
                sink.reset()
                progress.restart()
                raise _Retry("the server answered a resume request with the wrong range")
            if status == 200 and offset:
                sink.reset()
                progress.restart()
                offset = 0
            if offset + _content_length(response) > self._max_download:
                raise self._too_large(url, "the file", self._max_download)
            content_type = response.headers.get("Content-Type", "")
            if content_type.split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml"):
                raise NetworkError(
                    f"{where}: the server answered with an HTML page, not a model binary",
                    hint="the link leads to a web page (a Dropbox link needs ?dl=1); "
                    "find a direct download URL or add a [mirrors] entry",
                )
            validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
            # A weak validator cannot guard a byte-range resume (RFC 9110, If-Range).
            resume.validator = None if validator and validator.startswith("W/") else validator
            if isinstance(sink, ResumableSink):
                sink.started(resume.validator)
            self._stream(url, response, sink, progress)

    def _stream(
        self, url: str, response: requests.Response, sink: Sink, progress: Progress
    ) -> None:
        where = without_token(url)
        try:
            # read1 hands over whatever has arrived, so bytes before a cut are kept for the resume.
            while chunk := response.raw.read1(CHUNK_SIZE):
                self._check_cancel()
                if sink.written == 0 and chunk.startswith(_LFS_POINTER):
                    raise NetworkError(
                        f"{where}: the server answered with a Git LFS pointer, not the binary",
                        hint="download the file through Git LFS, or use its media URL",
                    )
                if sink.written + len(chunk) > self._max_download:
                    raise self._too_large(url, "the file", self._max_download)
                sink.write(chunk)
                progress.advance(len(chunk))
        except ZoopmError:
            raise
        except _STREAM_ERRORS as exc:
            raise _Retry(self._broken(url, sink.written, exc)) from None

    @contextlib.contextmanager
    def _send(self, url: str, headers: dict[str, str]) -> Iterator[requests.Response]:
        """A streamed GET with redirects followed; every requests failure becomes ours here."""
        where = without_token(url)
        try:
            response = self.session.get(
                url, headers=headers, stream=True, timeout=self._timeout, allow_redirects=True
            )
        except requests.TooManyRedirects:
            raise NetworkError(
                f"{where}: too many redirects (the server sends the request round in a loop)",
                hint="the URL is broken on the server's side; use another URL or a [mirrors] entry",
            ) from None
        except (requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema) as exc:
            raise NetworkError(
                f"{where}: redirected to a URL zoopm does not follow: {_short(exc)}",
                hint="zoopm downloads over http and https only; use another URL or a [mirrors] "
                "entry",
            ) from None
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader) as exc:
            raise NetworkError(f"{where}: cannot request it: {_short(exc)}") from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Retry(_connection_problem(url, exc, self._timeout[1])) from None
        except (requests.RequestException, ValueError) as exc:
            raise NetworkError(f"{where}: the request failed: {_short(exc)}") from None
        except _STREAM_ERRORS as exc:
            raise _Retry(_connection_problem(url, exc, self._timeout[1])) from None
        with response:
            yield response

    def _copy_file(self, url: str, sink: Sink, progress: Progress) -> None:
        path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
        if sink.written:
            sink.reset()
        try:
            with path.open("rb") as stream:
                while chunk := stream.read(CHUNK_SIZE):
                    self._check_cancel()
                    if sink.written + len(chunk) > self._max_download:
                        raise self._too_large(url, "the file", self._max_download)
                    sink.write(chunk)
                    progress.advance(len(chunk))
        except OSError as exc:
            raise NetworkError(f"{url}: cannot read: {exc.strerror or exc}") from None

    def _check_cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.check()

    def _broken(self, url: str, received: int, exc: BaseException) -> str:
        if _caused_by(exc, (urllib3.exceptions.ReadTimeoutError, socket.timeout, TimeoutError)):
            return (
                f"timed out: no data for {self._timeout[1]:g} s after {received} bytes "
                "(raise ZOOPM_READ_TIMEOUT for a slow server)"
            )
        return f"connection broke after {received} bytes: {_short(exc)}"

    @staticmethod
    def _too_large(url: str, what: str, limit: int) -> NetworkError:
        return NetworkError(
            f"{without_token(url)}: {what} is larger than {_size(limit)}, the most zoopm accepts",
            hint="the server sends far more than expected; check that the URL (and "
            "ZOOPM_GITHUB_API) point where they should",
        )


def without_token(url: str) -> str:
    """url as it may be shown or written: without the short-lived `token` query parameter
    GitHub puts on a private repository's raw URLs."""
    base, hash_mark, fragment = url.partition("#")
    path, question, query = base.partition("?")
    if not question:
        return url
    params = query.split("&")
    kept = [p for p in params if _param_name(p) not in _SECRET_PARAMS]
    if len(kept) == len(params):
        return url
    return path + ("?" + "&".join(kept) if kept else "") + hash_mark + fragment


def _param_name(param: str) -> str:
    return urllib.parse.unquote_plus(param.partition("=")[0]).strip().lower()


def _size(limit: int) -> str:
    mib = limit / (1024 * 1024)
    return f"{mib / 1024:g} GiB" if mib >= 1024 else f"{mib:g} MiB"


def _content_length(response: requests.Response) -> int:
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isascii() and value.isdigit() else 0


def _complete_at(response: requests.Response, offset: int) -> bool:
    """Whether a 416 answer says the file is exactly offset bytes long."""
    content_range = response.headers.get("Content-Range", "")
    total = content_range.rpartition("/")[2]
    return content_range.startswith("bytes */") and total.isdigit() and int(total) == offset


def _caused_by(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> bool:
    return any(isinstance(cause, kinds) for cause in _causes(exc))


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """exc and what it wraps: requests and urllib3 nest the real cause in args and reason."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 20:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [*current.args, getattr(current, "reason", None)]
        inner += [current.__cause__, current.__context__]
        todo.extend(x for x in inner if isinstance(x, BaseException))


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return min(max(float(value), 0.0), _MAX_RETRY_AFTER)
    except ValueError:
        return None


def _resumes_at(content_range: str | None, offset: int) -> bool:
    if not content_range or not content_range.startswith("bytes "):
        return False
    start = content_range[6:].split("-", 1)[0]
    return start.isdigit() and int(start) == offset


def _connection_problem(url: str, exc: BaseException, read_timeout: float) -> str:
    """What went wrong with a connection, in words instead of urllib3's nested reprs."""
    text = str(exc)
    host = urllib.parse.urlsplit(url).hostname or without_token(url)
    if isinstance(exc, requests.ConnectTimeout):
        return f"timed out connecting to {host}"
    if isinstance(exc, requests.Timeout):
        return (
            f"timed out: {host} sent nothing for {read_timeout:g} s "
            "(raise ZOOPM_READ_TIMEOUT for a slow server)"
        )
    for cause in _causes(exc):
        if isinstance(cause, http.client.LineTooLong):
            return f"{host} sent a response header too large to read ({cause})"
        if isinstance(cause, http.client.HTTPException) and not isinstance(
            cause, http.client.RemoteDisconnected
        ):
            return f"{host} sent an answer that is not valid HTTP: {_short(cause)}"
    if "NameResolutionError" in text or "Name or service not known" in text:
        return f"cannot resolve host {host!r} (is it spelled right, and is there a network?)"
    if "Connection refused" in text:
        return f"{host} refused the connection"
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return f"{host} closed the connection"
    return f"cannot connect to {host}: {_short(exc)}"


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    # An exception's text may quote a whole URL, credential and all.
    return _TOKEN_IN_TEXT.sub("", text)[:160]
