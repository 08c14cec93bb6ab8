"""Where the remote store is: a URL from ZOOPM_REMOTE, zoo.toml or config.toml, checked."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

# Served by any static web server: read, never written.
READ_ONLY_SCHEMES = ("http", "https")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
# fsspec protocols whose files live in this process's memory: a push there vanishes at exit.
_PROCESS_LOCAL = ("memory",)
EXAMPLES = "s3://bucket/prefix, gs://bucket/prefix, file:///srv/zoopm or https://host/zoopm"
# The hint of every refused remote store URL.
URL_HINT = f"use a URL such as {EXAMPLES}"


@dataclass(frozen=True)
class RemoteLocation:
    """A remote store's URL (no trailing slash) and the setting that named it."""

    url: str
    origin: str

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0]

    @property
    def writable(self) -> bool:
        return self.scheme not in READ_ONLY_SCHEMES

    @property
    def directory(self) -> str:
        """A file:// URL's directory (file://localhost/srv/x names /srv/x)."""
        return urllib.parse.unquote(urllib.parse.urlsplit(self.url).path)


def remote_problem(text: str) -> str | None:
    """Why text is not a remote store URL zoopm uses, or None if it is one."""
    if any(c.isspace() or not c.isprintable() for c in text):
        return "it contains a space or a control character"
    scheme, sep, rest = text.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        return f"not a URL with a scheme (such as {EXAMPLES})"
    if _at(rest) >= 0:
        # A user and key in the URL would end up in messages and logs (and a secret key with a
        # '/' in it hides the '@' from a URL parser): each backend has its own configuration.
        return (
            "it holds an '@' (credentials?); zoopm takes them from the backend's own configuration"
        )
    try:
        parts = urllib.parse.urlsplit(text)
        _ = parts.port  # a port that is not a number raises here
    except ValueError:
        # Not the parser's words: they quote the host part, which may hold a secret.
        return "not a URL: its host or port cannot be read"
    if parts.query or parts.fragment or "?" in rest or "#" in rest:
        return "it has a query or fragment; zoopm adds only blob names to the URL"
    if scheme in _PROCESS_LOCAL:
        return f"a {scheme}:// store lasts only as long as one zoopm process"
    segments = parts.path.rstrip("/").split("/")[1:]
    if any(segment in ("", ".", "..") for segment in segments):
        return "its path has an empty, '.' or '..' part; write the path as the store's own"
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            return "a file URL needs an absolute path, such as file:///srv/zoopm"
        if not parts.path.strip("/"):
            return "it names the root directory; name a directory for the store"
    elif not parts.netloc:
        return "it names no bucket or host"
    return None


def shown(text: str) -> str:
    """text as a message may show it, whatever it holds: no query or fragment (a signed URL's
    token), nothing before an '@' (a user and key, whatever characters the key holds), and
    only the scheme of a URL whose host part cannot be read."""
    scheme, sep, rest = text.partition("://")
    cut = ""
    if (query := re.search(r"[?#]", rest)) is not None:
        cut, rest = query.group(0) + "…", rest[: query.start()]
    at = _at(rest)
    if at >= 0:
        rest = "…" + rest[at:]
    if sep:
        try:
            _ = urllib.parse.urlsplit(f"{scheme}://{rest}").port
        except ValueError:
            return f"{scheme}://…"
    return f"{scheme}{sep}{rest}{cut}"


def _at(text: str) -> int:
    """Where the last '@' (or a character NFKC makes one, such as the full-width at) is."""
    import unicodedata  # only for a URL, which the no-op install never reads

    found = [i for i, c in enumerate(text) if unicodedata.normalize("NFKC", c) == "@"]
    return found[-1] if found else -1


def parse_remote(text: str, origin: str) -> RemoteLocation:
    """text as a RemoteLocation. If it is not one, ValueError says so in words a message can
    show: the URL as shown() leaves it, and the problem."""
    problem = remote_problem(text)
    if problem is not None:
        raise ValueError(f"{shown(text)!r}: {problem}")
    return RemoteLocation(text.rstrip("/"), origin)


def blob_key(sha256: str) -> str:
    """A blob's name in the remote store: the local store's layout, sha256/ab/abcdef…."""
    return f"sha256/{sha256[:2]}/{sha256}"


def alias_key(sha1: str) -> str:
    """A Caffe sha1's alias in the remote store, as in the local one: a small object holding
    the sha256 of the blob with that sha1. Only a hint: what it names is checked by both."""
    return f"sha1/{sha1[:2]}/{sha1}"
