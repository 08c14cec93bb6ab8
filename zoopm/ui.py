"""Terminal output: progress bars, tables and error lines (the only rich user, imported lazily)."""

from __future__ import annotations

import sys
import threading
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from zoopm.errors import ZoopmError
from zoopm.reporting import NullProgress, Progress

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress

    from zoopm.operations.install import InstallResult


# Characters that reorder or hide text on a terminal (bidi overrides and isolates).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str, keep: str = "") -> str:
    """text with every control character shown as an escape (ESC as \\x1b), except those in keep.

    Readmes and indexes are someone else's text: printed raw, an escape sequence in a license
    could clear the screen, recolour the terminal, or hide what zoopm says next.
    """
    if text.isprintable():
        return text
    return "".join(
        char
        if char in keep or not _is_control(char)
        else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _BIDI_CONTROLS


def relative(path: Path) -> str:
    """path as the user would type it from here: relative to the working directory if inside."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def nothing_to_do_line(kept: int, models_dir: Path) -> str:
    """What a no-op install says (also when answered from its witness, before the CLI loads)."""
    return f"Nothing to do: {files_text(kept)} already in place in {relative(models_dir)}/"


def install_summary(result: InstallResult) -> str:
    """The one line an install ends with."""
    plan = result.plan
    if plan.nothing_to_do:
        return nothing_to_do_line(result.kept, plan.models_dir)
    parts = [f"placed {files_text(result.placed)} in {relative(plan.models_dir)}/"]
    if plan.fetch:
        blobs = len(plan.fetch_blobs)
        noun = "blob" if blobs == 1 else "blobs"
        parts.append(f"{blobs} new {noun} in the store ({human_size(plan.fetch_bytes)})")
    if result.removed:
        parts.append(f"removed {result.removed}")
    if result.kept:
        parts.append(f"{result.kept} unchanged")
    text = ", ".join(parts)
    return text[0].upper() + text[1:]


def files_text(count: int) -> str:
    return f"{count} file" + ("" if count == 1 else "s")


def models_text(count: int) -> str:
    return f"{count} model" + ("" if count == 1 else "s")


def human_size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class ConsoleReporter:
    """Writes warnings and notes to stderr and draws download bars when stderr is a terminal;
    keeps the warnings too, for a --json document."""

    def __init__(
        self,
        *,
        quiet: bool = False,
        verbose: bool = False,
        progress: bool = True,
        no_color: bool = False,
        stream: IO[str] | None = None,
    ) -> None:
        self.quiet = quiet
        self.verbose = verbose
        self.stream = stream if stream is not None else sys.stderr
        self.no_color = no_color
        self._bars = progress and not quiet and self.stream.isatty()
        self._progress: RichProgress | None = None
        self._lock = threading.Lock()
        self.warnings: list[str] = []

    def warning(self, message: str) -> None:
        self.warnings.append(message)
        self._line(f"warning: {message}")

    def info(self, message: str) -> None:
        if not self.quiet:
            self._line(message)

    def debug(self, message: str) -> None:
        if self.verbose:
            self._line(message)

    def _line(self, text: str) -> None:
        text = printable(text, keep="\n\t")
        with self._lock:
            if self._progress is not None:
                self._progress.console.print(text, markup=False, highlight=False, emoji=False)
            else:
                print(text, file=self.stream, flush=True)

    def transfer(self, label: str, total: int | None) -> Progress:
        if not self._bars:
            self.debug(label)
            return NullProgress()
        with self._lock:
            if self._progress is None:
                self._progress = _make_progress(self.stream, self.no_color)
                self._progress.start()
            task = self._progress.add_task(printable(label), total=total)
            return _BarProgress(self._progress, task)

    def close(self) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None


class _BarProgress:
    def __init__(self, progress: RichProgress, task: Any) -> None:
        self._progress = progress
        self._task = task

    def advance(self, nbytes: int) -> None:
        self._progress.advance(self._task, nbytes)

    def restart(self) -> None:
        self._progress.reset(self._task)

    def close(self) -> None:
        self._progress.remove_task(self._task)


def _make_progress(stream: IO[str], no_color: bool) -> RichProgress:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = Console(file=stream, no_color=no_color)
    return Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def error_lines(error: ZoopmError) -> str:
    text = f"error: {_one_line(error.message)}"
    if error.hint:
        text += f"\nhint: {_one_line(error.hint)}"
    return text


def _one_line(text: str) -> str:
    return printable(" ".join(text.split()))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], no_color: bool) -> None:
    """Prints rows under headers; every cell is literal text, never rich markup or emoji codes.

    Cells carry licenses, descriptions and names from readmes and indexes: read as markup,
    'BSD [/see LICENSE]' is an error and '[red]x[/red]' loses its brackets. In a terminal the
    table fits its width: every column but the last keeps its text on one line (shortened
    with an ellipsis when it must be), and the last wraps between words. Into a pipe nothing is
    wrapped or shortened: one line per row, columns padded, for grep and cut.
    """
    from rich.cells import cell_len
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    head = [printable(header) for header in headers]
    body = [[printable(cell) for cell in row] for row in rows]
    console = Console(no_color=no_color, highlight=False, emoji=False, markup=False)
    # Every column but the last gets its natural width while the last keeps 30 cells; past
    # that, the widest middle column (a source) gives way, down to 12 cells, shortened with an
    # ellipsis. The names people type never do: a terminal too narrow for them and the last
    # column gets the lines a pipe gets, long but whole.
    gaps = 2 * (len(head) - 1)
    widths = [max(cell_len(row[i]) for row in [head, *body]) for i in range(len(head) - 1)]
    room = console.width - gaps - min(30, max(cell_len(row[-1]) for row in [head, *body]))
    while widths and sum(widths) > room:
        middle = [i for i in range(1, len(widths)) if widths[i] > 12]
        if not middle:
            break
        widest = max(middle, key=lambda i: widths[i])
        widths[widest] -= 1
    if not console.is_terminal or sum(widths) > room:
        natural = [max(cell_len(row[i]) for row in [head, *body]) for i in range(len(head))]
        for row in [head, *body]:
            padded = (
                cell + " " * (width - cell_len(cell))
                for cell, width in zip(row, natural, strict=True)
            )
            print("  ".join(padded).rstrip())
        return
    table = Table(box=None, pad_edge=False, show_edge=False)
    for index, header in enumerate(head):
        last = index == len(head) - 1
        table.add_column(
            Text(header),
            no_wrap=not last,
            overflow="fold" if last else "ellipsis",
            width=None if last else widths[index],
        )
    for row in body:
        table.add_row(*(Text(cell) for cell in row))
    with console.capture() as captured:
        console.print(table)
    for line in captured.get().splitlines():
        print(line.rstrip())
