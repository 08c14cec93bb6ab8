"""The zoopm command: arguments in, one Project call, output and exit code out (only typer user)."""

from __future__ import annotations

import dataclasses
import json
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from zoopm import __version__
from zoopm.errors import (
    EXIT_FAILURE,
    INTERRUPTED_HINT,
    Interrupted,
    ZoopmError,
    from_os_error,
)
from zoopm.install import InstallResult
from zoopm.project import ModelStatus, Project
from zoopm.settings import Settings
from zoopm.ui import ConsoleReporter, error_lines, human_size, print_table, printable

app = typer.Typer(
    name="zoopm",
    help="A package manager for pretrained Caffe models: lock them, verify them, install them.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

T = TypeVar("T")


@dataclass
class Options:
    project: Path | None = None
    quiet: bool = False
    verbose: bool = False
    progress: bool = True


def _version(value: bool) -> None:
    if value:
        print(f"zoopm {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    project: Annotated[
        Path | None,
        typer.Option("-C", "--project", help="Run as if started in DIR.", metavar="DIR"),
    ] = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Print only errors.")] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Say more.")] = False,
    no_progress: Annotated[
        bool, typer.Option("--no-progress", help="Draw no progress bars.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    ctx.obj = Options(project, quiet, verbose, not no_progress)


def _run(
    ctx: typer.Context,
    action: Callable[[Project, ConsoleReporter], T],
    *,
    discover: bool = True,
    offline: bool = False,
) -> T:
    """Runs one Project operation; any ZoopmError becomes two lines and an exit code."""
    options: Options = ctx.obj
    reporter: ConsoleReporter | None = None
    project: Project | None = None
    try:
        settings = Settings.from_env()
        if offline:
            settings = dataclasses.replace(settings, offline=True)
        reporter = ConsoleReporter(
            quiet=options.quiet,
            verbose=options.verbose,
            progress=options.progress,
            no_color=settings.no_color,
        )
        start = options.project if options.project is not None else Path.cwd()
        # init creates a project, so it must not climb to a zoo.toml in a parent directory.
        if discover:
            project = Project.discover(start, settings, reporter)
        else:
            project = Project(start, settings, reporter, cwd=start)
        with project:
            return action(project, reporter)
    except ZoopmError as error:
        _fail(reporter, error)
    except OSError as exc:
        # The library wraps the OS errors it expects; any other is still the user's to fix.
        _fail(reporter, from_os_error(exc))
    except (KeyboardInterrupt, Interrupted) as interrupt:
        if project is not None:
            project.token.cancel()
        if reporter is not None:
            reporter.close()
        stop = interrupt if isinstance(interrupt, Interrupted) else None
        print(f"error: {stop.what if stop else 'interrupted'}", file=sys.stderr)
        print(f"hint: {INTERRUPTED_HINT}", file=sys.stderr)
        raise typer.Exit(stop.exit_code if stop else 130) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        if options.verbose:
            traceback.print_exc()
        print(f"error: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        print(
            "hint: this is a bug in zoopm; run with -v for the traceback and report it",
            file=sys.stderr,
        )
        raise typer.Exit(EXIT_FAILURE) from None
    finally:
        if reporter is not None:
            reporter.close()
    raise AssertionError("unreachable")


def _fail(reporter: ConsoleReporter | None, error: ZoopmError) -> None:
    if reporter is not None:
        reporter.close()
    print(error_lines(error), file=sys.stderr)
    raise typer.Exit(error.exit_code) from None


@app.command()
def init(ctx: typer.Context) -> None:
    """Create a commented zoo.toml in the project directory."""

    def action(project: Project, reporter: ConsoleReporter) -> None:
        path = project.init()
        reporter.info(f"Created {path}")

    _run(ctx, action, discover=False)


@app.command()
def lock(
    ctx: typer.Context,
    check: Annotated[
        bool, typer.Option("--check", help="Only check that zoo.lock is current; exit 1 if not.")
    ] = False,
    offline: Annotated[bool, typer.Option("--offline", help="Make no network request.")] = False,
) -> None:
    """Resolve zoo.toml and pin every file in zoo.lock."""

    def action(project: Project, reporter: ConsoleReporter) -> None:
        result = project.lock(check=check)
        count = len(result.lock.models)
        if check or not result.changed:
            reporter.info(f"zoo.lock is up to date ({_models(count)})")
        elif result.created:
            reporter.info(f"Wrote zoo.lock ({_models(count)})")
        else:
            reporter.info(f"Locked {_models(count)} in zoo.lock: {'; '.join(result.changes)}")

    _run(ctx, action, offline=offline)


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
) -> None:
    """Place every locked file under the models directory, fetching what the store lacks."""

    def show_plan(project: Project) -> None:
        _, plan = project.plan(frozen=True, link_mode=link_mode)
        where = _relative(plan.models_dir)
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
        if dry_run:
            show_plan(project)
            return
        _report_install(project.install(frozen=frozen, link_mode=link_mode), reporter)

    _run(ctx, action, offline=offline)


def _report_install(result: InstallResult, reporter: ConsoleReporter) -> None:
    plan = result.plan
    where = _relative(plan.models_dir)
    if plan.nothing_to_do:
        reporter.info(f"Nothing to do: {result.kept} files already in place in {where}/")
        return
    parts = [f"placed {_files(result.placed)} in {where}/"]
    if plan.fetch:
        parts.append(f"{len(plan.fetch)} new in the store ({human_size(plan.fetch_bytes)})")
    if result.removed:
        parts.append(f"removed {result.removed}")
    if result.kept:
        parts.append(f"{result.kept} unchanged")
    text = ", ".join(parts)
    reporter.info(text[0].upper() + text[1:])


@app.command()
def add(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Argument(
            help="An index name (zoopm search), gist:ID[@REV], a gist URL, "
            "github:OWNER/REPO/PATH[@REV], or ./dir.",
            metavar="MODEL",
        ),
    ],
    name: Annotated[
        str | None, typer.Option("--name", help="The model's name in zoo.toml and models/.")
    ] = None,
    no_install: Annotated[
        bool, typer.Option("--no-install", help="Only update zoo.toml and zoo.lock.")
    ] = False,
) -> None:
    """Add a model to zoo.toml, pinned to a commit, then lock and install."""

    def action(project: Project, reporter: ConsoleReporter) -> None:
        added = project.add(model, name=name, install=not no_install)
        reporter.info(f"Added {added.spec.name} ({added.spec.source.describe()}) to zoo.toml")
        if added.installed is not None:
            _report_install(added.installed, reporter)

    _run(ctx, action)


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
            _report_install(installed, reporter)

    _run(ctx, action)


