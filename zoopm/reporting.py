"""Progress events: the Protocol through which the library tells a front end what it is doing."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """One transfer's progress; the library calls advance() as bytes arrive."""

    def advance(self, nbytes: int) -> None: ...

    def restart(self) -> None: ...

    def close(self) -> None: ...


class Reporter(Protocol):
    """Receives what the library does; the library never prints."""

    def warning(self, message: str) -> None: ...

    def info(self, message: str) -> None: ...

    def transfer(self, label: str, total: int | None) -> Progress:
        """A progress bar for total bytes; label says what is done ("downloading tiny/x")."""
        ...


def detail(reporter: Reporter, message: str) -> None:
    """A line only -v shows (where each file came from): said through the reporter's optional
    debug(message), which reporters written before it need not have."""
    debug = getattr(reporter, "debug", None)
    if callable(debug):
        debug(message)


class NullProgress:
    """A transfer nobody watches."""

    def advance(self, nbytes: int) -> None:
        pass

    def restart(self) -> None:
        pass

    def close(self) -> None:
        pass


class NullReporter:
    """Discards everything; the default for the Python API."""

    def warning(self, message: str) -> None:
        pass

    def info(self, message: str) -> None:
        pass

    def debug(self, message: str) -> None:
        pass

    def transfer(self, label: str, total: int | None) -> Progress:
        return NullProgress()


class RecordingReporter(NullReporter):
    """Keeps warnings and notes in memory, for API users and tests that want to read them."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.infos: list[str] = []

    def warning(self, message: str) -> None:
        self.warnings.append(message)

    def info(self, message: str) -> None:
        self.infos.append(message)
