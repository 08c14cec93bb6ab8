"""Resolve: zoo.toml's models turned into a Lock, several sources at once.

A model already locked at the commit zoo.toml pins is kept without asking the API again, but
only once its entry agrees with its readme.md at that commit: the lock is a file anyone can
edit, and --check and --frozen are what CI trusts.
"""

from __future__ import annotations

import contextlib
import functools
import re
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from zoopm.atomic import TooLarge, read_regular
from zoopm.digest import digest_bytes, git_blob_sha1
from zoopm.errors import (
    FileSystemError,
    IntegrityError,
    NetworkError,
    OfflineError,
    StaleLockError,
    StoreError,
    ZoopmError,
)
from zoopm.formats.lockfile import LOCK_NAME, Lock, LockedFile, LockedModel
from zoopm.formats.manifest import GistSource, GithubSource, LocalSource, Manifest, ModelSpec
from zoopm.formats.modelinfo import ModelInfo, find_readme, parse_model_info
from zoopm.network.github_api import GitHubClient
from zoopm.network.net import HttpClient
from zoopm.reporting import Reporter
from zoopm.sources import BinaryFetcher
from zoopm.sources.gist import resolve_gist
from zoopm.sources.github import resolve_repo
from zoopm.sources.hosted import MAX_INFO_FILE, Hosted, read_small
from zoopm.sources.local import resolve_local
from zoopm.storage.store import Expected, Store
from zoopm.tasks import CancelToken, run_tasks

_RAW_BLOB = re.compile(r"/raw/([0-9a-f]{40})/")


@dataclass(frozen=True)
class Disagreement:
    """One value zoo.lock pins for a model that its readme.md at the pinned commit contradicts."""

    model: str
    key: str  # the key path in zoo.lock, e.g. model[nin].file[1].sha1
    detail: str  # what differs, naming both values

    def __str__(self) -> str:
        return f"{LOCK_NAME}: {self.key}: {self.detail}"


def disagreement_error(found: Sequence[Disagreement]) -> StaleLockError:
    """The error --check and --frozen give for a lock that does not agree with its pins."""
    first = found[0]
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return StaleLockError(
        f"{first}{more}",
        hint=f"run 'zoopm lock' to pin {first.model} again from the commit zoo.toml names; "
        "if nobody meant to change zoo.lock, find out who edited it",
    )


