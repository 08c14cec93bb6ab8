"""Commands that change the project: init, lock, install, add, remove, update."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from zoopm import jsondoc
from zoopm.cli.app import JobsOption, JsonOption, app, emit, run
from zoopm.errors import UsageError
from zoopm.formats.manifest import LocalSource
from zoopm.project import Project
from zoopm.ui import (
    ConsoleReporter,
    files_text,
    human_size,
    install_summary,
    models_text,
    printable,
    relative,
)

if TYPE_CHECKING:
    from zoopm.operations.bundle import BundleInstalled


@app.command(short_help="Create a commented zoo.toml.")
def init(ctx: typer.Context) -> None:
    """Create a commented zoo.toml in the project directory.

    Examples:

    \b
      zoopm init
      zoopm -C my-experiment init
    """

    def action(project: Project, reporter: ConsoleReporter) -> None:
        path = project.init()
        reporter.info(f"Created {path}")

    run(ctx, action, discover=False)


@app.command(short_help="Resolve zoo.toml and pin every file in zoo.lock.")
def lock(
    ctx: typer.Context,
    check: Annotated[
        bool, typer.Option("--check", help="Only check that zoo.lock is current; exit 1 if not.")
    ] = False,
    offline: Annotated[bool, typer.Option("--offline", help="Make no network request.")] = False,
    jobs: JobsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Resolve zoo.toml and pin every file in zoo.lock.

    Examples:

    \b
      zoopm lock
      zoopm lock --check      # exit 1 if zoo.lock is not current (CI)
    """

    def action(project: Project, reporter: ConsoleReporter) -> jsondoc.Document | None:
        result = project.lock(check=check)
        if as_json:
            return jsondoc.lock(result, project.lock_path, check=check, warnings=reporter.warnings)
        count = len(result.lock.models)
        if check or not result.changed:
            reporter.info(f"zoo.lock is up to date ({models_text(count)})")
        elif result.created:
            reporter.info(f"Wrote zoo.lock ({models_text(count)})")
        else:
            reporter.info(f"Locked {models_text(count)} in zoo.lock: {'; '.join(result.changes)}")
        return None

    emit(run(ctx, action, offline=offline, jobs=jobs, as_json=as_json))


