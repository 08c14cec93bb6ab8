"""The install record: which files below the models directory zoopm placed, read strictly."""

from __future__ import annotations

import errno
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from zoopm.atomic import TooLarge, atomic_write, read_regular
from zoopm.digest import is_sha256_hex
from zoopm.errors import InstallError, from_os_error
from zoopm.locations import RECORD_NAME
from zoopm.paths import model_name_problem, relative_path_problem

RECORD_VERSION = 1
PENDING = "pending"
ADOPTED = "adopted"  # a file that held the locked bytes before zoopm came: never removed
_HOWS = {"reflink", "hardlink", "symlink", "copy", PENDING, ADOPTED}
_FIELDS = {"sha256", "size", "mtime_ns", "inode", "how"}
_MAX_RECORD_BYTES = 64 * 1024 * 1024
_HINT = (
    "the record is written only by zoopm; delete it and run 'zoopm install': files whose bytes "
    "match zoo.lock are taken over, anything else is left alone and named"
)


@dataclass(frozen=True)
class Placed:
    """What one placed file looked like right after zoopm put it there.

    how is reflink, hardlink, symlink or copy; or pending: zoopm was about to place a file with
    this sha256 there when the record was written, so a file there with that content is zoopm's.
    For a symlink, size is the blob's size and inode and mtime are the link's own.
    """

    sha256: str
    size: int
    mtime_ns: int
    inode: int
    how: str
    # A write that puts mtime back (cp -p, os.utime) still moves ctime. None: not recorded.
    ctime_ns: int | None = None
    # The inode's generation (FS_IOC_GETVERSION), which a file system gives anew when it reuses
    # an inode number: a file deleted and written again can get the very number zoopm recorded.
    # None where the file system keeps none (tmpfs) and in older records.
    generation: int | None = None

    @property
    def pending(self) -> bool:
        return self.how == PENDING

    @classmethod
    def intent(cls, sha256: str, size: int) -> Placed:
        return cls(sha256, size, 0, 0, PENDING)

    @classmethod
    def of(
        cls, sha256: str, size: int, info: os.stat_result, how: str, generation: int | None = None
    ) -> Placed:
        """An entry for a file zoopm just placed or checked, from its lstat."""
        return cls(sha256, size, info.st_mtime_ns, info.st_ino, how, info.st_ctime_ns, generation)

    def same_file(self, info: os.stat_result, generation: int | None) -> bool:
        """Whether info (and the generation read with it) is the very file this entry records,
        not another file that was given the same inode number later."""
        if info.st_ino != self.inode:
            return False
        return self.generation is None or generation is None or generation == self.generation


@dataclass(frozen=True)
class Record:
    """Every file a previous install placed (or was placing), per model and relative path."""

    models: dict[str, dict[str, Placed]]
    # The project (its zoo.lock) whose install this record describes, and the models directory
    # as that project named it; None in older records.
    project: str | None = None
    models_dir: str | None = None

    def placed(self, model: str, path: str) -> Placed | None:
        return self.models.get(model, {}).get(path)

    def entries(self) -> list[tuple[str, str, Placed]]:
        return [
            (model, path, placed)
            for model, files in sorted(self.models.items())
            for path, placed in sorted(files.items())
        ]


def read_record(models_dir: Path) -> Record:
    """The record, validated as strictly as zoo.lock: no entry may point outside models_dir."""
    path = models_dir / RECORD_NAME
    try:
        raw = read_regular(path, _MAX_RECORD_BYTES, follow=False)
    except (FileNotFoundError, NotADirectoryError):
        return Record({})
    except TooLarge:
        raise InstallError(
            f"{path}: larger than any install record zoopm writes", hint=_HINT
        ) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InstallError(
                f"{path}: is a symbolic link; zoopm reads its install record only as a file",
                hint=_HINT,
            ) from None
        if exc.errno == errno.EINVAL:
            raise InstallError(f"{path}: not a regular file", hint=_HINT) from None
        raise from_os_error(exc, path) from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InstallError(f"{path}: not valid JSON", hint=_HINT) from None
    return _Reader(path).record(data)


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> InstallError:
        return InstallError(f"{self.path}: {key}: {problem}", hint=_HINT)

    def record(self, data: Any) -> Record:
        if not isinstance(data, dict):
            raise self.fail("(top)", "expected an object")
        if data.get("version") != RECORD_VERSION:
            raise self.fail("version", f"expected {RECORD_VERSION}, found {data.get('version')!r}")
        models = data.get("models")
        if not isinstance(models, dict):
            raise self.fail("models", "expected an object")
        project, models_dir = data.get("project"), data.get("models-dir")
        if project is not None and not isinstance(project, str):
            raise self.fail("project", "expected the path of a zoo.lock")
        if models_dir is not None and not isinstance(models_dir, str):
            raise self.fail("models-dir", "expected the path of a directory")
        parsed: dict[str, dict[str, Placed]] = {}
        for model, files in models.items():
            problem = model_name_problem(model)
            if problem:
                raise self.fail(f"models.{model!r}", problem)
            if not isinstance(files, dict):
                raise self.fail(f"models.{model}", "expected an object")
            parsed[model] = {
                path: self.entry(entry, f"models.{model}.{path!r}", path)
                for path, entry in files.items()
            }
        return Record(parsed, project, models_dir)

    def entry(self, entry: Any, key: str, path: str) -> Placed:
        problem = relative_path_problem(path)
        if problem:
            raise self.fail(key, problem)
        optional = {"ctime_ns", "generation"}
        if not isinstance(entry, dict) or not _FIELDS <= set(entry) <= _FIELDS | optional:
            raise self.fail(
                key, "expected sha256, size, mtime_ns, inode, how (and ctime_ns, generation)"
            )
        sha256, how = entry["sha256"], entry["how"]
        if not isinstance(sha256, str) or not is_sha256_hex(sha256):
            raise self.fail(f"{key}.sha256", "expected 64 hex digits")
        if how not in _HOWS:
            raise self.fail(f"{key}.how", f"{how!r} is not one of {', '.join(sorted(_HOWS))}")
        ctime, generation = entry.get("ctime_ns"), entry.get("generation")
        numbers = [entry[k] for k in ("size", "mtime_ns", "inode")] + [ctime or 0, generation or 0]
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in numbers):
            raise self.fail(
                key, "size, mtime_ns, inode, ctime_ns and generation must be whole numbers"
            )
        return Placed(sha256, numbers[0], numbers[1], numbers[2], how, ctime, generation)


def write_record(models_dir: Path, record: Record) -> None:
    """Replaces the record in one rename: a crash leaves the old one or the new one."""
    data: dict[str, object] = {
        "version": RECORD_VERSION,
        "project": record.project,
        "models-dir": record.models_dir,
        "models": {
            model: {path: asdict(placed) for path, placed in sorted(files.items())}
            for model, files in sorted(record.models.items())
            if files
        },
    }
    try:
        atomic_write(models_dir / RECORD_NAME, (json.dumps(data, indent=1) + "\n").encode())
    except OSError as exc:
        raise from_os_error(exc, models_dir / RECORD_NAME) from None
