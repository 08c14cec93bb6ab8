"""Local source: a model directory on disk, hashed file by file into locked entries."""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from zoopm.digest import digest_file
from zoopm.errors import ManifestError
from zoopm.formats.lockfile import LockedFile, LockedModel
from zoopm.formats.manifest import LocalSource, ModelSpec
from zoopm.paths import case_collision, name_problem, shown
from zoopm.reporting import NullReporter, Reporter

if TYPE_CHECKING:
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
    # Here, not at the top: an install that only checks a local directory for changes
    # (local_drift) needs neither the readme parser nor the URL policy.
    from zoopm.sources.assemble import binary_entry, locked_model, read_info
    from zoopm.trust import Trust

    source = spec.source
    assert isinstance(source, LocalSource)
    directory = model_dir(source, root)
    if not directory.is_dir():
        raise ManifestError(
            f"zoo.toml: models.{spec.name}.path: {source.path!r} is not a directory",
            hint=f"create it, or point models.{spec.name}.path at a model directory",
        )
    label = source.path.rstrip("/")
    files = {path: directory / path for path in _list_files(directory, label, reporter)}
    readme, info = read_info(files, label, reporter)
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
        # The readme of a directory in the user's own project: file:// URLs are theirs to use.
        trust=Trust.PROJECT,
        readme=readme,
    )
    if binary is not None:
        locked.append(binary)
    return locked_model(spec, source.canonical(), info, locked, label)


def _is_weights(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(name, pattern) for pattern in _WEIGHT_PATTERNS)


_HINT_RENAME = (
    "rename the file or move it out of the model directory: zoo.lock and models/ need plain "
    "UTF-8 names without backslashes or control characters"
)


def _list_files(directory: Path, label: str, reporter: Reporter) -> list[str]:
    """Regular files below directory as sorted POSIX paths; hidden names are skipped.

    Symlinks are followed, to files and to directories alike: the directory is the user's own
    content, and a link is how it shares a file with another model. A link that leads back to a
    directory above it would make the tree endless, so it is an error, as is a dangling link.
    Every name is checked here, where it enters, so zoo.lock never holds one it cannot read back.
    """
    walker = _Walker(label, reporter)
    walker.walk(directory, "", frozenset({_identity(directory.stat())}))
    collision = case_collision(walker.found)
    if collision is not None:
        first, second = collision
        raise ManifestError(
            f"{label}: {shown(first)} and {shown(second)} differ only in case",
            hint="rename one: on macOS and Windows both names are the same file",
        )
    return sorted(walker.found)


class _Walker:
    """Collects the files of one model directory, following symlinks, refusing loops."""

    def __init__(self, label: str, reporter: Reporter) -> None:
        self.label = label
        self.reporter = reporter
        self.found: list[str] = []

    def walk(self, directory: Path, prefix: str, ancestors: frozenset[tuple[int, int]]) -> None:
        for name in sorted(_entries(directory, prefix, self.label)):
            if name.startswith("."):
                continue
            relative = prefix + name
            problem = name_problem(relative)
            if problem:
                raise ManifestError(f"{self.label}: {problem}", hint=_HINT_RENAME)
            info = _stat(directory / name, relative, self.label)
            if stat.S_ISDIR(info.st_mode):
                identity = _identity(info)
                if identity in ancestors:
                    raise ManifestError(
                        f"{self.label}: {shown(relative)} is a symlink loop: it leads back to a "
                        "directory above it",
                        hint="remove the link, or point it at a directory outside this one",
                    )
                self.walk(directory / name, relative + "/", ancestors | {identity})
            elif stat.S_ISREG(info.st_mode):
                self.found.append(relative)
            else:
                self.reporter.warning(
                    f"{self.label}/{relative}: left out: not a regular file or directory"
                )


def _entries(directory: Path, prefix: str, label: str) -> list[str]:
    try:
        return os.listdir(directory)
    except OSError as exc:
        raise ManifestError(
            f"{label}: {shown(prefix or '.')}: cannot list: {exc.strerror}",
            hint="check the directory's permissions",
        ) from None


def _stat(path: Path, relative: str, label: str) -> os.stat_result:
    """The status of what path leads to, symlinks followed."""
    try:
        return path.stat()
    except FileNotFoundError:
        raise ManifestError(
            f"{label}: {shown(relative)} is a dangling symlink: what it points to does not exist",
            hint="remove the link, or restore what it points to",
        ) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ManifestError(
                f"{label}: {shown(relative)} is a symlink loop: it leads back to itself",
                hint="remove the link, or point it at a file or directory",
            ) from None
        raise ManifestError(
            f"{label}: {shown(relative)}: cannot read: {exc.strerror}",
            hint="check the file's permissions",
        ) from None


def _identity(info: os.stat_result) -> tuple[int, int]:
    return info.st_dev, info.st_ino


def local_drift(model: LockedModel, root: Path) -> list[str]:
    """How a local model's directory differs from what zoo.lock pinned: ['deploy.prototxt
    changed', 'notes.txt added', …]; empty when it matches.

    Every file of the same size is hashed: an edit that keeps the size and puts the mtime back
    (cp -p, rsync -a, tar x) must be told as surely as any other. Asked only by an install that
    places files of the model, never by a no-op. A binary absent from the directory was
    downloaded, not deleted.
    """
    directory = root / model.source_dict().get("path", "")
    label = str(model.source_dict().get("path", "")).rstrip("/")
    try:
        present = set(_list_files(directory, label, NullReporter()))
    except (OSError, ManifestError):
        return [f"{label} cannot be read"]
    drift: list[str] = []
    locked = {file.path for file in model.files}
    for file in model.files:
        if file.path not in present:
            if not file.binary:
                drift.append(f"{file.path} deleted")
            continue
        try:
            size = os.stat(directory / file.path).st_size
        except OSError:
            drift.append(f"{file.path} cannot be read")
            continue
        if size != file.size or _sha256(directory / file.path) != file.sha256:
            drift.append(f"{file.path} changed")
    drift.extend(f"{path} added" for path in sorted(present - locked) if not _is_weights(path))
    return drift


def _sha256(path: Path) -> str | None:
    try:
        return digest_file(path).sha256
    except OSError:
        return None
