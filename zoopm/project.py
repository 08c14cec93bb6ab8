"""Project: the composition root that wires settings, store, client and sources into operations."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from zoopm.atomic import atomic_write
from zoopm.changes import lock_changes, manifest_changes
from zoopm.errors import ManifestError, StaleLockError, UsageError
from zoopm.fetch import Fetcher
from zoopm.install import InstallPlan, InstallResult, apply_install, plan_install
from zoopm.lockfile import LOCK_NAME, Lock, LockedModel, read_lock, render_lock
from zoopm.manifest import LINK_MODES, MANIFEST_NAME, TEMPLATE, Manifest, read_manifest
from zoopm.materialize import is_intact, read_record
from zoopm.reporting import NullReporter, Reporter
from zoopm.settings import Settings
from zoopm.store import Store

if TYPE_CHECKING:
    from zoopm.github_api import GitHubClient
    from zoopm.net import HttpClient
    from zoopm.resolve import Resolver


@dataclass(frozen=True)
class LockResult:
    lock: Lock
    changes: tuple[str, ...]
    created: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.changes)


@dataclass(frozen=True)
class ModelStatus:
    """A locked model and whether its files under the models directory are in place."""

    model: LockedModel
    declared: bool
    installed_files: int

    @property
    def installed(self) -> bool:
        return self.installed_files == len(self.model.files)


class Project:
    """A directory with zoo.toml; every zoopm operation is a method here."""

    def __init__(
        self,
        root: Path,
        settings: Settings | None = None,
        reporter: Reporter | None = None,
    ) -> None:
        self.root = root.absolute()
        self.settings = settings if settings is not None else Settings.from_env()
        self.reporter: Reporter = reporter if reporter is not None else NullReporter()
        self._client: HttpClient | None = None
        self._github_client: GitHubClient | None = None

    @classmethod
    def discover(
        cls, start: Path, settings: Settings | None = None, reporter: Reporter | None = None
    ) -> Project:
        """The project whose zoo.toml is in start or the nearest directory above it."""
        start = start.absolute()
        for directory in (start, *start.parents):
            if (directory / MANIFEST_NAME).is_file():
                return cls(directory, settings, reporter)
        return cls(start, settings, reporter)

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_NAME

    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_NAME

    @cached_property
    def store(self) -> Store:
        return Store(self.settings.store_dir)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _http(self) -> HttpClient:
        # Made on first use: a no-op install never imports requests.
        if self._client is None:
            from zoopm.net import HttpClient

            self._client = HttpClient(offline=self.settings.offline)
        return self._client

    def _github(self) -> GitHubClient:
        if self._github_client is None:
            from zoopm.github_api import GitHubClient

            self._github_client = GitHubClient(
                self._http(),
                self.settings.github_api,
                self.settings.github_token,
                self.settings.home / "http-cache" / "github",
            )
        return self._github_client

    def _fetcher(self, manifest: Manifest | None) -> Fetcher:
        mirrors = manifest.mirror_map() if manifest is not None else {}
        return Fetcher(
            self.store, self._http, mirrors, self.reporter, offline=self.settings.offline
        )

    def _resolver(self, manifest: Manifest | None) -> Resolver:
        # Imported here: resolving pulls in the readme parser, which a no-op install never needs.
        from zoopm.resolve import Resolver

        return Resolver(
            root=self.root,
            store=self.store,
            fetcher=self._fetcher(manifest),
            http=self._http,
            github=self._github,
            reporter=self.reporter,
            jobs=self.settings.jobs,
        )

    def manifest(self) -> Manifest:
        return read_manifest(self.manifest_path)

    def read_lock(self) -> Lock | None:
        return read_lock(self.lock_path)

    def models_dir(self, manifest: Manifest | None = None) -> Path:
        manifest = manifest if manifest is not None else self.manifest()
        return self.root / manifest.models_dir

    def init(self) -> Path:
        """Writes a commented zoo.toml; refuses to replace one."""
        if self.manifest_path.exists():
            raise ManifestError(
                f"{self.manifest_path}: already exists",
                hint="edit it, or run 'zoopm init' in another directory",
            )
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write(self.manifest_path, TEMPLATE.encode())
        return self.manifest_path

    def lock(self, *, check: bool = False) -> LockResult:
        """Resolves zoo.toml into zoo.lock; with check, only says whether zoo.lock is current."""
        return self._lock(self.manifest(), check=check)

    def _lock(
        self, manifest: Manifest, *, check: bool = False, previous: Lock | None = None
    ) -> LockResult:
        old = self.read_lock()
        new = self._resolver(manifest).resolve(manifest, previous or old)
        old_text = self.lock_path.read_text(encoding="utf-8") if old is not None else None
        new_text = render_lock(new)
        changes = tuple(lock_changes(old, new)) if new_text != old_text else ()
        if check:
            if changes:
                raise StaleLockError(f"{LOCK_NAME} is out of date: {'; '.join(changes)}")
        elif changes:
            atomic_write(self.lock_path, new_text.encode())
        return LockResult(new, changes, created=old is None)

    def plan(self, *, frozen: bool = False) -> tuple[Lock, InstallPlan]:
        """The lock to install (locking first unless frozen) and what installing it would do."""
        manifest = self.manifest()
        lock = self.read_lock()
        if lock is None:
            if frozen:
                raise StaleLockError(
                    f"{LOCK_NAME}: missing", hint="run 'zoopm lock' and commit zoo.lock"
                )
            lock = self._lock(manifest).lock
        else:
            changes = manifest_changes(manifest, lock)
            if changes and frozen:
                raise StaleLockError(
                    f"{LOCK_NAME} does not match {MANIFEST_NAME}: {', '.join(changes)}",
                    hint="run 'zoopm lock' (or drop --frozen) to update zoo.lock",
                )
            if changes:
                self.reporter.info(f"{LOCK_NAME} is out of date ({', '.join(changes)}); locking")
                lock = self._lock(manifest).lock
        return lock, plan_install(lock, self.models_dir(manifest), self.store)

    def install(self, *, frozen: bool = False, link_mode: str | None = None) -> InstallResult:
        """Makes the models directory hold exactly the locked files, fetching what is missing."""
        manifest = self.manifest()
        mode = link_mode or manifest.link_mode
        if mode not in LINK_MODES:
            raise UsageError(f"--link-mode: {mode!r} is not one of {', '.join(LINK_MODES)}")
        _, plan = self.plan(frozen=frozen)
        result = apply_install(
            plan,
            store=self.store,
            fetcher=self._fetcher(manifest),
            project_root=self.root,
            link_mode=mode,
            reporter=self.reporter,
            jobs=self.settings.jobs,
            offline=self.settings.offline,
        )
        if not plan.nothing_to_do:
            self.store.register_project(self.lock_path)
        return result

    def status(self) -> list[ModelStatus]:
        """Every locked model (and declared-but-unlocked ones are reported by lock --check)."""
        manifest = self.manifest()
        lock = self.read_lock()
        if lock is None:
            raise StaleLockError(f"{LOCK_NAME}: missing", hint="run 'zoopm lock' first")
        models_dir = self.models_dir(manifest)
        record = read_record(models_dir)
        result = []
        for model in lock.models:
            installed = 0
            for file in model.files:
                placed = record.placed(model.name, file.path)
                target = models_dir / model.name / file.path
                if placed and placed.sha256 == file.sha256 and is_intact(target, placed):
                    installed += 1
            result.append(ModelStatus(model, manifest.model(model.name) is not None, installed))
        return result

    def show(self, name: str) -> ModelStatus:
        for status in self.status():
            if status.model.name == name:
                return status
        raise UsageError(f"no model named {name!r} in {LOCK_NAME}", hint="'zoopm list' shows them")
