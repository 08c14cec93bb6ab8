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


def url_problem(url: str, trust: Trust) -> str | None:
    """Why url may not be downloaded from text of this trust, or None if it may."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return f"{url!r} is not a URL"
    scheme = parts.scheme.lower()
    allowed = _SCHEMES[trust]
    if scheme not in allowed:
        if scheme == "file":
            return "a file:// URL from third-party text could read any file on this machine"
        return f"scheme {scheme or '(none)'!r} is not one of {', '.join(allowed)}"
    if scheme in ("http", "https") and not parts.hostname:
        return f"{url!r} has no host"
    return None
