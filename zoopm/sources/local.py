"""Local source: a model directory on disk, hashed file by file into locked entries."""

from __future__ import annotations

import fnmatch
from pathlib import Path

from zoopm.digest import digest_file
from zoopm.errors import ManifestError
from zoopm.lockfile import LockedFile, LockedModel
from zoopm.manifest import LocalSource, ModelSpec
from zoopm.reporting import Reporter
from zoopm.sources import BinaryFetcher
from zoopm.sources.assemble import binary_entry, locked_model, read_info

# Other trained weights and solver snapshots are never info files (Caffe's upload script agrees).
_WEIGHT_PATTERNS = ("*.caffemodel", "*.caffemodel.*", "*.solverstate", "*.solverstate.*")


def model_dir(source: LocalSource, root: Path) -> Path:
    """The directory a local source names; a relative path is taken from the project root."""
    return root / source.path


def resolve_local(
    spec: ModelSpec, root: Path, fetcher: BinaryFetcher, reporter: Reporter
) -> LockedModel:
    """Pins every file of a local model directory; downloads the binary only if it is not there."""
    source = spec.source
    assert isinstance(source, LocalSource)
    directory = model_dir(source, root)
    if not directory.is_dir():
        raise ManifestError(
            f"zoo.toml: models.{spec.name}.path: {source.path!r} is not a directory",
            hint=f"create it, or point models.{spec.name}.path at a model directory",
        )
    label = source.path.rstrip("/")
    files = {path: directory / path for path in _list_files(directory)}
    _, info = read_info(files, label, reporter)
    binary_path = info.caffemodel if spec.binary else None
    locked = []
    for path, on_disk in files.items():
        if path == binary_path:
            continue
        if _is_weights(path):
            reporter.warning(f"{label}/{path}: left out: not the binary readme.md names")
            continue
        digest = digest_file(on_disk)
        locked.append(LockedFile(path, digest.size, digest.sha1, digest.sha256))
    binary = binary_entry(
        spec=spec,
        info=info,
        label=label,
        fetcher=fetcher,
        reporter=reporter,
        on_disk=directory / binary_path if binary_path else None,
    )
    if binary is not None:
        locked.append(binary)
    return locked_model(spec, source.canonical(), info, locked, label)


def _is_weights(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(name, pattern) for pattern in _WEIGHT_PATTERNS)


def _list_files(directory: Path) -> list[str]:
    """Regular files below directory as sorted POSIX paths; hidden names are skipped."""
    found = []
    for path in directory.rglob("*"):
        relative = path.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_file():
            found.append(relative.as_posix())
    return sorted(found)
