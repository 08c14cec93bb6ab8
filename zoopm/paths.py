"""Relative paths and file names: the one check that keeps every write below its directory."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable


def relative_path_problem(text: str) -> str | None:
    """Why a path read from a project file or a remote listing may not be used, or None if it may.

    A usable path is relative, uses '/' only, and has no empty, '.' or '..' segment, so joining it
    to a directory can never land outside that directory.
    """
    if not text:
        return "empty path"
    problem = name_problem(text)
    if problem:
        return problem
    if text.startswith("/") or re.match(r"[A-Za-z]:", text):
        return f"{text!r} is absolute"
    parts = text.split("/")
    if ".." in parts:
        return f"{text!r} climbs out with '..'"
    if any(part in ("", ".") for part in parts):
        return f"{text!r} has an empty or '.' segment"
    return None


def name_problem(name: str) -> str | None:
    """Why a file name (or a path of them) cannot be written to zoo.lock and back, or None.

    zoo.lock and the install record are UTF-8 text with '/' as the only separator, so a name
    holding a backslash, NUL or another control character, or bytes that are not UTF-8 (which
    Python carries as surrogate escapes), could be locked but never read back the same.
    """
    if "\\" in name or "\0" in name:
        return f"{shown(name)} contains a backslash or NUL"
    if any(0xD800 <= ord(char) <= 0xDFFF for char in name):
        return f"{shown(name)} is not valid UTF-8"
    if any(unicodedata.category(char) == "Cc" for char in name):
        return f"{shown(name)} contains a control character"
    return None


def case_collision(paths: Iterable[str]) -> tuple[str, str] | None:
    """Two paths that name the same file on a case-insensitive file system (macOS, Windows)."""
    seen: dict[str, str] = {}
    for path in paths:
        folded = unicodedata.normalize("NFC", path).casefold()
        if folded in seen:
            return seen[folded], path
        seen[folded] = path
    return None


def shown(text: str) -> str:
    """text quoted for a one-line message: control characters and non-UTF-8 bytes as escapes."""
    quote = '"' if "'" in text else "'"
    parts = []
    for char in text:
        if 0xDC80 <= ord(char) <= 0xDCFF:
            # A byte that was not UTF-8 in a file name (surrogateescape): show the byte itself.
            parts.append(f"\\x{ord(char) - 0xDC00:02x}")
        elif char == quote:
            parts.append("\\" + char)
        else:
            parts.append(repr(char)[1:-1] if char not in "'\"" else char)
    return quote + "".join(parts) + quote


_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def model_name_problem(name: str) -> str | None:
    """Why name cannot be a model's directory under models-dir, or None if it can."""
    if _MODEL_NAME.fullmatch(name) is None:
        return (
            f"{name!r} is not a model name: letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, at most 100 characters"
        )
    return None
