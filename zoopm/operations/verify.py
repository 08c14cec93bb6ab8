"""Verify: each installed file (with store, each blob) hashed again and judged against zoo.lock.

Nothing is trusted from a stat: each locked file is read in full. A problem is a locked file
that is missing or holds other bytes, or a foreign entry (below a locked model's directory,
not pinned by zoo.lock). Repair goes through the install machinery (plan_install with the wrong
files marked to be placed again, then apply_install), so it keeps every promise install keeps:
it replaces only what is zoopm's own, never follows a link, and proves each blob first.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from zoopm.errors import UsageError
from zoopm.formats.lockfile import LOCK_NAME, Lock, LockedFile, LockedModel
from zoopm.network.fetch import Fetcher
from zoopm.operations.install import FileAction, apply_install, plan_install
from zoopm.reporting import Progress, Reporter
from zoopm.storage.materialize import ModelsTree
from zoopm.storage.record import ADOPTED, Placed, Record, read_record
from zoopm.storage.store import Store
from zoopm.tasks import CancelToken

MISSING = "missing"
MODIFIED = "modified"
FOREIGN = "foreign"
CORRUPT = "corrupt"

# The link mode that gives each recorded way of placing a file again the same way.
_MODE_OF = {"hardlink": "hardlink", "copy": "copy", "symlink": "symlink", "reflink": "auto"}


@dataclass(frozen=True)
class Problem:
    """One path below a locked model's directory that is not as zoo.lock pins it.

    zoopms says whether what is there (if anything) is zoopm's own to replace: a file it placed,
    same inode, perhaps written to. Anything else (a file saved over it by an editor, a file
    that was there before zoopm, a symlink or directory put there, any foreign entry) is the
    user's, and repair never touches it.
    """

    model: str
    path: str
    kind: str  # missing, modified or foreign
    detail: str
    zoopms: bool
    expected: str | None = None  # the sha256 zoo.lock pins (missing, modified)
    found: str | None = None  # the sha256 of what is there, when it is a file zoopm read

    @property
    def rel(self) -> str:
        """The path below the models directory."""
        return f"{self.model}/{self.path}"


@dataclass(frozen=True)
class StoreProblem:
    """A blob whose bytes (or kind of file) are not what its name says, now in quarantine/
    (corrupt); or one the chosen models pin that the store lacks (missing)."""

    sha256: str
    kind: str  # corrupt or missing
    detail: str
    needed: bool  # this project's zoo.lock pins it


@dataclass(frozen=True)
class VerifyResult:
    """What verify checked, what it found wrong, what it repaired and what is still wrong."""

    models_dir: Path
    models: tuple[str, ...]
    files: int  # locked files checked
    hashed_bytes: int  # bytes read below the models directory
    problems: tuple[Problem, ...]  # as found, before any repair
    blobs: int | None = None  # blobs hashed (None: the store was not verified)
    store_problems: tuple[StoreProblem, ...] = ()
    repaired: tuple[str, ...] = ()  # files placed again (model/path)
    refetched: tuple[str, ...] = ()  # blobs fetched again (sha256)
    remaining: tuple[Problem, ...] = ()  # still wrong once verify is done
    store_remaining: tuple[StoreProblem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.remaining and not self.store_remaining


@dataclass(frozen=True)
class RepairTools:
    """What placing files again needs from the project: the same pieces install uses."""

    fetcher: Fetcher
    project_root: Path
    link_mode: str  # the project's mode, used unless every recorded file was placed one way
    jobs: int
    offline: bool


class Verifier:
    """Checks the named models of one project's zoo.lock against its models directory."""

    def __init__(
        self,
        lock: Lock,
        names: Sequence[str],
        *,
        models_dir: Path,
        store: Store,
        reporter: Reporter,
        token: CancelToken,
    ) -> None:
        unknown = [name for name in names if lock.model(name) is None]
        if unknown:
            raise UsageError(
                f"no model named {unknown[0]!r} in {LOCK_NAME}", hint="'zoopm list' shows them"
            )
        self.lock = lock
        self.models = tuple(m for m in lock.models if not names or m.name in names)
        self.models_dir = models_dir
        self.store = store
        self.reporter = reporter
        self.token = token

    def run(self, *, store: bool = False, repair: RepairTools | None = None) -> VerifyResult:
        """Verifies (the store first, when asked, so files sharing a bad blob are seen as bad
        too), then repairs when given the tools to."""
        blobs: int | None = None
        store_problems: list[StoreProblem] = []
        if store:
            blobs, store_problems = self.check_store()
        record = read_record(self.models_dir)
        problems, hashed = self.check_tree(record)
        result = VerifyResult(
            self.models_dir,
            tuple(m.name for m in self.models),
            sum(len(m.files) for m in self.models),
            hashed,
            tuple(problems),
            blobs,
            tuple(store_problems),
            remaining=tuple(problems),
            store_remaining=tuple(store_problems),
        )
        if repair is None:
            return result
        return self._repair(result, record, repair)

    # --- the models directory -------------------------------------------------------------

    def check_tree(self, record: Record) -> tuple[list[Problem], int]:
        """Every problem below the chosen models' directories, and the bytes read to find them."""
        total = sum(m.size for m in self.models)
        progress = self.reporter.transfer(f"verifying {self.models_dir.name}/", total)
        hashed = [0]

        def on_chunk(size: int) -> None:
            hashed[0] += size
            progress.advance(size)
            self.token.check()

        problems: list[Problem] = []
        try:
            with ModelsTree(self.models_dir, self.store.blob_path) as tree:
                for model in self.models:
                    for file in model.files:
                        found = self._check_file(tree, record, model, file, on_chunk)
                        if found is not None:
                            problems.append(found)
                    problems.extend(_foreign(tree, model))
        finally:
            progress.close()
        return problems, hashed[0]

    def _check_file(
        self,
        tree: ModelsTree,
        record: Record,
        model: LockedModel,
        file: LockedFile,
        on_chunk: Callable[[int], None],
    ) -> Problem | None:
        rel = f"{model.name}/{file.path}"
        placed = record.placed(model.name, file.path)

        def problem(kind: str, detail: str, zoopms: bool, found: str | None = None) -> Problem:
            return Problem(model.name, file.path, kind, detail, zoopms, file.sha256, found)

        info = tree.lstat(rel)
        if info is None:
            blocked = _blocked(tree, rel)
            if blocked is not None:
                return problem(MISSING, f"missing: {blocked}", zoopms=False)
            return problem(MISSING, "missing", zoopms=True)
        if stat.S_ISLNK(info.st_mode):
            if not (_ours(placed, info, "symlink") and tree.holds(rel, file.sha256)):
                return problem(MODIFIED, "a symbolic link zoopm did not place", zoopms=False)
            # zoopm's link into the store: the blob it names is what Caffe reads.
            digest = self.store.rehash(file.sha256, on_chunk)
            if digest is None:
                return problem(MODIFIED, "its blob is missing from the store", zoopms=True)
            if digest.sha256 != file.sha256:
                detail = f"its blob in the store holds other bytes (sha256 {digest.sha256})"
                return problem(MODIFIED, detail, zoopms=True, found=digest.sha256)
            return None
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            return problem(MODIFIED, f"{kind}, where zoo.lock pins a file", zoopms=False)
        sha256 = tree.sha256(rel, on_chunk)
        if sha256 == file.sha256:
            return None
        shown = f" (sha256 {sha256})" if sha256 else ""
        if _ours(placed, info, None) and placed is not None and tree.is_placed_file(rel, placed):
            return problem(MODIFIED, f"holds other bytes{shown}", zoopms=True, found=sha256)
        if placed is not None and placed.how == ADOPTED:
            why = "it was there before zoopm, so it is yours"
        elif placed is not None and not placed.pending:
            why = "a new file was saved over the one zoopm placed, so it is yours"
        else:
            why = "zoopm did not place it"
        return problem(MODIFIED, f"holds other bytes{shown}; {why}", zoopms=False, found=sha256)

    # --- the store ------------------------------------------------------------------------

    def check_store(self) -> tuple[int, list[StoreProblem]]:
        """Hashes every blob against its name; a wrong one (or a link, a directory, a FIFO put
        at a blob's name) is moved to quarantine/ at once, so nothing links it again. A blob the
        chosen models pin that the store lacks (quarantined earlier, say) is a problem too."""
        needed = {f.sha256 for m in self.models for f in m.files}
        blobs = self.store.blobs()
        total = sum(blob.info.st_size for blob in blobs if blob.is_file)
        progress: Progress = self.reporter.transfer("verifying the store", total)

        def on_chunk(size: int) -> None:
            progress.advance(size)
            self.token.check()

        problems: list[StoreProblem] = []
        try:
            for blob in blobs:
                self.token.check()
                detail = None
                if stat.S_ISLNK(blob.info.st_mode):
                    detail = "is a symbolic link (never followed)"
                elif not blob.is_file:
                    detail = "is not a regular file"
                else:
                    digest = self.store.rehash(blob.sha256, on_chunk)
                    if digest is None:
                        continue  # gone meanwhile (another zoopm quarantined it)
                    if digest.sha256 != blob.sha256:
                        detail = f"holds other bytes (sha256 {digest.sha256}, {digest.size} bytes)"
                if detail is not None:
                    self.store.quarantine(blob.path)
                    problems.append(
                        StoreProblem(blob.sha256, CORRUPT, detail, blob.sha256 in needed)
                    )
        finally:
            progress.close()
        named = {p.sha256 for p in problems}
        for sha256 in sorted(needed - named):
            if self.store.get(sha256) is None:
                problems.append(StoreProblem(sha256, MISSING, "not in the store", needed=True))
        return len(blobs), problems

    # --- repair ---------------------------------------------------------------------------

    def _repair(self, found: VerifyResult, record: Record, tools: RepairTools) -> VerifyResult:
        fixable = [p for p in found.problems if p.zoopms and p.kind in (MISSING, MODIFIED)]
        files = {(p.model, p.path) for p in fixable}
        # A file written in place shares its inode with its blob when hard-linked: the blob is
        # hashed too, and wrong bytes go to quarantine/ and are fetched again before placing.
        for problem in fixable:
            file = self._file(problem.model, problem.path)
            self.store.prove(file.sha256, file.size, file.sha1, suspect=True)
        refetch = {p.sha256 for p in found.store_problems if p.needed}
        fetch_too = self._files_of(refetch - {self._file(m, p).sha256 for m, p in files})
        if not fixable and not fetch_too:
            return self._settle(found, (), refetch)
        subset = _restrict(self.lock, files | {(a.model.name, a.file.path) for a in fetch_too})
        project = str(tools.project_root.resolve() / LOCK_NAME)
        mode = _recorded_mode(record) or tools.link_mode
        again = frozenset(p.rel for p in fixable if p.kind == MODIFIED)
        plan = plan_install(subset, self.models_dir, self.store, project, mode, again=again)
        place = tuple(a for a in plan.place if (a.model.name, a.file.path) in files)
        fetch = [a for a in plan.fetch if (a.model.name, a.file.path) in files]
        fetch += [a for a in fetch_too if not self.store.has(a.file.sha256, a.file.size)]
        plan = dataclasses.replace(
            plan, fetch=tuple(fetch), place=place, remove=(), leave=(), forget=(), refresh=()
        )
        apply_install(
            plan,
            store=self.store,
            fetcher=tools.fetcher,
            project_root=tools.project_root,
            link_mode=mode,
            reporter=self.reporter,
            jobs=tools.jobs,
            offline=tools.offline,
            token=self.token,
        )
        return self._settle(found, tuple(a.rel for a in place), refetch)

    def _settle(
        self, found: VerifyResult, placed: tuple[str, ...], refetch: set[str]
    ) -> VerifyResult:
        """What is still wrong after a repair: each file placed again is hashed once more."""
        record = read_record(self.models_dir)
        remaining: list[Problem] = []
        with ModelsTree(self.models_dir, self.store.blob_path) as tree:
            for problem in found.problems:
                if problem.rel in placed:
                    model = self.lock.model(problem.model)
                    assert model is not None
                    file = self._file(problem.model, problem.path)
                    again = self._check_file(tree, record, model, file, lambda _: None)
                    if again is None:
                        continue
                remaining.append(problem)
        fetched = tuple(sorted(s for s in refetch if self.store.has(s)))
        store_remaining = tuple(
            p for p in found.store_problems if p.needed and p.sha256 not in fetched
        )
        repaired = tuple(p.rel for p in found.problems if p.rel in placed and p not in remaining)
        return dataclasses.replace(
            found,
            repaired=repaired,
            refetched=fetched,
            remaining=tuple(remaining),
            store_remaining=store_remaining,
        )

    def _file(self, model: str, path: str) -> LockedFile:
        locked = self.lock.model(model)
        file = locked.file(path) if locked is not None else None
        assert file is not None
        return file

    def _files_of(self, blobs: set[str]) -> list[FileAction]:
        """One locked file for each blob named: what the blob is fetched again as."""
        chosen: dict[str, FileAction] = {}
        for model in self.lock.models:
            for file in model.files:
                if file.sha256 in blobs and file.sha256 not in chosen:
                    target = self.models_dir / model.name / file.path
                    chosen[file.sha256] = FileAction(model, file, target)
        return list(chosen.values())


