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

T = TypeVar("T")


def _click_class(name: str) -> type[Exception]:
    """click's exception class of that name (typer vendors click from 0.20 on, so it is not
    importable by one name across the versions zoopm supports; BadParameter is public)."""
    found = next(c for c in typer.BadParameter.__mro__ if c.__name__ == name)
    assert issubclass(found, Exception)
    return found


_UsageError = _click_class("UsageError")
_ClickException = _click_class("ClickException")


class _Commands(TyperGroup):
    """zoopm's command group: a usage error is two lines, error: and hint:, like every other
    error (typer's default is a box, and a pipe gets box drawing); with --json on the command
    line it is also the error document on stdout, with the same exit code 2."""

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
        try:
            result = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except _ClickException as exc:
            message: str = exc.format_message()  # type: ignore[attr-defined]
            if type(exc).__name__ == "NoArgsIsHelpError":
                print(message)  # plain 'zoopm': the help, as asked for
                result = 0
            else:
                result = getattr(exc, "exit_code", 2)
                ctx = getattr(exc, "ctx", None)
                where = ctx.command_path if ctx is not None else "zoopm"
                what = "commands and options" if " " not in where else "arguments and options"
                hint = f"run '{where} --help' for its {what}"
                print(f"error: {message}", file=sys.stderr)
                if isinstance(exc, _UsageError):
                    print(f"hint: {hint}", file=sys.stderr)
                if jsondoc.asked(argv):
                    jsondoc.emit(jsondoc.error(message, hint, "UsageError", result))
        except typer.Abort:
            print("error: interrupted", file=sys.stderr)
            result = 130
        if not standalone_mode:
            return result
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(
    name="zoopm",
    cls=_Commands,
    help="A package manager for pretrained Caffe models: lock them, verify them, install them.",
    add_completion=True,  # --install-completion and --show-completion: bash, zsh, fish
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Help is plain text: a help string is never read as Rich markup (a '[/PATH]' in one
    # crashed 'add --help'), and a pipe or an 80-column terminal gets no box drawing.
    rich_markup_mode=None,
)


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
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="Print only warnings and errors.")
    ] = False,
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
