"""Install: a read-only plan from zoo.lock to the models directory, and its application."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

from zoopm.errors import IntegrityError, OfflineError, StaleLockError
from zoopm.fetch import Fetcher
from zoopm.lockfile import Lock, LockedFile, LockedModel
from zoopm.materialize import ModelsTree, Refused
from zoopm.record import Placed, Record, read_record, write_record
from zoopm.reporting import Reporter
from zoopm.store import Expected, Store
from zoopm.tasks import CancelToken, run_tasks

# While placing many files, the record on disk is brought up to date at least this often; it is
# true in between too (its entries for unfinished placements say "pending"), just less precise.
_RECORD_EVERY_SECONDS = 2.0


@dataclass(frozen=True)
class FileAction:
    """One locked file and where it goes."""

    model: LockedModel
    file: LockedFile
    target: Path

    @property
    def label(self) -> str:
        return f"{self.model.name}/{self.file.path}"

    @property
    def rel(self) -> str:
        """The path below the models directory."""
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
    """What installing lock would do; reads only (stat calls, and hashes of files not ours)."""
    record = read_record(models_dir)
    fetch: list[FileAction] = []
    to_place: list[FileAction] = []
    keep: list[tuple[str, str]] = []
    with ModelsTree(models_dir, store.blob_path) as tree:
        for model in lock.models:
            for file in model.files:
                action = FileAction(model, file, models_dir / model.name / file.path)
                placed = record.placed(model.name, file.path)
                if placed and placed.sha256 == file.sha256 and _kept(tree, store, action, placed):
                    keep.append((model.name, file.path))
                    continue
                _refuse_if_foreign(tree, action, placed)
                to_place.append(action)
                if not store.has(file.sha256, file.size):
                    fetch.append(action)
        remove_list: list[tuple[str, str]] = []
        leave: list[tuple[str, str]] = []
        for name, path, placed in record.entries():
            locked = lock.model(name)
            if locked is not None and locked.file(path) is not None:
                continue
            rel = f"{name}/{path}"
            if tree.lstat(rel) is None:
                continue
            if tree.is_intact(rel, placed) or (placed.pending and tree.holds(rel, placed.sha256)):
                remove_list.append((name, path))
            else:
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


def count_installed(model: LockedModel, record: Record, tree: ModelsTree, store: Store) -> int:
    """How many of model's locked files are in place as zoopm placed them (stat only)."""
    count = 0
    for file in model.files:
        placed = record.placed(model.name, file.path)
        action = FileAction(model, file, tree.root / model.name / file.path)
        if placed and placed.sha256 == file.sha256 and _kept(tree, store, action, placed):
            count += 1
    return count


def _kept(tree: ModelsTree, store: Store, action: FileAction, placed: Placed) -> bool:
    if not tree.is_intact(action.rel, placed):
        return False
    # A symlink is only as good as the blob it points at.
    return placed.how != "symlink" or store.has(action.file.sha256, action.file.size)


def _refuse_if_foreign(tree: ModelsTree, action: FileAction, placed: Placed | None) -> None:
    """Stops before any download if a target holds a file zoopm did not place.

    The same decision is made again right before each write; this early check only spares
    the user a long download that could not be placed anyway.
    """
    if placed is not None and not placed.pending:
        return
    if tree.lstat(action.rel) is None:
        return
    wanted = {action.file.sha256} | ({placed.sha256} if placed is not None else set())
    if not any(tree.holds(action.rel, sha256) for sha256 in wanted):
        raise Refused(f"{action.target}: exists and was not placed by zoopm")


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
    token: CancelToken | None = None,
) -> InstallResult:
    """Fetches every missing blob first: a failed download leaves the models directory alone."""
    token = token if token is not None else CancelToken()
    local, remote = _split_by_origin(plan.fetch, project_root)
    if offline and remote:
        listed = ", ".join(f"{a.label} ({a.file.size:,} bytes)" for a in remote[:5])
        more = f" and {len(remote) - 5} more" if len(remote) > 5 else ""
        raise OfflineError(f"offline: {len(remote)} file(s) are not in the store: {listed}{more}")
    run_tasks([functools.partial(_download, a, fetcher) for a in remote], jobs, token)
    for action in plan.fetch:
        if action in local and not store.has(action.file.sha256, action.file.size):
            token.check()
            _ingest(action, local[action], store, fetcher)
    return _Materialiser(plan, store, fetcher, link_mode, token).run(reporter)


class _Materialiser:
    """Applies the place and remove steps, keeping the install record true at every moment."""

    def __init__(
        self, plan: InstallPlan, store: Store, fetcher: Fetcher, link_mode: str, token: CancelToken
    ) -> None:
        self.plan = plan
        self.store = store
        self.fetcher = fetcher
        self.link_mode = link_mode
        self.token = token
        self.models = {name: dict(files) for name, files in plan.record.models.items()}
        self.written_at = 0.0

    def run(self, reporter: Reporter) -> InstallResult:
        plan = self.plan
        if not (plan.place or plan.remove or plan.leave):
            return InstallResult(plan, 0, 0, len(plan.keep))
        # Write the intents first: after a crash, a file found at one of these paths with the
        # intended bytes is known to be zoopm's, so the next run neither refuses nor loses it.
        for action in plan.place:
            current = self._entry(action.model.name, action.file.path)
            if current is None or current.pending:
                self._set(action, Placed.intent(action.file.sha256, action.file.size))
        self._save()
        placed = removed = 0
        try:
            with ModelsTree(plan.models_dir, self.store.blob_path) as tree:
                for action in plan.place:
                    self.token.check()
                    self._place(tree, action)
                    placed += 1
                for name, path in plan.remove:
                    self.token.check()
                    entry = self._entry(name, path)
                    if entry is not None and not tree.remove(f"{name}/{path}", entry):
                        reporter.warning(_left_message(plan.models_dir, name, path))
                    self._drop(name, path)
                    removed += 1
                for name, path in plan.leave:
                    reporter.warning(_left_message(plan.models_dir, name, path))
                    self._drop(name, path)
        finally:
            self._save()
        return InstallResult(plan, placed, removed, len(plan.keep))

    def _place(self, tree: ModelsTree, action: FileAction) -> None:
        file = action.file
        blob = self.store.prove(file.sha256, file.size, file.sha1)
        if blob is None:
            # Changed or removed since the fetch step (another project wrote through a hard
            # link, or someone cleaned the store): fetch it again rather than place wrong bytes.
            self.fetcher.ensure(file.urls, _expected(file), action.label)
            blob = self.store.prove(file.sha256, file.size, file.sha1)
            if blob is None:
                raise IntegrityError(f"{action.label}: the store cannot keep a verified copy")
        owned = self._entry(action.model.name, file.path)
        self._set(action, tree.place(blob, action.rel, file.sha256, self.link_mode, owned))
        if time.monotonic() - self.written_at > _RECORD_EVERY_SECONDS:
            self._save()

    def _entry(self, name: str, path: str) -> Placed | None:
        return self.models.get(name, {}).get(path)

    def _set(self, action: FileAction, placed: Placed) -> None:
        self.models.setdefault(action.model.name, {})[action.file.path] = placed

    def _drop(self, name: str, path: str) -> None:
        self.models.get(name, {}).pop(path, None)

    def _save(self) -> None:
        write_record(self.plan.models_dir, Record(self.models))
        self.written_at = time.monotonic()


def _left_message(models_dir: Path, name: str, path: str) -> str:
    return (
        f"{models_dir / name / path}: no longer locked, but changed since zoopm placed it; "
        "left in place"
    )


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
