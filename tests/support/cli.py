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
