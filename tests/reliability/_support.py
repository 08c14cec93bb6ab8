"""Running zoopm as a real process and checking what it left on disk, for the reliability suite."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.support.loopback import LoopbackServer, QuietHandler

REPO = Path(__file__).resolve().parents[2]
# Variables of the test runner's shell that would change what zoopm does.
_DROPPED = ("GITHUB_TOKEN", "ZOOPM_OFFLINE", "ZOOPM_GITHUB_API", "ZOOPM_JOBS", "ZOOPM_REMOTE")
_HEX64 = re.compile(r"[0-9a-f]{64}")
# Runs zoopm's __main__ under a file size limit; a preexec_fn would be unsafe with server threads.
_LIMITED = (
    "import resource, runpy, signal, sys\n"
    "limit = int(sys.argv.pop(1))\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))\n"
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
    "sys.argv[0] = 'zoopm'\n"
    "runpy.run_module('zoopm', run_name='__main__', alter_sys=True)\n"
)
_FRAME = re.compile(r'^\s+File "[^"]+", line \d+', re.MULTILINE)


@dataclass(frozen=True)
class Outcome:
    """What one zoopm process did: exit code, output, wall time and peak memory."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_mib: float

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]

    @property
    def hint_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("hint:")]

    @property
    def has_traceback(self) -> bool:
        text = self.stdout + self.stderr
        return "Traceback (most recent call last)" in text or bool(_FRAME.search(text))

    def describe(self) -> str:
        return (
            f"zoopm {' '.join(self.args)} -> exit {self.returncode} in {self.seconds:.2f}s\n"
            f"--- stdout ---\n{self.stdout[-3000:]}\n--- stderr ---\n{self.stderr[-3000:]}"
        )


def zoopm_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a zoopm child: isolated home and cache, no colour, no stray settings."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    env["ZOOPM_HOME"] = str(home)
    env["XDG_CACHE_HOME"] = str(home.parent / "xdg-cache")
    env["XDG_CONFIG_HOME"] = str(home.parent / "xdg-config")
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "200"
    env["PYTHONPATH"] = str(REPO)
    env.pop("PYTHONWARNINGS", None)
    env.update(extra or {})
    return env


