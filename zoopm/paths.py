"""Relative paths from untrusted files: the one check that keeps every write below its directory."""

from __future__ import annotations

import re


def relative_path_problem(text: str) -> str | None:
    """Why a path read from a project file or a remote listing may not be used, or None if it may.

    A usable path is relative, uses '/' only, and has no empty, '.' or '..' segment, so joining it
    to a directory can never land outside that directory.
    """
    if not text:
        return "empty path"
    if "\\" in text or "\0" in text:
        return f"{text!r} contains a backslash or NUL"
    if text.startswith("/") or re.match(r"[A-Za-z]:", text):
        return f"{text!r} is absolute"
    parts = text.split("/")
    if ".." in parts:
        return f"{text!r} climbs out with '..'"
    if any(part in ("", ".") for part in parts):
        return f"{text!r} has an empty or '.' segment"
    return None


_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def model_name_problem(name: str) -> str | None:
    """Why name cannot be a model's directory under models-dir, or None if it can."""
    if _MODEL_NAME.fullmatch(name) is None:
        return (
            f"{name!r} is not a model name: letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, at most 100 characters"
        )
    return None
