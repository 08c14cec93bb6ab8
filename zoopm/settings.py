"""Settings: the process environment read once into a frozen value."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from zoopm.errors import UsageError

DEFAULT_GITHUB_API = "https://api.github.com"
DEFAULT_JOBS = 4
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@dataclass(frozen=True)
class Settings:
    """Everything zoopm takes from the environment; nothing else reads os.environ."""

    home: Path
    offline: bool = False
    github_api: str = DEFAULT_GITHUB_API
    github_token: str | None = None
    jobs: int = DEFAULT_JOBS
    no_color: bool = False

    @property
    def store_dir(self) -> Path:
        return self.home / "store"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            home=_home(env),
            offline=_flag(env, "ZOOPM_OFFLINE"),
            github_api=env.get("ZOOPM_GITHUB_API", "").rstrip("/") or DEFAULT_GITHUB_API,
            github_token=env.get("GITHUB_TOKEN") or None,
            jobs=_jobs(env),
            no_color="NO_COLOR" in env and env["NO_COLOR"] != "",
        )

    def __repr__(self) -> str:
        # The token must never reach a log or a traceback through a repr.
        token = "<set>" if self.github_token else None
        return (
            f"Settings(home={self.home!r}, offline={self.offline}, github_api={self.github_api!r}, "
            f"github_token={token}, jobs={self.jobs}, no_color={self.no_color})"
        )


def _home(env: Mapping[str, str]) -> Path:
    if explicit := env.get("ZOOPM_HOME"):
        return Path(explicit).expanduser().absolute()
    if cache := env.get("XDG_CACHE_HOME"):
        return Path(cache).expanduser().absolute() / "zoopm"
    return Path.home() / ".cache" / "zoopm"


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


def _jobs(env: Mapping[str, str]) -> int:
    raw = env.get("ZOOPM_JOBS", "").strip()
    if not raw:
        return DEFAULT_JOBS
    if not raw.isdigit() or int(raw) < 1:
        raise UsageError(
            f"environment variable ZOOPM_JOBS={raw!r} is not a positive whole number",
            hint="set ZOOPM_JOBS to the number of parallel downloads, for example 4",
        )
    return int(raw)
