"""Measuring how much memory a zoopm process takes at its peak."""

from __future__ import annotations

import subprocess
import sys

Completed = subprocess.CompletedProcess[str]


def peak_rss_mib(
    args: list[str], env: dict[str, str], timeout: float = 300
) -> tuple[float, Completed]:
    """Runs a child python with args and returns its own peak RSS (not any earlier child's)."""
    # A fresh parent per measurement: RUSAGE_CHILDREN is the maximum over every child ever
    # waited for, so measuring from pytest itself would report the largest earlier child.
    probe = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:])\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "sys.stderr.write(f'\\nPEAK_RSS_KIB={peak}\\n')\n"
        "sys.exit(done.returncode)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe, sys.executable, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    line = next(x for x in run.stderr.splitlines() if x.startswith("PEAK_RSS_KIB="))
    return int(line.split("=", 1)[1]) / 1024, run
