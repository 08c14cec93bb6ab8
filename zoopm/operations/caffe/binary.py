"""download-binary: the job of Caffe's download_model_binary.py, done through the store.

The script reads DIR/readme.md, requires caffemodel, caffemodel_url and sha1, says "Model
already exists." when DIR/<caffemodel> is there with that SHA-1, and otherwise downloads it.
Here the download goes into the store (streaming hash, resume, mirrors, retries) and the file
is copied beside the readme under a temp name and renamed into place: a wrong or interrupted
download never leaves anything at the final path, and no file is read whole into memory.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zoopm.atomic import NEW_FILE_NO_FOLLOW, READ_NO_FOLLOW, TooLarge, fsync_dir, read_regular
from zoopm.digest import CHUNK_SIZE, Digest, digest_stream
from zoopm.errors import ModelInfoError, SourceError, StoreError, from_os_error
from zoopm.formats.modelinfo import INFO_HEAD_BYTES, find_readme, parse_model_info
from zoopm.storage.locks import host_tag, pid_alive
from zoopm.trust import URL_HINTS, Trust, url_problem

README = "readme.md"
REQUIRED = ("caffemodel", "caffemodel_url", "sha1")  # as the Caffe script requires them
_INFO_SUFFIXES = (".md", ".prototxt")  # readme.md, deploy.prototxt, solver.prototxt, …
_TEMP = re.compile(r"\.zoopm-([0-9a-f]{8})-([0-9]{1,10})-[0-9a-f]+\.tmp")


@dataclass(frozen=True)
class BinaryResult:
    """Where the binary is, what it is, and whether it was already there."""

    path: Path
    digest: Digest | None  # None when it was already there (only its SHA-1 was checked)
    existed: bool


def download_binary(
    directory: Path,
    fetch: Callable[[str, str | None, str], Digest],
    blob_path: Callable[[str], Path],
) -> BinaryResult:
    """Makes DIR/<caffemodel> the binary DIR/readme.md names, verified by its SHA-1.

    fetch(url, sha1, label) puts the binary in the store and returns its digest (the Fetcher:
    the store first, then mirrors and the URL); blob_path names a stored blob.
    """
    readme = _find_readme(directory)
    try:
        data = read_regular(readme, INFO_HEAD_BYTES + 1)
    except FileNotFoundError:
        raise ModelInfoError(
            f"{readme}: not found",
            hint="give the model directory that holds readme.md (as download_model_binary.py "
            "takes it)",
        ) from None
    except TooLarge:
        raise ModelInfoError(
            f"{readme}: larger than {INFO_HEAD_BYTES // 1024**2} MiB; no model information is "
            "that large",
            hint="give the model directory that holds the model's readme.md",
        ) from None
    except OSError as exc:
        raise ModelInfoError(
            f"{readme}: cannot read: {exc.strerror or exc}",
            hint="give the model directory (as download_model_binary.py takes it); readme.md "
            "must be a regular file in it",
        ) from None
    info = parse_model_info(data, str(readme))
    for key in REQUIRED:
        if getattr(info, key) is None:
            hint = f"add '{key}: …' between the '---' lines of {readme.name}"
            if key == "sha1":
                hint += (
                    "; or let 'zoopm add' install the model: it pins a binary without sha1 "
                    "on first use (docs/model-info.md)"
                )
            raise ModelInfoError(
                f"{readme}: no {key} in the frontmatter (download_model_binary.py needs "
                f"{', '.join(REQUIRED)})",
                hint=hint,
            )
    assert info.caffemodel is not None and info.caffemodel_url is not None
    assert info.sha1 is not None
    name = info.caffemodel
    if "/" in name:
        raise ModelInfoError(
            f"{readme}: caffemodel {name!r} is not a file name of this directory",
            hint="download-binary places the binary beside readme.md; name it without '/'",
        )
    if name.lower().endswith(_INFO_SUFFIXES):
        # A readme (perhaps someone else's) must not have the binary written over itself or
        # over the network definition beside it.
        raise ModelInfoError(
            f"{readme}: caffemodel {name!r} names one of the model's own files, not its binary",
            hint="name the binary, e.g. 'bvlc_googlenet.caffemodel'",
        )
    target = directory / name
    _sweep_temps(directory)
    if _holds_sha1(target, info.sha1):
        return BinaryResult(target, None, existed=True)
    # The readme may be someone else's (fetched from a gist): it never chooses a local file.
    problem = url_problem(info.caffemodel_url, Trust.THIRD_PARTY)
    if problem is not None:
        raise SourceError(
            f"{readme}: caffemodel_url {info.caffemodel_url!r} refused: {problem}",
            hint=URL_HINTS[Trust.THIRD_PARTY],
        )
    digest = fetch(info.caffemodel_url, info.sha1, str(target))
    _place(blob_path(digest.sha256), directory, name)
    return BinaryResult(target, digest, existed=False)


def _find_readme(directory: Path) -> Path:
    """DIR's readme.md in any letter case (README.md in many gists), as the rest of zoopm finds
    it; the script read only 'readme.md', which missed those on a case-sensitive disk."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        raise ModelInfoError(
            f"{directory}: no such directory",
            hint="give the model directory that holds readme.md (as download_model_binary.py "
            "takes it)",
        ) from None
    except NotADirectoryError:
        raise ModelInfoError(
            f"{directory}: not a directory",
            hint="give the model directory that holds readme.md, not a file in it",
        ) from None
    except OSError as exc:
        raise ModelInfoError(f"{directory}: cannot list: {exc.strerror or exc}") from None
    found = find_readme(names, str(directory))
    return directory / (found or README)


