"""What the terminal shows: error lines and progress bars."""

from __future__ import annotations

import io

from zoopm.errors import IntegrityError
from zoopm.ui import ConsoleReporter, error_lines, human_size


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_an_error_is_two_lines_message_then_hint() -> None:
    text = error_lines(IntegrityError("x.caffemodel: sha1 mismatch:\n expected a, got b"))

    assert text == (
        "error: x.caffemodel: sha1 mismatch: expected a, got b\n"
        "hint: the file changed or the download is corrupt; nothing was installed"
    )


def test_a_terminal_gets_a_progress_bar_with_the_file_name() -> None:
    terminal = FakeTerminal()
    reporter = ConsoleReporter(stream=terminal)

    progress = reporter.transfer("tiny/tiny_net.caffemodel", 4096)
    progress.advance(2048)
    progress.close()
    reporter.close()

    assert "tiny/tiny_net.caffemodel" in terminal.getvalue()


def test_a_pipe_gets_no_progress_bar() -> None:
    pipe = io.StringIO()
    reporter = ConsoleReporter(stream=pipe)

    reporter.transfer("tiny/tiny_net.caffemodel", 4096).advance(4096)
    reporter.close()

    assert pipe.getvalue() == ""


def test_sizes_read_as_binary_units() -> None:
    assert [human_size(n) for n in (0, 1023, 1024, 53_533_754)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "51.1 MiB",
    ]