@dataclass(frozen=True)
class Resolver:
    """What resolving needs; the GitHub and HTTP clients are made only if a model needs them."""

    root: Path
    store: Store
    fetcher: BinaryFetcher
    http: Callable[[], HttpClient]
    github: Callable[[], GitHubClient]
    reporter: Reporter
    jobs: int = 4
    token: CancelToken = field(default_factory=CancelToken)

    def resolve(
        self, manifest: Manifest, previous: Lock | None = None, *, check: bool = False
    ) -> Lock:
        """A lock for manifest; a model pinned to a commit and already locked is kept as it is.

        A kept entry that disagrees with its readme.md is resolved again, or with check is an
        error (before any API request, so a CI gate costs no rate limit).
        """
        models: list[LockedModel] = []
        todo: list[ModelSpec] = []
        wrong: list[Disagreement] = []
        for spec in manifest.models:
            kept = _still_pinned(spec, previous)
            found = self.check_pins([kept]) if kept is not None else []
            if kept is not None and not found:
                models.append(kept)
                continue
            if found and not check:
                self.reporter.warning(f"{found[0]}; resolving {spec.name} again")
            wrong.extend(found)
            todo.append(spec)
        if check and wrong:
            raise disagreement_error(wrong)
        models.extend(self._resolve_all(todo))
        return Lock(manifest.manifest_hash(), tuple(sorted(models, key=lambda m: m.name)))

    def _resolve_all(self, specs: list[ModelSpec]) -> list[LockedModel]:
        # API requests for different models go out together, bounded by the job count; Ctrl-C
        # or the first failure stops the models not yet started.
        tasks = [functools.partial(self.resolve_one, spec) for spec in specs]
        return run_tasks(tasks, self.jobs, self.token)

    def resolve_one(self, spec: ModelSpec) -> LockedModel:
        source = spec.source
        if isinstance(source, LocalSource):
            return resolve_local(spec, self.root, self.fetcher, self.reporter)
        if isinstance(source, GistSource):
            return resolve_gist(spec, self._hosted())
        if isinstance(source, GithubSource):
            return resolve_repo(spec, self._hosted())
        raise AssertionError(source)

    def _hosted(self) -> Hosted:
        return Hosted(self.github(), self.http(), self.store, self.fetcher, self.reporter)

    def check_pins(self, models: Iterable[LockedModel]) -> list[Disagreement]:
        """Where locked gist and repository models disagree with their readme.md at their commit.

        No API request: the readme's bytes come from the store (hashed here before they are
        believed), else from their locked raw URL, and are checked against the lock.
        """
        found: list[Disagreement] = []
        for model in models:
            found.extend(self._model_disagreements(model))
        return found

    def _model_disagreements(self, model: LockedModel) -> list[Disagreement]:
        source = model.source_dict()
        rev = source.get("rev", "")
        if "gist" in source:
            pinned = f"gist {source['gist']}@{rev[:12]}"
        elif "github" in source:
            pinned = f"github {source['github']}/{source.get('path', '')}@{rev[:12]}"
        else:
            return []  # a local directory is read again on every lock
        key = f"model[{model.name}]"
        index = {file.path: i for i, file in enumerate(model.files)}
        found = [
            Disagreement(model.name, f"{key}.file[{index[file.path]}].urls", problem)
            for file in model.files
            if not file.binary
            for url in file.urls
            if (problem := _url_off_pin(url, source)) is not None
        ]
        if found:
            # Fetch nothing from a URL that is not at the pinned commit.
            return found
        top_level = [file.path for file in model.files if "/" not in file.path]
        name = find_readme(top_level, f"{LOCK_NAME}: {key}")
        if name is None:
            return [Disagreement(model.name, f"{key}.file", f"no readme.md, but {pinned} has one")]
        readme = model.file(name)
        assert readme is not None
        file_key = f"{key}.file[{index[name]}]"
        data = self._readme_bytes(model.name, readme, file_key)
        if isinstance(data, Disagreement):
            return [data]
        if "gist" in source:
            blob = git_blob_sha1(data)
            for url in readme.urls:
                match = _RAW_BLOB.search(urllib.parse.urlsplit(url).path)
                if match is not None and match.group(1) != blob:
                    detail = f"the URL names git blob {match.group(1)}, but {name} is blob {blob}"
                    return [Disagreement(model.name, f"{file_key}.urls", detail)]
        info = parse_model_info(data, f"{pinned}/{name}")
        return _facts_disagreements(model, info, f"{name} of {pinned}", index)

    def _readme_bytes(self, model: str, readme: LockedFile, key: str) -> bytes | Disagreement:
        """The readme's bytes as locked: from the store if they hash right, else downloaded."""
        stored = self.store.get(readme.sha256)
        if stored is not None and readme.size <= MAX_INFO_FILE:
            with contextlib.suppress(OSError, TooLarge):
                data = read_regular(stored, MAX_INFO_FILE, follow=False)
                if digest_bytes(data).sha256 == readme.sha256:
                    return data
        if not readme.urls:
            return Disagreement(model, f"{key}.urls", "none, so readme.md cannot be checked")
        failure: ZoopmError | None = None
        for url in readme.urls:
            try:
                # Never more than the lock says, and never more than GitHub serves this way.
                data = read_small(self.http(), url, min(readme.size, MAX_INFO_FILE))
            except OfflineError:
                raise OfflineError(
                    f"{LOCK_NAME}: {key}: readme.md is not in the store, and zoopm is offline; "
                    "it is needed to check the lock against its pinned revision"
                ) from None
            except (NetworkError, IntegrityError) as exc:
                failure = exc
                continue
            digest = digest_bytes(data)
            for name, locked, served in (
                ("size", str(readme.size), str(digest.size)),
                ("sha1", readme.sha1, digest.sha1),
                ("sha256", readme.sha256, digest.sha256),
            ):
                if locked != served:
                    detail = f"the lock says {locked}, but {url} serves {name} {served}"
                    return Disagreement(model, f"{key}.{name}", detail)
            # Install needs these bytes too; storing them is a saving, never a requirement.
            with contextlib.suppress(StoreError, FileSystemError):
                self.store.add_bytes(data, Expected(digest.size, digest.sha1, digest.sha256), url)
            return data
        assert failure is not None
        # The origin is gone: the copy pushed to the remote store, if it has the locked hash.
        expected = Expected(readme.size, readme.sha1, readme.sha256)
        label = f"{model}/{readme.path}"
        if readme.size <= MAX_INFO_FILE and self.fetcher.from_remote_store(expected, label):
            stored = self.store.get(readme.sha256)
            with contextlib.suppress(OSError, TooLarge):
                data = read_regular(stored, MAX_INFO_FILE, follow=False) if stored else b""
                if digest_bytes(data).sha256 == readme.sha256:
                    self.reporter.info(
                        f"{model}: readme.md checked against the remote store's copy "
                        f"({failure.message})"
                    )
                    return data
        detail = f"readme.md cannot be fetched to check the lock: {failure.message}"
        return Disagreement(model, f"{key}.urls", detail)


