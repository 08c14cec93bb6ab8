"""The web archive: where a dead link's bytes were captured, from the availability API's answer.

Only the lookup lives here; the capture is downloaded and verified like any mirror's copy by
the Fetcher. The answer is third-party text: it is parsed into a frozen Capture, its snapshot
URL must be http(s), and an answer larger than MAX_ARCHIVE_ANSWER is refused.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from zoopm.errors import NetworkError
from zoopm.trust import Trust, url_problem

if TYPE_CHECKING:
    from zoopm.network.net import HttpClient

# An availability answer is a few hundred bytes; anything far larger is not one.
MAX_ARCHIVE_ANSWER = 64 * 1024
# Most Caffe binaries were published between 2014 and 2017; the second ask names this year.
SECOND_ASK_TIMESTAMP = "2016"
ARCHIVE_NAME = "the Internet Archive"
_TIMESTAMP = re.compile(r"[0-9]{8,14}")
_PLAYBACK = re.compile(r"(/web/)([0-9]{8,14})(/)")


@dataclass(frozen=True)
class Capture:
    """One capture of an origin URL: its raw-bytes URL and when it was taken."""

    original: str
    raw_url: str
    timestamp: str

    @property
    def date(self) -> str:
        """The capture's day as YYYY-MM-DD."""
        t = self.timestamp
        return f"{t[0:4]}-{t[4:6]}-{t[6:8]}"


class WebArchive:
    """Asks the availability API for the closest good capture of a URL (no token, no cookie)."""

    def __init__(self, api: str, client: Callable[[], HttpClient]) -> None:
        self.api = api
        self._client_factory = client
        self._client: HttpClient | None = None

    def client(self) -> HttpClient:
        """The HTTP client for the archive: its own session, which keeps no cookie."""
        if self._client is None:
            client = self._client_factory()
            client.session.cookies.set_policy(
                http.cookiejar.DefaultCookiePolicy(allowed_domains=[])
            )
            self._client = client
        return self._client

    def find(self, original: str) -> Capture | None:
        """The capture to download for original, or None if the archive has no good one.

        Asked once without a timestamp and, if that answers empty, once more with one."""
        capture = self._ask(original, None)
        if capture is None:
            capture = self._ask(original, SECOND_ASK_TIMESTAMP)
        return capture

    def _ask(self, original: str, timestamp: str | None) -> Capture | None:
        params = {"url": original}
        if timestamp is not None:
            params["timestamp"] = timestamp
        url = f"{self.api}?{urllib.parse.urlencode(params)}"
        answer = self.client().get(url, {"Accept": "application/json"})
        if answer.status != 200:
            raise NetworkError(f"{self.api}: the archive's API answered HTTP {answer.status}")
        return parse_answer(answer.body, original, self.api)


def parse_answer(body: bytes, original: str, api: str) -> Capture | None:
    """The capture an availability answer offers, or None; an answer of another shape fails."""
    if len(body) > MAX_ARCHIVE_ANSWER:
        raise NetworkError(f"{api}: the archive's answer is larger than {MAX_ARCHIVE_ANSWER} bytes")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise NetworkError(f"{api}: the archive's answer is not JSON") from None
    snapshots = data.get("archived_snapshots") if isinstance(data, dict) else None
    if not isinstance(snapshots, dict):
        raise NetworkError(f"{api}: the archive's answer has no archived_snapshots")
    closest = snapshots.get("closest")
    if closest is None:
        return None
    if not isinstance(closest, dict):
        raise NetworkError(f"{api}: the archive's answer has a closest that is not an object")
    # status is the HTTP status the archive saw: a captured 404 or redirect is not the file.
    if closest.get("available") is not True or str(closest.get("status")) != "200":
        return None
    playback = closest.get("url")
    timestamp = closest.get("timestamp")
    if not isinstance(playback, str) or not isinstance(timestamp, str):
        raise NetworkError(f"{api}: the archive's answer has no snapshot url or timestamp")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise NetworkError(f"{api}: the archive's answer has a timestamp {timestamp[:40]!r}")
    raw = raw_url(playback)
    problem = url_problem(raw, Trust.THIRD_PARTY)
    if problem:
        raise NetworkError(f"{api}: the archive's snapshot URL is refused: {problem}")
    return Capture(original, raw, timestamp)


def raw_url(playback: str) -> str:
    """The capture's original bytes: `…/web/<ts>/<url>` becomes `…/web/<ts>id_/<url>`."""
    return _PLAYBACK.sub(r"\1\2id_\3", playback, count=1)
