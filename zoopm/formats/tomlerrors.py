"""Loading TOML safely: deep keys refused first, decode errors as one line naming file and line."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from typing import Any

from zoopm.errors import ZoopmError

_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)")


def describe_toml_error(origin: str, exc: tomllib.TOMLDecodeError) -> str:
    """'zoo.toml:5:12: not valid TOML: …' from tomllib's error."""
    text = str(exc)
    match = _POSITION.search(text)
    where = f"{origin}:{match.group(1)}:{match.group(2)}" if match else origin
    message = _POSITION.sub("", text).strip()
    message = re.sub(r"\s*\(at end of document\)", " at the end of the file", message)
    return f"{where}: not valid TOML: {message[:1].lower()}{message[1:]}"


MAX_KEY_DOTS = 32  # no zoopm file has a key of more than a few parts


def deep_key_problem(origin: str, text: str) -> str | None:
    """A key with more dotted parts than any zoopm file uses, or None.

    Python's TOML parser takes time and memory growing with the square of a dotted key's depth
    (100 KB of 'a.a.a…' costs gigabytes), so such text is refused before it is parsed.
    """
    for number, line in enumerate(text.splitlines(), start=1):
        if line.count(".") <= MAX_KEY_DOTS:
            continue
        if _key_dots(line) > MAX_KEY_DOTS:
            return f"{origin}:{number}: a key of more than {MAX_KEY_DOTS} dotted parts"
    return None


def _key_dots(line: str) -> int:
    """Dots outside quoted strings that separate key parts (not those of a number like 1.5)."""
    count = 0
    quote = ""
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
            continue
        if char in "\"'":
            quote = char
        elif char == "#":
            break
        elif char == ".":
            before = line[i - 1] if i else ""
            after = line[i + 1] if i + 1 < len(line) else ""
            if not (before.isdigit() and after.isdigit()):
                count += 1
    return count


def load_toml(text: str, origin: str, error: Callable[[str], ZoopmError]) -> dict[str, Any]:
    """text decoded as TOML; anything it cannot be is error(one line naming origin).

    A UTF-8 byte order mark at the start (some Windows editors write one) is not TOML; it is
    read past rather than reported as an invalid statement."""
    text = text.removeprefix("\ufeff")
    if problem := deep_key_problem(origin, text):
        raise error(problem)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(describe_toml_error(origin, exc)) from None
    except RecursionError:
        raise error(f"{origin}: arrays or tables nested too deeply") from None
