"""Resolve: zoo.toml's models turned into a Lock, one source at a time."""

from __future__ import annotations

from pathlib import Path

from zoopm.errors import ZoopmError
from zoopm.lockfile import Lock, LockedModel
from zoopm.manifest import GistSource, GithubSource, LocalSource, Manifest, ModelSpec
from zoopm.reporting import Reporter
from zoopm.sources import BinaryFetcher
from zoopm.sources.local import resolve_local


def resolve(manifest: Manifest, fetcher: BinaryFetcher, reporter: Reporter) -> Lock:
    models = tuple(
        _resolve_model(spec, manifest.root, fetcher, reporter) for spec in manifest.models
    )
    return Lock(manifest.manifest_hash(), tuple(sorted(models, key=lambda m: m.name)))


def _resolve_model(
    spec: ModelSpec, root: Path, fetcher: BinaryFetcher, reporter: Reporter
) -> LockedModel:
    if isinstance(spec.source, LocalSource):
        return resolve_local(spec, root, fetcher, reporter)
    if isinstance(spec.source, GistSource | GithubSource):
        raise ZoopmError(
            f"zoo.toml: models.{spec.name}: {spec.source.describe()}: GitHub sources are not "
            "supported by this version of zoopm yet",
            hint='use a local model directory ({ path = "..." }) for now',
        )
    raise AssertionError(spec.source)
