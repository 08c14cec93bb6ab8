"""Install: a read-only plan from zoo.lock to the models directory, and its application."""

from __future__ import annotations

import dataclasses
import functools
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from zoopm.errors import InstallError, IntegrityError, OfflineError, StaleLockError
from zoopm.formats.lockfile import Lock, LockedFile, LockedModel
from zoopm.network.fetch import Fetcher
from zoopm.reporting import Reporter
from zoopm.storage.linknotes import write_note, zoopm_was_last
from zoopm.storage.materialize import ModelsTree, Refused
from zoopm.storage.record import ADOPTED, Placed, Record, read_record, write_record
from zoopm.storage.store import Expected, Store
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

    # Compared and hashed by what names it: the generated ones would hash the whole model
    # (every file of it) for each file, which made installing a model of 2,000 files take
    # seconds per thousand.
    def __hash__(self) -> int:
        return hash((self.model.name, self.file.path, self.target))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FileAction):
            return NotImplemented
        return (self.model.name, self.file, self.target) == (
            other.model.name,
            other.file,
            other.target,
        )

    @property
    def rel(self) -> str:
        """The path below the models directory, which also names the file in messages."""
        return f"{self.model.name}/{self.file.path}"

    label = rel


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
    # Record entries to drop without touching a file: gone already, or adopted (never removed).
    forget: tuple[tuple[str, str], ...] = ()
    # Kept files whose record entry is brought up to date (their ctime moved, bytes proven).
    refresh: tuple[tuple[str, str], ...] = ()
    # The project this install is for, written into the record.
    project: str | None = None
    # Local models whose source is their own directory under models-dir (zoopm import): zoopm
    # writes nothing there, it only adopts the files, which stay the user's.
    in_place: frozenset[str] = frozenset()
    # Of those, the ones whose directory is not there at all (a fresh checkout, a bundle): their
    # files are placed as plain copies and adopted, the user's from then on, never zoopm's.
    restore: frozenset[str] = frozenset()

    @property
    def nothing_to_do(self) -> bool:
        return not (
            self.fetch or self.place or self.remove or self.leave or self.forget or self.refresh
        )

    @property
    def fetch_blobs(self) -> dict[str, int]:
        """The blobs the store lacks, each once (sha256 → size): files with the same bytes share
        one blob, so this is what is stored and transferred, not one entry per file."""
        return {action.file.sha256: action.file.size for action in self.fetch}

    @property
    def fetch_bytes(self) -> int:
        return sum(self.fetch_blobs.values())


@dataclass(frozen=True)
class InstallResult:
    """What an install did: its plan, and how many files it placed, removed and kept."""

    plan: InstallPlan
    placed: int
    removed: int
    kept: int


def plan_install(
    lock: Lock,
    models_dir: Path,
    store: Store,
    project: str | None = None,
    link_mode: str | None = None,
    *,
    again: frozenset[str] = frozenset(),
) -> InstallPlan:
    """What installing lock would do; reads only (stat calls, and hashes of files not ours).

    again names files (model/path) to place again whatever their stat says: verify hashed them
    and found other bytes.
    """
    record = read_record(models_dir)
    _check_owner(record, models_dir, project)
    in_place = _in_place(lock, models_dir, project)
    _refuse_placed_in_place(record, in_place, models_dir)
    fetch: list[FileAction] = []
    to_place: list[FileAction] = []
    keep: list[tuple[str, str]] = []
    refresh: list[tuple[str, str]] = []
    with ModelsTree(models_dir, store.blob_path) as tree:
        restore = frozenset(name for name in in_place if tree.lstat(name) is None)
        for model in lock.models:
            for file in model.files:
                action = FileAction(model, file, models_dir / model.name / file.path)
                placed = record.placed(model.name, file.path)
                judged = placed is not None and action.rel not in again
                kept = _kept(tree, store, action, placed, link_mode) if placed and judged else None
                if kept is not None:
                    keep.append((model.name, file.path))
                    if kept == "refresh":
                        refresh.append((model.name, file.path))
                    continue
                if model.name in in_place and model.name not in restore:
                    _check_in_place(tree, action)
                    to_place.append(action)  # adopted as it is: nothing to fetch or write
                    continue
                _refuse_if_foreign(tree, action, placed)
                to_place.append(action)
                if not store.has(file.sha256, file.size):
                    fetch.append(action)
        remove_list: list[tuple[str, str]] = []
        leave: list[tuple[str, str]] = []
        forget: list[tuple[str, str]] = []
        for name, path, placed in record.entries():
            locked = lock.model(name)
            if locked is not None and locked.file(path) is not None:
                continue
            rel = f"{name}/{path}"
            if tree.lstat(rel) is None or placed.how == ADOPTED:
                forget.append((name, path))
            elif tree.ours_to_remove(rel, placed):
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
        tuple(forget),
        tuple(refresh),
        project,
        in_place,
        restore,
    )


