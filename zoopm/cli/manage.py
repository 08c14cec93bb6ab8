"""Commands that change the project: init, lock, install, add, remove, update."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from zoopm.cli.app import JobsOption, app, run
from zoopm.errors import UsageError
from zoopm.project import Project
from zoopm.ui import ConsoleReporter, human_size, install_summary, models_text, printable, relative

if TYPE_CHECKING:
    from zoopm.operations.bundle import BundleInstalled


@app.command()
def init(ctx: typer.Context) -> None:
    """Create a commented zoo.toml in the project directory."""

    def action(project: Project, reporter: ConsoleReporter) -> None:
        path = project.init()
        reporter.info(f"Created {path}")

    run(ctx, action, discover=False)


@app.command()
def lock(
    ctx: typer.Context,
    check: Annotated[
        bool, typer.Option("--check", help="Only check that zoo.lock is current; exit 1 if not.")
    ] = False,
    offline: Annotated[bool, typer.Option("--offline", help="Make no network request.")] = False,
    jobs: JobsOption = None,
) -> None:
    """Resolve zoo.toml and pin every file in zoo.lock."""

    def action(project: Project, reporter: ConsoleReporter) -> None:
        result = project.lock(check=check)
        count = len(result.lock.models)
        if check or not result.changed:
            reporter.info(f"zoo.lock is up to date ({models_text(count)})")
        elif result.created:
            reporter.info(f"Wrote zoo.lock ({models_text(count)})")
        else:
            reporter.info(f"Locked {models_text(count)} in zoo.lock: {'; '.join(result.changes)}")

    run(ctx, action, offline=offline, jobs=jobs)


@app.command()
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
        typer.Option("--link-mode", help="auto, hardlink, symlink or copy (default: auto)."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print what install would do (zoo.lock must be current)."),
    ] = False,
    jobs: JobsOption = None,
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
    """Place every locked file under the models directory, fetching what the store lacks."""

    def show_plan(project: Project) -> None:
        _, plan = project.plan(frozen=True, link_mode=link_mode)
        where = relative(plan.models_dir)
        for action in plan.fetch:
            print(f"fetch   {printable(action.label)} ({human_size(action.file.size)})")
        for action in plan.place:
            print(f"place   {where}/{printable(action.label)}")
        for name, path in plan.remove:
            print(f"remove  {where}/{name}/{printable(path)}")
        for name, path in plan.leave:
            print(f"leave   {where}/{name}/{printable(path)} (changed since zoopm placed it)")
        print(f"{len(plan.keep)} files already in place")

    def action(project: Project, reporter: ConsoleReporter) -> None:
        if from_bundle is not None:
            if dry_run:
                raise UsageError("--from-bundle cannot be combined with --dry-run")
            installed = project.install_from_bundle(from_bundle, link_mode=link_mode)
            reporter.info(_bundle_summary(installed))
            reporter.info(install_summary(installed.install))
            return
        if dry_run:
            show_plan(project)
            return
        reporter.info(install_summary(project.install(frozen=frozen, link_mode=link_mode)))

    run(ctx, action, offline=offline, jobs=jobs)


@app.command()
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
        str | None, typer.Option("--name", help="The model's name in zoo.toml and models/.")
    ] = None,
    no_install: Annotated[
        bool, typer.Option("--no-install", help="Only update zoo.toml and zoo.lock.")
    ] = False,
    jobs: JobsOption = None,
) -> None:
    """Add a model to zoo.toml, pinned to a commit, then lock and install."""

    def action(project: Project, reporter: ConsoleReporter) -> None:
        added = project.add(model, name=name, install=not no_install)
        reporter.info(f"Added {added.spec.name} ({added.spec.source.describe()}) to zoo.toml")
        if added.installed is not None:
            reporter.info(install_summary(added.installed))

    run(ctx, action, jobs=jobs)


@app.command()
def remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The model's name in zoo.toml.")],
    no_install: Annotated[
        bool, typer.Option("--no-install", help="Leave the models directory as it is.")
    ] = False,
) -> None:
    """Remove a model from zoo.toml, zoo.lock and the models directory."""

    def action(project: Project, reporter: ConsoleReporter) -> None:
        installed = project.remove(name, install=not no_install)
        reporter.info(f"Removed {name} from zoo.toml and zoo.lock")
        if installed is not None:
            reporter.info(install_summary(installed))

    run(ctx, action)


@app.command()
def update(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None, typer.Argument(help="Models to update (default: all).")
    ] = None,
    jobs: JobsOption = None,
) -> None:
    """Move gist and repository models to their newest commit, then lock again."""

    def action(project: Project, reporter: ConsoleReporter) -> None:
        updates = project.update(names or ())
        if not updates:
            reporter.info("Every model is at its newest revision")
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
