"""Benchmark: install 5 models of 512 MiB, all in the store, into a fresh checkout (goal: at
most 1.3 times the no-op install; linking costs per file, never per byte).

    .venv/bin/python benchmarks/install_warm.py              # 5 x 512 MiB (2.5 GiB on disk)
    .venv/bin/python benchmarks/install_warm.py --mib 64     # smaller

A first install fills the store from a local file server, which then goes away. Each round
makes a fresh checkout (zoo.toml and zoo.lock copied to a new directory, no models/), installs
it with --frozen, then runs the no-op install in that same checkout: both as a user runs them,
the ratio is of their medians. The no-op right after an install has no witness yet (its files
are too young), so it is the full check; benchmarks/install_noop.py times the witnessed one.
The checkouts are kept until the end: deleting one moves the ctime of every blob it linked,
and the next install hashes each such blob once before linking it (docs/store.md, "Link
notes"); that cost is timed last, once, with the first project's own no-op.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from _bench import (
    alternate,
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

GOAL_RATIO = 1.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=512, help="size of each binary (default 512)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with workdir() as work:
        binaries = [work / f"m{i}.caffemodel" for i in range(5)]
        sums = [make_binary(path, args.mib, seed=i) for i, path in enumerate(binaries)]
        env = zoopm_env(work / "home")
        with file_server(binaries) as base:
            models = {
                f"m{i}": write_model(work / "src" / f"m{i}", f"m{i}", f"{base}/m{i}.caffemodel", s)
                for i, s in enumerate(sums)
            }
            project = write_project(work / "project", models)
            cold = measure(zoopm("-C", str(project), "install"), env)
        for path in binaries:
            path.unlink()  # the store has them; the server is gone
        checkouts: list[Path] = []

        def warm() -> float:
            checkout = work / f"checkout-{len(checkouts)}"
            checkout.mkdir()
            checkouts.append(checkout)
            for name in ("zoo.toml", "zoo.lock"):
                shutil.copy2(project / name, checkout / name)
            seconds = measure(zoopm("-C", str(checkout), "install", "--frozen"), env).seconds
            placed = checkout / "models" / "m0" / "m0.caffemodel"
            assert placed.stat().st_size == args.mib << 20
            return seconds

        def noop() -> float:
            return measure(zoopm("-C", str(checkouts[-1]), "install", "--frozen"), env).seconds

        warm_s, noop_s = alternate(args.rounds, warm, noop)
        files = [p for p in (checkouts[-1] / "models").rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        linked = sum(1 for p in files if os.stat(p).st_nlink > 1)
        sibling = measure(zoopm("-C", str(project), "install", "--frozen"), env).seconds
        for checkout in checkouts:
            remove_tree(checkout)
        after_deleting = measure(zoopm("-C", str(project), "install", "--frozen"), env).seconds
    print(f"5 models x {args.mib} MiB; cold install first: {cold.seconds:.2f} s")
    print(
        f"warm install into a fresh checkout: {warm_s:.3f} s ({size / 2**20:.0f} MiB in "
        f"{len(files)} files placed, {linked} hard-linked), median of {args.rounds}"
    )
    print(f"no-op install of that checkout:     {noop_s:.3f} s (full check)")
    print(f"ratio warm / no-op: {warm_s / noop_s:.2f}")
    print(f"first project's no-op after the checkouts linked its blobs: {sibling:.3f} s")
    print(f"... and after they were deleted (hashes each shared blob once): {after_deleting:.3f} s")
    verdict = "MET" if warm_s / noop_s <= GOAL_RATIO else "NOT MET"
    print(f"goal ratio <= {GOAL_RATIO}: {verdict}")


if __name__ == "__main__":
    main()
