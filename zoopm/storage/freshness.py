"""A no-op install's witness: what a full check saw the last time it found nothing to do.

The full no-op check parses zoo.toml, zoo.lock and the install record and compares every placed
file's stat with the record. Its verdict depends only on those files' bytes and stats (and the
store's, for symlinked files). So when it finds nothing to do, the stat of every input is
written down here; the next install compares the stats alone and, if not one differs, gives
the same verdict without loading the parsers (or most of zoopm). Any difference, any doubt, a
file that cannot be read: the full check runs, as it always did.

A change made while the check ran, or just before it, could leave a stat equal to the one
written down (a file's times tick in steps of a few milliseconds); so nothing is written down
unless every time it holds is RACY_NS older than the check's start (as git does for its index).
Changing a file later moves its ctime past that, so the witness no longer matches.

Light on purpose: no dataclasses, nothing from zoopm but its version and the locations.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoopm.atomic import READ_NO_FOLLOW
from zoopm.locations import MANIFEST_NAME, RECORD_NAME

FORMAT = 1
RACY_NS = 2_000_000_000
_MAX_BYTES = 16 * 1024 * 1024
_ENV_PREFIXES = ("ZOOPM_", "XDG_")
_ENV_NAMES = frozenset({"GITHUB_TOKEN", "NO_COLOR", "HOME"})

# (path, follow symlinks?) for each input; each path's realpath for the ones a check resolves.
Inputs = tuple[list[tuple[str, bool]], list[str]]


def env_digest(env: Mapping[str, str]) -> str:
    """A digest of every variable that can change a command's outcome: a witness written under
    other settings is not believed (and no variable, GITHUB_TOKEN least, is written in clear)."""
    names = sorted(n for n in env if n.startswith(_ENV_PREFIXES) or n in _ENV_NAMES)
    text = "\0".join(f"{name}={env[name]}" for name in names)
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def context(root: Path, env_hash: str) -> dict[str, str]:
    """What must be the same for a witness to speak for this run."""
    from zoopm import __version__

    return {"version": __version__, "root": os.path.realpath(root), "env": env_hash}


def witness_path(home: Path, root: Path) -> Path:
    key = hashlib.sha256(os.fsencode(os.path.realpath(root))).hexdigest()[:32]
    return home / "state" / "noop" / f"{key}.json"


def _entry(path: str, follow: bool) -> list[int] | None:
    try:
        info = os.stat(path) if follow else os.lstat(path)
    except FileNotFoundError:
        return None
    return [
        info.st_dev,
        info.st_ino,
        info.st_mode,
        info.st_size,
        info.st_mtime_ns,
        info.st_ctime_ns,
    ]


def observe(inputs: Inputs, context: dict[str, str]) -> dict[str, Any]:
    stats, realpaths = inputs
    return {
        "format": FORMAT,
        "context": context,
        "stats": [[path, follow, _entry(path, follow)] for path, follow in stats],
        "realpaths": [[path, os.path.realpath(path)] for path in realpaths],
    }


def remember(path: Path, before: dict[str, Any], answer: dict[str, Any], started_ns: int) -> bool:
    """Writes the witness of a no-op verdict: before is what observe() saw ahead of a second
    full check, which gave the same verdict; it is observed again now.

    Returns whether it was written: not when the two observations differ (something changed
    while the check ran), not when any input changed too recently to be told apart from a
    change during the check, and not when the file cannot be written (it is a cache).
    """
    from zoopm.atomic import atomic_write

    after = observe(
        (
            [(entry[0], bool(entry[1])) for entry in before["stats"]],
            [entry[0] for entry in before["realpaths"]],
        ),
        before["context"],
    )
    if after != before:
        return False
    newest = started_ns - RACY_NS
    for _, _, entry in after["stats"]:
        if entry is not None and (entry[4] >= newest or entry[5] >= newest):
            return False
    after["answer"] = answer
    if os.path.islink(path.parent) or os.path.islink(path.parent.parent):
        return False  # not ZOOPM_HOME's own directory: nothing is written through a link
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(after, sort_keys=True).encode(), durable=False)
        return True
    return False


def _covers(data: dict[str, Any], root: Path, answer: dict[str, Any]) -> bool:
    """Whether the witness speaks of what every no-op verdict rests on: zoo.toml, zoo.lock, the
    models directory and its record, and at least as many files as it says are in place (a
    witness is a cache anyone who can write ZOOPM_HOME could forge; it may not skip these)."""
    models = answer.get("models_dir")
    kept = answer.get("kept")
    if not isinstance(models, str) or not isinstance(kept, int):
        return False
    watched = {str(entry[0]) for entry in data["stats"]}
    required = {
        str(root / MANIFEST_NAME),
        str(root / "zoo.lock"),
        models,
        os.path.join(models, RECORD_NAME),
    }
    record = os.path.join(models, RECORD_NAME)
    inside = [p for p in watched if p.startswith(models + os.sep) and p != record]
    return required <= watched and len(inside) >= kept


def recall(path: Path, root: Path, context: dict[str, str]) -> dict[str, Any] | None:
    """The answer written down, if every input still has the stat it had then; else None."""
    try:
        fd = os.open(path, READ_NO_FOLLOW)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as stream:
            raw = stream.read(_MAX_BYTES + 1)
        if len(raw) > _MAX_BYTES:
            return None
        data = json.loads(raw)
        if data.get("format") != FORMAT or data.get("context") != context:
            return None
        answer = data["answer"]
        if not _covers(data, root, answer):
            return None
        for input_path, follow, entry in data["stats"]:
            if _entry(input_path, bool(follow)) != entry:
                return None
        for input_path, real in data["realpaths"]:
            if os.path.realpath(input_path) != real:
                return None
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return answer if isinstance(answer, dict) else None