def _ours(placed: Placed | None, info: os.stat_result, how: str | None) -> bool:
    """Whether the entry seen has the inode zoopm placed (for a file, ask the tree too whether
    it is the very file: an inode number can be reused), as install judges it.

    how='symlink' asks about a link zoopm placed; None about a file (hard link, reflink, copy).
    """
    if placed is None or placed.pending or placed.how == ADOPTED:
        return False
    if (placed.how == "symlink") != (how == "symlink"):
        return False
    return info.st_ino == placed.inode


def _blocked(tree: ModelsTree, rel: str) -> str | None:
    """Why nothing can be placed at rel: a directory above it that is a link or a file."""
    parts = rel.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        above = "/".join(parts[:depth])
        info = tree.lstat(above)
        if info is None:
            return None
        if stat.S_ISLNK(info.st_mode):
            return f"{tree.root.name}/{above} is a symbolic link, which zoopm never follows"
        if not stat.S_ISDIR(info.st_mode):
            return f"{tree.root.name}/{above} is a file, where a directory belongs"
    return None


def _foreign(tree: ModelsTree, model: LockedModel) -> list[Problem]:
    """Entries below the model's directory that zoo.lock does not pin: reported, never touched."""
    files = {f.path for f in model.files}
    dirs = {
        "/".join(f.path.split("/")[:depth])
        for f in model.files
        for depth in range(1, f.path.count("/") + 1)
    }
    found: list[Problem] = []
    pending = [""]
    while pending:
        below = pending.pop()
        base = f"{model.name}/{below}" if below else model.name
        for name, info in tree.entries(base):
            path = f"{below}/{name}" if below else name
            if path in files or tree.is_temp(name):
                continue
            if stat.S_ISDIR(info.st_mode) and path in dirs:
                pending.append(path)
                continue
            if stat.S_ISDIR(info.st_mode):
                what = "a directory"
            elif stat.S_ISLNK(info.st_mode):
                what = "a symbolic link"
            else:
                what = "a file"
            detail = f"{what} zoo.lock does not pin; zoopm leaves it alone"
            found.append(Problem(model.name, path, FOREIGN, detail, zoopms=False))
    return sorted(found, key=lambda p: p.path)


def _restrict(lock: Lock, files: set[tuple[str, str]]) -> Lock:
    """The lock with only the files named (and the models holding them)."""
    models = []
    for model in lock.models:
        kept = tuple(f for f in model.files if (model.name, f.path) in files)
        if kept:
            models.append(dataclasses.replace(model, files=kept))
    return Lock(lock.manifest_hash, tuple(models))


def _recorded_mode(record: Record) -> str | None:
    """The link mode every file the record names was placed with, if they agree: a repair
    places files the way the last install did (a copy stays a copy)."""
    modes = {_MODE_OF[p.how] for _, _, p in record.entries() if p.how in _MODE_OF}
    return modes.pop() if len(modes) == 1 else None
