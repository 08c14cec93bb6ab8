"""The zoopm command's frame: global options, and run, which turns one Project call into output
and an exit code (the only typer user, with the command modules beside it)."""

from __future__ import annotations

import dataclasses
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
from zoopm.formats.userconfig import MAX_JOBS
from zoopm.project import Project
from zoopm.settings import Settings
from zoopm.ui import ConsoleReporter, error_lines, human_size

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


# The same meaning as ZOOPM_JOBS, which it overrides; typer turns a bad value into a usage error.
JobsOption = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        "-j",
        min=1,
        max=MAX_JOBS,
        metavar="N",
        help=f"Parallel downloads, 1 to {MAX_JOBS} (default: ZOOPM_JOBS, config.toml, or 4).",
        show_default=False,
    ),
]


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


def run(
    ctx: typer.Context,
    action: Callable[[Project, ConsoleReporter], T],
    *,
    discover: bool = True,
    offline: bool = False,
    jobs: int | None = None,
) -> T:
    """Runs one Project operation; any ZoopmError becomes two lines and an exit code."""
    options: Options = ctx.obj
    reporter: ConsoleReporter | None = None
    project: Project | None = None
    try:
        settings = Settings.from_env()
        if offline:
            settings = dataclasses.replace(settings, offline=True)
        if jobs is not None:
            settings = dataclasses.replace(settings, jobs=jobs)
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
        what, hint = stop.what if stop else "interrupted", INTERRUPTED_HINT
        kept, kept_bytes = project.store.kept_downloads() if project is not None else (0, 0)
        if kept:
            what += f"; kept {human_size(kept_bytes)} of {kept} download" + "s" * (kept > 1)
            what, hint = what + " for the next run", "run the command again to resume"
        print(f"error: {what}", file=sys.stderr)
        print(f"hint: {hint}", file=sys.stderr)
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


def files_text(count: int) -> str:
    return f"{count} file" + ("" if count == 1 else "s")


def models_text(count: int) -> str:
    return f"{count} model" + ("" if count == 1 else "s")


def main() -> None:
    app(prog_name="zoopm")
