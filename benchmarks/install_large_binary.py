"""Benchmark: peak memory installing a 1 GiB binary (goal: at most 100 MiB), and its time against
`curl -o` + `sha1sum`.

Run from the repository root with the project and its test extra installed:

    .venv/bin/python benchmarks/install_large_binary.py            # 1 GiB, 3 rounds
    .venv/bin/python benchmarks/install_large_binary.py --mib 256  # smaller

The file server runs in its own process, so only zoopm's memory is measured (the peak resident
set of the zoopm process, from wait4). zoo.lock is present and the store empty: each round
installs into a fresh checkout with a fresh ZOOPM_HOME. The baseline, run in turn with zoopm on
the same server, is `curl -sf -o FILE URL`, then `sha1sum FILE`; the time ratio is of medians.
"""

from __future__ import annotations

import argparse
import statistics

from _bench import (
    cold_install,
    curl_and_sha1sum,
    remove_tree,
    served_big_binary,
    workdir,
)

LIMIT_MIB = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="binary size in MiB (default 1024)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    args = parser.parse_args()
    seconds: list[float] = []
    peaks: list[float] = []
    baselines: list[float] = []
    with workdir() as work, served_big_binary(work, args.mib) as (url, sha1, template):
        for index in range(args.rounds):
            measured, home = cold_install(work, template, index, args.mib)
            remove_tree(home)
            seconds.append(measured.seconds)
            peaks.append(measured.peak_mib)
            baselines.append(curl_and_sha1sum(work, url, sha1))

    peak, took, baseline = max(peaks), statistics.median(seconds), statistics.median(baselines)
    print(f"binary: {args.mib} MiB; {args.rounds} rounds")
    each = " ".join(f"{p:.1f}" for p in peaks)
    print(f"zoopm install peak RSS: {peak:.1f} MiB (each round: {each})")
    print(f"zoopm install: {took:.2f} s; curl -o + sha1sum: {baseline:.2f} s (medians)")
    print(f"time ratio zoopm / baseline: {took / baseline:.2f}")
    verdict = "MET" if peak <= LIMIT_MIB else "NOT MET"
    print(f"peak memory {peak:.1f} MiB, limit {LIMIT_MIB} MiB: {verdict}")


if __name__ == "__main__":
    main()
