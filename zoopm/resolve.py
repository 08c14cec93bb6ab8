"""Resolve: zoo.toml's models turned into a Lock, several sources at once."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zoopm.errors import ZoopmError
from zoopm.github_api import GitHubClient
from zoopm.lockfile import Lock, LockedModel
from zoopm.manifest import GistSource, GithubSource, LocalSource, Manifest, ModelSpec
from zoopm.net import HttpClient
from zoopm.reporting import Reporter
from zoopm.sources import BinaryFetcher
from zoopm.sources.gist import resolve_gist
from zoopm.sources.github import resolve_repo
from zoopm.sources.local import resolve_local
from zoopm.sources.remote import Remote
from zoopm.store import Store


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

    def resolve(self, manifest: Manifest, previous: Lock | None = None) -> Lock:
        """A lock for manifest; a model pinned to a commit and already locked is kept as it is."""
        specs = list(manifest.models)
        models: list[LockedModel] = []
        todo: list[ModelSpec] = []
        for spec in specs:
            kept = _still_pinned(spec, previous)
            if kept is not None:
                models.append(kept)
            else:
                todo.append(spec)
        models.extend(self._resolve_all(todo))
        return Lock(manifest.manifest_hash(), tuple(sorted(models, key=lambda m: m.name)))

    def _resolve_all(self, specs: list[ModelSpec]) -> list[LockedModel]:
        if len(specs) <= 1 or self.jobs <= 1:
            return [self.resolve_one(spec) for spec in specs]
        # API requests for different models go out together, bounded by the job count.
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futures = [pool.submit(self.resolve_one, spec) for spec in specs]
            results: list[LockedModel] = []
            first_error: BaseException | None = None
            for future in futures:
                try:
                    results.append(future.result())
                except ZoopmError as exc:
                    first_error = first_error or exc
            if first_error is not None:
                raise first_error
            return results

    def resolve_one(self, spec: ModelSpec) -> LockedModel:
        source = spec.source
        if isinstance(source, LocalSource):
            return resolve_local(spec, self.root, self.fetcher, self.reporter)
        if isinstance(source, GistSource):
            return resolve_gist(spec, self._remote())
        if isinstance(source, GithubSource):
            return resolve_repo(spec, self._remote())
        raise AssertionError(source)

    def _remote(self) -> Remote:
        return Remote(self.github(), self.http(), self.store, self.fetcher, self.reporter)


def _still_pinned(spec: ModelSpec, previous: Lock | None) -> LockedModel | None:
    """The previous lock's entry for spec, if spec names the same commit: commits never change."""
    if previous is None or isinstance(spec.source, LocalSource) or spec.source.rev is None:
        return None
    locked = previous.model(spec.name)
    if locked is None or locked.binary != spec.binary:
        return None
    return locked if locked.source_dict() == spec.source.canonical() else None
