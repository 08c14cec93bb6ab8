"""`python -m zoopm` and the zoopm command: signals are handled before anything heavy loads."""

from __future__ import annotations

import signal
import sys
from types import FrameType

from zoopm.errors import INTERRUPTED_HINT, Interrupted

EXIT_SIGINT = 130
EXIT_SIGTERM = 143


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(EXIT_SIGINT, "interrupted")


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(EXIT_SIGTERM, "terminated")


def main() -> None:
    # Installed first: Ctrl-C while typer and rich are still importing ends as cleanly as later.
    signal.signal(signal.SIGINT, _on_sigint)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        from zoopm.fastpath import run_install

        code = run_install(sys.argv[1:])
        if code is not None:
            sys.exit(code)
        from zoopm.cli import main as cli_main

        cli_main()
    except Interrupted as stop:
        print(f"error: {stop.what}", file=sys.stderr)
        print(f"hint: {INTERRUPTED_HINT}", file=sys.stderr)
        from zoopm import jsondoc

        if jsondoc.asked(sys.argv[1:]):
            jsondoc.emit(jsondoc.error(stop.what, INTERRUPTED_HINT, "Interrupted", stop.exit_code))
        sys.exit(stop.exit_code)


if __name__ == "__main__":
    main()
