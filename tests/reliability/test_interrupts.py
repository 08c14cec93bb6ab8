"""SIGINT and SIGTERM stop zoopm promptly and cleanly, also with downloads queued behind others.

The server sends slowly, so with ZOOPM_JOBS=2 and four binaries two downloads stream while two
wait in the queue when the signal arrives (after a seeded random delay from the first request).
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.reliability._support import (
    Outcome,
    ThrottledFileServer,
    finish,
    has_exited,
    locked_files,
    locked_template,
    models_problems,
    run,
    signal_unreaped,
    spawn,
    store_problems,
)

BINARY_SIZES = {"one": 1 << 20, "two": 1 << 20, "three": 1 << 20, "four": 1 << 20}
SLOW = 256 << 10  # bytes per second and connection: each binary takes about four seconds
GRACE_SECONDS = 2.0
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


@dataclass(frozen=True)
class Bench:
    server: ThrottledFileServer
    template: Path


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    root = tmp_path_factory.mktemp("interrupt-bench")
    server = ThrottledFileServer()
    try:
        template = locked_template(root, server, BINARY_SIZES)
        server.throttle(SLOW)
        yield Bench(server, template)
    finally:
        server.stop()


@dataclass(frozen=True)
class Interrupted:
    outcome: Outcome
    seconds_after_signal: float


def _interrupt(
    bench: Bench, args: list[str], project: Path, home: Path, signum: int, delay: float
) -> Interrupted:
    """Starts zoopm, waits for its first download request plus delay, then sends signum."""
    before = bench.server.requests
    started = time.monotonic()
    process = spawn(args, project=project, home=home, env={"ZOOPM_JOBS": "2"})
    deadline = started + 20
    while bench.server.requests == before and not has_exited(process.pid):
        assert time.monotonic() < deadline, "zoopm never started downloading"
        time.sleep(0.005)
    time.sleep(delay)
    assert not has_exited(process.pid), "zoopm finished before the signal: the server is too fast"
    sent = time.monotonic()
    signal_unreaped(process.pid, signum)
    # A process still running a second past the grace period is killed: the test fails either way.
    outcome = finish(process, args, started, GRACE_SECONDS + 1.0)
    return Interrupted(outcome, started + outcome.seconds - sent)


def _rerun_completes(bench: Bench, project: Path, home: Path) -> None:
    bench.server.throttle(None)
    try:
        rerun = run(["install"], project=project, home=home)
    finally:
        bench.server.throttle(SLOW)
    assert rerun.returncode == 0, rerun.describe()
    assert store_problems(home) == []
    assert models_problems(project, locked_files(project), complete=True) == []


CASES = [(signal.SIGINT, seed) for seed in (1, 2, 3)] + [
    (signal.SIGTERM, seed) for seed in (4, 5, 6)
]


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "seed"), CASES, ids=[f"{s.name}-{n}" for s, n in CASES])
def test_a_signal_during_install_exits_within_2s_with_its_code_and_no_traceback(
    signum: signal.Signals, seed: int, tmp_path: Path, bench: Bench
) -> None:
    project = tmp_path / "proj"
    shutil.copytree(bench.template, project)
    home = tmp_path / "home"

    got = _interrupt(
        bench, ["install"], project, home, signum, random.Random(seed).uniform(0.0, 1.0)
    )

    assert got.seconds_after_signal < GRACE_SECONDS, got.outcome.describe()
    assert got.outcome.returncode == EXIT_CODES[signum], got.outcome.describe()
    assert not got.outcome.has_traceback, got.outcome.describe()
    assert "internal error" not in got.outcome.stderr, got.outcome.describe()
    assert store_problems(home) == []
    _rerun_completes(bench, project, home)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_lock_downloads_binaries_exits_within_2s_with_its_code(
    signum: signal.Signals, tmp_path: Path, bench: Bench
) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    shutil.copy(bench.template / "zoo.toml", project / "zoo.toml")
    home = tmp_path / "home"

    got = _interrupt(bench, ["lock"], project, home, signum, 0.3)

    assert got.seconds_after_signal < GRACE_SECONDS, got.outcome.describe()
    assert got.outcome.returncode == EXIT_CODES[signum], got.outcome.describe()
    assert not got.outcome.has_traceback, got.outcome.describe()
    assert not (project / "zoo.lock").exists()
    assert store_problems(home) == []


def test_a_signal_python_swallows_in_a_callback_still_stops_zoopm(tmp_path: Path) -> None:
    # Seen in CI: SIGTERM landed in a weakref callback importlib runs while a module loads;
    # Python printed "Exception ignored" and the install ran on to exit 0.
    script = tmp_path / "swallowed.py"
    script.write_text(
        "import os, signal, sys, weakref\n"
        "import zoopm.__main__ as entry\n"
        "signal.signal(signal.SIGTERM, entry._on_sigterm)\n"
        "sys.unraisablehook = entry._swallowed\n"
        "class Thing: pass\n"
        "def callback(ref):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    for _ in range(1000): pass\n"
        "try:\n"
        "    thing = Thing(); ref = weakref.ref(thing, callback); del thing\n"
        "    for _ in range(10**7): pass\n"
        "    print('ran on')\n"
        "except entry.Interrupted as stop:\n"
        "    print('stopped', stop.exit_code)\n"
    )

    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )

    assert run.stdout == "stopped 143\n", run.stderr
    assert "Exception ignored" not in run.stderr
