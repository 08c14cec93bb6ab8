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
import shutil
import statistics
import subprocess
import time
from pathlib import Path

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
    with workdir() as work:
        binary = work / "big.caffemodel"
        sha1 = make_binary(binary, args.mib)
        with file_server([binary]) as base:
            url = f"{base}/big.caffemodel"
            model = write_model(work / "src" / "big", "big", url, sha1)
            template = write_project(work / "template", {"big": model})
            measure(zoopm("-C", str(template), "lock"), zoopm_env(work / "lock-home"))
            remove_tree(work / "lock-home")
            runs = 0

            def cold_install() -> float:
                nonlocal runs
                runs += 1
                project, home = work / f"project-{runs}", work / f"home-{runs}"
                project.mkdir()
                for name in ("zoo.toml", "zoo.lock"):
                    shutil.copy(template / name, project / name)
                env = zoopm_env(home)
                seconds = measure(zoopm("-C", str(project), "install"), env).seconds
                placed = project / "models" / "big" / "big.caffemodel"
                assert placed.stat().st_size == args.mib << 20
                if runs == 1:
                    _check_store(home, sha1)
                remove_tree(project)
                remove_tree(home)
                return seconds

            def curl_and_sha1sum() -> float:
                out = work / "curl.caffemodel"
                start = time.perf_counter()
                subprocess.run(["curl", "-sf", "-o", str(out), url], check=True)
                printed = subprocess.run(
                    ["sha1sum", str(out)], check=True, capture_output=True, text=True
                ).stdout
                seconds = time.perf_counter() - start
                assert printed.split()[0] == sha1
                out.unlink()
                return seconds

            curl_and_sha1sum(), cold_install()  # warm-up: caches, bytecode
            baselines: list[float] = []
            colds: list[float] = []
            for index in range(args.rounds):
                # Each goes first in every other round, so neither always meets a busier disk.
                pair = (curl_and_sha1sum, cold_install)
                for run in pair if index % 2 == 0 else pair[::-1]:
                    (baselines if run is curl_and_sha1sum else colds).append(run())

    baseline, cold = statistics.median(baselines), statistics.median(colds)
    ratio = cold / baseline
    print(f"binary: {args.mib} MiB; medians of {args.rounds} rounds")
    print(f"baseline curl -o + sha1sum: {baseline:.3f} s  ({listed(baselines)})")
    print(f"zoopm install (cold store): {cold:.3f} s  ({listed(colds)})")
    verdict = "MET" if ratio <= GOAL else "NOT MET"
    print(f"ratio zoopm / baseline: {ratio:.2f} (goal <= {GOAL}): {verdict}")


if __name__ == "__main__":
    main()
