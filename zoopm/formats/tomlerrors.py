"""TOML decode errors as one line: the file, the line and column, and the problem in words."""

from __future__ import annotations

import re
import tomllib

_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)")


def describe_toml_error(origin: str, exc: tomllib.TOMLDecodeError) -> str:
    """'zoo.toml:5:12: not valid TOML: …' from tomllib's error."""
    text = str(exc)
    match = _POSITION.search(text)
    where = f"{origin}:{match.group(1)}:{match.group(2)}" if match else origin
    message = _POSITION.sub("", text).strip()
    message = re.sub(r"\s*\(at end of document\)", " at the end of the file", message)
    return f"{where}: not valid TOML: {message[:1].lower()}{message[1:]}"
