"""Model assembly: a source's info files plus the binary its readme.md names, as one LockedModel."""

from __future__ import annotations

from pathlib import Path

from zoopm.digest import digest_file
from zoopm.errors import IntegrityError, ModelInfoError, SourceError
from zoopm.formats.lockfile import LockedFile, LockedModel
from zoopm.formats.manifest import ModelSpec
from zoopm.formats.modelinfo import ModelInfo, find_readme, parse_model_info, read_info_head
from zoopm.reporting import Reporter
from zoopm.sources import BinaryFetcher
from zoopm.trust import URL_HINTS, Trust, url_problem


def read_info(
    files: dict[str, bytes] | dict[str, Path], label: str, reporter: Reporter
) -> tuple[str, ModelInfo]:
    """Finds readme.md among the top-level files and parses it; warnings go to the reporter."""
    readme = find_readme([name for name in files if "/" not in name], label)
    if readme is None:
        raise ModelInfoError(
            f"{label}: no readme.md",
            hint="a model needs readme.md with caffemodel, caffemodel_url and sha1",
        )
    content = files[readme]
    data = read_info_head(content) if isinstance(content, Path) else content
    info = parse_model_info(data, f"{label}/{readme}")
    for warning in info.warnings:
        reporter.warning(warning)
    return readme, info


def binary_entry(
    *,
    spec: ModelSpec,
    info: ModelInfo,
    label: str,
    fetcher: BinaryFetcher,
    reporter: Reporter,
    on_disk: Path | None = None,
    trust: Trust = Trust.THIRD_PARTY,
    readme: str = "readme.md",
) -> LockedFile | None:
    """The locked entry of the binary readme.md names, or None when binary = false.

    The binary comes from on_disk when that file exists, else from caffemodel_url; either way
    its SHA-1 must be the frontmatter's. trust says who wrote readme.md: only the project's own
    readme may name a file:// URL. The default is the safe one, so a caller that forgets it
    can never read a local file on a stranger's word. readme is the file's name as the source
    spells it (README.md in many gists), for messages.
    """
    if not spec.binary:
        return None
    if info.caffemodel is None:
        raise ModelInfoError(
            f"{label}/{readme}: no caffemodel key, so zoopm cannot tell which file is the binary",
            hint=f"add caffemodel to the frontmatter, or set binary = false for models.{spec.name}",
        )
    where = f"{label}/{info.caffemodel}"
    urls = (info.caffemodel_url,) if info.caffemodel_url else ()
    for url in urls:
        # Checked even when the binary is on disk: the URL goes into zoo.lock either way.
        problem = url_problem(url, trust)
        if problem is not None:
            # Someone else's readme is the source's fault (exit 1); the project's own, the user's.
            error = SourceError if trust is Trust.THIRD_PARTY else ModelInfoError
            raise error(
                f"{label}/{readme}: caffemodel_url {url!r} refused: {problem}",
                hint=URL_HINTS[trust],
            )
    if on_disk is not None and on_disk.is_file():
        digest = digest_file(on_disk)
        if info.sha1 is not None and digest.sha1 != info.sha1:
            raise IntegrityError(
                f"{where}: sha1 mismatch: readme.md says {info.sha1}, the file hashes to "
                f"{digest.sha1}",
                hint="the binary is not the one readme.md describes; replace it or fix sha1",
            )
    elif urls:
        digest = fetcher.fetch_binary(urls[0], info.sha1, where)
    else:
        raise ModelInfoError(
            f"{where}: the binary is not here and readme.md has no caffemodel_url",
            hint="add caffemodel_url and sha1 to readme.md, or set binary = false",
        )
    if info.sha1 is None:
        reporter.warning(
            f"{label}/{readme}: no sha1 for the binary, so zoopm trusted it on first use: "
            f"zoo.lock pins the bytes it got (sha1 {digest.sha1}) and checks them from now on"
        )
    return LockedFile(info.caffemodel, digest.size, digest.sha1, digest.sha256, urls, binary=True)


def locked_model(
    spec: ModelSpec,
    source: dict[str, str],
    info: ModelInfo,
    files: list[LockedFile],
    label: str,
) -> LockedModel:
    paths = [f.path for f in files]
    duplicate = next((p for p in paths if paths.count(p) > 1), None)
    if duplicate is not None:
        raise ModelInfoError(
            f"{label}: caffemodel {duplicate!r} is also one of the model's info files",
            hint="name the binary by a file name that is not already in the model",
        )
    return LockedModel(
        name=spec.name,
        source=tuple(sorted(source.items())),
        files=tuple(sorted(files, key=lambda f: f.path)),
        binary=spec.binary,
        caffemodel=info.caffemodel,
        license=info.license,
        caffe_commit=info.caffe_commit,
        caffe_version=info.caffe_version,
    )
