"""HTTP downloads: retries, resume, no web pages posing as binaries (the only requests user)."""

from __future__ import annotations

import random
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import requests
import urllib3

from zoopm import __version__
from zoopm.digest import CHUNK_SIZE
from zoopm.errors import NetworkError, OfflineError, ZoopmError
from zoopm.reporting import Progress

USER_AGENT = f"zoopm/{__version__} (+https://github.com/zoopm/zoopm)"
_RETRY_STATUSES = {408, 429, 500, 502, 503, 504}
_MAX_RETRY_AFTER = 60.0
_LFS_POINTER = b"version https://git-lfs.github.com/spec/"


class Sink(Protocol):
    """Where downloaded bytes go (the store's BlobWriter)."""

    @property
    def written(self) -> int: ...

    def write(self, chunk: bytes) -> None: ...

    def reset(self) -> None: ...


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
    """One requests.Session per run, with timeouts, bounded retries and resumable downloads."""

    def __init__(
        self,
        *,
        offline: bool = False,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        attempts: int = 4,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.offline = offline
        self._timeout = (connect_timeout, read_timeout)
        self._attempts = attempts
        self._backoff = backoff
        self._sleep = sleep
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
        """One GET read whole, retried on connection errors and 5xx; other statuses are returned."""
        if self.offline:
            raise OfflineError(f"{url}: offline, and this request is not cached")
        for attempt in range(1, self._attempts + 1):
            try:
                response = self.session.get(
                    url, headers=headers, timeout=self._timeout, allow_redirects=True
                )
            except requests.exceptions.InvalidURL as exc:
                raise NetworkError(f"{url}: invalid URL: {exc}") from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure = _connection_problem(url, exc)
                wait = None
            else:
                if response.status_code < 500:
                    return HttpResponse(
                        response.url,
                        response.status_code,
                        {k.lower(): v for k, v in response.headers.items()},
                        response.content,
                    )
                failure = f"HTTP {response.status_code}"
                wait = _retry_after(response.headers.get("Retry-After"))
            if attempt == self._attempts:
                raise NetworkError(f"{url}: {failure} (gave up after {attempt} attempts)")
            self.pause(attempt, wait)
        raise AssertionError("unreachable")

    def pause(self, attempt: int, wait: float | None = None) -> None:
        """Sleeps before retry number attempt: wait if the server said, else backoff with jitter."""
        delay = wait if wait is not None else self._backoff * 2 ** (attempt - 1)
        self._sleep(delay + random.uniform(0, self._backoff / 2))

    def download(self, url: str, sink: Sink, progress: Progress) -> None:
        """Streams url into sink, resuming with Range after a cut, retrying transient failures."""
        if self.offline:
            raise OfflineError(f"{url}: offline, and this file is not in the store")
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme == "file":
            self._copy_file(url, sink, progress)
            return
        if scheme not in ("http", "https"):
            raise NetworkError(
                f"{url}: unsupported URL scheme {scheme!r}", hint="use http or https"
            )
        resume = _Resume()
        for attempt in range(1, self._attempts + 1):
            try:
                self._attempt(url, sink, progress, resume)
                return
            except _Retry as retry:
                if attempt == self._attempts:
                    raise NetworkError(
                        f"{url}: {retry.reason} (gave up after {attempt} attempts)"
                    ) from None
                self.pause(attempt, retry.wait)

    def _attempt(self, url: str, sink: Sink, progress: Progress, resume: _Resume) -> None:
        # Identity encoding: the hashes are of the file's bytes, and Range counts those bytes.
        headers = {"Accept-Encoding": "identity"}
        offset = sink.written
        if offset and resume.validator:
            headers |= {"Range": f"bytes={offset}-", "If-Range": resume.validator}
        elif offset:
            sink.reset()
            progress.restart()
            offset = 0
        try:
            response = self.session.get(
                url, headers=headers, stream=True, timeout=self._timeout, allow_redirects=True
            )
        except requests.exceptions.InvalidURL as exc:
            raise NetworkError(f"{url}: invalid URL: {exc}") from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Retry(_connection_problem(url, exc)) from None
        with response:
            status = response.status_code
            if status in _RETRY_STATUSES:
                raise _Retry(f"HTTP {status}", _retry_after(response.headers.get("Retry-After")))
            if status not in (200, 206):
                raise NetworkError(f"{url}: HTTP {status} {response.reason or ''}".rstrip())
            if status == 206 and not _resumes_at(response.headers.get("Content-Range"), offset):
                sink.reset()
                progress.restart()
                raise _Retry("the server answered a resume request with the wrong range")
            if status == 200 and offset:
                sink.reset()
                progress.restart()
            content_type = response.headers.get("Content-Type", "")
            if content_type.split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml"):
                raise NetworkError(
                    f"{url}: the server answered with an HTML page, not a model binary",
                    hint="the link leads to a web page (a Dropbox link needs ?dl=1); "
                    "find a direct download URL or add a [mirrors] entry",
                )
            validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
            # A weak validator cannot guard a byte-range resume (RFC 9110, If-Range).
            resume.validator = None if validator and validator.startswith("W/") else validator
            self._stream(url, response, sink, progress)

    def _stream(
        self, url: str, response: requests.Response, sink: Sink, progress: Progress
    ) -> None:
        try:
            # read1 hands over whatever has arrived, so bytes before a cut are kept for the resume.
            while chunk := response.raw.read1(CHUNK_SIZE):
                if sink.written == 0 and chunk.startswith(_LFS_POINTER):
                    raise NetworkError(
                        f"{url}: the server answered with a Git LFS pointer, not the binary",
                        hint="download the file through Git LFS, or use its media URL",
                    )
                sink.write(chunk)
                progress.advance(len(chunk))
        except ZoopmError:
            raise
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise _Retry(f"connection broke after {sink.written} bytes: {_short(exc)}") from None

    @staticmethod
    def _copy_file(url: str, sink: Sink, progress: Progress) -> None:
        path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
        if sink.written:
            sink.reset()
        try:
            with path.open("rb") as stream:
                while chunk := stream.read(CHUNK_SIZE):
                    sink.write(chunk)
                    progress.advance(len(chunk))
        except OSError as exc:
            raise NetworkError(f"{url}: cannot read: {exc.strerror or exc}") from None


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


def _connection_problem(url: str, exc: BaseException) -> str:
    """What went wrong with a connection, in words instead of urllib3's nested reprs."""
    text = str(exc)
    host = urllib.parse.urlsplit(url).hostname or url
    if isinstance(exc, requests.Timeout):
        return f"timed out talking to {host}"
    if "NameResolutionError" in text or "Name or service not known" in text:
        return f"cannot resolve host {host!r} (is it spelled right, and is there a network?)"
    if "Connection refused" in text:
        return f"{host} refused the connection"
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return f"{host} closed the connection"
    return f"cannot connect to {host}: {_short(exc)}"


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]