@app.command()
def update(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None, typer.Argument(help="Models to update (default: all).")
    ] = None,
) -> None:
    """Move gist and repository models to their newest commit, then lock again."""

    def action(project: Project, reporter: ConsoleReporter) -> None:
        updates = project.update(names or ())
        if not updates:
            reporter.info("Every model is at its newest revision")
        for item in updates:
            old = item.old[:12] if item.old else "(no rev)"
            reporter.info(f"{item.name}: {old} → {item.new[:12]}")

    _run(ctx, action)


@app.command()
def search(
    ctx: typer.Context,
    term: Annotated[str, typer.Argument(help="Text to look for in names and descriptions.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Search the model indexes (the built-in one and those in zoo.toml)."""

    def action(project: Project, reporter: ConsoleReporter) -> None:
        found = project.search(term)
        if as_json:
            rows = [
                {
                    "name": e.name,
                    "source": e.source.canonical(),
                    "description": e.description,
                    "owner": e.owner,
                    "index": e.origin,
                }
                for e in found
            ]
            print(json.dumps(rows, indent=2))
            return
        if not found:
            reporter.info(f"No model matches {term!r}")
            return
        table = [[e.name, e.source.describe(), e.description] for e in found]
        print_table(["name", "source", "description"], table, project.settings.no_color)

    _run(ctx, action)


@app.command("list")
def list_models(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the locked models and whether they are installed."""

    def action(project: Project, reporter: ConsoleReporter) -> None:
        statuses = project.status()
        if as_json:
            print(json.dumps([_status_json(s) for s in statuses], indent=2))
            return
        rows = [
            [
                s.model.name,
                _source_text(s),
                s.model.license or "-",
                human_size(s.model.size),
                "installed" if s.installed else f"{s.installed_files}/{len(s.model.files)} files",
            ]
            for s in statuses
        ]
        if not rows:
            reporter.info("No models in zoo.lock")
            return
        print_table(["name", "source", "license", "size", "state"], rows, project.settings.no_color)

    _run(ctx, action)


@app.command()
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The model's name in zoo.toml.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one locked model: its source, model info and files."""

    def action(project: Project, reporter: ConsoleReporter) -> None:
        status = project.show(name)
        if as_json:
            print(json.dumps(_status_json(status), indent=2))
            return
        model = status.model
        print(f"name:          {model.name}")
        print(f"source:        {printable(_source_text(status))}")
        for label, value in (
            ("caffemodel", model.caffemodel),
            ("license", model.license),
            ("caffe_commit", model.caffe_commit),
            ("caffe_version", model.caffe_version),
        ):
            if value is not None:
                print(f"{label + ':':<15}{printable(value)}")
        print(f"installed:     {'yes' if status.installed else 'no'}")
        print(f"files:         {len(model.files)} ({human_size(model.size)})")
        for f in model.files:
            kind = "  (binary)" if f.binary else ""
            print(f"  {printable(f.path)}  {f.size} bytes  sha256 {f.sha256[:16]}…{kind}")
            for url in f.urls:
                print(f"      from {printable(url)}")

    _run(ctx, action)


def _status_json(status: ModelStatus) -> dict[str, object]:
    model = status.model
    return {
        "name": model.name,
        "source": model.source_dict(),
        "declared": status.declared,
        "installed": status.installed,
        "caffemodel": model.caffemodel,
        "license": model.license,
        "caffe_commit": model.caffe_commit,
        "caffe_version": model.caffe_version,
        "files": [
            {
                "path": f.path,
                "size": f.size,
                "sha1": f.sha1,
                "sha256": f.sha256,
                "urls": list(f.urls),
                "binary": f.binary,
            }
            for f in model.files
        ],
    }


def _source_text(status: ModelStatus) -> str:
    source = status.model.source_dict()
    if "gist" in source:
        return f"gist:{source['gist']}@{source.get('rev', '?')[:12]}"
    if "github" in source:
        return f"github:{source['github']}/{source['path']}@{source.get('rev', '?')[:12]}"
    return source.get("path", "?")


def _files(count: int) -> str:
    return f"{count} file" + ("" if count == 1 else "s")


def _models(count: int) -> str:
    return f"{count} model" + ("" if count == 1 else "s")


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main() -> None:
    app(prog_name="zoopm")
