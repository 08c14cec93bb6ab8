"""The zoopm command's frame: global options, and run, which turns one Project call into output
and an exit code (the only typer user, with the command modules beside it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from zoopm import __version__, runner
from zoopm.formats.userconfig import MAX_JOBS
from zoopm.project import Project
from zoopm.runner import Finished, RunOptions
from zoopm.ui import ConsoleReporter

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
    """Runs one Project operation (zoopm.runner); a failure has printed and exits."""
    options: Options = ctx.obj
    try:
        return runner.run(
            RunOptions(
                options.project,
                options.quiet,
                options.verbose,
                options.progress,
                discover=discover,
                offline=offline,
                jobs=jobs,
            ),
            action,
        )
    except Finished as finished:
        raise typer.Exit(finished.code) from None


def main() -> None:
    app(prog_name="zoopm")
