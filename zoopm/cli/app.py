"""The zoopm command's frame: global options, and run, which turns one Project call into output
and an exit code (the only typer user, with the command modules beside it)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperGroup

from zoopm import __version__, runner
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
    error (typer's default is a box, and a pipe gets box drawing)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        standalone = kwargs.get("standalone_mode", True)
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except _ClickException as exc:
            message: str = exc.format_message()  # type: ignore[attr-defined]
            if type(exc).__name__ == "NoArgsIsHelpError":
                print(message)  # plain 'zoopm': the help, as asked for
                result = 0
            else:
                print(f"error: {message}", file=sys.stderr)
                if isinstance(exc, _UsageError):
                    ctx = getattr(exc, "ctx", None)
                    where = ctx.command_path if ctx is not None else "zoopm"
                    what = "commands and options" if " " not in where else "arguments and options"
                    print(f"hint: run '{where} --help' for its {what}", file=sys.stderr)
                result = getattr(exc, "exit_code", 2)
        except typer.Abort:
            print("error: interrupted", file=sys.stderr)
            result = 130
        if not standalone:
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
