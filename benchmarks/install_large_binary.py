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
import shutil
import statistics
import subprocess
import time

from _bench import (
    file_server,
    make_binary,
    measure,
    remove_tree,
    workdir,
    write_model,
    write_project,
    zoopm,
    zoopm_env,
)

LIMIT_MIB = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="binary size in MiB (default 1024)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
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
            seconds: list[float] = []
            peaks: list[float] = []
            baselines: list[float] = []
            for index in range(args.rounds):
                project, home = work / f"project-{index}", work / f"home-{index}"
                project.mkdir()
                for name in ("zoo.toml", "zoo.lock"):
                    shutil.copy(template / name, project / name)
                run = measure(zoopm("-C", str(project), "install"), zoopm_env(home))
                placed = project / "models" / "big" / "big.caffemodel"
                assert placed.stat().st_size == args.mib << 20
                seconds.append(run.seconds)
                peaks.append(run.peak_mib)
                remove_tree(project)
                remove_tree(home)

                out = work / "curl.caffemodel"
                start = time.perf_counter()
                subprocess.run(["curl", "-sf", "-o", str(out), url], check=True)
                printed = subprocess.run(
                    ["sha1sum", str(out)], check=True, capture_output=True, text=True
                ).stdout
                baselines.append(time.perf_counter() - start)
                assert printed.split()[0] == sha1
                out.unlink()

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
