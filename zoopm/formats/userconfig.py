"""The user configuration, config.toml: mirrors and defaults for every project, parsed strictly.

It lives in $ZOOPM_CONFIG if set, else $XDG_CONFIG_HOME/zoopm/config.toml, else
~/.config/zoopm/config.toml. A missing file is an empty configuration; a file that is there
must be right, as zoo.toml must (a typo that silently did nothing would be worse).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoopm.atomic import TooLarge, read_regular
from zoopm.errors import ConfigError
from zoopm.formats.manifest import LINK_MODES, mirror_problem, mirror_targets
from zoopm.formats.tomlerrors import load_toml

if TYPE_CHECKING:
    from zoopm.remote_store.location import RemoteLocation

MAX_CONFIG_FILE = 1024 * 1024
MAX_JOBS = 64  # more parallel downloads than this only trips servers' abuse limits
_DEFAULT_KEYS = ("jobs", "link-mode", "archive-fallback")


@dataclass(frozen=True)
class UserConfig:
    """What config.toml says; None where it says nothing."""

    path: Path | None = None
    jobs: int | None = None
    link_mode: str | None = None
    mirrors: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Whether a dead link is looked for in the web archive (zoo.toml wins over this).
    archive_fallback: bool | None = None
    # [store] remote: the shared remote store (zoo.toml, then ZOOPM_REMOTE, win over this).
    remote: RemoteLocation | None = None

    def mirror_map(self) -> Mapping[str, tuple[str, ...]]:
        return dict(self.mirrors)


NO_CONFIG = UserConfig()


def read_user_config(path: Path) -> UserConfig:
    """The configuration at path; an empty one if no file is there (or it is /dev/null)."""
    if str(path) == os.devnull:
        return NO_CONFIG
    try:
        raw = read_regular(path, MAX_CONFIG_FILE)
    except FileNotFoundError:
        return NO_CONFIG
    except TooLarge:
        raise ConfigError(
            f"{path}: larger than {MAX_CONFIG_FILE // 1024} KiB; no configuration is that large"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return parse_user_config(text, path)


def parse_user_config(text: str, path: Path) -> UserConfig:
    data = load_toml(text.removeprefix("\ufeff"), str(path), ConfigError)
    for key in data:
        if key not in ("defaults", "mirrors", "store"):
            _fail(path, key, "unknown table", "config.toml has [defaults], [mirrors] and [store]")
    defaults = _table(path, data.get("defaults", {}), "defaults")
    for key in defaults:
        if key not in _DEFAULT_KEYS:
            hint = "[defaults] takes jobs, link-mode and archive-fallback"
            _fail(path, f"defaults.{key}", "unknown key", hint)
    jobs = defaults.get("jobs")
    # bool is an int in Python; 'jobs = true' is a mistake, not one job.
    if jobs is not None and (
        not isinstance(jobs, int) or isinstance(jobs, bool) or not 1 <= jobs <= MAX_JOBS
    ):
        shown = str(jobs).lower() if isinstance(jobs, bool) else repr(jobs)  # as TOML spells it
        _fail(path, "defaults.jobs", f"{shown} is not a whole number from 1 to {MAX_JOBS}")
    link_mode = defaults.get("link-mode")
    if link_mode is not None and link_mode not in LINK_MODES:
        _fail(path, "defaults.link-mode", f"{link_mode!r} is not one of {', '.join(LINK_MODES)}")
    archive_fallback = defaults.get("archive-fallback")
    if archive_fallback is not None and not isinstance(archive_fallback, bool):
        _fail(path, "defaults.archive-fallback", f"{archive_fallback!r} is not true or false")
    mirrors = _mirrors(path, _table(path, data.get("mirrors", {}), "mirrors"))
    remote = _remote(path, _table(path, data.get("store", {}), "store"))
    return UserConfig(path, jobs, link_mode, mirrors, archive_fallback, remote)


def _remote(path: Path, table: dict[str, Any]) -> RemoteLocation | None:
    for key in table:
        if key != "remote":
            _fail(path, f"store.{key}", "unknown key", "[store] takes remote")
    value = table.get("remote")
    if value is None:
        return None
    if not isinstance(value, str):
        _fail(path, "store.remote", f"expected a string, got {type(value).__name__}")
    assert isinstance(value, str)
    from zoopm.remote_store.location import URL_HINT, parse_remote

    try:
        return parse_remote(value, f"{path} [store] remote")
    except ValueError as exc:
        _fail(path, "store.remote", str(exc), URL_HINT)
    raise AssertionError("unreachable")


def _mirrors(path: Path, table: dict[str, Any]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    result = []
    for prefix, targets in sorted(table.items()):
        problem = mirror_problem(prefix, targets)
        if problem:
            _fail(path, f"mirrors.{prefix!r}", problem)
        result.append((prefix, mirror_targets(targets)))
    return tuple(result)


def _table(path: Path, value: object, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        _fail(path, key, f"expected a table, got {type(value).__name__}")
    assert isinstance(value, dict)
    return value


def _fail(path: Path, key: str, problem: str, hint: str | None = None) -> None:
    raise ConfigError(f"{path}: {key}: {problem}", hint)
