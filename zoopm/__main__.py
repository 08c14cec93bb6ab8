"""`python -m zoopm` and the zoopm command: signals are handled before anything heavy loads."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from types import FrameType
from typing import Any

from zoopm.errors import INTERRUPTED_HINT, Interrupted

EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class _Stop:
    """Whether a signal has begun stopping this process."""

    begun = False


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    _stop(EXIT_SIGINT, "interrupted")


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _stop(EXIT_SIGTERM, "terminated")


def _stop(code: int, what: str) -> None:
    if _Stop.begun:
        # Noted and let be: raised again in the middle of the cleanup the first signal
        # started, it would cut it short (a temp file left, a traceback, no JSON document).
        return
    from zoopm import jsondoc

    if jsondoc.defer_signal(code, what):
        return  # the JSON document is being written: the signal acts once it is whole
    _Stop.begun = True
    raise Interrupted(code, what)


def _swallowed(unraisable: Any) -> None:
    """Python ignores an exception raised in a callback (a weakref's, one importlib runs while
    a module loads): a signal landing there would be lost and zoopm would run on. It is sent
    again, to land in the program's own code."""
    failure = getattr(unraisable, "exc_value", None)
    if isinstance(failure, Interrupted):
        import threading

        _Stop.begun = False
        again = signal.SIGINT if failure.exit_code == EXIT_SIGINT else signal.SIGTERM
        # A moment later, from another thread: sent from here, it would be handled here, inside
        # the hook, and ignored again.
        resend = threading.Timer(0.05, os.kill, args=(os.getpid(), again))
        resend.daemon = True
        resend.start()
        return
    _HOOK(unraisable)


_HOOK = sys.unraisablehook


def _leave(code: int) -> None:
    """Ends the process after a signal began stopping it: past this point Python's own shutdown
    gives the signals back their default action, and one more would kill it (exit -2)."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    os._exit(code)


def main() -> None:
    # Installed first: Ctrl-C while typer and rich are still importing ends as cleanly as later.
    signal.signal(signal.SIGINT, _on_sigint)
    signal.signal(signal.SIGTERM, _on_sigterm)
    sys.unraisablehook = _swallowed
    try:
        from zoopm.fastpath import run_install

        code = run_install(sys.argv[1:])
        if code is not None:
            sys.exit(code)
        from zoopm.cli import main as cli_main

        cli_main()
    except Interrupted as stop:
        _Stop.begun = True
        print(f"error: {stop.what}", file=sys.stderr)
        print(f"hint: {INTERRUPTED_HINT}", file=sys.stderr)
        from zoopm import jsondoc

        if jsondoc.asked(sys.argv[1:]):
            jsondoc.emit(jsondoc.error(stop.what, INTERRUPTED_HINT, "Interrupted", stop.exit_code))
        _leave(stop.exit_code)
    except SystemExit as done:
        if _Stop.begun:
            _leave(done.code if isinstance(done.code, int) else 1)
        raise


if __name__ == "__main__":
    main()
