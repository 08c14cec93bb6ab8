"""Fetcher: pinned bytes into the store from their URLs (mirrors first), every byte verified."""

from __future__ import annotations

import contextlib
import hashlib
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from zoopm.digest import Digest
from zoopm.errors import IntegrityError, NetworkError, OfflineError, ZoopmError
from zoopm.reporting import Reporter, detail
from zoopm.settings import DEFAULT_LOCK_TIMEOUT
from zoopm.storage.partial import ResumeKey
from zoopm.storage.store import Expected, Store
from zoopm.tasks import CancelToken

if TYPE_CHECKING:
    from zoopm.network.archive import WebArchive
    from zoopm.network.net import HttpClient
    from zoopm.remote_store.client import RemoteStore


def candidate_urls(urls: Sequence[str], mirrors: Mapping[str, Sequence[str]]) -> list[str]:
    """Every URL to try, in order: each URL's mirrors (longest matching prefix), then the URL."""
    result: list[str] = []
    for url in urls:
        prefixes = sorted((p for p in mirrors if url.startswith(p)), key=len, reverse=True)
        if prefixes:
            rest = url[len(prefixes[0]) :]
            result.extend(_join(target, rest) for target in mirrors[prefixes[0]])
        result.append(url)
    return list(dict.fromkeys(result))


def _shown(url: str) -> str:
    from zoopm.network.net import without_token

    return without_token(url)


def _join(prefix: str, rest: str) -> str:
    if prefix.endswith("/") and rest.startswith("/"):
        return prefix + rest[1:]
    return prefix + rest


