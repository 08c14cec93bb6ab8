"""Benchmark: install of 5 models from the shared remote store (S3) against from the origin.

Run from the repository root with the project and its test extra installed:

    .venv/bin/python benchmarks/install_remote.py                 # 5 x 16 MiB, origin at full speed
    .venv/bin/python benchmarks/install_remote.py --rate 8        # origin at 8 MiB/s per connection

The origin is the tests' file server in its own process (throttled per connection with --rate,
as a far host is); the remote store is a real S3 API, moto in server mode in its own process,
reached through AWS_ENDPOINT_URL as MinIO would be. A first install fills one store from the
origin and `zoopm push` uploads it. Then every round installs a fresh checkout (zoo.toml +
zoo.lock) into an empty ZOOPM_HOME twice, in turn: once with no remote store (everything from
the origin) and once with ZOOPM_REMOTE set (everything from S3, every byte verified). The
figure is the ratio of their medians: origin time / remote time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
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

COUNT = 5
BUCKET = "bench"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_s3() -> tuple[subprocess.Popen[bytes], str]:
    """moto's S3 server in its own process; returns it and its endpoint once it answers."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(endpoint, timeout=1).close()
            return server, endpoint
        except OSError:
            time.sleep(0.05)
    server.kill()
    sys.exit("moto's S3 server did not start")


def s3_env(endpoint: str, work: Path) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(work / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(work / "no-aws-credentials"),
        "ZOOPM_REMOTE": f"s3://{BUCKET}/zoopm",
    }


def start_remote(kind: str, work: Path) -> tuple[subprocess.Popen[bytes] | None, dict[str, str]]:
    """The remote store and the environment that points zoopm at it."""
    if kind == "file":
        return None, {"ZOOPM_REMOTE": (work / "remote").as_uri()}
    import boto3

    server, endpoint = start_s3()
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    ).create_bucket(Bucket=BUCKET)
    return server, s3_env(endpoint, work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=16, help="size of each binary (default 16)")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="origin MiB/s per connection (0: unthrottled)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="counted rounds (default 5)")
    parser.add_argument(
        "--remote",
        choices=("s3", "file"),
        default="s3",
        help="the remote store: moto's S3 server (default) or a file:// directory",
    )
    args = parser.parse_args()
    with workdir() as work:
        binaries = [work / f"net{i}.caffemodel" for i in range(COUNT)]
        sha1s = [make_binary(path, args.mib, seed=i) for i, path in enumerate(binaries)]
        server, remote = start_remote(args.remote, work)
        try:
            with file_server(binaries, args.rate * (1 << 20)) as base:
                models = {
                    f"net{i}": write_model(
                        work / "src" / f"net{i}", f"net{i}", f"{base}/{path.name}", sha1
                    )
                    for i, (path, sha1) in enumerate(zip(binaries, sha1s, strict=True))
                }
                template = write_project(work / "template", models)
                filler = zoopm_env(work / "filler-home") | remote
                measure(zoopm("-C", str(template), "install"), filler)
                measure(zoopm("-C", str(template), "push"), filler)
                shutil.rmtree(template / "models")
                origin_times, remote_times = rounds(work, template, args, remote)
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)

    origin, from_remote = statistics.median(origin_times), statistics.median(remote_times)
    rate = f"{args.rate:g} MiB/s per connection" if args.rate else "unthrottled"
    print(
        f"{COUNT} binaries of {args.mib} MiB; origin {rate}; remote store {args.remote}; "
        f"medians of {args.rounds} rounds"
    )
    print(f"from the origin:       {origin:.2f} s  ({listed(origin_times)})")
    print(f"from the remote store: {from_remote:.2f} s  ({listed(remote_times)})")
    print(f"origin / remote store: {origin / from_remote:.2f}x")


def rounds(
    work: Path, template: Path, args: argparse.Namespace, remote: dict[str, str]
) -> tuple[list[float], list[float]]:
    origin_times: list[float] = []
    remote_times: list[float] = []
    for index in range(args.rounds):
        order = ("origin", "remote") if index % 2 == 0 else ("remote", "origin")
        for where in order:
            project, home = work / f"project-{index}-{where}", work / f"home-{index}-{where}"
            project.mkdir()
            for name in ("zoo.toml", "zoo.lock"):
                shutil.copy(template / name, project / name)
            env = zoopm_env(home) | (remote if where == "remote" else {})
            seconds = measure(zoopm("-C", str(project), "install"), env).seconds
            placed = list((project / "models").glob("*/*.caffemodel"))
            assert len(placed) == COUNT and all(p.stat().st_size == args.mib << 20 for p in placed)
            (origin_times if where == "origin" else remote_times).append(seconds)
            remove_tree(project)
            remove_tree(home)
    return origin_times, remote_times


if __name__ == "__main__":
    os.environ.pop("AWS_PROFILE", None)
    main()
