"""model_path: one call from experiment code to the directory of an installed model."""

from __future__ import annotations

import os
from pathlib import Path

from zoopm.errors import NotInstalledError, StaleLockError, UsageError
from zoopm.formats.lockfile import LOCK_NAME, LockedModel
from zoopm.locations import MANIFEST_NAME
from zoopm.operations.changes import manifest_changes
from zoopm.operations.install import files_not_in_place
from zoopm.project import Project
from zoopm.reporting import Reporter
from zoopm.storage.materialize import ModelsTree
from zoopm.storage.record import read_record


def model_path(
    name: str,
    *,
    project: Project | str | os.PathLike[str] | None = None,
    install: bool = True,
    reporter: Reporter | None = None,
) -> Path:
    """The directory of the installed model name (models/<name>/ of its project).

    If a file of the model is not in place, the project is installed from zoo.lock first, as
    `zoopm install --frozen` does: zoo.lock is never resolved again, so a missing zoo.lock, or
    one that does not match zoo.toml, is a StaleLockError telling you to run 'zoopm lock'.
    With install=False a model not in place is a NotInstalledError naming 'zoopm install'.
    With every file of the model in place, no network request is made.

    project is a Project, or a path from which the project is found as Project.find finds it
    (default: the working directory). reporter receives the install's progress and warnings
    (with a Project, its own reporter does, and passing one here is a UsageError). Every
    failure is a ZoopmError with the message and hint the command line prints for it.
    """
    if isinstance(project, Project):
        if reporter is not None:
            raise UsageError(
                "model_path: reporter is given with a Project, which has its own",
                hint="pass the reporter to the Project (Project.find(reporter=...)) instead",
            )
        return _model_path(project, name, install=install)
    with Project.find(project if project is not None else ".", reporter=reporter) as found:
        return _model_path(found, name, install=install)


def _model_path(project: Project, name: str, *, install: bool) -> Path:
    manifest = project.manifest()
    lock = project.read_lock()
    if lock is None:
        # As 'zoopm install --frozen' says it.
        raise StaleLockError(f"{LOCK_NAME}: missing", hint="run 'zoopm lock' and commit zoo.lock")
    changes = manifest_changes(manifest, lock)
    if changes:
        raise StaleLockError(
            f"{LOCK_NAME} does not match {MANIFEST_NAME}: {', '.join(changes)}",
            hint="run 'zoopm lock' to update zoo.lock (model_path never resolves)",
        )
    model = lock.model(name)
    if model is None:
        # As 'zoopm show NAME' says it. A name like '../x' ends here too: only locked names,
        # which the lock reader has checked, ever become a path.
        raise UsageError(f"no model named {name!r} in {LOCK_NAME}", hint="'zoopm list' shows them")
    models_dir = project.models_dir(manifest)
    directory = models_dir / model.name
    missing = _not_in_place(project, models_dir, model)
    if not missing:
        return directory
    if not install:
        raise NotInstalledError(
            f"{directory}: {name} is not installed ({missing[0]} is not in place)",
            hint="run 'zoopm install' (or call model_path with install=True)",
        )
    project.install(frozen=True)
    missing = _not_in_place(project, models_dir, model)
    if missing:
        # install places every locked file or fails; this would be another process's doing.
        raise NotInstalledError(
            f"{directory / missing[0]}: not in place after installing",
            hint=f"run 'zoopm verify {name}' to see what differs",
        )
    return directory


def _not_in_place(project: Project, models_dir: Path, model: LockedModel) -> list[str]:
    record = read_record(models_dir)
    with ModelsTree(models_dir, project.store.blob_path) as tree:
        return files_not_in_place(model, record, tree, project.store)
