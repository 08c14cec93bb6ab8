"""Benchmark: a no-op `zoopm install` of 5 locked, installed models (speed goal: ≤ 0.12 s).

    .venv/bin/python benchmarks/install_noop.py

Two no-ops are timed: the usual one, answered from the witness the previous no-op wrote
(zoopm.storage.freshness), and the full check, which parses zoo.toml, zoo.lock and the record
(the witness is removed before each such run). The baseline, run in turn with them, is a bare
interpreter (`python -c pass`, same site-packages), which no Python program starts faster than:
the ratios say how much of a no-op install is zoopm's own. All are medians of --rounds runs.
"""

from __future__ import annotations

import argparse
import sys
import time

from _bench import (
    alternate,
    file_server,
    make_binary,
    measure,
    workdir,
    write_model,
    write_project,
    zoopm,
    zoopm_env,
)

from zoopm.storage import freshness

GOAL_SECONDS = 0.12


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    with workdir() as work:
        binaries = [work / f"m{i}.caffemodel" for i in range(5)]
        sums = [make_binary(path, 1, seed=i) for i, path in enumerate(binaries)]
        with file_server(binaries) as base:
            models = {
                f"m{i}": write_model(work / "src" / f"m{i}", f"m{i}", f"{base}/m{i}.caffemodel", s)
                for i, s in enumerate(sums)
            }
            project = write_project(work / "project", models)
            env = zoopm_env(work / "home")
            measure(zoopm("-C", str(project), "install"), env)
        # The server is gone: a no-op must not need it. Files changed in the last 2 s get no
        # witness (they could still be changing unseen), so wait, then let one no-op write it.
        time.sleep(freshness.RACY_NS / 1e9 + 0.5)
        noop_argv = zoopm("-C", str(project), "install", "--frozen")
        measure(noop_argv, env)
        witness = freshness.witness_path(work / "home", project)
        assert witness.is_file(), "the no-op wrote no witness"
        witness_bytes = witness.read_bytes()
        bare_argv = [sys.executable, "-c", "pass"]

        def full_check() -> float:
            witness.unlink()
            seconds = measure(noop_argv, env).seconds
            witness.write_bytes(witness_bytes)  # the same witness again for the next round
            return seconds

        noop, bare = alternate(
            args.rounds,
            lambda: measure(noop_argv, env).seconds,
            lambda: measure(bare_argv, env).seconds,
        )
        full, bare_again = alternate(
            args.rounds, full_check, lambda: measure(bare_argv, env).seconds
        )
    print("no-op install of 5 models, median of", args.rounds)
    print(f"  zoopm install --frozen (witness):    {noop:.3f} s")
    print(f"  zoopm install --frozen (full check): {full:.3f} s")
    print(f"  bare interpreter:                    {bare:.3f} s, {bare_again:.3f} s")
    print(f"  ratio witness / bare interpreter:    {noop / bare:.2f}")
    print(f"  ratio full check / bare interpreter: {full / bare_again:.2f}")
    verdict = "MET" if noop <= GOAL_SECONDS else "NOT MET"
    print(f"goal ≤ {GOAL_SECONDS} s: {verdict} ({noop:.3f} s)")


if __name__ == "__main__":
    main()
