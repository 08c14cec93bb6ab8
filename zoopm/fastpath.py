"""`zoopm install`, run before the command-line framework loads.

install is the command a project's scripts run most (before every training run, in every CI
job, in every fresh checkout), and loading typer costs more than a no-op install's own work.
So __main__ asks here first. For `install` with the global options and install's own
--frozen/--locked/--offline/--json only:

- if the witness of the last no-op (zoopm.storage.freshness) still holds, its line is printed
  without loading anything else;
- otherwise the install runs through zoopm.runner, the very runner every CLI command uses,
  with the same messages, errors and exit codes.

Anything else (another command or flag, --help, a malformed option) returns None, and the full
CLI parses the command line from the start.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from zoopm.project import Project

# Global options (-C takes a value) and install's own flags that the runner honours as typer
# would hand them over.
_GLOBAL_FLAGS = {"-q", "--quiet", "-v", "--verbose", "--no-progress"}
_INSTALL_FLAGS = {"--frozen", "--locked", "--offline", "--json"}


class _Install(NamedTuple):
    start: Path | None
    flags: frozenset[str]

    def has(self, *names: str) -> bool:
        return any(name in self.flags for name in names)


def run_install(argv: list[str]) -> int | None:
    """The exit code of the install argv asks for, or None if argv is for the full CLI."""
    asked = _parse(argv)
    if asked is None:
        return None
    quiet = asked.has("-q", "--quiet")
    as_json = asked.has("--json")
    start = asked.start if asked.start is not None else Path.cwd()
    # A -C that is not a directory is the runner's to refuse, never a parent project's witness.
    found = _recalled(start) if start.is_dir() else None
    if found is not None:
        # The last full check found nothing to do, and not one of its inputs changed since.
        if as_json:
            from zoopm import jsondoc

            kept, models_dir = found
            jsondoc.emit(jsondoc.install(models_dir=models_dir, placed=0, removed=0, kept=kept))
        elif not quiet:
            from zoopm.ui import nothing_to_do_line, printable

            kept, models_dir = found
            print(printable(nothing_to_do_line(kept, models_dir), keep="\t"), file=sys.stderr)
        return 0
    from zoopm import jsondoc
    from zoopm.runner import Finished, RunOptions, run
    from zoopm.ui import ConsoleReporter, install_summary

    options = RunOptions(
        asked.start,
        quiet=quiet,
        verbose=asked.has("-v", "--verbose"),
        progress=not asked.has("--no-progress"),
        offline=asked.has("--offline"),
        json=as_json,
    )
    frozen = asked.has("--frozen", "--locked")

    def action(project: Project, reporter: ConsoleReporter) -> jsondoc.Document | None:
        result = project.install(frozen=frozen)
        if as_json:
            return jsondoc.install_result(result, reporter.warnings)
        reporter.info(install_summary(result))
        return None

    try:
        document = run(options, action)
    except Finished as finished:
        return finished.code
    if document is not None:
        jsondoc.emit(document)
    return 0


def _recalled(start: Path) -> tuple[int, Path] | None:
    """The witnessed answer of the last no-op install of start's project, if it still holds."""
    try:
        from zoopm.locations import find_project_root, home_dir
        from zoopm.storage.freshness import context, env_digest, recall, witness_path

        root = find_project_root(start)
        if root is None:
            return None
        env = os.environ
        answer = recall(witness_path(home_dir(env), root), root, context(root, env_digest(env)))
        if answer is None:
            return None
        kept, models_dir = answer.get("kept"), answer.get("models_dir")
        if isinstance(kept, int) and isinstance(models_dir, str):
            return kept, Path(models_dir)
    except Exception:
        return None
    return None


def _parse(argv: list[str]) -> _Install | None:
    start: Path | None = None
    flags: set[str] = set()
    words = iter(argv)
    for word in words:
        if word in ("-C", "--project"):
            value = next(words, None)
            if value is None:
                return None
            start = Path(value)
        elif word.startswith("--project="):
            start = Path(word.partition("=")[2])
        elif word in _GLOBAL_FLAGS:
            flags.add(word)
        elif word == "install":
            rest = list(words)
            if all(flag in _INSTALL_FLAGS for flag in rest):
                return _Install(start, frozenset(flags | set(rest)))
            return None
        else:
            return None
    return None
