"""Benchmark: 8 binaries from a server throttled per connection, ZOOPM_JOBS=8 against ZOOPM_JOBS=1
(goal: jobs 8 at least 4x faster).

Run from the repository root with the project and its test extra installed:

    .venv/bin/python benchmarks/install_parallel.py              # 8 x 4 MiB at 4 MiB/s each
    .venv/bin/python benchmarks/install_parallel.py --rounds 5

The tests' file server runs in its own process and sends every answer at most --rate MiB/s
(per connection, as a far mirror or a per-client bandwidth limit would), so one download at
a time takes about 8 x size / rate. Each zoopm run installs into a fresh checkout (zoo.toml +
zoo.lock) with an empty ZOOPM_HOME; the runs with 1 and 8 jobs take turns, and the figure is
the ratio of their medians.
"""

from __future__ import annotations

import argparse
import shutil
import statistics

from _bench import (
    file_server,
    listed,
    make_binary,
    measure,
    remove_tree,
    workdir,
    write_model,
    write_project,
    zoopm,
    zoopm_env,
)

GOAL = 4.0
COUNT = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=4, help="size of each binary (default 4)")
    parser.add_argument("--rate", type=float, default=4.0, help="MiB/s per connection (4)")
    parser.add_argument("--rounds", type=int, default=3, help="counted rounds (default 3)")
    args = parser.parse_args()
    with workdir() as work:
        binaries = [work / f"net{i}.caffemodel" for i in range(COUNT)]
        sha1s = [make_binary(path, args.mib, seed=i) for i, path in enumerate(binaries)]
        with file_server(binaries, args.rate * (1 << 20)) as base:
            models = {
                f"net{i}": write_model(
                    work / "src" / f"net{i}", f"net{i}", f"{base}/{path.name}", sha1
                )
                for i, (path, sha1) in enumerate(zip(binaries, sha1s, strict=True))
            }
            template = write_project(work / "template", models)
            lock_env = zoopm_env(work / "lock-home") | {"ZOOPM_JOBS": str(COUNT)}
            measure(zoopm("-C", str(template), "lock"), lock_env)
            remove_tree(work / "lock-home")
            runs = 0

            def install(jobs: int) -> float:
                nonlocal runs
                runs += 1
                project, home = work / f"project-{runs}", work / f"home-{runs}"
                project.mkdir()
                for name in ("zoo.toml", "zoo.lock"):
                    shutil.copy(template / name, project / name)
                env = zoopm_env(home) | {"ZOOPM_JOBS": str(jobs)}
                seconds = measure(zoopm("-C", str(project), "install"), env).seconds
                placed = list((project / "models").glob("*/*.caffemodel"))
                assert len(placed) == COUNT, placed
                assert all(p.stat().st_size == args.mib << 20 for p in placed)
                remove_tree(project)
                remove_tree(home)
                return seconds

            serial: list[float] = []
            parallel: list[float] = []
            for index in range(args.rounds):
                order = (1, COUNT) if index % 2 == 0 else (COUNT, 1)
                for jobs in order:
                    (serial if jobs == 1 else parallel).append(install(jobs))

    one, eight = statistics.median(serial), statistics.median(parallel)
    speedup = one / eight
    print(
        f"{COUNT} binaries of {args.mib} MiB at {args.rate:g} MiB/s per connection; "
        f"medians of {args.rounds} rounds"
    )
    print(f"ZOOPM_JOBS=1: {one:.2f} s  ({listed(serial)})")
    print(f"ZOOPM_JOBS={COUNT}: {eight:.2f} s  ({listed(parallel)})")
    verdict = "MET" if speedup >= GOAL else "NOT MET"
    print(f"speed-up jobs {COUNT} / jobs 1: {speedup:.2f}x (goal >= {GOAL:g}x): {verdict}")


if __name__ == "__main__":
    main()
