"""Settings: the process environment and the user configuration, read once into a frozen value."""

from __future__ import annotations

import math
import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zoopm.errors import UsageError
from zoopm.formats.userconfig import MAX_JOBS, NO_CONFIG, UserConfig, read_user_config
from zoopm.locations import config_path, home_dir
from zoopm.storage.freshness import env_digest

if TYPE_CHECKING:
    from zoopm.remote_store.location import RemoteLocation

DEFAULT_GITHUB_API = "https://api.github.com"
DEFAULT_ARCHIVE_API = "https://archive.org/wayback/available"
DEFAULT_JOBS = 4
DEFAULT_READ_TIMEOUT = 60.0
_NUMBER = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")
DEFAULT_LOCK_TIMEOUT = 600.0
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@dataclass(frozen=True)
class Settings:
    """Everything zoopm takes from the environment and config.toml; nothing else reads os.environ.

    Where both say something, the environment wins over config.toml (and a command-line option,
    applied with dataclasses.replace, over both).
    """

    home: Path
    offline: bool = False
    github_api: str = DEFAULT_GITHUB_API
    github_token: str | None = None
    # The web archive's availability API for dead links; None: ZOOPM_ARCHIVE_API=off.
    archive_api: str | None = DEFAULT_ARCHIVE_API
    # ZOOPM_REMOTE: the shared remote store, over zoo.toml's and config.toml's; "off": none.
    remote: RemoteLocation | None = None
    remote_off: bool = False
    jobs: int = DEFAULT_JOBS
    no_color: bool = False
    # Seconds a download may go without a byte before it is retried (a stalled server).
    read_timeout: float = DEFAULT_READ_TIMEOUT
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    # The user configuration: mirrors and defaults for every project (zoo.toml wins over it).
    config: UserConfig = NO_CONFIG
    # Where config.toml is looked for (it need not exist); None when not read from a file.
    config_file: Path | None = None
    # A digest of the environment read (zoopm.storage.freshness.env_digest); "" if unknown.
    env_digest: str = ""

    @property
    def store_dir(self) -> Path:
        return self.home / "store"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        config_file = config_path(env)
        config = read_user_config(config_file)
        return cls(
            home=home_dir(env),
            offline=_flag(env, "ZOOPM_OFFLINE"),
            github_api=_github_api(env),
            github_token=_token(env),
            archive_api=_archive_api(env),
            remote=_remote(env),
            remote_off=env.get("ZOOPM_REMOTE", "").strip().lower() == "off",
            jobs=_jobs(env) or config.jobs or DEFAULT_JOBS,
            no_color="NO_COLOR" in env and env["NO_COLOR"] != "",
            read_timeout=_read_timeout(env),
            lock_timeout=_lock_timeout(env),
            config=config,
            config_file=config_file,
            env_digest=env_digest(env),
        )

    def __repr__(self) -> str:
        # The token must never reach a log or a traceback through a repr.
        token = "<set>" if self.github_token else None
        return (
            f"Settings(home={self.home!r}, offline={self.offline}, github_api={self.github_api!r}, "
            f"github_token={token}, jobs={self.jobs}, no_color={self.no_color}, "
            f"read_timeout={self.read_timeout})"
        )


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise UsageError(
        f"environment variable {name}={env[name]!r} is not a yes/no value",
        hint=f"set {name}=1 to turn it on, or unset it",
    )


def _jobs(env: Mapping[str, str]) -> int | None:
    raw = env.get("ZOOPM_JOBS", "").strip()
    if not raw:
        return None
    # isascii too: isdigit alone accepts digits such as '²' that int() then refuses.
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_JOBS:
        raise UsageError(
            f"environment variable ZOOPM_JOBS={raw!r} is not a whole number from 1 to {MAX_JOBS}",
            hint="set ZOOPM_JOBS to the number of parallel downloads, for example 4",
        )
    return int(raw)


