"""Install: a read-only plan from zoo.lock to the models directory, and its application."""

from __future__ import annotations

import concurrent.futures
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zoopm.digest import digest_file
from zoopm.errors import InstallError, IntegrityError, OfflineError, StaleLockError, ZoopmError
from zoopm.fetch import Fetcher
from zoopm.lockfile import Lock, LockedFile, LockedModel
from zoopm.materialize import Placed, Record, is_intact, place, read_record, remove, write_record
from zoopm.reporting import Reporter
from zoopm.store import Expected, Store


@dataclass(frozen=True)
class FileAction:
    """One locked file and where it goes."""

    model: LockedModel
    file: LockedFile
    target: Path

    @property
    def label(self) -> str:
        return f"{self.model.name}/{self.file.path}"


@dataclass(frozen=True)
class InstallPlan:
    """What an install would do; computing it changes nothing and makes no network request."""

    models_dir: Path
    record: Record
    fetch: tuple[FileAction, ...]
    place: tuple[FileAction, ...]
    remove: tuple[tuple[str, str], ...]
    keep: tuple[tuple[str, str], ...]
    leave: tuple[tuple[str, str], ...]

    @property
    def nothing_to_do(self) -> bool:
        return not (self.fetch or self.place or self.remove)

    @property
    def fetch_bytes(self) -> int:
        return sum(action.file.size for action in self.fetch)


@dataclass(frozen=True)
class InstallResult:
    plan: InstallPlan
    placed: int
    removed: int
    kept: int


def plan_install(lock: Lock, models_dir: Path, store: Store) -> InstallPlan:
    record = read_record(models_dir)
    fetch: list[FileAction] = []
    to_place: list[FileAction] = []
    keep: list[tuple[str, str]] = []
    for model in lock.models:
        for file in model.files:
            action = FileAction(model, file, models_dir / model.name / file.path)
            placed = record.placed(model.name, file.path)
            if placed and placed.sha256 == file.sha256 and is_intact(action.target, placed):
                keep.append((model.name, file.path))
                continue
            if placed is None and action.target.exists() and not _same_content(action):
                raise InstallError(
                    f"{action.target}: exists and was not placed by zoopm",
                    hint="move the file away (zoopm never overwrites your own files), then run "
                    "'zoopm install' again",
                )
            to_place.append(action)
            if not store.has(file.sha256):
                fetch.append(action)
    remove_list: list[tuple[str, str]] = []
    leave: list[tuple[str, str]] = []
    for name, files in sorted(record.models.items()):
        locked = lock.model(name)
        for path, placed in sorted(files.items()):
            if locked is not None and locked.file(path) is not None:
                continue
            target = models_dir / name / path
            if is_intact(target, placed):
                remove_list.append((name, path))
            elif target.exists() or target.is_symlink():
                leave.append((name, path))
    return InstallPlan(
        models_dir,
        record,
        tuple(fetch),
        tuple(to_place),
        tuple(remove_list),
        tuple(keep),
        tuple(leave),
    )


def _same_content(action: FileAction) -> bool:
    target = action.target
    if not target.is_file() or target.stat().st_size != action.file.size:
        return False
    return digest_file(target).sha256 == action.file.sha256


def apply_install(
    plan: InstallPlan,
    *,
    store: Store,
    fetcher: Fetcher,
    project_root: Path,
    link_mode: str,
    reporter: Reporter,
    jobs: int,
    offline: bool,
) -> InstallResult:
    """Fetches every missing blob first: a failed download leaves the models directory alone."""
    local, remote = _split_by_origin(plan.fetch, project_root)
    if offline and remote:
        listed = ", ".join(f"{a.label} ({a.file.size:,} bytes)" for a in remote[:5])
        more = f" and {len(remote) - 5} more" if len(remote) > 5 else ""
        raise OfflineError(f"offline: {len(remote)} file(s) are not in the store: {listed}{more}")
    _run_parallel([functools.partial(_download, a, fetcher) for a in remote], jobs)
    for action in plan.fetch:
        if action in local and not store.has(action.file.sha256):
            _ingest(action, local[action], store, fetcher)
    return _materialise(plan, store, link_mode, reporter)


def _materialise(
    plan: InstallPlan, store: Store, link_mode: str, reporter: Reporter
) -> InstallResult:
    models: dict[str, dict[str, Placed]] = {}
    keep = set(plan.keep)
    for name, files in plan.record.models.items():
        for path, placed in files.items():
            if (name, path) in keep:
                models.setdefault(name, {})[path] = placed
    placed_count = removed = 0
    try:
        for action in plan.place:
            blob = store.get(action.file.sha256)
            if blob is None:
                raise InstallError(f"{action.label}: missing from the store after fetching")
            placed = place(blob, action.target, action.file.sha256, link_mode)
            models.setdefault(action.model.name, {})[action.file.path] = placed
            placed_count += 1
        for name, path in plan.remove:
            remove(plan.models_dir / name / path, plan.models_dir)
            removed += 1
    finally:
        if plan.place or plan.remove or plan.leave:
            write_record(plan.models_dir, Record(models))
    for name, path in plan.leave:
        reporter.warning(
            f"{plan.models_dir / name / path}: no longer locked, but changed since zoopm placed "
            "it; left in place"
        )
    return InstallResult(plan, placed_count, removed, len(plan.keep))


def _split_by_origin(
    actions: tuple[FileAction, ...], project_root: Path
) -> tuple[dict[FileAction, Path], list[FileAction]]:
    """Files a local model directory still has (ingested from disk), and everything to download."""
    local: dict[FileAction, Path] = {}
    remote: list[FileAction] = []
    for action in actions:
        source = action.model.source_dict()
        if "path" in source and "github" not in source:
            candidate = project_root / source["path"] / action.file.path
            if candidate.is_file():
                local[action] = candidate
                continue
        remote.append(action)
    return local, remote


def _expected(file: LockedFile) -> Expected:
    return Expected(size=file.size, sha1=file.sha1, sha256=file.sha256)


def _download(action: FileAction, fetcher: Fetcher) -> None:
    fetcher.ensure(action.file.urls, _expected(action.file), action.label)


def _ingest(action: FileAction, path: Path, store: Store, fetcher: Fetcher) -> None:
    try:
        store.ingest_file(path, _expected(action.file), str(path))
    except IntegrityError as exc:
        if action.file.urls:
            fetcher.ensure(action.file.urls, _expected(action.file), action.label)
            return
        raise StaleLockError(
            f"{path}: changed since zoo.lock was written ({exc.message.split(': ', 1)[1]})",
            hint="run 'zoopm lock' to pin the new contents",
        ) from None


def _run_parallel(tasks: list[Callable[[], None]], jobs: int) -> None:
    if not tasks:
        return
    if jobs <= 1 or len(tasks) == 1:
        for task in tasks:
            task()
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(task) for task in tasks]
        error: ZoopmError | None = None
        for future in concurrent.futures.as_completed(futures):
            exc = future.exception()
            if exc is None:
                continue
            if not isinstance(exc, ZoopmError):
                raise exc
            if error is None:
                error = exc
                for pending in futures:
                    pending.cancel()
        if error is not None:
            raise error
