"""Running the real zoopm CLI in-process and reading what it printed and returned."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from zoopm.cli import app


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def error_line(self) -> str:
        """The 'error: …' line zoopm printed, or '' when there was none."""
        return next((line for line in self.stderr.splitlines() if line.startswith("error: ")), "")


class Zoopm:
    """Invokes `zoopm ARGS…` through the same entry point as the installed command."""

    def __call__(self, *args: str | Path, project: Path | None = None) -> Run:
        argv = [str(a) for a in args]
        if project is not None:
            argv = ["-C", str(project), *argv]
        result = CliRunner().invoke(app, argv, catch_exceptions=False)
        return Run(result.exit_code, result.stdout, result.stderr)


def ok(run: Run) -> Run:
    """run, once it is shown to have succeeded without a traceback."""
    assert run.exit_code == 0, run.stderr
    assert "Traceback" not in run.stderr
    return run


def refused(run: Run, phrase: str, code: int = 1) -> Run:
    """run, once it is shown to have failed as zoopm fails: exit code, an error line holding
    phrase, a hint as the last line, no traceback."""
    assert run.exit_code == code, run.stderr
    assert phrase in run.error_line, run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("hint: "), run.stderr
    assert "Traceback" not in run.stderr
    return run