def _url_off_pin(url: str, source: dict[str, str]) -> str | None:
    """Why a locked info file URL is not one at the pinned gist or commit, or None if it is."""
    path = urllib.parse.urlsplit(url).path
    segments = [urllib.parse.unquote(part) for part in path.split("/")]
    if "gist" in source:
        if source["gist"] not in segments or _RAW_BLOB.search(path) is None:
            return f"{url!r} is not a raw URL of a file of gist {source['gist']}"
    elif source.get("rev", "") not in segments:
        return f"{url!r} is not at the pinned commit {source.get('rev', '')}"
    return None


def _facts_disagreements(
    model: LockedModel, info: ModelInfo, says: str, index: dict[str, int]
) -> list[Disagreement]:
    """What the lock says about the model and its binary that readme.md says otherwise."""
    key = f"model[{model.name}]"
    found: list[Disagreement] = []

    def differ(key_path: str, locked: object, pinned: object, what: str) -> None:
        detail = f"the lock says {_show(locked)}, but {says} says {what} {_show(pinned)}"
        found.append(Disagreement(model.name, key_path, detail))

    for name, locked, pinned in (
        ("caffemodel", model.caffemodel, info.caffemodel),
        ("license", model.license, info.license),
        ("caffe-commit", model.caffe_commit, info.caffe_commit),
        ("caffe-version", model.caffe_version, info.caffe_version),
    ):
        if locked != pinned:
            differ(f"{key}.{name}", locked, pinned, name.replace("-", "_"))
    binaries = [file for file in model.files if file.binary]
    if not model.binary:
        found += [
            Disagreement(
                model.name,
                f"{key}.file[{index[file.path]}].binary",
                f"the lock marks {file.path!r} as the binary, but zoo.toml says binary = false",
            )
            for file in binaries
        ]
        return found
    if len(binaries) != 1:
        paths = ", ".join(repr(file.path) for file in binaries) or "none"
        detail = f"the lock's binary files are {paths}, but {says} says caffemodel "
        found.append(Disagreement(model.name, f"{key}.file", detail + _show(info.caffemodel)))
        return found
    binary = binaries[0]
    file_key = f"{key}.file[{index[binary.path]}]"
    if binary.path != info.caffemodel:
        differ(f"{file_key}.path", binary.path, info.caffemodel, "caffemodel")
    if info.sha1 is not None and binary.sha1 != info.sha1:
        differ(f"{file_key}.sha1", binary.sha1, info.sha1, "sha1")
    if info.caffemodel_url not in binary.urls:
        differ(f"{file_key}.urls", list(binary.urls), info.caffemodel_url, "caffemodel_url")
    return found


def _show(value: object) -> str:
    return "nothing" if value is None else repr(value)


def _still_pinned(spec: ModelSpec, previous: Lock | None) -> LockedModel | None:
    """The previous lock's entry for spec, if spec names the same commit: commits never change."""
    if previous is None or isinstance(spec.source, LocalSource) or spec.source.rev is None:
        return None
    locked = previous.model(spec.name)
    if locked is None or locked.binary != spec.binary:
        return None
    return locked if locked.source_dict() == spec.source.canonical() else None