def _github_api(env: Mapping[str, str]) -> str:
    raw = env.get("ZOOPM_GITHUB_API", "").strip()
    if not raw:
        return DEFAULT_GITHUB_API
    problem = _base_url_problem(raw)
    if problem:
        raise UsageError(
            f"environment variable ZOOPM_GITHUB_API={raw!r} is not usable: {problem}",
            hint="set it to the API's base URL, such as https://api.github.com or "
            "https://ghe.example.com/api/v3, or unset it",
        )
    return raw.rstrip("/")


def _archive_api(env: Mapping[str, str]) -> str | None:
    raw = env.get("ZOOPM_ARCHIVE_API", "").strip()
    if not raw:
        return DEFAULT_ARCHIVE_API
    if raw.lower() == "off":
        return None
    problem = _base_url_problem(raw)
    if problem:
        raise UsageError(
            f"environment variable ZOOPM_ARCHIVE_API={raw!r} is not usable: {problem}",
            hint="set it to the availability API's URL, such as "
            f"{DEFAULT_ARCHIVE_API}, or to off, or unset it",
        )
    return raw


def _remote(env: Mapping[str, str]) -> RemoteLocation | None:
    raw = env.get("ZOOPM_REMOTE", "").strip()
    if not raw or raw.lower() == "off":
        return None
    from zoopm.remote_store.location import EXAMPLES, parse_remote

    try:
        return parse_remote(raw, "ZOOPM_REMOTE")
    except ValueError as exc:
        raise UsageError(
            f"environment variable ZOOPM_REMOTE is not usable: {exc}",
            hint=f"set it to a remote store URL such as {EXAMPLES}, or to off, or unset it",
        ) from None


def _base_url_problem(url: str) -> str | None:
    if any(c.isspace() or not c.isprintable() for c in url):
        return "it contains a space or a control character"
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # a port that is not a number raises here
    except ValueError as exc:
        return str(exc)
    if parts.scheme.lower() not in ("http", "https"):
        return "it must start with https:// (or http://)"
    if not parts.hostname:
        return "it names no host"
    if parts.query or parts.fragment:
        return "a base URL takes no ?query or #fragment"
    return None


def _token(env: Mapping[str, str]) -> str | None:
    # A token read from a file often ends in a newline; that much is forgiven.
    token = env.get("GITHUB_TOKEN", "").strip()
    if not token:
        return None
    if not token.isascii() or any(c.isspace() or not c.isprintable() for c in token):
        # The message never quotes the value: a token is a secret even when it is malformed.
        raise UsageError(
            "environment variable GITHUB_TOKEN holds spaces, line breaks or non-ASCII "
            "characters, so it cannot be a GitHub token",
            hint="set GITHUB_TOKEN to the token alone (ghp_… or github_pat_…), or unset it",
        )
    return token


def _read_timeout(env: Mapping[str, str]) -> float:
    return _seconds(
        env,
        "ZOOPM_READ_TIMEOUT",
        DEFAULT_READ_TIMEOUT,
        allow_zero=False,
        purpose="how long a download may stall, for example 60",
    )


def _lock_timeout(env: Mapping[str, str]) -> float:
    return _seconds(
        env,
        "ZOOPM_LOCK_TIMEOUT",
        DEFAULT_LOCK_TIMEOUT,
        allow_zero=True,
        purpose="how long to wait for another zoopm, for example 600",
    )


def _seconds(
    env: Mapping[str, str], name: str, default: float, *, allow_zero: bool, purpose: str
) -> float:
    """A number of seconds from the environment: above 0 (or 0 itself if allowed), at most a day."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    value = float(raw) if _NUMBER.fullmatch(raw) else math.nan
    low_ok = value >= 0 if allow_zero else value > 0
    if not (low_ok and value <= 24 * 3600):
        lowest = "0 or more" if allow_zero else "above 0"
        raise UsageError(
            f"environment variable {name}={raw!r} is not a number of seconds {lowest} "
            "(and at most a day)",
            hint=f"set {name} to {purpose}",
        )
    return value