def _in_place(lock: Lock, models_dir: Path, project: str | None) -> frozenset[str]:
    """The local models whose source directory is their own directory in models_dir."""
    if project is None:
        return frozenset()
    root = Path(project).parent
    names = set()
    for model in lock.models:
        source = model.source_dict()
        if set(source) == {"path"} and _same_place(root / source["path"], models_dir / model.name):
            names.add(model.name)
    return frozenset(names)


def _same_place(a: Path, b: Path) -> bool:
    """Whether a and b name one directory, also while neither is there yet."""
    if os.path.lexists(a) and os.path.lexists(b):
        return _same_path(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def _refuse_placed_in_place(record: Record, in_place: frozenset[str], models_dir: Path) -> None:
    """A model's own directory is its source only while zoopm placed nothing in it: a file
    zoopm placed there would be zoopm's to replace and to delete with the model."""
    for name, _, placed in record.entries():
        if name in in_place and placed.how != ADOPTED:
            raise InstallError(
                f"{models_dir / name}: models.{name}.path names this directory, but zoopm "
                "placed files here from another source; a model's own directory can be its "
                "source only when zoopm placed nothing in it (zoopm import)",
                hint=f"copy it out (cp -r {models_dir.name}/{name} my-models/{name}), point "
                f"models.{name}.path there, and run 'zoopm install'",
            )


def _check_in_place(tree: ModelsTree, action: FileAction) -> None:
    """A model kept in its own directory must hold its files already: zoopm writes nothing
    there, so every file it would place must be the user's regular file with the locked
    bytes, which it adopts."""
    name = action.model.name
    if tree.adopt(action.rel, action.file.sha256) is not None:
        return
    info = tree.lstat(action.rel)
    if info is None:
        problem = "is missing"
    elif not stat.S_ISREG(info.st_mode):
        problem = "is not a regular file"
    else:
        problem = "does not hold the bytes zoo.lock pins"
    hint = "run 'zoopm lock' to pin the directory as it is now"
    if action.file.binary and info is None:
        hint = f"run 'zoopm download-binary {tree.root.name}/{name}', then 'zoopm lock'"
    raise InstallError(
        f"{action.target}: {problem}; {tree.root.name}/{name} is the model's own directory "
        "(its source in zoo.toml), so zoopm writes nothing there",
        hint=hint,
    )


def _check_owner(record: Record, models_dir: Path, project: str | None) -> None:
    """Two projects sharing one models directory would remove each other's files: refuse.

    A copy of a project (with its models directory) is not sharing: the record names another
    models directory then. The same project reached by another path (a symlink, a bind mount)
    is the same project.
    """
    if project is None or record.project in (None, project) or not record.models:
        return
    if _same_path(Path(record.project).parent, Path(project).parent):
        return
    if record.models_dir is None or not _same_path(Path(record.models_dir), models_dir):
        return
    raise InstallError(
        f"{models_dir}: holds the models of another project ({record.project})",
        hint="give each project its own models-dir in zoo.toml (a symlinked models directory "
        "is shared by every project whose models point at it)",
    )


def _same_path(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def count_installed(model: LockedModel, record: Record, tree: ModelsTree, store: Store) -> int:
    """How many of model's locked files are in place as zoopm placed them."""
    count = 0
    for file in model.files:
        placed = record.placed(model.name, file.path)
        action = FileAction(model, file, tree.root / model.name / file.path)
        if placed and _kept(tree, store, action, placed, None) is not None:
            count += 1
    return count


def files_not_in_place(
    model: LockedModel, record: Record, tree: ModelsTree, store: Store
) -> list[str]:
    """model's locked files (paths below its directory) that are not in place as zoopm
    placed them."""
    missing = []
    for file in model.files:
        placed = record.placed(model.name, file.path)
        action = FileAction(model, file, tree.root / model.name / file.path)
        if not placed or _kept(tree, store, action, placed, None) is None:
            missing.append(file.path)
    return missing


_MODE_GIVES = {
    "copy": {"copy"},
    "hardlink": {"hardlink"},
    "symlink": {"symlink"},
    "auto": {"reflink", "hardlink", "copy"},
}


def _kept(
    tree: ModelsTree, store: Store, action: FileAction, placed: Placed, link_mode: str | None
) -> str | None:
    """ "keep" if action's file is still in place as placed, "refresh" if so but its record
    entry needs its stat updated, None if it must be placed again."""
    if placed.sha256 != action.file.sha256:
        return None
    if placed.how == ADOPTED:
        # The user's own file: kept while it holds the locked bytes, whatever its stat says.
        if tree.stat_intact(action.rel, placed) and not tree.ctime_moved(action.rel, placed):
            return "keep"
        return "refresh" if tree.holds(action.rel, action.file.sha256) else None
    if link_mode is not None and placed.how not in _MODE_GIVES.get(link_mode, {placed.how}):
        return None  # placed in another link mode than the one asked for now
    if not tree.stat_intact(action.rel, placed):
        return None
    if placed.how == "symlink":
        # A symlink is only as good as the blob it points at; the blob's ctime is recorded.
        if not store.has(action.file.sha256, action.file.size):
            return None
        if not tree.ctime_moved(action.rel, placed):
            return "keep"
        if _linked_last_by_zoopm(
            store, action.file.sha256, _lstat(store.blob_path(action.file.sha256))
        ):
            return "keep"
        suspect = store.prove(action.file.sha256, action.file.size, suspect=True)
        return "refresh" if suspect is not None else None
    if not tree.ctime_moved(action.rel, placed):
        return "keep"
    # ctime moves when the same blob is linked elsewhere, and when someone writes the file
    # and puts its mtime back. The blob's link note tells the first (one stat); else only the
    # bytes can tell which.
    if placed.how == "hardlink" and _linked_last_by_zoopm(
        store, action.file.sha256, tree.lstat(action.rel)
    ):
        return "keep"
    return "refresh" if tree.holds(action.rel, action.file.sha256) else None


def _linked_last_by_zoopm(store: Store, sha256: str, info: os.stat_result | None) -> bool:
    """Whether info (of a blob, or of a placed hard link of it) shows the inode as zoopm left
    it after last linking that blob, so that its moved ctime was zoopm's doing."""
    return (
        info is not None and stat.S_ISREG(info.st_mode) and zoopm_was_last(store.root, sha256, info)
    )


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def _refuse_if_foreign(tree: ModelsTree, action: FileAction, placed: Placed | None) -> None:
    """Stops before any download if a target holds a file zoopm did not place.

    The same decision is made again right before each write; this early check only spares
    the user a long download that could not be placed anyway.
    """
    info = tree.lstat(action.rel)
    if info is None:
        return
    if (
        placed is not None
        and not placed.pending
        and placed.how != ADOPTED
        and tree.is_placed_file(action.rel, placed)
    ):
        return  # the very file zoopm placed, changed in place: it is repaired
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
    fetch_missing(
        plan.fetch,
        store=store,
        fetcher=fetcher,
        project_root=project_root,
        jobs=jobs,
        offline=offline,
        token=token,
    )
    materialiser = _Materialiser(
        plan, store, fetcher, link_mode=link_mode, token=token, project_root=project_root
    )
    return materialiser.run(reporter)


def fetch_missing(
    actions: tuple[FileAction, ...],
    *,
    store: Store,
    fetcher: Fetcher,
    project_root: Path,
    jobs: int,
    offline: bool,
    token: CancelToken,
) -> None:
    """Puts the blob of each action into the store: from its local model directory when that
    still has the file, else downloaded (in parallel); offline, a download is an error naming
    every file missing."""
    local, to_download = _split_by_origin(actions, project_root)
    if offline and to_download:
        listed = ", ".join(f"{a.label} ({a.file.size:,} bytes)" for a in to_download[:5])
        more = f" and {len(to_download) - 5} more" if len(to_download) > 5 else ""
        raise OfflineError(
            f"offline: {len(to_download)} file(s) are not in the store: {listed}{more}"
        )
    try:
        run_tasks([functools.partial(_download, a, fetcher) for a in to_download], jobs, token)
    except BaseException:
        # A Ctrl-C ends the run soon, maybe while a thread is still inside a slow read: the
        # temp files no later run can resume are removed now, not by the next run's sweep.
        store.drop_temps()
        raise
    for action in actions:
        if action in local and not store.has(action.file.sha256, action.file.size):
            token.check()
            _ingest(action, local[action], store, fetcher)


class _Materialiser:
    """Applies the place and remove steps, keeping the install record true at every moment."""

    def __init__(
        self,
        plan: InstallPlan,
        store: Store,
        fetcher: Fetcher,
        *,
        link_mode: str,
        token: CancelToken,
        project_root: Path,
    ) -> None:
        self.plan = plan
        self.project_root = project_root
        self.store = store
        self.fetcher = fetcher
        self.link_mode = link_mode
        self.token = token
        self.models = {name: dict(files) for name, files in plan.record.models.items()}
        self.placed_inodes: set[int] = set()
        self.adopted: set[str] = set()
        self.written_at = 0.0

    def run(self, reporter: Reporter) -> InstallResult:
        plan = self.plan
        if plan.nothing_to_do:
            return InstallResult(plan, 0, 0, len(plan.keep))
        placed = removed = 0
        try:
            with ModelsTree(plan.models_dir, self.store.blob_path) as tree:
                self._write_intents(tree)
                for action in plan.place:
                    self.token.check()
                    if action.rel in self.adopted:
                        continue  # recorded as the user's own file already; nothing to write
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
                for name, path in plan.forget:
                    entry = self._entry(name, path)
                    if entry is not None and entry.how == ADOPTED:
                        reporter.warning(
                            f"{plan.models_dir / name / path}: no longer locked; it was there "
                            "before zoopm, so it is left in place"
                        )
                    self._drop(name, path)
            self._settle(tree)
        finally:
            self._save()
        return InstallResult(plan, placed, removed, len(plan.keep))

    def _settle(self, tree: ModelsTree) -> None:
        """Takes the final ctime of every file sharing an inode zoopm linked in this run.

        Each hard link of a blob moves its ctime, so the files placed early in a run (and kept
        files sharing a blob with them) no longer show the ctime first recorded; this run
        proved those bytes, so their new ctime is recorded rather than suspected next time.
        """
        linked = {
            entry.inode
            for files in self.models.values()
            for entry in files.values()
            if entry.how in ("hardlink", "reflink", "copy") and entry.inode in self.placed_inodes
        }
        for name, files in self.models.items():
            for path, entry in files.items():
                if entry.inode not in linked or entry.pending:
                    continue
                info = tree.lstat(f"{name}/{path}")
                if info is not None and info.st_ino == entry.inode:
                    files[path] = dataclasses.replace(entry, ctime_ns=info.st_ctime_ns)
                    if entry.how == "hardlink":
                        # The blob's inode as this run left it: another project seeing this
                        # ctime knows the change was zoopm linking it (storage/linknotes.py).
                        write_note(self.store.root, entry.sha256, info)

    def _write_intents(self, tree: ModelsTree) -> None:
        """Writes the record before anything is placed: after a crash, a file found at one of
        these paths with the intended bytes is known to be zoopm's, so the next run neither
        refuses nor loses it."""
        for name, path in self.plan.refresh:
            entry = self._entry(name, path)
            fresh = tree.describe(f"{name}/{path}", entry.sha256) if entry else None
            if fresh is not None and entry is not None:
                self.models[name][path] = dataclasses.replace(fresh, how=entry.how)
                info = tree.lstat(f"{name}/{path}") if entry.how == "hardlink" else None
                if info is not None and (info.st_ino, info.st_ctime_ns) == (
                    fresh.inode,
                    fresh.ctime_ns,
                ):
                    # Just hashed: the other projects sharing this inode need not hash it too.
                    write_note(self.store.root, entry.sha256, info)
        for action in self.plan.place:
            if action.model.name in self.plan.in_place:
                continue  # no intent: a file there is the user's, even after a crash
            current = self._entry(action.model.name, action.file.path)
            if current is not None and current.pending and current.sha256 != action.file.sha256:
                # An earlier, interrupted run may have placed its bytes here: say so before
                # the new intent replaces the only proof that the file is zoopm's.
                done = tree.describe(action.rel, current.sha256)
                if done is not None:
                    self._set(action, done)
                    continue
            if current is None:
                # Already holding the locked bytes before zoopm placed anything: the user's file,
                # adopted now, so that even a kill before its placement cannot make it zoopm's.
                there = tree.describe(action.rel, action.file.sha256)
                if there is not None and there.how == "copy":
                    self._set(action, dataclasses.replace(there, how=ADOPTED))
                    self.adopted.add(action.rel)
                    continue
            if current is None or current.pending:
                self._set(action, Placed.intent(action.file.sha256, action.file.size))
        self._save()

    def _place(self, tree: ModelsTree, action: FileAction) -> None:
        file = action.file
        restoring = action.model.name in self.plan.restore
        if action.model.name in self.plan.in_place and not restoring:
            # The user's own directory: judged again now, adopted as it is, never written.
            _check_in_place(tree, action)
            adopted = tree.adopt(action.rel, file.sha256)
            if adopted is None:
                raise InstallError(f"{action.target}: changed while zoopm adopted it")
            self._set(action, adopted)
            return
        owned = self._entry(action.model.name, file.path)
        # A hard link zoopm placed with these very bytes needs placing again only if someone
        # wrote to it, and so to the blob it shares: hash the blob, whatever its stat says.
        suspect = (
            owned is not None
            and owned.how == "hardlink"
            and owned.sha256 == file.sha256
            and not owned.pending
        )
        # So does a blob whose inode is not as zoopm last left it (linked, stored or proved):
        # something else changed it since, or it was never noted. Only then is a note written
        # after linking, so a note always speaks for bytes zoopm checked.
        suspect = suspect or not _linked_last_by_zoopm(
            self.store, file.sha256, _lstat(self.store.blob_path(file.sha256))
        )
        blob = self.store.prove(file.sha256, file.size, file.sha1, suspect=suspect)
        if blob is None:
            # Changed or removed since the fetch step (another project wrote through a hard
            # link, or someone cleaned the store): fetch it again rather than place wrong bytes,
            # from the local model directory when it still has the file.
            local, _ = _split_by_origin((action,), self.project_root)
            if action in local:
                _ingest(action, local[action], self.store, self.fetcher)
            else:
                self.fetcher.ensure(file.urls, _expected(file), action.label)
            blob = self.store.prove(file.sha256, file.size, file.sha1)
            if blob is None:
                raise IntegrityError(f"{action.label}: the store cannot keep a verified copy")
        if restoring:
            # A model's own directory, not there at all: made of plain copies (never a link
            # into the store, which an edit there would change) and adopted, the user's.
            done = tree.place(blob, action.rel, file.sha256, "copy", None, adopt=True)
            self._set(action, dataclasses.replace(done, how=ADOPTED))
            return
        before = self.plan.record.placed(action.model.name, file.path)
        # A file that was the user's stays theirs when it holds the newly locked bytes (a model
        # imported in place and edited, then locked): adopted again, never replaced by a link.
        adopt = before is None or before.how == ADOPTED
        done = tree.place(blob, action.rel, file.sha256, self.link_mode, owned, adopt=adopt)
        self.placed_inodes.add(done.inode)
        self._set(action, done)
        if time.monotonic() - self.written_at > _RECORD_EVERY_SECONDS:
            self._save()

    def _entry(self, name: str, path: str) -> Placed | None:
        return self.models.get(name, {}).get(path)

    def _set(self, action: FileAction, placed: Placed) -> None:
        self.models.setdefault(action.model.name, {})[action.file.path] = placed

    def _drop(self, name: str, path: str) -> None:
        self.models.get(name, {}).pop(path, None)

    def _save(self) -> None:
        record = Record(self.models, self.plan.project, str(self.plan.models_dir))
        write_record(self.plan.models_dir, record)
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
    to_download: list[FileAction] = []
    for action in actions:
        source = action.model.source_dict()
        if "path" in source and "github" not in source:
            candidate = project_root / source["path"] / action.file.path
            if candidate.is_file():
                local[action] = candidate
                continue
        to_download.append(action)
    return local, to_download


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
        detail = exc.message.split(": ", 1)[1]
        raise StaleLockError(
            f"{path}: changed since zoo.lock was written, and the store does not hold the bytes "
            f"zoo.lock pins ({detail})",
            hint="run 'zoopm lock' to pin the new contents, or put the file back as it was",
        ) from None