def spawn(
    args: list[str],
    *,
    project: Path,
    home: Path,
    env: Mapping[str, str] | None = None,
    file_size_limit: int | None = None,
) -> subprocess.Popen[bytes]:
    """Starts `zoopm -C project --no-progress ARGS…` without waiting for it.

    file_size_limit sets RLIMIT_FSIZE (with SIGXFSZ ignored, so a write past it fails with
    EFBIG the way a full disk fails with ENOSPC) in the child before zoopm starts.
    """
    zoopm_args = ["-C", str(project), "--no-progress", *args]
    if file_size_limit is None:
        command = [sys.executable, "-m", "zoopm", *zoopm_args]
    else:
        command = [sys.executable, "-c", _LIMITED, str(file_size_limit), *zoopm_args]
    return subprocess.Popen(
        command,
        cwd=project if project.is_dir() else project.parent,
        env=zoopm_env(home, env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish(
    process: subprocess.Popen[bytes], args: list[str], started: float, timeout: float
) -> Outcome:
    """Waits for process (killing it after timeout), reading its output and its own peak RSS."""
    chunks: dict[str, bytes] = {}

    def drain(name: str, stream: object) -> None:
        assert hasattr(stream, "read")
        chunks[name] = stream.read()

    readers = [
        threading.Thread(target=drain, args=("out", process.stdout), daemon=True),
        threading.Thread(target=drain, args=("err", process.stderr), daemon=True),
    ]
    for reader in readers:
        reader.start()
    timer = threading.Timer(timeout, _kill_quietly, args=(process.pid,))
    timer.start()
    rss_kib = 0
    try:
        if process.returncode is None:
            # wait4 gives this child's own rusage, not the maximum over every child so far.
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
            rss_kib = usage.ru_maxrss
    finally:
        timer.cancel()
    seconds = time.monotonic() - started
    for reader in readers:
        reader.join(10)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()
    return Outcome(
        tuple(args),
        process.returncode,
        chunks.get("out", b"").decode("utf-8", "replace"),
        chunks.get("err", b"").decode("utf-8", "replace"),
        seconds,
        rss_kib / 1024,
    )


def _kill_quietly(pid: int) -> None:
    signal_unreaped(pid, signal.SIGKILL)


def signal_unreaped(pid: int, signum: int) -> None:
    """Sends signum to a child not yet waited for (a zombie ignores it; its pid is not reused)."""
    # Popen.send_signal and poll() would reap the child and lose its rusage for finish().
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def has_exited(pid: int) -> bool:
    """Whether the child has exited, without reaping it."""
    result = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    return result is not None


def run(
    args: list[str],
    *,
    project: Path,
    home: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    file_size_limit: int | None = None,
) -> Outcome:
    """Runs `zoopm -C project --no-progress ARGS…` to the end (killed after timeout)."""
    started = time.monotonic()
    process = spawn(args, project=project, home=home, env=env, file_size_limit=file_size_limit)
    return finish(process, args, started, timeout)


def assert_clean_failure(outcome: Outcome, codes: tuple[int, ...] = (1, 2)) -> None:
    """A failure the user can act on: an expected exit code, one error line, a hint, no trace."""
    assert outcome.returncode in codes, outcome.describe()
    assert not outcome.has_traceback, outcome.describe()
    assert len(outcome.error_lines) == 1, outcome.describe()
    assert "internal error" not in outcome.stderr, outcome.describe()
    assert len(outcome.hint_lines) >= 1, outcome.describe()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# --- what zoopm left on disk ----------------------------------------------------------------


def store_problems(home: Path) -> list[str]:
    """Every blob path in the store that is not a regular file hashing to its own name."""
    problems: list[str] = []
    root = home / "store" / "sha256"
    if not root.exists():
        return problems
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_dir() and not path.is_symlink():
            if len(relative.parts) != 1 or len(path.name) != 2:
                problems.append(f"{relative}: unexpected directory")
            continue
        name = path.name
        if len(relative.parts) != 2 or not _HEX64.fullmatch(name) or relative.parts[0] != name[:2]:
            problems.append(f"{relative}: not a blob name (a temp file at a final path?)")
            continue
        if path.is_symlink() or not path.is_file():
            problems.append(f"{relative}: not a regular file")
            continue
        actual = sha256_of(path)
        if actual != name:
            problems.append(f"{relative}: holds {actual} ({path.stat().st_size} bytes)")
    return problems


def locked_files(project: Path) -> dict[str, tuple[str, int]]:
    """Every file zoo.lock pins, as models-dir-relative path → (sha256, size)."""
    data = tomllib.loads((project / "zoo.lock").read_text(encoding="utf-8"))
    pinned: dict[str, tuple[str, int]] = {}
    for model in data.get("model", []):
        for entry in model.get("file", []):
            pinned[f"{model['name']}/{entry['path']}"] = (str(entry["sha256"]), int(entry["size"]))
    return pinned


def models_problems(
    project: Path, pinned: Mapping[str, tuple[str, int]], *, complete: bool
) -> list[str]:
    """Final paths under models/ not holding what zoo.lock pins (or missing, if complete)."""
    models = project / "models"
    problems: list[str] = []
    for relative, (sha256, size) in sorted(pinned.items()):
        target = models / relative
        if not os.path.lexists(target):
            if complete:
                problems.append(f"{relative}: missing")
            continue
        if not target.is_file():
            problems.append(f"{relative}: not a file")
            continue
        actual_size = target.stat().st_size
        if actual_size != size or sha256_of(target) != sha256:
            problems.append(f"{relative}: wrong bytes ({actual_size} of {size} bytes)")
    return problems


def leftover_temp_files(project: Path, home: Path) -> list[str]:
    """Files under models/<name>/ that the lock does not name, and partials in the store's tmp."""
    pinned = locked_files(project)
    found: list[str] = []
    models = project / "models"
    if models.is_dir():
        for path in sorted(models.rglob("*")):
            relative = path.relative_to(models).as_posix()
            if path.is_file() and "/" in relative and relative not in pinned:
                found.append(f"models/{relative}")
    tmp = home / "store" / "tmp"
    if tmp.is_dir():
        found += [f"store/tmp/{p.name}" for p in sorted(tmp.iterdir()) if p.is_file()]
    return found


@dataclass(frozen=True)
class FileState:
    size: int
    mtime_ns: int
    mode: int
    sha256: str
    link: str | None


def snapshot(root: Path, exclude: tuple[Path, ...] = ()) -> dict[str, FileState]:
    """Bytes, mtime, mode and symlink target of everything under root, never following links."""
    state: dict[str, FileState] = {}
    if not os.path.lexists(root):
        return state
    skipped = {p.resolve() for p in exclude}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if (here / d).resolve() not in skipped]
        for name in [*filenames, *[d for d in dirnames if (here / d).is_symlink()]]:
            path = here / name
            info = path.lstat()
            link = os.readlink(path) if path.is_symlink() else None
            digest = "" if link is not None else sha256_of(path)
            state[path.relative_to(root).as_posix()] = FileState(
                info.st_size, info.st_mtime_ns, info.st_mode, digest, link
            )
    return state


# --- model directories and a throttled file server ------------------------------------------


def stand_in_binary(label: str, size: int) -> bytes:
    """Deterministic bytes of the given size (not a Caffe model)."""
    seed = hashlib.sha256(label.encode()).digest()
    block = b"".join(hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range(2048))
    return (block * (size // len(block) + 1))[:size]


def write_local_model(
    directory: Path,
    name: str,
    binary: bytes | None,
    url: str | None,
    *,
    extra_frontmatter: str = "",
    body: str = "A model for the reliability suite.\n",
) -> Path:
    """A model directory with readme.md (frontmatter naming the binary) and deploy.prototxt."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["---", f"name: {name}"]
    if binary is not None and url is not None:
        sha1 = hashlib.sha1(binary, usedforsecurity=False).hexdigest()
        lines += [f"caffemodel: {name}.caffemodel", f"caffemodel_url: {url}", f"sha1: {sha1}"]
    lines += ["license: unrestricted", *([extra_frontmatter] if extra_frontmatter else []), "---"]
    (directory / "readme.md").write_text("\n".join(lines) + "\n\n" + body, encoding="utf-8")
    (directory / "deploy.prototxt").write_text(f'name: "{name}"\ninput: "data"\n', "utf-8")
    return directory


class _ThrottleState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.files: dict[str, bytes] = {}
        self.bytes_per_second: float | None = None
        self.requests = 0
        self.stopping = threading.Event()


class _ThrottledServer(LoopbackServer):
    def __init__(self, state: _ThrottleState) -> None:
        self.state = state
        super().__init__(_ThrottledHandler)


class _ThrottledHandler(QuietHandler):
    server: _ThrottledServer
    _CHUNK = 32 * 1024

    def do_GET(self) -> None:
        state = self.server.state
        with state.lock:
            data = state.files.get(self.path)
            state.requests += 1
        if data is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        start = 0
        ranged = self.headers.get("Range", "")
        if_range = self.headers.get("If-Range")
        match = re.fullmatch(r"bytes=(\d+)-", ranged.strip())
        if match and (if_range is None or if_range == etag) and int(match[1]) < len(data):
            start = int(match[1])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        for offset in range(start, len(data), self._CHUNK):
            with state.lock:
                rate = state.bytes_per_second
            if rate is not None and state.stopping.wait(self._CHUNK / rate):
                return
            self.wfile.write(data[offset : offset + self._CHUNK])


class ThrottledFileServer:
    """A Range-capable file server on 127.0.0.1:<free port> that can send at a bounded rate.

    The fault-injecting FileServer sends bodies at full speed; a signal or SIGKILL can only land
    mid-download if a download lasts long enough to be interrupted.
    """

    def __init__(self) -> None:
        self._state = _ThrottleState()
        self._server = _ThrottledServer(self._state)
        self._server.serve_in_thread(f"ThrottledFileServer:{self._server.server_port}")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_port}{path}"

    def add(self, path: str, data: bytes) -> str:
        with self._state.lock:
            self._state.files[path] = data
        return self.url(path)

    def throttle(self, bytes_per_second: float | None) -> None:
        with self._state.lock:
            self._state.bytes_per_second = bytes_per_second

    @property
    def requests(self) -> int:
        with self._state.lock:
            return self._state.requests

    def stop(self) -> None:
        self._state.stopping.set()
        self._server.stop()


def locked_template(
    root: Path, server: ThrottledFileServer, sizes: Mapping[str, int], extra_info_files: int = 0
) -> Path:
    """A directory with zoo.toml and zoo.lock for local models whose binaries server holds.

    Locking downloads every binary into a throwaway home, so an install from another home
    starts with an empty store.
    """
    models: list[str] = []
    for name, size in sizes.items():
        data = stand_in_binary(name, size)
        url = server.add(f"/weights/{name}.caffemodel", data)
        directory = write_local_model(root / "src" / name, name, data, url)
        for index in range(extra_info_files):
            (directory / f"solver_{index:02}.prototxt").write_text(f"# {name} {index}\n" * 40)
        models.append(f'{name} = {{ path = "{directory}" }}')
    template = root / "template"
    template.mkdir()
    (template / "zoo.toml").write_text(
        '[project]\nmodels-dir = "models"\n\n[models]\n' + "\n".join(models) + "\n"
    )
    locked = run(["lock"], project=template, home=root / "lock-home")
    assert locked.returncode == 0, locked.describe()
    return template
