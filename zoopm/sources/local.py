"""Local source: a model directory on disk, hashed file by file into locked entries."""

from __future__ import annotations

import fnmatch
from pathlib import Path

from zoopm.digest import Digest, digest_file
from zoopm.errors import IntegrityError, ManifestError, ModelInfoError
from zoopm.lockfile import LockedFile, LockedModel
from zoopm.manifest import LocalSource, ModelSpec
from zoopm.modelinfo import ModelInfo, find_readme, parse_model_info
from zoopm.reporting import Reporter
from zoopm.sources import BinaryFetcher

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
    files = _list_files(directory)
    label = source.path.rstrip("/")
    readme = find_readme([f for f in files if "/" not in f], label)
    if readme is None:
        raise ModelInfoError(
            f"{label}: no readme.md in the model directory",
            hint="a model directory needs readme.md with caffemodel, caffemodel_url and sha1",
        )
    info = parse_model_info((directory / readme).read_bytes(), f"{label}/{readme}")
    for warning in info.warnings:
        reporter.warning(warning)
    binary_path = info.caffemodel if spec.binary else None
    if spec.binary and binary_path is None:
        raise ModelInfoError(
            f"{label}/{readme}: no caffemodel key, so zoopm cannot tell which file is the binary",
            hint=f"add caffemodel to the frontmatter, or set binary = false for models.{spec.name}",
        )
    locked = [
        _locked(path, digest_file(directory / path))
        for path in files
        if path != binary_path and not _is_weights(path)
    ]
    for path in files:
        if _is_weights(path) and path != binary_path:
            reporter.warning(f"{label}/{path}: left out: not the binary readme.md names")
    if binary_path is not None:
        locked.append(
            _binary(
                directory=directory,
                label=label,
                path=binary_path,
                info=info,
                fetcher=fetcher,
                reporter=reporter,
            )
        )
    return LockedModel(
        name=spec.name,
        source=tuple(sorted(source.canonical().items())),
        files=tuple(sorted(locked, key=lambda f: f.path)),
        binary=spec.binary,
        caffemodel=info.caffemodel,
        license=info.license,
        caffe_commit=info.caffe_commit,
        caffe_version=info.caffe_version,
    )


def _binary(
    *,
    directory: Path,
    label: str,
    path: str,
    info: ModelInfo,
    fetcher: BinaryFetcher,
    reporter: Reporter,
) -> LockedFile:
    urls = (info.caffemodel_url,) if info.caffemodel_url else ()
    on_disk = directory / path
    if on_disk.is_file():
        digest = digest_file(on_disk)
        if info.sha1 is not None and digest.sha1 != info.sha1:
            raise IntegrityError(
                f"{label}/{path}: sha1 mismatch: readme.md says {info.sha1}, the file hashes "
                f"to {digest.sha1}",
                hint="the binary is not the one readme.md describes; replace it or fix sha1",
            )
    elif urls:
        digest = fetcher.fetch_binary(urls[0], info.sha1, f"{label}/{path}")
    else:
        raise ModelInfoError(
            f"{label}/{path}: the binary is not in the directory and readme.md has no "
            "caffemodel_url",
            hint="put the binary there, or add caffemodel_url and sha1 to readme.md",
        )
    if info.sha1 is None:
        reporter.warning(
            f"{label}/readme.md: no sha1 for the binary; pinned the bytes zoopm saw "
            f"(sha1 {digest.sha1})"
        )
    return LockedFile(path, digest.size, digest.sha1, digest.sha256, urls, binary=True)


def _locked(path: str, digest: Digest) -> LockedFile:
    return LockedFile(path, digest.size, digest.sha1, digest.sha256)


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
