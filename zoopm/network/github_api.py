"""GitHub REST client: versioned JSON requests, ETag caching, rate limits, token kept to the API."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoopm.atomic import atomic_write
from zoopm.errors import NetworkError, RateLimitError
from zoopm.network.net import HttpClient, HttpResponse, without_token

API_VERSION = "2022-11-28"
_UNREACHABLE_HINT = (
    "check your connection (and a proxy); ZOOPM_GITHUB_API sets the API's address, and "
    "'zoopm install --frozen' needs no API when zoo.lock is current"
)
_SECONDARY_ATTEMPTS = 3
_MAX_WAIT = 60.0


class GitHubNotFound(NetworkError):
    """The API answered 404: no such gist, repository, path or revision (or no access)."""

    default_hint = "check the id, path and revision; private gists need GITHUB_TOKEN"


class GitHubRefused(NetworkError):
    """The API refused a write as malformed or invalid (400, 422): nothing was changed."""

    default_hint = "nothing was changed on GitHub; fix what the message names and run again"


@dataclass(frozen=True)
class ApiResult:
    """A decoded API answer, and the Link header's rel → URL map."""

    url: str
    data: Any
    links: dict[str, str]
    from_cache: bool


class GitHubClient:
    """Calls the API at one base URL; the token goes to that base URL and nowhere else."""

    def __init__(
        self,
        http: HttpClient,
        api_url: str,
        token: str | None,
        cache_dir: Path | None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self.api_url = api_url.rstrip("/")
        self._token = token
        self._cache_dir = cache_dir
        self._sleep = sleep
        self._clock = clock

    def __repr__(self) -> str:
        return f"GitHubClient({self.api_url!r}, token={'<set>' if self._token else None})"

    def url(self, path: str, params: Mapping[str, str] | None = None) -> str:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return f"{self.api_url}/{path.lstrip('/')}{query}"

    def get(self, url: str) -> ApiResult:
        """GETs an API URL (built by url() or returned by the API), via the ETag cache."""
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
        if self._token and self._is_api(url):
            headers["Authorization"] = f"Bearer {self._token}"
        cached = self._cached(url)
        if cached is not None:
            headers["If-None-Match"] = cached[0]
        for attempt in range(1, _SECONDARY_ATTEMPTS + 1):
            try:
                response = self._http.get(url, headers)
            except NetworkError as exc:
                # [mirrors] serve binaries, not the API: the default hint would point there.
                raise NetworkError(exc.message, hint=_UNREACHABLE_HINT) from None
            if response.status == 304 and cached is not None:
                return ApiResult(url, cached[1], _links(response), from_cache=True)
            if response.status == 200:
                data = _json(response)
                etag = response.headers.get("etag")
                if etag:
                    self._store(url, etag, data)
                return ApiResult(url, data, _links(response), from_cache=False)
            wait = self._limit_wait(response)
            if wait is None or attempt == _SECONDARY_ATTEMPTS:
                raise self._error(response)
            self._sleep(wait)
        raise AssertionError("unreachable")

    @property
    def has_token(self) -> bool:
        return bool(self._token)

    def send(self, method: str, url: str, payload: Mapping[str, Any]) -> ApiResult:
        """POSTs, PATCHes or DELETEs payload (as JSON) to an API URL; never cached, never retried.

        A refusal is an error carrying GitHub's message and, for a 422, its validation details.
        """
        if not self._is_api(url):
            # The token goes with every write, so a write goes to the API base URL only.
            raise NetworkError(f"GitHub: refusing to send a {method} outside {self.api_url}: {url}")
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "Content-Type": "application/json; charset=utf-8",
        }
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        response = self._http.send(method, url, headers, body)
        if response.status in (200, 201):
            return ApiResult(url, _json(response), _links(response), from_cache=False)
        if response.status == 204:
            return ApiResult(url, None, _links(response), from_cache=False)
        raise self._write_error(method, response)

    def _write_error(self, method: str, response: HttpResponse) -> NetworkError:
        where = f"{method} {_strip_query(response.url)}"
        message = _message(response)
        if response.status == 401:
            return NetworkError(
                f"GitHub: {where}: the token was refused ({message or 'HTTP 401'})",
                hint="set GITHUB_TOKEN to a valid token with the 'gist' scope",
            )
        if response.status == 404:
            return GitHubNotFound(
                f"GitHub: {where}: not found",
                hint="the gist does not exist or is not yours, or GITHUB_TOKEN lacks the 'gist' "
                "scope (GitHub answers 404 for all three)",
            )
        if response.status in (400, 422):
            details = _validation_details(response)
            return GitHubRefused(
                f"GitHub: {where}: HTTP {response.status} {message}"
                + (f" ({details})" if details else "")
            )
        if response.status in (403, 429):
            return self._error(response)
        return NetworkError(
            f"GitHub: {where}: HTTP {response.status} {message}".rstrip(),
            hint="the change may or may not have been made; run the command again",
        )

    def _is_api(self, url: str) -> bool:
        return (
            url == self.api_url
            or url.startswith(self.api_url + "/")
            or url.startswith(self.api_url + "?")
        )

    def _limit_wait(self, response: HttpResponse) -> float | None:
        """How long to wait before retrying a secondary rate limit, or None if not to retry."""
        if response.status not in (403, 429):
            return None
        if response.headers.get("x-ratelimit-remaining") == "0":
            return None  # the primary limit: retrying before the reset only wastes time
        retry_after = response.headers.get("retry-after")
        if retry_after is not None:
            try:
                return min(max(float(retry_after), 0.0), _MAX_WAIT)
            except ValueError:
                return None
        return None

    def _error(self, response: HttpResponse) -> NetworkError:
        message = _message(response)
        where = _strip_query(response.url)
        if response.status in (403, 429) and response.headers.get("x-ratelimit-remaining") == "0":
            return self._rate_limited(response)
        if response.status in (403, 429) and "rate limit" in message.lower():
            return RateLimitError(
                f"GitHub: secondary rate limit at {where}: {message}",
                hint="wait a few minutes and run the command again",
            )
        if response.status == 404:
            return GitHubNotFound(f"GitHub: {where}: not found")
        if response.status == 401:
            return NetworkError(
                f"GitHub: {where}: the token was refused ({message})",
                hint="check GITHUB_TOKEN, or unset it for public gists and repositories",
            )
        return NetworkError(f"GitHub: {where}: HTTP {response.status} {message}".rstrip())

    def _rate_limited(self, response: HttpResponse) -> RateLimitError:
        limit = response.headers.get("x-ratelimit-limit", "?")
        reset = response.headers.get("x-ratelimit-reset", "")
        when = "later"
        if reset.isdigit():
            minutes = max(0, round((int(reset) - self._clock()) / 60))
            stamp = time.strftime("%H:%M:%S UTC", time.gmtime(int(reset)))
            when = f"at {stamp} (in {minutes} min)"
        hint = (
            "wait for the reset; your token's limit is per user"
            if self._token
            else "set GITHUB_TOKEN to a GitHub token: 5,000 requests an hour instead of 60"
        )
        return RateLimitError(
            f"GitHub API rate limit exceeded ({limit} requests an hour); it resets {when}", hint
        )

    def _cache_path(self, url: str) -> Path | None:
        if self._cache_dir is None:
            return None
        # Keyed by a hash of who asks and what: neither the token nor the URL is on disk in clear.
        identity = hashlib.sha256(f"{self._token or ''}\0{url}".encode()).hexdigest()
        return self._cache_dir / identity[:2] / f"{identity}.json"

    def _cached(self, url: str) -> tuple[str, Any] | None:
        path = self._cache_path(url)
        if path is None:
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            return str(entry["etag"]), entry["data"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _store(self, url: str, etag: str, data: Any) -> None:
        path = self._cache_path(url)
        if path is None:
            return
        if _holds_token(data):
            # A private repository's answer: its download_urls carry a short-lived token, which
            # must never reach the disk, and without it a cached answer is worth nothing.
            return
        # The cache only saves requests; failing to write it is not an error.
        with contextlib.suppress(OSError):
            atomic_write(path, json.dumps({"etag": etag, "data": data}).encode(), mode=0o600)


def _json(response: HttpResponse) -> Any:
    try:
        return json.loads(response.body)
    except ValueError:
        raise NetworkError(
            f"GitHub: {_strip_query(response.url)}: the answer is not JSON",
            hint="is ZOOPM_GITHUB_API the API's base URL (https://api.github.com)?",
        ) from None


def _holds_token(data: Any) -> bool:
    """Whether any string in a decoded answer is a URL with a credential in its query."""
    if isinstance(data, str):
        return without_token(data) != data
    if isinstance(data, dict):
        return any(_holds_token(value) for value in data.values())
    if isinstance(data, list):
        return any(_holds_token(value) for value in data)
    return False


def _message(response: HttpResponse) -> str:
    try:
        data = json.loads(response.body)
    except ValueError:
        return ""
    message = data.get("message", "") if isinstance(data, dict) else ""
    return " ".join(str(message).split())[:200]


def _validation_details(response: HttpResponse) -> str:
    """A 422's `errors`, one line: "Gist.files missing_field; Gist.user: must be verified"."""
    try:
        data = json.loads(response.body)
    except ValueError:
        return ""
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return ""
    parts = []
    for error in errors[:10]:
        if not isinstance(error, dict):
            continue
        where = ".".join(str(error[k]) for k in ("resource", "field") if error.get(k))
        text = str(error.get("message") or error.get("code") or "")
        parts.append(" ".join(f"{where} {text}".split())[:120])
    return "; ".join(parts)


def _links(response: HttpResponse) -> dict[str, str]:
    links: dict[str, str] = {}
    for part in response.headers.get("link", "").split(","):
        if ";" not in part:
            continue
        target, *params = part.split(";")
        for param in params:
            key, _, value = param.strip().partition("=")
            if key == "rel":
                links[value.strip('"')] = target.strip().strip("<>")
    return links


def _strip_query(url: str) -> str:
    return url.split("?", 1)[0]
