"""zoopm: a package manager for pretrained Caffe Model Zoo models."""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from zoopm.api import model_path
    from zoopm.errors import (
        IntegrityError,
        ManifestError,
        NetworkError,
        NotInstalledError,
        OfflineError,
        RemoteStoreError,
        StaleLockError,
        UsageError,
        ZoopmError,
    )
    from zoopm.formats.lockfile import Lock, LockedFile, LockedModel
    from zoopm.operations.gc import GcResult
    from zoopm.operations.install import InstallPlan, InstallResult
    from zoopm.operations.push import PushResult
    from zoopm.operations.verify import Problem, VerifyResult
    from zoopm.project import AddResult, LockResult, ModelStatus, Project
    from zoopm.reporting import NullReporter, Progress, RecordingReporter, Reporter

# The public Python API, as docs/api.md lists it (a test keeps the two equal).
__all__ = [
    "AddResult",
    "GcResult",
    "InstallPlan",
    "InstallResult",
    "IntegrityError",
    "Lock",
    "LockResult",
    "LockedFile",
    "LockedModel",
    "ManifestError",
    "ModelStatus",
    "NetworkError",
    "NotInstalledError",
    "NullReporter",
    "OfflineError",
    "Problem",
    "Progress",
    "Project",
    "PushResult",
    "RecordingReporter",
    "RemoteStoreError",
    "Reporter",
    "StaleLockError",
    "UsageError",
    "VerifyResult",
    "ZoopmError",
    "__version__",
    "model_path",
]

# Where each name lives. Importing zoopm stays cheap (a script that only wants model_path, or
# `zoopm install`'s fast path, must not pay for requests or the parsers): a module loads on
# first use of one of its names.
_HOMES = {
    "model_path": "zoopm.api",
    "ZoopmError": "zoopm.errors",
    "UsageError": "zoopm.errors",
    "ManifestError": "zoopm.errors",
    "StaleLockError": "zoopm.errors",
    "NotInstalledError": "zoopm.errors",
    "NetworkError": "zoopm.errors",
    "OfflineError": "zoopm.errors",
    "IntegrityError": "zoopm.errors",
    "RemoteStoreError": "zoopm.errors",
    "Lock": "zoopm.formats.lockfile",
    "LockedModel": "zoopm.formats.lockfile",
    "LockedFile": "zoopm.formats.lockfile",
    "GcResult": "zoopm.operations.gc",
    "InstallPlan": "zoopm.operations.install",
    "InstallResult": "zoopm.operations.install",
    "PushResult": "zoopm.operations.push",
    "Problem": "zoopm.operations.verify",
    "VerifyResult": "zoopm.operations.verify",
    "Project": "zoopm.project",
    "AddResult": "zoopm.project",
    "LockResult": "zoopm.project",
    "ModelStatus": "zoopm.project",
    "Reporter": "zoopm.reporting",
    "Progress": "zoopm.reporting",
    "NullReporter": "zoopm.reporting",
    "RecordingReporter": "zoopm.reporting",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'zoopm' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(home), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
