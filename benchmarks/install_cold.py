"""Benchmark: cold install of one 256 MiB binary against `curl -o` + `sha1sum` (goal: ≤ 0.8x).

Run from the repository root with the project and its test extra installed:

    .venv/bin/python benchmarks/install_cold.py              # 256 MiB, 7 rounds
    .venv/bin/python benchmarks/install_cold.py --mib 64 --rounds 3

zoo.lock is present and the store empty: each zoopm run gets a fresh ZOOPM_HOME and a fresh
checkout (zoo.toml + zoo.lock), so it downloads, hashes (SHA-1 and SHA-256), fsyncs, stores
and places the binary. The baseline is what a user would type instead, on the same server:
`curl -sf -o FILE URL`, then `sha1sum FILE` (two passes, no fsync). Each round runs both in
turn; the figure is the ratio of the medians. The first round of each is a warm-up, not
counted. After the warm-up, the stored blob is hashed again and checked against its name and
its SHA-1 alias.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
from pathlib import Path

from _bench import (
    cold_install,
    curl_and_sha1sum,
    listed,
    remove_tree,
    served_big_binary,
    workdir,
)

GOAL = 0.8


def _check_store(home: Path, sha1: str) -> None:
    """Every blob matches every hash it is filed under: its name and its SHA-1 alias."""
    blobs = [p for p in (home / "store" / "sha256").rglob("*") if p.is_file()]
    assert len(blobs) >= 1, "no blob stored"
    for blob in blobs:
        sha256 = hashlib.sha256()
        with blob.open("rb") as stream:
            while chunk := stream.read(1 << 22):
                sha256.update(chunk)
        assert sha256.hexdigest() == blob.name, f"{blob} holds {sha256.hexdigest()}"
    alias = home / "store" / "sha1" / sha1[:2] / sha1
    target = (home / "store" / "sha256").rglob(alias.read_text().strip())
    assert any(target), f"{alias} points at no stored blob"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="binary size in MiB (default 256)")
    parser.add_argument("--rounds", type=int, default=7, help="counted rounds (default 7)")
    args = parser.parse_args()
    with workdir() as work, served_big_binary(work, args.mib) as (url, sha1, template):
        runs = 0

        def cold_run() -> float:
            nonlocal runs
            runs += 1
            measured, home = cold_install(work, template, runs, args.mib)
            if runs == 1:
                _check_store(home, sha1)
            remove_tree(home)
            return measured.seconds

        def baseline_run() -> float:
            return curl_and_sha1sum(work, url, sha1)

        baseline_run(), cold_run()  # warm-up: caches, bytecode
        baselines: list[float] = []
        colds: list[float] = []
        for index in range(args.rounds):
            # Each goes first in every other round, so neither always meets a busier disk.
            pair = (baseline_run, cold_run)
            for run in pair if index % 2 == 0 else pair[::-1]:
                (baselines if run is baseline_run else colds).append(run())

    baseline, cold = statistics.median(baselines), statistics.median(colds)
    ratio = cold / baseline
    print(f"binary: {args.mib} MiB; medians of {args.rounds} rounds")
    print(f"baseline curl -o + sha1sum: {baseline:.3f} s  ({listed(baselines)})")
    print(f"zoopm install (cold store): {cold:.3f} s  ({listed(colds)})")
    verdict = "MET" if ratio <= GOAL else "NOT MET"
    print(f"ratio zoopm / baseline: {ratio:.2f} (goal <= {GOAL}): {verdict}")


if __name__ == "__main__":
    main()