def _holds_sha1(target: Path, sha1: str) -> bool:
    """Whether target is a regular file with this SHA-1; anything else there that is not a
    regular file is refused, never followed or replaced."""
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise from_os_error(exc, target) from None
    if not stat.S_ISREG(info.st_mode):
        raise StoreError(
            f"{target}: is not a regular file (a link, a directory or a device); zoopm neither "
            "follows nor replaces it",
            hint="move it away, then run download-binary again",
        )
    try:
        fd = os.open(target, READ_NO_FOLLOW)
    except OSError as exc:
        raise from_os_error(exc, target) from None
    with os.fdopen(fd, "rb") as stream:
        return digest_stream(stream).sha1 == sha1.lower()


def _place(blob: Path, directory: Path, name: str) -> None:
    """Copies blob to directory/name: under a temp name first, then one rename."""
    # Not derived from name: a long name would overflow NAME_MAX once prefixed and suffixed.
    temp = directory / f".zoopm-{host_tag()}-{os.getpid()}-{os.urandom(4).hex()}.tmp"
    flags = NEW_FILE_NO_FOLLOW
    try:
        out = os.open(temp, flags, 0o644)
        try:
            with open(blob, "rb") as source, os.fdopen(out, "wb", closefd=False) as sink:
                shutil.copyfileobj(source, sink, CHUNK_SIZE)  # 1 MiB at a time, never whole
                sink.flush()
                os.fsync(out)
        finally:
            os.close(out)
        _still_a_file_or_nothing(directory / name)
        os.replace(temp, directory / name)
        fsync_dir(directory)
    except OSError as exc:
        raise from_os_error(exc, directory / name) from None
    finally:
        # Also after Ctrl-C or a full disk halfway through the copy: no temp stays behind.
        with contextlib.suppress(OSError):
            os.unlink(temp)


def _sweep_temps(directory: Path) -> None:
    """Removes the temp files a killed download-binary (SIGKILL, power loss) left in directory:
    this host's, of processes that are gone (a live one's is never touched)."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            match = _TEMP.fullmatch(entry.name)
            if match and match.group(1) == host_tag() and not pid_alive(int(match.group(2))):
                with contextlib.suppress(OSError):
                    if entry.is_file(follow_symlinks=False):
                        os.unlink(entry.path)


def _still_a_file_or_nothing(target: Path) -> None:
    """Right before the rename: what is at target must still be a regular file or nothing."""
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISREG(os.lstat(target).st_mode):
            raise StoreError(
                f"{target}: became something other than a regular file while zoopm downloaded",
                hint="move it away, then run download-binary again",
            )
