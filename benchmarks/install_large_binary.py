"""Benchmark: install a large binary from a local HTTP server; peak memory and time against curl.

Run from the repository root with the project installed:

    .venv/bin/python benchmarks/install_large_binary.py            # 1 GiB
    .venv/bin/python benchmarks/install_large_binary.py --mib 256  # smaller

The file server runs in its own process, so only zoopm's memory is measured. The baseline is
`curl -o FILE URL && sha1sum FILE` (download, then hash), run in the same script on the same
file; the report gives zoopm's wall time as a ratio of the baseline's.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIMIT_MIB = 100
SERVER = """
import sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from tests.support.fileserver import FileServer
server = FileServer().start()
server.add_file("/big.caffemodel", Path(sys.argv[2]))
print(server.base_url, flush=True)
sys.stdin.read()
server.stop()
"""


def make_binary(path: Path, mib: int) -> str:
    """Writes mib MiB of random bytes and returns their SHA-1."""
    sha1 = hashlib.sha1(usedforsecurity=False)
    block = os.urandom(1 << 20)
    with path.open("wb") as out:
        for index in range(mib):
            chunk = index.to_bytes(8, "little") + block[8:]
            sha1.update(chunk)
            out.write(chunk)
    return sha1.hexdigest()


def run_measured(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Runs argv to completion; returns (wall seconds, peak resident MiB) for that process alone."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        assert process.stderr is not None
        sys.exit(f"{argv[0]} failed: {process.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="binary size in MiB (default 1024)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zoopm-bench-"))
    server = None
    try:
        binary = work / "big.caffemodel"
        sha1 = make_binary(binary, args.mib)
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(REPO), str(binary)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None
        url = server.stdout.readline().strip() + "/big.caffemodel"

        model = work / "model"
        model.mkdir()
        (model / "deploy.prototxt").write_text('name: "big"\n')
        (model / "readme.md").write_text(
            f"---\nname: big\ncaffemodel: big.caffemodel\ncaffemodel_url: {url}\n"
            f"sha1: {sha1}\nlicense: unrestricted\n---\n"
        )
        project = work / "project"
        project.mkdir()
        (project / "zoo.toml").write_text(f'[models]\nbig = {{ path = "{model}" }}\n')
        env = os.environ | {"ZOOPM_HOME": str(work / "home")}

        curl_out = work / "curl.caffemodel"
        base_dl, base_rss = run_measured(["curl", "-sf", "-o", str(curl_out), url], env)
        base_hash, _ = run_measured(["sha1sum", str(curl_out)], env)
        curl_out.unlink()
        baseline = base_dl + base_hash

        zoopm = [sys.executable, "-m", "zoopm", "-q", "-C", str(project), "install"]
        seconds, peak = run_measured(zoopm, env)
        placed = project / "models" / "big" / "big.caffemodel"
        assert placed.stat().st_size == args.mib << 20
        noop, _ = run_measured(zoopm, env)

        print(f"binary: {args.mib} MiB from {url}")
        print(f"baseline curl + sha1sum: {baseline:.2f} s (curl peak {base_rss:.1f} MiB)")
        print(f"zoopm lock + install:    {seconds:.2f} s, peak {peak:.1f} MiB")
        print(f"time ratio zoopm / baseline: {seconds / baseline:.2f}")
        print(f"no-op install again:     {noop:.2f} s")
        verdict = "PASS" if peak < LIMIT_MIB else "FAIL"
        print(f"{verdict}: peak memory {peak:.1f} MiB (limit {LIMIT_MIB} MiB)")
        sys.exit(0 if peak < LIMIT_MIB else 1)
    finally:
        if server is not None and server.stdin is not None:
            server.stdin.close()
            server.wait(timeout=10)
        for path in work.rglob("*"):
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
