"""What the benchmarks share: random binaries, a file server in its own process, timed runs.

Every benchmark runs zoopm as a user would: the installed entry point (`python -m zoopm`) in a
child process, with byte-compiled modules (a session that sets PYTHONDONTWRITEBYTECODE would
otherwise make every start compile zoopm from source), a private ZOOPM_HOME and no user
configuration. Figures are medians of runs taken in turn with their baseline.
"""

from __future__ import annotations

import compileall
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_SERVER = """
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from tests.support.fileserver import FileServer
server = FileServer().start()
if float(sys.argv[2]):
    server.throttle(float(sys.argv[2]))
for name in sys.argv[3:]:
    server.add_file("/" + Path(name).name, Path(name))
print(server.base_url, flush=True)
sys.stdin.read()
server.stop()
"""


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_mib: float


def make_binary(path: Path, mib: int, seed: int = 0) -> str:
    """Writes mib MiB of incompressible bytes (distinct per seed) and returns their SHA-1."""
    sha1 = hashlib.sha1(usedforsecurity=False)
    block = os.urandom(1 << 20)
    with path.open("wb") as out:
        for index in range(mib):
            chunk = seed.to_bytes(4, "little") + index.to_bytes(8, "little") + block[12:]
            sha1.update(chunk)
            out.write(chunk)
    return sha1.hexdigest()


def write_model(directory: Path, name: str, url: str, sha1: str) -> Path:
    """A Caffe model directory whose binary is downloaded from url."""
    directory.mkdir(parents=True)
    (directory / "deploy.prototxt").write_text(f'name: "{name}"\n')
    (directory / "readme.md").write_text(
        f"---\nname: {name}\ncaffemodel: {name}.caffemodel\ncaffemodel_url: {url}\n"
        f"sha1: {sha1}\nlicense: unrestricted\n---\n"
    )
    return directory


def write_project(directory: Path, models: dict[str, Path]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["[models]", *(f'{name} = {{ path = "{path}" }}' for name, path in models.items())]
    (directory / "zoo.toml").write_text("\n".join(lines) + "\n")
    return directory


@contextmanager
def workdir() -> Iterator[Path]:
    """A temporary directory, removed afterwards even where zoopm left read-only files."""
    work = Path(tempfile.mkdtemp(prefix="zoopm-bench-"))
    try:
        yield work
    finally:
        for path in work.rglob("*"):
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def file_server(files: list[Path], bytes_per_second: float = 0.0) -> Iterator[str]:
    """The tests' file server (Range, ETag) in its own process, sending each answer at most
    bytes_per_second if that is not 0; yields its base URL."""
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(REPO), str(bytes_per_second), *map(str, files)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        yield server.stdout.readline().strip()
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)


def zoopm_env(home: Path) -> dict[str, str]:
    """The environment zoopm runs in: its own home, no user configuration, bytecode cached."""
    compileall.compile_dir(REPO / "zoopm", quiet=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOOPM_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env |= {"ZOOPM_HOME": str(home), "ZOOPM_CONFIG": str(home / "no-config.toml")}
    return env


def zoopm(*args: str) -> list[str]:
    return [sys.executable, "-m", "zoopm", "-q", *args]


def measure(argv: list[str], env: dict[str, str]) -> Measured:
    """Runs argv to completion: its wall time, and the peak memory of that process alone."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        assert process.stderr is not None
        sys.exit(f"{' '.join(argv)} failed: {process.stderr.read().decode()}")
    return Measured(elapsed, usage.ru_maxrss / 1024)  # ru_maxrss is in KiB on Linux


def alternate(
    rounds: int, first: Callable[[], float], second: Callable[[], float]
) -> tuple[float, float]:
    """Medians of first() and second(), run in turn so that machine noise hits both alike."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(rounds):
        a.append(first())
        b.append(second())
    return statistics.median(a), statistics.median(b)


def remove_tree(path: Path) -> None:
    """Removes path, whose directories zoopm may have left read-only."""
    for inner in path.rglob("*"):
        if inner.is_dir() and not inner.is_symlink():
            inner.chmod(0o755)
    shutil.rmtree(path, ignore_errors=True)


def listed(values: list[float]) -> str:
    """Each round's figure, for the report line."""
    return " ".join(f"{v:.2f}" for v in values)


@contextmanager
def served_big_binary(work: Path, mib: int) -> Iterator[tuple[str, str, Path]]:
    """One binary of mib MiB on a file server and a locked project that needs it:
    yields (its URL, its SHA-1, the project to copy checkouts from)."""
    binary = work / "big.caffemodel"
    sha1 = make_binary(binary, mib)
    with file_server([binary]) as base:
        url = f"{base}/big.caffemodel"
        model = write_model(work / "src" / "big", "big", url, sha1)
        template = write_project(work / "template", {"big": model})
        measure(zoopm("-C", str(template), "lock"), zoopm_env(work / "lock-home"))
        remove_tree(work / "lock-home")
        yield url, sha1, template


def cold_install(work: Path, template: Path, run: int, mib: int) -> tuple[Measured, Path]:
    """zoopm install of template's lock into a fresh checkout with an empty ZOOPM_HOME; the
    home is returned for a look inside, the checkout removed. The caller removes the home."""
    project, home = work / f"project-{run}", work / f"home-{run}"
    project.mkdir()
    for name in ("zoo.toml", "zoo.lock"):
        shutil.copy(template / name, project / name)
    measured = measure(zoopm("-C", str(project), "install"), zoopm_env(home))
    placed = project / "models" / "big" / "big.caffemodel"
    assert placed.stat().st_size == mib << 20
    remove_tree(project)
    return measured, home


def curl_and_sha1sum(work: Path, url: str, sha1: str) -> float:
    """The shell's way, timed: `curl -o FILE URL`, then `sha1sum FILE`."""
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
