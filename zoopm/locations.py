"""Where zoopm finds things: its home, the user configuration, the project a command runs in.

Light on purpose (no dataclasses, no parsing): a no-op install asks these before anything
heavier loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

MANIFEST_NAME = "zoo.toml"
RECORD_NAME = ".zoopm-installed.json"  # the install record, in the models directory
CONFIG_NAME = "config.toml"


def home_dir(env: Mapping[str, str]) -> Path:
    """ZOOPM_HOME, else $XDG_CACHE_HOME/zoopm, else ~/.cache/zoopm: the store and caches."""
    if explicit := env.get("ZOOPM_HOME"):
        return Path(explicit).expanduser().absolute()
    if cache := env.get("XDG_CACHE_HOME"):
        return Path(cache).expanduser().absolute() / "zoopm"
    return Path.home() / ".cache" / "zoopm"


def config_path(env: Mapping[str, str]) -> Path:
    """Where the user configuration is read from (it need not exist)."""
    if explicit := env.get("ZOOPM_CONFIG", "").strip():
        return Path(explicit).expanduser().absolute()
    xdg = env.get("XDG_CONFIG_HOME", "").strip()
    # The XDG spec: a relative path in the variable is invalid and is ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "zoopm" / CONFIG_NAME
    return Path.home() / ".config" / "zoopm" / CONFIG_NAME


def find_project_root(start: Path) -> Path | None:
    """The nearest directory at or above start that holds a zoo.toml file, or None."""
    start = start.absolute()
    for directory in (start, *start.parents):
        if (directory / MANIFEST_NAME).is_file():
            return directory
    return None