@app.command(short_help="Place every locked file, fetching what is missing.")
def install(
    ctx: typer.Context,
    frozen: Annotated[
        bool,
        typer.Option(
            "--frozen", "--locked", help="Install zoo.lock as it is; exit 1 if it is stale."
        ),
    ] = False,
    offline: Annotated[
        bool, typer.Option("--offline", help="Use only the store; make no network request.")
    ] = False,
    link_mode: Annotated[
        str | None,
        typer.Option(
            "--link-mode",
            metavar="MODE",
            help="auto, hardlink, symlink or copy (default: auto).",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print what install would do (zoo.lock must be current)."),
    ] = False,
    jobs: JobsOption = None,
    as_json: JsonOption = False,
    from_bundle: Annotated[
        Path | None,
        typer.Option(
            "--from-bundle",
            metavar="FILE",
            help="Install from a file 'zoopm bundle' wrote, with no network request "
            "(in an empty directory: its zoo.toml and zoo.lock too).",
        ),
    ] = None,
) -> None:
    """Place every locked file under the models directory, fetching what the store lacks.

    Examples:

    \b
      zoopm install
      zoopm install --frozen   # a fresh checkout: zoo.lock exactly as committed
      zoopm install --dry-run  # what it would fetch, place and remove
    """

    def show_plan(project: Project, reporter: ConsoleReporter) -> jsondoc.Document | None:
        _, plan = project.plan(dry_run=True, link_mode=link_mode)
        if as_json:
            return jsondoc.install_plan(plan, reporter.warnings)
        where = relative(plan.models_dir)
        for action in plan.fetch:
            print(f"fetch   {printable(action.label)} ({human_size(action.file.size)})")
        for action in plan.place:
            print(f"place   {where}/{printable(action.label)}")
        for name, path in plan.remove:
            print(f"remove  {where}/{name}/{printable(path)}")
        for name, path in plan.leave:
            print(f"leave   {where}/{name}/{printable(path)} (changed since zoopm placed it)")
        print(f"{files_text(len(plan.keep))} already in place")
        return None

    def action(project: Project, reporter: ConsoleReporter) -> jsondoc.Document | None:
        if from_bundle is not None:
            if dry_run:
                raise UsageError(
                    "--from-bundle cannot be combined with --dry-run",
                    hint="run 'zoopm install --from-bundle FILE' alone; it checks before it places",
                )
            installed = project.install_from_bundle(from_bundle, link_mode=link_mode)
            if as_json:
                document = jsondoc.install_result(installed.install, reporter.warnings)
                # What the store gained came from the bundle, not from a download.
                document["fetched_blobs"] = installed.stored
                document["fetched_bytes"] = installed.stored_bytes
                return document
            reporter.info(_bundle_summary(installed))
            reporter.info(install_summary(installed.install))
            return None
        if dry_run:
            return show_plan(project, reporter)
        result = project.install(frozen=frozen, link_mode=link_mode)
        if as_json:
            return jsondoc.install_result(result, reporter.warnings)
        reporter.info(install_summary(result))
        return None

    emit(run(ctx, action, offline=offline, jobs=jobs, as_json=as_json))


@app.command(short_help="Add a model, pinned to a commit; lock and install.")
def add(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Argument(
            help="An index name (zoopm search), gist:ID[@REV], a gist URL, "
            "github:OWNER/REPO[/PATH][@REV], or ./dir.",
            metavar="MODEL",
        ),
    ],
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="NAME", help="The model's name in zoo.toml and models/."),
    ] = None,
    no_install: Annotated[
        bool, typer.Option("--no-install", help="Only update zoo.toml and zoo.lock.")
    ] = False,
    jobs: JobsOption = None,
) -> None:
    """Add a model to zoo.toml, pinned to a commit, then lock and install.

    Examples:

    \b
      zoopm add bvlc_googlenet
      zoopm add gist:d802a5849de39225bcc6 --name nin
      zoopm add github:BVLC/caffe/models/bvlc_alexnet
      zoopm add ./my_model
    """

    def action(project: Project, reporter: ConsoleReporter) -> None:
        added = project.add(model, name=name, install=not no_install)
        reporter.info(f"Added {added.spec.name} ({added.spec.source.describe()}) to zoo.toml")
        if added.installed is not None:
            reporter.info(install_summary(added.installed))

    run(ctx, action, jobs=jobs)


@app.command(short_help="Remove a model from zoo.toml, zoo.lock and models/.")
def remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The model's name in zoo.toml.", metavar="NAME")],
    no_install: Annotated[
        bool, typer.Option("--no-install", help="Leave the models directory as it is.")
    ] = False,
) -> None:
    """Remove a model from zoo.toml, zoo.lock and the models directory.

    Examples:

    \b
      zoopm remove nin
    """

    def action(project: Project, reporter: ConsoleReporter) -> None:
        installed = project.remove(name, install=not no_install)
        reporter.info(f"Removed {name} from zoo.toml and zoo.lock")
        if installed is not None:
            reporter.info(install_summary(installed))

    run(ctx, action)


@app.command(short_help="Move models to their newest commit, then lock.")
def update(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None, typer.Argument(help="Models to update (default: all).", metavar="NAME...")
    ] = None,
    jobs: JobsOption = None,
) -> None:
    """Move gist and repository models to their newest commit, then lock again.

    Examples:

    \b
      zoopm update
      zoopm update nin
    """

    def action(project: Project, reporter: ConsoleReporter) -> None:
        updates = project.update(names or ())
        if not updates:
            revisioned = [
                m for m in project.manifest().models if not isinstance(m.source, LocalSource)
            ]
            reporter.info(
                "Every gist and repository model is at its newest revision"
                if revisioned
                else "No gist or repository models to update (local directories have no revision)"
            )
        for item in updates:
            old = item.old[:12] if item.old else "(no rev)"
            reporter.info(f"{item.name}: {old} → {item.new[:12]}")

    run(ctx, action, jobs=jobs)


def _bundle_summary(installed: BundleInstalled) -> str:
    """What install --from-bundle took from the bundle, before the install's own line."""
    wrote = f"; wrote {' and '.join(installed.wrote)}" if installed.wrote else ""
    stored = installed.stored
    return (
        f"Read {relative(installed.path)}: {stored} new blob{'s' * (stored != 1)} in the store "
        f"({human_size(installed.stored_bytes)}), {installed.present} already there{wrote}"
    )
