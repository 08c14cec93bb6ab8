"""The zoopm command's frame: global options, and run, which turns one Project call into output
and an exit code (the only typer user, with the command modules beside it)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperGroup

from zoopm import __version__, jsondoc, runner
from zoopm.formats.userconfig import MAX_JOBS
from zoopm.project import Project
from zoopm.runner import Finished, RunOptions
from zoopm.ui import ConsoleReporter

# click's base class of the errors it reports as usage errors (exit 2); typer 0.28 bundles its
# own copy of click, so it is found from an exception typer exports rather than imported.
_ClickException: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)


class _Group(TyperGroup):
    """typer's group, except that with --json on the command line a usage error (an unknown
    option, a missing argument) is a JSON document on stdout too, with the same exit code 2."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        jsondoc.begin()
        argv = list(args) if args is not None else sys.argv[1:]
        if not jsondoc.asked(argv) or not standalone_mode:
            return super().main(argv, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except _ClickException as usage:
            message = usage.format_message()  # type: ignore[attr-defined]
            exit_code: int = usage.exit_code  # type: ignore[attr-defined]
            print(f"error: {message}", file=sys.stderr)
            print(f"hint: {_USAGE_HINT}", file=sys.stderr)
            jsondoc.emit(jsondoc.error(message, _USAGE_HINT, "UsageError", exit_code))
            sys.exit(exit_code)
        sys.exit(code if isinstance(code, int) else 0)


_USAGE_HINT = "run 'zoopm --help' (or 'zoopm COMMAND --help') for the commands and options"

app = typer.Typer(
    name="zoopm",
    cls=_Group,
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
    as_json: bool = False,
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
                json=as_json,
            ),
            action,
        )
    except Finished as finished:
        raise typer.Exit(finished.code) from None


# Every command that prints data takes it; the document's schema is in zoopm/data/schemas/.
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print one JSON document on stdout (docs/json.md), errors too."),
]


def emit(document: jsondoc.Document | None) -> None:
    """Prints a --json command's document (None: the command printed text)."""
    if document is not None:
        jsondoc.emit(document)


def main() -> None:
    app(prog_name="zoopm")