class Fetcher:
    """Downloads into the store with mirror failover; the HTTP client is made only when needed."""

    def __init__(
        self,
        store: Store,
        client: Callable[[], HttpClient],
        mirrors: Mapping[str, Sequence[str]],
        reporter: Reporter,
        offline: bool = False,
        *,
        token: CancelToken | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        archive: WebArchive | None = None,
        remote: RemoteStore | None = None,
    ) -> None:
        self._store = store
        self._client = client
        self._mirrors = mirrors
        self._reporter = reporter
        self._offline = offline
        self._token = token
        self._lock_timeout = lock_timeout
        self._swept = False
        # Asked for a dead link's capture once the origin URLs and mirrors fail; never offline.
        self._archive = None if offline else archive
        # The shared remote store, asked before any URL for a blob whose sha256 is pinned.
        self._remote = None if offline else remote

    def fetch_binary(self, url: str, sha1: str | None, label: str) -> Digest:
        """The binary's digest, from the store when its sha1 is known there, else downloaded."""
        if sha1 is not None and (stored := self._store.find_by_sha1(sha1)) is not None:
            return stored
        key = f"sha1-{sha1.lower()}" if sha1 else hashlib.sha256(url.encode()).hexdigest()
        with self._before_download(label, [url], key):
            # Another process may have stored this binary while we waited for the lock.
            if sha1 is not None and (stored := self._store.find_by_sha1(sha1)) is not None:
                return stored
            if sha1 is not None and self._remote is not None:
                found = self._remote.fetch_by_sha1(self._store, sha1, label)
                if not isinstance(found, str):
                    return found
            return self._download(
                candidate_urls([url], self._mirrors), Expected(sha1=sha1), label, key, [url]
            )

    def ensure(self, urls: Sequence[str], expected: Expected, label: str) -> None:
        """Makes sure the store holds the blob expected.sha256 names, proven, downloading if not."""
        assert expected.sha256 is not None
        if self._proven(expected):
            return
        with self._before_download(label, urls, expected.sha256, self._remote is not None):
            why = self._stored_or_why(expected, label)
            if why is None:
                return
            if not urls:
                raise NetworkError(f"{label}: {why}, and there is no URL to download it from")
            key = f"sha256-{expected.sha256}"
            self._download(candidate_urls(urls, self._mirrors), expected, label, key, urls)

    def from_remote_store(self, expected: Expected, label: str) -> bool:
        """Whether the blob is in the store now, proven, taken from the remote store if needed
        (never from a URL): for bytes whose origin failed and that the lock pins by hash."""
        assert expected.sha256 is not None
        if self._proven(expected):
            return True
        if self._remote is None:
            return False
        with self._before_download(label, [], expected.sha256, remote=True):
            return self._stored_or_why(expected, label) is None

    def _stored_or_why(self, expected: Expected, label: str) -> str | None:
        """None once the store holds the blob, proven: another process stored it while this
        one waited for the blob's lock, or the remote store had it. Otherwise why not."""
        if self._proven(expected):
            return None
        if self._remote is None:
            return "it is not in the store"
        fetched = self._remote.fetch(self._store, expected, label)
        return f"it is not in the store and {fetched}" if isinstance(fetched, str) else None

    def _proven(self, expected: Expected) -> bool:
        assert expected.sha256 is not None
        return self._store.prove(expected.sha256, expected.size, expected.sha1) is not None

    @contextlib.contextmanager
    def _before_download(
        self, label: str, urls: Sequence[str], key: str, remote: bool = False
    ) -> Iterator[None]:
        """Refuses what cannot be downloaded, then holds the blob's lock for the download."""
        if self._offline:
            raise OfflineError(f"{label}: not in the store, and zoopm is offline")
        if not urls and not remote:
            raise NetworkError(f"{label}: not in the store and there is no URL to download it from")
        if not self._swept:
            self._swept = True
            self._store.sweep_partials()
        with self._store.blob_lock(
            key,
            timeout=self._lock_timeout,
            token=self._token,
            on_wait=self._reporter.info,
            label=label,
        ):
            yield

    def _download(
        self,
        candidates: list[str],
        expected: Expected,
        label: str,
        key: str,
        origins: Sequence[str],
    ) -> Digest:
        failures: list[ZoopmError] = []
        client = self._client()
        for url in candidates:
            try:
                digest = self._download_from(client, url, expected, label, key)
            except (NetworkError, IntegrityError) as exc:
                failures.append(exc)
                if len(candidates) > 1 or self._archive is not None:
                    self._reporter.warning(f"{exc.message}; trying the next URL")
                continue
            detail(self._reporter, f"{label}: from {_shown(url)}")
            return digest
        first = failures[0]
        if self._archive is not None:
            return self._from_archive(
                self._archive, origins, expected, label, key=key, failures=failures
            )
        if len(failures) == 1:
            raise first
        raise type(first)(
            f"{label}: all {len(failures)} URLs failed; first: {first.message}", first.hint
        )

    def _from_archive(
        self,
        archive: WebArchive,
        origins: Sequence[str],
        expected: Expected,
        label: str,
        *,
        key: str,
        failures: list[ZoopmError],
    ) -> Digest:
        """The blob from the web archive's capture of an origin URL (never a mirror's), verified
        by hash; if there is none, an error naming every source tried and why it failed."""
        from zoopm.network.archive import ARCHIVE_NAME

        reasons = [f.message for f in failures]
        verified = "sha256" if expected.sha256 else "sha1" if expected.sha1 else None
        askable = [u for u in origins if urllib.parse.urlsplit(u).scheme in ("http", "https")]
        if verified is None:
            # Nothing proves a capture right: its bytes must not become what the lock pins.
            reasons.append(
                f"{ARCHIVE_NAME} not asked: there is no sha1 to verify a capture against"
            )
        elif not askable:
            reasons.append(f"{ARCHIVE_NAME} not asked: no http(s) origin URL")
        for origin in askable if verified else ():
            try:
                capture = archive.find(origin)
                if capture is None:
                    reasons.append(f"{ARCHIVE_NAME} ({archive.api}): no capture of {origin}")
                    continue
                digest = self._download_from(
                    archive.client(), capture.raw_url, expected, label, key
                )
            except (NetworkError, IntegrityError) as exc:
                reasons.append(f"{ARCHIVE_NAME}: {exc.message}")
                continue
            self._reporter.warning(
                f"{label}: {len(failures)} URL(s) failed; served from the Internet Archive "
                f"capture of {capture.date}, {verified} verified"
            )
            return digest
        first = failures[0]
        raise type(first)(
            f"{label}: every source failed: {'; '.join(reasons)}",
            "the origin is gone and no copy with the expected hash was found; add a mirror "
            "that has it ([mirrors] in zoo.toml), or put the file in a local model directory",
        )

    def _download_from(
        self, client: HttpClient, url: str, expected: Expected, label: str, key: str
    ) -> Digest:
        """The blob from url; a download kept by an earlier run goes on where it stopped, and
        if the result does not verify it is downloaded once more from byte 0."""
        from zoopm.network.net import without_token

        resume = None
        if urllib.parse.urlsplit(url).scheme in ("http", "https"):
            # The URL is written into the sidecar: never with a credential in it.
            resume = ResumeKey(key, without_token(url))
        for fresh in (False, True):
            if self._token is not None:
                self._token.check()
            progress = self._reporter.transfer(f"downloading {label}", expected.size)
            resumed = False
            try:
                with self._store.writer(
                    expected, url, resume=resume, fresh=fresh, token=self._token
                ) as writer:
                    client.download(url, writer, progress)
                    resumed = writer.resumed
                    return writer.commit().digest
            except IntegrityError as exc:
                if fresh or not resumed:
                    raise
                self._reporter.warning(
                    f"{exc.message}; the bytes kept from an earlier run were wrong, "
                    "downloading again from the start"
                )
            finally:
                progress.close()
        raise AssertionError("unreachable")
