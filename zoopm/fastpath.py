"""`zoopm install` with nothing to do, answered before the command-line framework loads.

A no-op install is the command a project's scripts run most (before every training run, in
every CI job), and loading typer and rich costs several times what the check itself does. So
__main__ asks here first: for `install` with only flags that cannot change a no-op's outcome,
the same read-only plan Project.install makes without its lock is made, and if it has nothing
to do its one line is printed. Anything else (another command, another flag, any error, any
work to do) returns None and the full CLI runs from the start, so every message and exit code
stays the CLI's own.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Global options that a no-op install honours the same way; -C takes a value.
_FLAGS = {"-q": "quiet", "--quiet": "quiet", "-v": "", "--verbose": "", "--no-progress": ""}
# install's own flags that cannot change what a no-op does: --frozen only adds a check that a
# no-op plan (zoo.lock matching zoo.toml) has passed; --offline forbids requests it makes none of.
_INSTALL_FLAGS = {"--frozen", "--locked", "--offline"}


def noop_install(argv: list[str]) -> int | None:
    """0 if argv is an install that had nothing to do (and said so); None to run the full CLI."""
    parsed = _parse(argv)
    if parsed is None:
        return None
    start, quiet = parsed
    try:
        from zoopm.project import Project
        from zoopm.ui import nothing_to_do_line, printable

        plan = Project.discover(start).noop_plan()
    except Exception:
        # The full CLI reports every problem with its message and hint; this path only skips.
        return None
    if plan is None:
        return None
    if not quiet:
        line = nothing_to_do_line(len(plan.keep), plan.models_dir)
        print(printable(line, keep="\t"), file=sys.stderr, flush=True)
    return 0


def _parse(argv: list[str]) -> tuple[Path, bool] | None:
    start = Path.cwd()
    quiet = False
    words = iter(argv)
    for word in words:
        if word in ("-C", "--project"):
            value = next(words, None)
            if value is None:
                return None
            start = start / value
        elif word.startswith("--project="):
            start = start / word.partition("=")[2]
        elif word in _FLAGS:
            quiet = quiet or _FLAGS[word] == "quiet"
        elif word == "install":
            rest = list(words)
            return (start, quiet) if all(flag in _INSTALL_FLAGS for flag in rest) else None
        else:
            return None
    return None
