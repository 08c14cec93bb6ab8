"""URL trust: which URLs the project's own files and third-party text may name, and size bounds."""

from __future__ import annotations

import enum
import urllib.parse

# No Caffe model in the wild is near this; a server that streams forever stops here.
MAX_DOWNLOAD_BYTES = 8 * 1024**3


class Trust(enum.Enum):
    """Who wrote the text a URL came from."""

    # zoo.toml, a local model directory's readme.md, the user configuration: the user's intent.
    PROJECT = "project"
    # A gist's or repository's readme.md, an index, an API answer: someone else's words.
    THIRD_PARTY = "third-party"


_SCHEMES = {
    Trust.PROJECT: ("http", "https", "file"),
    Trust.THIRD_PARTY: ("http", "https"),
}
# A file URL may name this machine only; any other host would be read as a local path anyway.
_LOCAL_HOSTS = ("", "localhost")

URL_HINTS = {
    Trust.PROJECT: "use an http://, https:// or file:/// URL",
    Trust.THIRD_PARTY: (
        "text from a gist, a repository or an index may only name http:// or https:// URLs; "
        "to use a local file, put it in a local model directory or map the URL with [mirrors]"
    ),
}


def url_problem(url: str, trust: Trust) -> str | None:
    """Why url may not be downloaded from text of this trust, or None if it may."""
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        return "it holds a space or a control character"
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        return f"it is not a URL ({exc})"
    scheme = parts.scheme.lower()
    allowed = _SCHEMES[trust]
    if scheme not in allowed:
        if scheme == "file":
            return "a file:// URL in third-party text could read any file on this machine"
        return f"the scheme {scheme or '(none)'!r} is not one of {', '.join(allowed)}"
    if scheme == "file":
        if (host or "") not in _LOCAL_HOSTS:
            return f"a file:// URL names this machine only, not host {host!r}"
        if not parts.path.startswith("/"):
            return "a file:// URL needs an absolute path (file:///…)"
    elif not host:
        return "it has no host"
    return None
