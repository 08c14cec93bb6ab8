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

import os
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
    # The last full check's witnessed answer, if not one of its inputs changed since; else the
    # full check itself (which writes a new witness when it finds nothing to do).
    found = _recalled(start) or _checked(start)
    if found is None:
        return None
    if not quiet:
        from zoopm.ui import nothing_to_do_line, printable

        kept, models_dir = found
        print(printable(nothing_to_do_line(kept, models_dir), keep="\t"), file=sys.stderr)
    return 0


def _checked(start: Path) -> tuple[int, Path] | None:
    try:
        from zoopm.project import Project

        plan = Project.discover(start).noop_plan()
    except Exception:
        # The full CLI reports every problem with its message and hint; this path only skips.
        return None
    return (len(plan.keep), plan.models_dir) if plan is not None else None


def _recalled(start: Path) -> tuple[int, Path] | None:
    """The witnessed answer of the last no-op install of start's project, if it still holds."""
    try:
        from zoopm.locations import find_project_root, home_dir
        from zoopm.storage.freshness import context, env_digest, recall, witness_path

        root = find_project_root(start)
        if root is None:
            return None
        env = os.environ
        answer = recall(witness_path(home_dir(env), root), context(root, env_digest(env)))
        if answer is None:
            return None
        kept, models_dir = answer.get("kept"), answer.get("models_dir")
        if isinstance(kept, int) and isinstance(models_dir, str):
            return kept, Path(models_dir)
    except Exception:
        return None
    return None


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
