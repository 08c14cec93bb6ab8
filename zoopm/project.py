"""Project: the composition root that wires settings, store, client and sources into operations."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from zoopm.atomic import atomic_write
from zoopm.errors import (
    ManifestError,
    OfflineError,
    RemoteStoreError,
    StaleLockError,
    UsageError,
    ZoopmError,
)
from zoopm.formats.lockfile import LOCK_NAME, Lock, LockedModel, read_lock, render_lock
from zoopm.formats.manifest import (
    LINK_MODES,
    TEMPLATE,
    GistSource,
    GithubSource,
    LocalSource,
    Manifest,
    ModelSpec,
    Source,
    add_model,
    parse_manifest,
    read_manifest,
    read_manifest_text,
    remove_model,
    set_model_rev,
)
from zoopm.locations import MANIFEST_NAME, RECORD_NAME
from zoopm.network.fetch import Fetcher
from zoopm.operations.changes import lock_changes, manifest_changes
from zoopm.operations.install import (
    InstallPlan,
    InstallResult,
    apply_install,
    count_installed,
    plan_install,
)
from zoopm.paths import model_name_problem
from zoopm.reporting import NullReporter, Reporter
from zoopm.settings import Settings
from zoopm.storage.materialize import ModelsTree
from zoopm.storage.record import read_record
from zoopm.storage.store import Store
from zoopm.tasks import CancelToken

if TYPE_CHECKING:
    from zoopm.index import Index, IndexEntry
    from zoopm.network.archive import WebArchive
    from zoopm.network.github_api import GitHubClient
    from zoopm.network.net import HttpClient
    from zoopm.operations.bundle import BundleInstalled, BundleWritten
    from zoopm.operations.caffe.adopt import Verdict
    from zoopm.operations.caffe.binary import BinaryResult
    from zoopm.operations.caffe.gistfetch import FetchedGist
    from zoopm.operations.caffe.publish import PublishResult
    from zoopm.operations.gc import GcResult
    from zoopm.operations.push import PushResult
    from zoopm.operations.resolve import Resolver
    from zoopm.operations.verify import VerifyResult
    from zoopm.remote_store.backend import Backend
    from zoopm.remote_store.client import RemoteStore
    from zoopm.remote_store.location import RemoteLocation
    from zoopm.storage.freshness import Inputs as freshness_inputs


@dataclass(frozen=True)
class LockResult:
    """What lock did: the lock as written (or checked), and one line per model that changed."""

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
        *,
        cwd: Path | None = None,
    ) -> None:
        self.root = root.absolute()
        # Where relative paths the user types (zoopm add ./dir) are taken from: -C DIR, or root.
        self.cwd = cwd.absolute() if cwd is not None else self.root
        self.settings = settings if settings is not None else Settings.from_env()
        self.reporter: Reporter = reporter if reporter is not None else NullReporter()
        # Cancelling it (Ctrl-C, SIGTERM) stops downloads and resolution at the next chunk.
        self.token = CancelToken()
        self._client: HttpClient | None = None
        self._github_client: GitHubClient | None = None
        self._remote: RemoteStore | None = None
        self._exclusive_depth = 0
        self._store_depth = 0
        self._from_bundle = False

    @classmethod
    def discover(
        cls, start: Path, settings: Settings | None = None, reporter: Reporter | None = None
    ) -> Project:
        """The project whose zoo.toml is in start or the nearest directory above it."""
        from zoopm.locations import find_project_root

        start = start.absolute()
        root = find_project_root(start)
        return cls(root if root is not None else start, settings, reporter, cwd=start)

    @classmethod
    def find(
        cls,
        start: str | os.PathLike[str] = ".",
        *,
        settings: Settings | None = None,
        reporter: Reporter | None = None,
    ) -> Project:
        """The project around start, found as the command line finds it: the nearest directory
        at or above start that holds a zoo.toml.

        start may be the project directory, any directory below it, or a file there (a
        script's __file__). With no zoo.toml above start, the Project is rooted at start, and
        whatever needs zoo.toml raises the ManifestError 'zoopm' prints outside a project.
        Settings come from the environment unless given; reporter receives progress and
        warnings (by default nothing does: the library never prints).
        """
        path = Path(start)
        if path.is_file():
            path = path.parent
        elif not path.is_dir():
            raise UsageError(
                f"{path}: no such directory",
                hint="pass the project directory, a directory below it, or a file there",
            )
        return cls.discover(path, settings, reporter)

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
            from zoopm.network.net import HttpClient

            self._client = HttpClient(
                offline=self.settings.offline,
                read_timeout=self.settings.read_timeout,
                cancel=self.token,
            )
        return self._client

    def _github(self) -> GitHubClient:
        if self._github_client is None:
            from zoopm.network.github_api import GitHubClient

            self._github_client = GitHubClient(
                self._http(),
                self.settings.github_api,
                self.settings.github_token,
                self.settings.home / "http-cache" / "github",
            )
        return self._github_client

    def _fetcher(self, manifest: Manifest | None) -> Fetcher:
        return Fetcher(
            self.store,
            self._http,
            self.mirrors(manifest),
            self.reporter,
            offline=self.settings.offline,
            token=self.token,
            lock_timeout=self.settings.lock_timeout,
            archive=self._web_archive(manifest),
            remote=None if self.settings.offline else self.remote_store(manifest),
        )

    def remote_location(self, manifest: Manifest | None = None) -> RemoteLocation | None:
        """The shared remote store: ZOOPM_REMOTE, then zoo.toml's [store], then config.toml's;
        None when none is set or ZOOPM_REMOTE is off."""
        if self.settings.remote_off:
            return None
        if self.settings.remote is not None:
            return self.settings.remote
        if manifest is not None and manifest.remote is not None:
            return manifest.remote
        return self.settings.config.remote

    def remote_store(self, manifest: Manifest | None = None) -> RemoteStore | None:
        """The remote store to ask and push to (its backend is imported on first use)."""
        location = self.remote_location(manifest)
        if location is None:
            return None
        if self._remote is None or self._remote.location != location:
            from zoopm.remote_store.client import RemoteStore, open_backend

            def backend() -> Backend:
                return open_backend(location, self._http, self.token, self.settings.read_timeout)

            self._remote = RemoteStore(location, backend, self.reporter, self.token)
        return self._remote

    def _web_archive(self, manifest: Manifest | None) -> WebArchive | None:
        """The web archive to look for dead links in, unless offline or turned off."""
        api = self.settings.archive_api
        if api is None or self.settings.offline or not self.archive_fallback(manifest):
            return None
        from zoopm.network.archive import MAX_ARCHIVE_ANSWER, WebArchive
        from zoopm.network.net import HttpClient

        def client() -> HttpClient:
            # Its own session: no cookie or header set for another host reaches the archive.
            return HttpClient(
                offline=self.settings.offline,
                read_timeout=self.settings.read_timeout,
                cancel=self.token,
                max_answer=MAX_ARCHIVE_ANSWER,
            )

        return WebArchive(api, client)

    def archive_fallback(self, manifest: Manifest | None = None) -> bool:
        """Whether dead links are looked for in the web archive: zoo.toml, config.toml, true."""
        if manifest is not None and manifest.archive_fallback is not None:
            return manifest.archive_fallback
        config = self.settings.config.archive_fallback
        return True if config is None else config

    def mirrors(self, manifest: Manifest | None = None) -> dict[str, tuple[str, ...]]:
        """The user configuration's mirrors, then zoo.toml's: zoo.toml wins for the same prefix."""
        merged = dict(self.settings.config.mirror_map())
        if manifest is not None:
            merged.update(manifest.mirror_map())
        return merged

    def link_mode(self, manifest: Manifest, asked: str | None = None) -> str:
        """The link mode to install with: asked (--link-mode), zoo.toml, config.toml, "auto"."""
        return asked or manifest.link_mode or self.settings.config.link_mode or "auto"

    def _resolver(self, manifest: Manifest | None) -> Resolver:
        # Imported here: resolving pulls in the readme parser, which a no-op install never needs.
        from zoopm.operations.resolve import Resolver

        return Resolver(
            root=self.root,
            store=self.store,
            fetcher=self._fetcher(manifest),
            http=self._http,
            github=self._github,
            reporter=self.reporter,
            jobs=self.settings.jobs,
            token=self.token,
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
        if os.path.lexists(self.manifest_path):
            raise ManifestError(
                f"{self.manifest_path}: already exists",
                hint="edit it, or run 'zoopm init' in another directory",
            )
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write(self.manifest_path, TEMPLATE.encode())
        return self.manifest_path

    def lock(self, *, check: bool = False) -> LockResult:
        """Resolves zoo.toml into zoo.lock; with check, only says whether zoo.lock is current."""
        if check:
            return self._lock(self.manifest(), check=True)
        with self.exclusive():
            return self._lock(self.manifest())

    def _identity(self) -> str:
        try:
            info = os.stat(self.root)
        except OSError:
            return str(self.root.resolve())
        return f"{info.st_dev}:{info.st_ino}"

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Holds this project's lock: one zoopm at a time edits zoo.toml, zoo.lock and models/.

        Reentrant within the Project, so add can lock and install under one hold.
        """
        if self._exclusive_depth:
            self._exclusive_depth += 1
            try:
                yield
            finally:
                self._exclusive_depth -= 1
            return
        from zoopm.storage.locks import hold_lock

        # The directory itself, not a name of it: -C link/, a bind mount and -C proj/ are one
        # project and must exclude each other.
        key = hashlib.sha256(self._identity().encode()).hexdigest()[:32]
        with hold_lock(
            self.settings.home / "locks" / f"project-{key}.lock",
            f"working in {self.root}",
            timeout=self.settings.lock_timeout,
            token=self.token,
            on_wait=self.reporter.info,
        ):
            self._exclusive_depth = 1
            try:
                with self.using_store():
                    yield
            finally:
                self._exclusive_depth = 0

    @contextlib.contextmanager
    def using_store(self) -> Iterator[None]:
        """Holds the store shared while this run fetches, places and registers: gc, which holds
        it exclusive, never sees a blob this run needs before its lock is registered."""
        from zoopm.storage.locks import hold_store_lock

        if self._store_depth:
            yield
            return
        with hold_store_lock(
            self.store.root / "locks" / "store.lock",
            f"working in {self.root}",
            shared=True,
            timeout=self.settings.lock_timeout,
            token=self.token,
            on_wait=self.reporter.info,
        ):
            self._store_depth = 1
            try:
                yield
            finally:
                self._store_depth = 0

    def _register(self) -> None:
        # By the directory's real path: -C link/ and -C proj/ are one entry, as for the record.
        self.store.register_project(self.root.resolve() / LOCK_NAME)

    def _lock(
        self, manifest: Manifest, *, check: bool = False, previous: Lock | None = None
    ) -> LockResult:
        old = self.read_lock()
        new = self._resolver(manifest).resolve(manifest, previous or old, check=check)
        old_text = self.lock_path.read_text(encoding="utf-8") if old is not None else None
        new_text = render_lock(new)
        changes = tuple(lock_changes(old, new)) if new_text != old_text else ()
        if check:
            if changes:
                raise StaleLockError(f"{LOCK_NAME} is out of date: {'; '.join(changes)}")
        elif changes:
            atomic_write(self.lock_path, new_text.encode())
        if not check:
            self._register()  # a locked project keeps the blobs locking stored, before install
        return LockResult(new, changes, created=old is None)

    def plan(
        self,
        *,
        frozen: bool = False,
        link_mode: str | None = None,
        manifest: Manifest | None = None,
        dry_run: bool = False,
    ) -> tuple[Lock, InstallPlan]:
        """The lock to install (locking first unless frozen) and what installing it would do.

        dry_run: asked by install --dry-run, which never locks (frozen, with its own hints)."""
        frozen = frozen or dry_run
        stale_hint = (
            "run 'zoopm lock' first: --dry-run shows what installing zoo.lock would do, and "
            "never locks"
            if dry_run
            else "run 'zoopm lock' (or drop --frozen) to update zoo.lock"
        )
        manifest = manifest if manifest is not None else self.manifest()
        lock = self.read_lock()
        if lock is None:
            if frozen:
                raise StaleLockError(
                    f"{LOCK_NAME}: missing",
                    hint=stale_hint if dry_run else "run 'zoopm lock' and commit zoo.lock",
                )
            lock = self._lock(manifest).lock
        else:
            changes = manifest_changes(manifest, lock)
            if changes and frozen:
                raise StaleLockError(
                    f"{LOCK_NAME} does not match {MANIFEST_NAME}: {', '.join(changes)}",
                    hint=stale_hint,
                )
            if changes:
                self.reporter.info(f"{LOCK_NAME} is out of date ({', '.join(changes)}); locking")
                lock = self._lock(manifest).lock
        plan = self._plan_install(lock, manifest, link_mode)
        placing = {action.model.name for action in plan.place}
        pinned = [m for m in lock.models if m.name in placing and not _is_local(m)]
        if pinned:
            # Before a byte is fetched, the lock must agree with each pinned readme.md. Local
            # models have no pin to check, and a no-op install places nothing: both skip this,
            # and the readme parser with it.
            from zoopm.operations.resolve import disagreement_error

            wrong = self._resolver(manifest).check_pins(pinned)
            if wrong and frozen:
                raise disagreement_error(wrong)
            if wrong:
                lock = self._lock(manifest).lock  # resolves the disagreeing models again
                plan = self._plan_install(lock, manifest, link_mode)
        if plan.place:
            self._warn_local_drift(lock, {action.model.name for action in plan.place})
        return lock, plan

    def _warn_local_drift(self, lock: Lock, placing: set[str]) -> None:
        """zoo.lock is the contract, so install places what it pins; a local model directory
        changed since is said once, whether or not the store still holds the locked bytes."""
        from zoopm.sources.local import local_drift

        for model in lock.models:
            if model.name not in placing or not _is_local(model):
                continue
            if self._from_bundle and not os.path.lexists(self.root / model.source_dict()["path"]):
                continue  # a bundle carries the model's files; its directory stayed behind
            drift = local_drift(model, self.root)
            if drift:
                shown = ", ".join(drift[:3]) + (
                    f" and {len(drift) - 3} more" if len(drift) > 3 else ""
                )
                self.reporter.warning(
                    f"{model.name}: {model.source_dict()['path']} changed since {LOCK_NAME} was "
                    f"written ({shown}); install places what {LOCK_NAME} pins (run 'zoopm lock' "
                    "to pin the new contents)"
                )

    def _plan_install(
        self, lock: Lock, manifest: Manifest, link_mode: str | None = None
    ) -> InstallPlan:
        models_dir = self.models_dir(manifest)
        if os.path.lexists(models_dir) and not models_dir.is_dir():
            raise ManifestError(
                f"{self.manifest_path}: models-dir {manifest.models_dir!r} is not a directory",
                hint="point models-dir at a directory (or a name that does not exist yet)",
            )
        self._refuse_sources_inside(manifest, models_dir)
        project = str(self.root.resolve() / LOCK_NAME)
        mode = self.link_mode(manifest, link_mode)
        return plan_install(lock, models_dir, self.store, project, mode)

    def _refuse_sources_inside(self, manifest: Manifest, models_dir: Path) -> None:
        """A local model kept inside the models directory would be zoopm's to replace and remove."""
        inside = models_dir.resolve()
        for spec in manifest.models:
            if not isinstance(spec.source, LocalSource):
                continue
            directory = (self.root / spec.source.path).resolve()
            if directory == inside / spec.name:
                continue  # the model's own directory, installed in place (docs/import.md)
            if directory == inside or inside in directory.parents:
                raise ManifestError(
                    f"{self.manifest_path}: models.{spec.name}.path: {spec.source.path!r} is "
                    f"inside the models directory {manifest.models_dir!r}, which zoopm manages",
                    hint="keep your own model directories outside models-dir (move it, e.g. to "
                    "src/), or set another models-dir",
                )

    def _current_plan(self, manifest: Manifest, link_mode: str) -> InstallPlan | None:
        """The plan if zoo.lock exists and matches zoo.toml; None if installing must lock first.

        Reads only: it never writes zoo.lock, so it is safe without the project lock.
        """
        lock = self.read_lock()
        if lock is None or manifest_changes(manifest, lock):
            return None
        return self._plan_install(lock, manifest, link_mode)

    def noop_plan(
        self, manifest: Manifest | None = None, link_mode: str | None = None
    ) -> InstallPlan | None:
        """The plan of an install with nothing to do, or None if it has work or must lock first.

        Reads only and takes no lock: the answer a no-op install gives, and all it needs.
        """
        started = time.time_ns()
        manifest = manifest if manifest is not None else self.manifest()
        plan = self._current_plan(manifest, self.link_mode(manifest, link_mode))
        if plan is None or not plan.nothing_to_do:
            return None
        if link_mode is None and self.settings.env_digest:
            self._remember_noop(manifest, plan, started)
        return plan

    def _remember_noop(self, manifest: Manifest, plan: InstallPlan, started_ns: int) -> None:
        """Writes down what this no-op verdict rested on (zoopm.storage.freshness), so that the
        next install, if nothing of it changed, answers without parsing anything.

        The stats written down are taken twice, around a second full check made from fresh
        reads of zoo.toml and config.toml: a change while the first check ran, or between the
        reads and the stats, makes the two disagree (whatever the file system's clock says), and
        nothing is written.
        """
        from zoopm.formats.userconfig import read_user_config
        from zoopm.storage import freshness

        inputs = self._noop_inputs(manifest, plan)
        context = freshness.context(self.root, self.settings.env_digest)
        before = freshness.observe(inputs, context)
        try:
            fresh = self.manifest()
            if fresh != manifest:
                return
            config = self.settings.config_file
            if config is not None and read_user_config(config) != self.settings.config:
                return
            again = self._current_plan(fresh, self.link_mode(fresh))
        except ZoopmError:
            return
        if again is None or not again.nothing_to_do or again.keep != plan.keep:
            return
        freshness.remember(
            freshness.witness_path(self.settings.home, self.root),
            before,
            {"kept": len(plan.keep), "models_dir": str(plan.models_dir)},
            started_ns,
        )

    def _noop_inputs(self, manifest: Manifest, plan: InstallPlan) -> freshness_inputs:
        """Every path whose stat (and real path) a no-op verdict rests on."""
        from zoopm.storage.linknotes import note_path

        models = plan.models_dir
        stats: list[tuple[str, bool]] = [(str(self.manifest_path), True)]
        stats.append((str(self.lock_path), True))
        if self.settings.config_file is not None:
            stats.append((str(self.settings.config_file), True))
        stats += [(str(models), True), (str(models / RECORD_NAME), False)]
        directories: set[str] = set()
        for name, path in plan.keep:
            parts = f"{name}/{path}".split("/")
            for depth in range(1, len(parts)):
                directory = str(models.joinpath(*parts[:depth]))
                if directory not in directories:
                    directories.add(directory)
                    stats.append((directory, False))
            stats.append((str(models.joinpath(*parts)), False))
            placed = plan.record.placed(name, path)
            if placed is not None and placed.how in ("hardlink", "symlink"):
                # The link note can make a moved ctime zoopm's own doing (install._kept).
                stats.append((str(note_path(self.store.root, placed.sha256)), False))
            if placed is not None and placed.how == "symlink":
                blob = str(self.store.blob_path(placed.sha256))
                stats += [(blob, False), (blob, True)]
        realpaths = [str(self.root), str(models)]
        realpaths += [
            str(self.root / spec.source.path)
            for spec in manifest.models
            if isinstance(spec.source, LocalSource)
        ]
        return stats, realpaths

    def install(self, *, frozen: bool = False, link_mode: str | None = None) -> InstallResult:
        """Makes the models directory hold exactly the locked files, fetching what is missing."""
        manifest = self.manifest()
        mode = self.link_mode(manifest, link_mode)
        if mode not in LINK_MODES:
            raise UsageError(
                f"--link-mode: {mode!r} is not one of {', '.join(LINK_MODES)}",
                hint="run 'zoopm install --help' for its options",
            )
        if not self._exclusive_depth:
            # The no-op path takes no lock and writes nothing but its witness under ZOOPM_HOME;
            # real work plans again under the lock.
            quick = self.noop_plan(manifest, link_mode)
            if quick is not None:
                if not self.store.is_registered(self.root.resolve() / LOCK_NAME):
                    # A project moved or copied since its install: gc must know it needs these.
                    with self.using_store():
                        self._register()
                return InstallResult(quick, 0, 0, len(quick.keep))
        with self.exclusive():
            return self._install(frozen=frozen, mode=mode)

    def _install(self, *, frozen: bool, mode: str) -> InstallResult:
        # Read again under the project lock: another zoopm may have changed it meanwhile.
        manifest = self.manifest()
        _, plan = self.plan(frozen=frozen, link_mode=mode, manifest=manifest)
        result = apply_install(
            plan,
            store=self.store,
            fetcher=self._fetcher(manifest),
            project_root=self.root,
            link_mode=mode,
            reporter=self.reporter,
            jobs=self.settings.jobs,
            offline=self.settings.offline,
            token=self.token,
        )
        self._register()  # also for nothing to do: the project may have moved since
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
        with ModelsTree(models_dir, self.store.blob_path) as tree:
            for model in lock.models:
                installed = count_installed(model, record, tree, self.store)
                declared = manifest.model(model.name) is not None
                result.append(ModelStatus(model, declared, installed))
        return result

    def show(self, name: str) -> ModelStatus:
        for status in self.status():
            if status.model.name == name:
                return status
        manifest = self._manifest_or_none()
        if manifest is not None and manifest.model(name) is not None:
            raise UsageError(
                f"models.{name} is in {MANIFEST_NAME} but not yet in {LOCK_NAME}",
                hint="run 'zoopm lock' (or 'zoopm install') to pin it",
            )
        raise UsageError(f"no model named {name!r} in {LOCK_NAME}", hint="'zoopm list' shows them")

    # --- the shared remote store: push (docs/remote-store.md) ----------------------------

    def push(self, *, everything: bool = False) -> PushResult:
        """Uploads to the remote store every blob zoo.lock pins (everything: every blob in
        the local store) that it lacks; what it holds already is left as it is."""
        from zoopm.operations.push import locked_blobs, push_blobs, stored_blobs

        manifest = self._manifest_or_none() if everything else self.manifest()
        remote = self.remote_store(manifest)
        if remote is None:
            raise RemoteStoreError(
                "no remote store is configured",
                hint="set [store] remote in zoo.toml or config.toml, or ZOOPM_REMOTE "
                "(docs/remote-store.md)",
            )
        if self.settings.offline:
            raise OfflineError(
                f"push to {remote.url}: zoopm is offline",
                hint="push uploads over the network: run it without --offline and ZOOPM_OFFLINE",
            )
        if not remote.location.writable:
            raise RemoteStoreError(
                f"remote store {remote.url} ({remote.location.origin}) is read-only: an "
                "http(s) remote store is served by a web server, and zoopm does not write to it",
                hint="push to the bucket or directory the server serves (s3://…, file://…), "
                "e.g. ZOOPM_REMOTE=s3://bucket/prefix zoopm push",
            )
        with self.using_store():
            if everything:
                blobs = stored_blobs(self.store)
            else:
                lock = self.read_lock()
                if lock is None:
                    raise StaleLockError(
                        f"{LOCK_NAME}: missing", hint="run 'zoopm install', then push"
                    )
                blobs = locked_blobs(lock, self.store)
            return push_blobs(
                blobs,
                remote=remote,
                store=self.store,
                everything=everything,
                jobs=self.settings.jobs,
                token=self.token,
                reporter=self.reporter,
            )

    # --- upkeep: verify, gc ----------------------------------------------------------------

    def verify(
        self, names: Sequence[str] = (), *, store: bool = False, repair: bool = False
    ) -> VerifyResult:
        """Hashes every installed file of the named models (default: all) against zoo.lock, and
        with store every blob against its name; with repair, places zoopm's own wrong or
        missing files again from the store, fetching again any blob that is wrong."""
        from zoopm.operations.verify import RepairTools, Verifier

        manifest = self.manifest()
        lock = self.read_lock()
        if lock is None:
            raise StaleLockError(f"{LOCK_NAME}: missing", hint="run 'zoopm install' first")
        changes = manifest_changes(manifest, lock)
        if changes:
            self.reporter.warning(
                f"{LOCK_NAME} does not match {MANIFEST_NAME} ({', '.join(changes)}); verifying "
                f"what {LOCK_NAME} pins ('zoopm install' locks and installs the new one)"
            )
        verifier = Verifier(
            lock,
            names,
            models_dir=self.models_dir(manifest),
            store=self.store,
            reporter=self.reporter,
            token=self.token,
        )
        if not repair:
            if not store:
                return verifier.run()
            with self.using_store():
                return verifier.run(store=True)
        tools = RepairTools(
            self._fetcher(manifest),
            self.root,
            self.link_mode(manifest),
            self.settings.jobs,
            self.settings.offline,
        )
        with self.exclusive():
            return verifier.run(store=store, repair=tools)

    def gc(self, *, dry_run: bool = False) -> GcResult:
        """Forgets registered projects whose zoo.lock is gone and removes every blob no
        remaining lock pins (with stale aliases, old quarantine and stale partial downloads).

        Holds the store exclusive, so it waits for every running install and lock (they hold
        it shared until they have registered). A dry run takes no lock and writes nothing.
        """
        from zoopm.operations.gc import collect
        from zoopm.storage.locks import hold_store_lock

        if dry_run:
            return collect(self.store, self.reporter, dry_run=True)
        with hold_store_lock(
            self.store.root / "locks" / "store.lock",
            "collecting garbage",
            shared=False,
            timeout=self.settings.lock_timeout,
            token=self.token,
            on_wait=self.reporter.info,
        ):
            return collect(self.store, self.reporter, dry_run=False)

    # --- offline bundles: bundle, install --from-bundle (docs/bundles.md) ------------------

    def bundle(self, target: Path, *, force: bool = False) -> BundleWritten:
        """Writes zoo.toml, zoo.lock and every blob zoo.lock pins into one tar file, fetching
        first what the store lacks. zoo.lock must be current; an existing target is replaced
        only with force."""
        from zoopm.operations.bundle import check_target, fill_store, write_bundle_file

        path = (self.cwd / target).absolute()
        text = read_manifest_text(self.manifest_path)
        manifest = parse_manifest(text, self.manifest_path)
        lock = self.read_lock()
        if lock is None:
            raise StaleLockError(
                f"{LOCK_NAME}: missing", hint="run 'zoopm lock', then 'zoopm bundle' again"
            )
        changes = manifest_changes(manifest, lock)
        if changes:
            raise StaleLockError(
                f"{LOCK_NAME} does not match {MANIFEST_NAME}: {', '.join(changes)}",
                hint="run 'zoopm lock', then 'zoopm bundle' again",
            )
        check_target(path, force=force)
        with self.using_store():

            def refill() -> None:
                fill_store(
                    lock,
                    store=self.store,
                    fetcher=self._fetcher(manifest),
                    project_root=self.root,
                    jobs=self.settings.jobs,
                    offline=self.settings.offline,
                    token=self.token,
                )

            refill()
            self._register()  # gc keeps what was fetched for the bundle
            return write_bundle_file(
                path,
                text.encode("utf-8"),
                render_lock(lock).encode("utf-8"),
                lock,
                store=self.store,
                refill=refill,
                force=force,
                reporter=self.reporter,
                token=self.token,
            )

    def install_from_bundle(self, bundle: Path, *, link_mode: str | None = None) -> BundleInstalled:
        """Installs from a bundle with the network off: every blob verified into the store,
        then zoo.lock installed as it is. In a directory without zoo.toml the bundle's zoo.toml
        and zoo.lock are written first; in a project, the bundle's zoo.lock must equal its own
        (or, without one, pin its zoo.toml)."""
        from zoopm.errors import BundleError
        from zoopm.operations.bundle import BundleInstalled, read_bundle_file

        path = (self.cwd / bundle).absolute()
        if link_mode is not None and link_mode not in LINK_MODES:
            raise UsageError(
                f"--link-mode: {link_mode!r} is not one of {', '.join(LINK_MODES)}",
                hint="run 'zoopm install --help' for its options",
            )
        with self._offline(), self.exclusive():
            has_manifest = os.path.lexists(self.manifest_path)
            if not has_manifest and os.path.lexists(self.lock_path):
                raise UsageError(
                    f"{self.lock_path}: exists, but {MANIFEST_NAME} does not",
                    hint="move zoo.lock away, or install the bundle in an empty directory",
                )
            mine = self.manifest() if has_manifest else None
            my_lock = self.read_lock() if has_manifest else None

            def judge(manifest: Manifest, lock: Lock) -> None:
                if my_lock is not None and my_lock != lock:
                    changes = lock_changes(my_lock, lock)
                    raise BundleError(
                        f"{path}: its zoo.lock differs from {self.lock_path} "
                        f"({'; '.join(changes[:3])}); nothing was installed",
                        hint="install the bundle in an empty directory, or bundle this "
                        "project's zoo.lock",
                    )
                if mine is not None and my_lock is None and manifest_changes(mine, lock):
                    raise BundleError(
                        f"{path}: its zoo.lock does not pin {self.manifest_path} "
                        f"({', '.join(manifest_changes(mine, lock))}); nothing was installed",
                        hint="install the bundle in an empty directory",
                    )

            read = read_bundle_file(
                path, store=self.store, judge=judge, reporter=self.reporter, token=self.token
            )
            wrote: list[str] = []
            # Only where nothing was when the bundle's lock was judged: a zoo.toml or zoo.lock
            # written meanwhile (the read can take minutes) is the user's and stays.
            if not has_manifest:
                self._create_from_bundle(self.manifest_path, read.head.zoo_toml, path)
                wrote.append(MANIFEST_NAME)
            if my_lock is None:
                self._create_from_bundle(self.lock_path, read.head.zoo_lock, path)
                wrote.append(LOCK_NAME)
            result = self.install(frozen=True, link_mode=link_mode)
        return BundleInstalled(
            path, read.stored, read.present, read.stored_bytes, tuple(wrote), result
        )

    def _create_from_bundle(self, target: Path, data: bytes, bundle: Path) -> None:
        from zoopm.atomic import atomic_create
        from zoopm.errors import BundleError, from_os_error

        try:
            atomic_create(target, data)
        except FileExistsError:
            raise BundleError(
                f"{target}: appeared while {bundle} was read; it was left alone, and nothing "
                "was installed (the store keeps the bundle's verified blobs)",
                hint="run the command again: the bundle is judged against that file then",
            ) from None
        except OSError as exc:
            raise from_os_error(exc, target) from None

    @contextlib.contextmanager
    def _offline(self) -> Iterator[None]:
        """Every network request refused while it is held (a client made before is set aside),
        for an install from a bundle."""
        saved = (self.settings, self._client, self._github_client)
        self.settings = dataclasses.replace(self.settings, offline=True)
        self._client = self._github_client = None
        self._from_bundle = True
        try:
            yield
        finally:
            self.close()
            self.settings, self._client, self._github_client = saved
            self._from_bundle = False

    # --- editing zoo.toml: add, remove, update --------------------------------------------

    def indexes(self, manifest: Manifest | None = None) -> list[Index]:
        """Configured indexes in zoo.toml order, then the built-in one."""
        from zoopm.index import builtin_index, load_index

        manifest = manifest if manifest is not None else self._manifest_or_none()
        configured = manifest.indexes if manifest is not None else ()
        loaded = [load_index(ref.location, self.root, self._read_url) for ref in configured]
        return [*loaded, builtin_index()]

    def search(self, term: str) -> list[IndexEntry]:
        from zoopm.index import search

        return search(self.indexes(), term)

    def add(self, spec_text: str, *, name: str | None = None, install: bool = True) -> AddResult:
        """Adds a model to zoo.toml (pinned to a commit), locks, and installs unless told not to.

        If any step fails (or is interrupted), zoo.toml and zoo.lock are put back as they were.
        """
        with self.exclusive():
            return self._add(spec_text, name=name, install=install)

    def _add(self, spec_text: str, *, name: str | None, install: bool) -> AddResult:
        from zoopm.addspec import default_name, parse_add_spec
        from zoopm.index import lookup

        manifest = self.manifest()
        parsed = parse_add_spec(spec_text, self.cwd, self.root)
        source, suggested = parsed.source, None
        if parsed.index_name is not None:
            entry = lookup(self.indexes(manifest), parsed.index_name)
            if entry is None:
                raise UsageError(
                    f"no model named {parsed.index_name!r} in the indexes",
                    hint=f"'zoopm search {parsed.index_name}' lists similar names",
                )
            source, suggested = entry.source, entry.name
        if source is None:
            raise UsageError(f"cannot read {spec_text!r} as a model")
        source = self._pin(source)
        probe = ModelSpec(name or suggested or "new", source)
        resolved = self._resolver(manifest).resolve_one(probe)
        chosen = name or suggested or default_name(source, resolved.caffemodel)
        if not name and not suggested and isinstance(source, LocalSource):
            written = source.path.rstrip("/").rsplit("/", 1)[-1]
            if written != chosen:
                self.reporter.warning(
                    f"named the model {chosen!r} ({written!r} is not a model name); "
                    "--name sets another"
                )
        problem = model_name_problem(chosen)
        if problem:
            raise UsageError(f"--name: {problem}")
        if manifest.model(chosen) is not None:
            raise UsageError(
                f"zoo.toml already has a model named {chosen!r}",
                hint="choose another with --name, or 'zoopm update' to move its revision",
            )
        spec = ModelSpec(chosen, source)
        previous = self.read_lock()
        kept = previous.models if previous is not None else ()
        seeded = Lock("", (*kept, dataclasses.replace(resolved, name=chosen)))
        text = add_model(read_manifest_text(self.manifest_path), spec)
        installed = self._edit_manifest(text, seeded, then=self.install if install else None)
        return AddResult(spec, installed)

    def import_models(self, directory: Path | None = None, *, dry_run: bool = False) -> Imported:
        """Adopts a models/ tree that Caffe's scripts filled (default: the models-dir): each
        directory with a readme.md becomes a zoo.toml entry (a gist or repository source at the
        commit whose files equal it, else the directory itself), then zoo.toml is locked, and
        files already holding the locked bytes are recorded as installed. Nothing below the
        tree is changed but that record. dry_run only judges. See docs/import.md."""
        if dry_run:
            return self._import_models(directory, dry_run=True)
        with self.exclusive():
            return self._import_models(directory, dry_run=False)

    def _import_models(self, directory: Path | None, *, dry_run: bool) -> Imported:
        from zoopm.operations.caffe.adopt import Adopter, record_adopted, store_binary

        existed = os.path.lexists(self.manifest_path)
        manifest = self.manifest() if existed else parse_manifest(TEMPLATE, self.manifest_path)
        models_dir = self.models_dir(manifest)
        scanned = (self.cwd / directory).absolute() if directory is not None else models_dir
        if models_dir.resolve() in scanned.resolve().parents:
            raise UsageError(
                f"{scanned}: inside the models directory {manifest.models_dir!r}; import takes "
                "the directory that holds the model directories",
                hint=f"run 'zoopm import {manifest.models_dir}'",
            )
        adopter = Adopter(
            api=self._github,
            indexes=self.indexes(manifest),
            reporter=self.reporter,
            token=self.token,
        )
        verdicts = tuple(
            adopter.survey(
                scanned,
                declared={spec.name for spec in manifest.models},
                source_path=self._source_path,
                in_place=_same_dir(scanned, models_dir),
            )
        )
        chosen = [v for v in verdicts if v.spec is not None]
        self._warn_unlocked(manifest, verdicts, existed)
        if dry_run or not chosen:
            return Imported(verdicts)
        for verdict in chosen:
            assert verdict.spec is not None
            fetched = not isinstance(verdict.spec.source, LocalSource)
            if fetched and verdict.binary is not None and verdict.binary_sha1 is not None:
                store_binary(self.store, verdict.binary, verdict.binary_sha1)
        adopted = 0

        def adopt() -> None:
            nonlocal adopted
            if not _same_dir(scanned, models_dir):
                return  # the files are elsewhere; install places copies in models-dir
            lock = self.read_lock()
            names = {v.directory for v in chosen}
            models = [m for m in lock.models if m.name in names] if lock is not None else []
            project = str(self.root.resolve() / LOCK_NAME)
            adopted = record_adopted(models_dir, models, self.store, project)

        if not existed:
            self.init()
        try:
            text = read_manifest_text(self.manifest_path)
            for verdict in chosen:
                assert verdict.spec is not None
                text = add_model(text, verdict.spec)
            self._edit_manifest(text, None, then=adopt)
        except BaseException:
            if not existed:
                with contextlib.suppress(FileNotFoundError):
                    self.manifest_path.unlink()
            raise
        return Imported(verdicts, written=True, created=not existed, adopted=adopted)

    def _warn_unlocked(
        self, manifest: Manifest, verdicts: tuple[Verdict, ...], existed: bool
    ) -> None:
        """Says so when zoo.toml declares a surveyed directory that zoo.lock does not pin: an
        earlier import (or add) was killed between writing zoo.toml and locking."""
        declared = {spec.name for spec in manifest.models}
        lock = self.read_lock() if existed else None
        unlocked = [
            v.directory
            for v in verdicts
            if v.spec is None
            and v.directory in declared
            and (lock is None or lock.model(v.directory) is None)
        ]
        if unlocked:
            names = ", ".join(f"models.{name}" for name in unlocked)
            self.reporter.warning(
                f"{self.manifest_path}: declares {names}, which zoo.lock does not pin (a run "
                "stopped before locking?); run 'zoopm lock'"
            )

    def _source_path(self, directory: Path) -> str:
        """How zoo.toml names a local model directory: from the project root when below it."""
        try:
            return directory.relative_to(self.root).as_posix()
        except ValueError:
            return str(directory)

    def _restore(self, manifest: bytes, lock: bytes | None) -> None:
        atomic_write(self.manifest_path.resolve(), manifest)
        if lock is None:
            with contextlib.suppress(FileNotFoundError):
                self.lock_path.unlink()
        else:
            atomic_write(self.lock_path, lock)

    def remove(self, name: str, *, install: bool = True) -> InstallResult | None:
        """Removes a model from zoo.toml and zoo.lock, and its files from the models directory."""
        with self.exclusive():
            self.manifest()
            text = remove_model(read_manifest_text(self.manifest_path), name)
            return self._edit_manifest(text, None, then=self.install if install else None)

    def update(self, names: Sequence[str] = (), *, install: bool = False) -> list[Update]:
        """Moves gist and repository models to their newest commit and locks again."""
        with self.exclusive():
            return self._update(names, install=install)

    def _update(self, names: Sequence[str], *, install: bool) -> list[Update]:
        manifest = self.manifest()
        unknown = [n for n in names if manifest.model(n) is None]
        if unknown:
            raise UsageError(f"no model named {unknown[0]!r} in zoo.toml", hint="'zoopm list'")
        chosen = [m for m in manifest.models if not names or m.name in names]
        local = [m.name for m in chosen if names and isinstance(m.source, LocalSource)]
        if local:
            raise UsageError(
                f"models.{local[0]} is a local directory: it has no revision to update",
                hint="run 'zoopm lock' to pin its files as they are now",
            )
        text = read_manifest_text(self.manifest_path)
        updates = []
        for spec in chosen:
            if isinstance(spec.source, LocalSource):
                continue
            newest = self._newest(spec.source)
            if newest != spec.source.rev:
                updates.append(Update(spec.name, spec.source.rev, newest))
                text = set_model_rev(text, spec.name, newest)
        then = self.install if install else None
        if updates:
            self._edit_manifest(text, None, then=then)
        elif then is not None:
            then()
        return updates

    def _newest(self, source: GistSource | GithubSource) -> str:
        from zoopm.sources.gist import newest_gist_rev
        from zoopm.sources.github import newest_repo_rev

        if isinstance(source, GistSource):
            return newest_gist_rev(self._github(), source.gist)
        return newest_repo_rev(self._github(), source.github, source.path)

    def _pin(self, source: Source) -> Source:
        if isinstance(source, LocalSource) or source.rev is not None:
            return source
        return dataclasses.replace(source, rev=self._newest(source))

    def _edit_manifest(
        self,
        text: str,
        previous: Lock | None,
        *,
        then: Callable[[], InstallResult | None] | None = None,
    ) -> InstallResult | None:
        """Writes zoo.toml, locks, then runs then (an install) if given.

        If any step fails or is interrupted, zoo.toml and zoo.lock go back byte for byte.
        """
        manifest_before = self.manifest_path.read_bytes()
        try:
            lock_before: bytes | None = self.lock_path.read_bytes()
        except FileNotFoundError:
            lock_before = None
        manifest = parse_manifest(text, self.manifest_path)
        # Through a symlinked zoo.toml to the file it names, as an editor would.
        atomic_write(self.manifest_path.resolve(), text.encode())
        try:
            self._lock(manifest, previous=previous)
            return then() if then is not None else None
        except BaseException:
            self._restore(manifest_before, lock_before)
            raise

    def download_binary(self, directory: Path) -> BinaryResult:
        """Caffe's download_model_binary.py, through the store: DIR/<caffemodel> made the
        binary DIR/readme.md names, verified by its SHA-1 (needs no zoo.toml; mirrors come from
        config.toml, and from zoo.toml when run inside a project)."""
        from zoopm.operations.caffe.binary import download_binary

        fetcher = self._fetcher(self._manifest_or_none())
        return download_binary(
            (self.cwd / directory).absolute(), fetcher.fetch_binary, self.store.blob_path
        )

    def fetch_gist(
        self,
        gist: str,
        directory: Path | None = None,
        *,
        force: bool = False,
        archive: str | None = None,
    ) -> FetchedGist:
        """Caffe's download_model_from_gist.sh, pinned and verified: the gist's files at a
        revision (the newest when gist names none) in DIR/<ID with / replaced by ->, DIR being
        directory or ./models (needs no zoo.toml). archive: "zip" or "tar.gz" to read the
        gist's archive download instead of each file's raw URL."""
        from zoopm.operations.caffe.gistfetch import DEFAULT_PARENT, fetch_gist, parse_gist_ref

        ref = parse_gist_ref(gist)
        parent = self.cwd / (directory if directory is not None else DEFAULT_PARENT)
        with self.using_store():
            return fetch_gist(
                ref,
                parent.absolute(),
                api=self._github(),
                http=self._http(),
                store=self.store,
                force=force,
                archive=archive,
            )

    def publish(
        self, directory: Path, *, public: bool = False, description: str | None = None
    ) -> PublishResult:
        """Caffe's upload_model_to_gist.sh: DIR's info files to a new gist (secret unless
        public), or to the gist DIR/readme.md's gist_id names; gist_id is written back into
        readme.md (needs no zoo.toml; needs GITHUB_TOKEN with the gist scope)."""
        from zoopm.operations.caffe.publish import publish

        return publish(
            (self.cwd / directory).absolute(),
            self._github(),
            self.reporter,
            public=public,
            description=description,
        )

    def _manifest_or_none(self) -> Manifest | None:
        return self.manifest() if self.manifest_path.exists() else None

    def _read_url(self, url: str) -> bytes:
        from zoopm.sources.hosted import read_small

        return read_small(self._http(), url)


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _is_local(model: LockedModel) -> bool:
    source = model.source_dict()
    return "path" in source and "github" not in source


@dataclass(frozen=True)
class AddResult:
    """The model add wrote into zoo.toml, and the install it ran (None with install=False)."""

    spec: ModelSpec
    installed: InstallResult | None = None


@dataclass(frozen=True)
class Imported:
    """What import decided for each directory, and what it wrote."""

    verdicts: tuple[Verdict, ...]
    written: bool = False  # zoo.toml and zoo.lock
    created: bool = False  # zoo.toml did not exist before
    adopted: int = 0  # files recorded as installed (they held the locked bytes already)


@dataclass(frozen=True)
class Update:
    """One model moved from one commit to another (old is None when zoo.toml had no rev)."""

    name: str
    old: str | None
    new: str
