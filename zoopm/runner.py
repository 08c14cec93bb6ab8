"""One Project operation run for the command line: settings, reporter and project made, and
every failure turned into its lines on stderr (and, with --json, its document on stdout) and an
exit code.

No typer here: `zoopm install` runs through this before typer loads (zoopm/fastpath.py), every
other command through cli/app.py, so both fail alike.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from zoopm import jsondoc
from zoopm.errors import (
    EXIT_FAILURE,
    INTERRUPTED_HINT,
    Interrupted,
    UsageError,
    ZoopmError,
    from_os_error,
)
from zoopm.project import Project
from zoopm.settings import Settings
from zoopm.ui import ConsoleReporter, error_lines, human_size

T = TypeVar("T")


EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell shows for a reader gone early


@dataclass(frozen=True)
class RunOptions:
    """The global options, and what the command adds to the settings."""

    start: Path | None = None  # -C DIR; the working directory if None
    quiet: bool = False
    verbose: bool = False
    progress: bool = True
    # init creates a project, so it must not climb to a zoo.toml in a parent directory.
    discover: bool = True
    offline: bool = False
    jobs: int | None = None
    # --json: no bars; a failure is also a JSON document on stdout (docs/json.md).
    json: bool = False


class Finished(Exception):
    """The operation failed and said so on stderr; the process exits with code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def run(options: RunOptions, action: Callable[[Project, ConsoleReporter], T]) -> T:
    """action's result; any failure prints its error and hint and raises Finished."""
    reporter: ConsoleReporter | None = None
    project: Project | None = None
    try:
        environment = dict(os.environ)
        if options.jobs is not None:
            environment.pop("ZOOPM_JOBS", None)  # --jobs wins, even over a malformed value
        settings = Settings.from_env(environment)
        if options.offline:
            settings = dataclasses.replace(settings, offline=True)
        if options.jobs is not None:
            settings = dataclasses.replace(settings, jobs=options.jobs)
        reporter = ConsoleReporter(
            quiet=options.quiet,
            verbose=options.verbose,
            progress=options.progress and not options.json,
            no_color=settings.no_color,
        )
        start = options.start if options.start is not None else Path.cwd()
        if options.start is not None and options.discover and not start.is_dir():
            # Looking for zoo.toml above a directory that is not there would find the project
            # around the working directory: a typo in -C would act on another project.
            raise UsageError(
                f"-C {options.start}: no such directory",
                hint="give the directory of a project (or of one to create, for 'zoopm init')",
            )
        if options.discover:
            project = Project.discover(start, settings, reporter)
        else:
            project = Project(start, settings, reporter, cwd=start)
        with project:
            return action(project, reporter)
    except ZoopmError as error:
        _fail(reporter, error, options.json)
    except BrokenPipeError:
        # stdout was closed early ('zoopm search x | head -1'): nothing to say to anyone. Its
        # buffered rest goes nowhere, and the exit code is a SIGPIPE's, as git and ls give.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise Finished(EXIT_BROKEN_PIPE) from None
    except OSError as exc:
        # The library wraps the OS errors it expects; any other is still the user's to fix.
        _fail(reporter, from_os_error(exc), options.json)
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
        code = stop.exit_code if stop else 130
        print(f"error: {what}", file=sys.stderr)
        print(f"hint: {hint}", file=sys.stderr)
        if options.json:
            jsondoc.emit(jsondoc.error(what, hint, "Interrupted", code))
        raise Finished(code) from None
    except Finished:
        raise
    except Exception as exc:
        if options.verbose:
            traceback.print_exc()
        what = f"internal error: {type(exc).__name__}: {exc}"
        hint = "this is a bug in zoopm; run with -v for the traceback and report it"
        print(f"error: {what}", file=sys.stderr)
        print(f"hint: {hint}", file=sys.stderr)
        if options.json:
            jsondoc.emit(jsondoc.error(what, hint, "InternalError", EXIT_FAILURE))
        raise Finished(EXIT_FAILURE) from None
    finally:
        if reporter is not None:
            reporter.close()
    raise AssertionError("unreachable")


def _fail(reporter: ConsoleReporter | None, error: ZoopmError, as_json: bool) -> None:
    if reporter is not None:
        reporter.close()
    print(error_lines(error), file=sys.stderr)
    if as_json:
        jsondoc.emit(jsondoc.zoopm_error(error))
    raise Finished(error.exit_code) from None
