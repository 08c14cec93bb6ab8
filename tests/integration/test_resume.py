"""Resume across runs: an interrupted download is kept in the store's tmp/ and the next run goes
on from where it stopped with Range + If-Range, or starts over cleanly when it cannot trust
what was kept. Every run ends with the pinned bytes and nothing wrong under store/sha256/.

Partials are made the way a user makes them: a real `zoopm install` process killed with
SIGKILL or SIGINT, or a `zoopm.Project` install cancelled mid-download (what Ctrl-C does),
against the real local file server sending at a bounded rate.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.reliability._support import (
    finish,
    has_exited,
    signal_unreaped,
    spawn,
    store_problems,
)
from tests.support.cli import Zoopm
from tests.support.fileserver import FileServer, RequestRecord
from tests.support.projects import TINY_NET, write_project
from zoopm import Project
from zoopm.errors import Cancelled
from zoopm.settings import Settings

BINARY = "big_net.caffemodel"
PATH = f"/models/{BINARY}"
SIZE = 8 * 1024 * 1024 + 123
RATE = 8 * 1024 * 1024  # bytes per second while a download is being interrupted


@dataclass(frozen=True)
class Model:
    project: Path
    data: bytes
    url: str


@pytest.fixture
def model(tmp_path: Path, file_server: FileServer, zoopm: Zoopm, store_dir: Path) -> Model:
    """A locked project whose 8 MiB binary is only on the file server; the store is empty."""
    data = random.Random(7).randbytes(SIZE)
    source = tmp_path / "src" / "big_net"
    source.mkdir(parents=True)
    (source / "deploy.prototxt").write_bytes((TINY_NET / "deploy.prototxt").read_bytes())
    url = file_server.add_bytes(PATH, data)
    sha1 = hashlib.sha1(data, usedforsecurity=False).hexdigest()
    (source / "readme.md").write_text(
        f"---\nname: big net\ncaffemodel: {BINARY}\ncaffemodel_url: {url}\nsha1: {sha1}\n---\n",
        encoding="utf-8",
    )
    project = write_project(tmp_path / "proj", {"big": f'{{ path = "{source}" }}'})
    locked = zoopm("lock", project=project)
    assert locked.exit_code == 0, locked.stderr
    _empty(store_dir)
    file_server.clear_log()
    return Model(project, data, url)


def _empty(store_dir: Path) -> None:
    for path in store_dir.rglob("*"):
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(store_dir)


def _kept(store_dir: Path) -> tuple[Path, Path]:
    """The kept partial of the binary and its sidecar (which may not exist)."""
    parts = sorted((store_dir / "tmp").glob("dl-*-sha256-*.part"))
    assert len(parts) == 1, sorted(p.name for p in (store_dir / "tmp").iterdir())
    return parts[0], parts[0].with_suffix(".json")


def _gets(server: FileServer) -> list[RequestRecord]:
    return [r for r in server.requests if r.path == PATH and r.method == "GET"]


def _range_start(record: RequestRecord) -> int | None:
    match = re.fullmatch(r"bytes=(\d+)-", record.headers.get("range", ""))
    return int(match[1]) if match else None


def _interrupt(model: Model, server: FileServer, fraction: float, *, lock: bool = False) -> None:
    """Cancels a zoopm.Project install (or lock) as Ctrl-C does, once fraction of the binary
    was sent."""
    server.throttle(RATE)
    sent_before = server.bytes_sent(PATH)
    project = Project(model.project, Settings.from_env())
    failure: list[BaseException] = []

    def install() -> None:
        try:
            project.lock() if lock else project.install()
        except BaseException as exc:  # handed to the test thread
            failure.append(exc)

    worker = threading.Thread(target=install)
    worker.start()
    deadline = time.monotonic() + 30
    while server.bytes_sent(PATH) - sent_before < fraction * SIZE:
        assert worker.is_alive() and time.monotonic() < deadline, failure
        time.sleep(0.005)
    project.token.cancel()
    worker.join(30)
    server.throttle(None)
    _until_quiet(server)
    assert len(failure) == 1 and isinstance(failure[0], Cancelled), failure
    project.close()


def _until_quiet(server: FileServer) -> None:
    """Waits until the server has sent nothing more for 0.1 s (a cancelled download's answer
    may still push a chunk into its closed connection)."""
    deadline = time.monotonic() + 30
    while True:
        before = server.bytes_sent(PATH)
        time.sleep(0.1)
        if server.bytes_sent(PATH) == before:
            return
        assert time.monotonic() < deadline


def _installed(model: Model, store_dir: Path) -> None:
    placed = model.project / "models" / "big" / BINARY
    assert placed.read_bytes() == model.data
    assert store_problems(store_dir.parent) == []
    assert sorted(p.name for p in (store_dir / "tmp").iterdir()) == []


def _install(zoopm: Zoopm, model: Model, store_dir: Path) -> None:
    run = zoopm("install", project=model.project)
    assert run.exit_code == 0, run.stderr
    _installed(model, store_dir)


# --- the done-when check, and Ctrl-C -------------------------------------------------


def test_a_download_killed_with_sigkill_at_70_percent_goes_on_from_there(
    model: Model, file_server: FileServer, store_dir: Path, isolated_env: Path
) -> None:
    file_server.throttle(RATE)
    base = file_server.bytes_sent(PATH)  # locking downloaded the binary once
    started = time.monotonic()
    process = spawn(["install"], project=model.project, home=isolated_env)
    while file_server.bytes_sent(PATH) < 0.7 * SIZE + base and not has_exited(process.pid):
        time.sleep(0.002)
    signal_unreaped(process.pid, signal.SIGKILL)
    killed = finish(process, ["install"], started, 30)
    assert killed.returncode == -signal.SIGKILL, killed.describe()
    file_server.throttle(None)
    _until_quiet(file_server)
    sent_before = file_server.bytes_sent(PATH)
    file_server.clear_log()

    rerun = finish(
        spawn(["install"], project=model.project, home=isolated_env),
        ["install"],
        time.monotonic(),
        60,
    )

    assert rerun.returncode == 0, rerun.describe()
    [request] = _gets(file_server)
    start = _range_start(request)
    assert start is not None and start >= 0.6 * SIZE, request.headers
    assert request.status == 206
    assert file_server.bytes_sent(PATH) - sent_before <= 0.4 * SIZE
    _installed(model, store_dir)


@pytest.mark.parametrize(
    ("signum", "code", "what"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
    ids=["sigint", "sigterm"],
)
def test_ctrl_c_or_sigterm_keeps_the_download_and_says_so_in_one_line(
    model: Model,
    file_server: FileServer,
    store_dir: Path,
    isolated_env: Path,
    zoopm: Zoopm,
    signum: signal.Signals,
    code: int,
    what: str,
) -> None:
    file_server.throttle(RATE)
    base = file_server.bytes_sent(PATH)  # locking downloaded the binary once
    started = time.monotonic()
    process = spawn(["install"], project=model.project, home=isolated_env)
    while file_server.bytes_sent(PATH) < 0.5 * SIZE + base and not has_exited(process.pid):
        time.sleep(0.002)
    signal_unreaped(process.pid, signum)
    stopped = finish(process, ["install"], started, 30)
    file_server.throttle(None)
    _until_quiet(file_server)

    assert stopped.returncode == code, stopped.describe()
    assert not stopped.has_traceback, stopped.describe()
    [line] = stopped.error_lines
    assert re.fullmatch(rf"error: {what}; kept \d+\.\d MiB of 1 download for the next run", line), (
        line
    )
    assert stopped.hint_lines == ["hint: run the command again to resume"]
    part, sidecar = _kept(store_dir)
    kept = part.stat().st_size
    assert kept >= 0.4 * SIZE  # sent is not yet received: some may sit in socket buffers
    assert f"kept {kept / (1 << 20):.1f} MiB" in line
    assert json.loads(sidecar.read_text())["url"] == model.url

    file_server.clear_log()
    _install(zoopm, model, store_dir)
    [request] = _gets(file_server)
    assert (_range_start(request), request.status) == (kept, 206)


def test_an_interrupt_before_any_byte_keeps_nothing_and_says_nothing_was_kept(
    model: Model, file_server: FileServer, store_dir: Path, isolated_env: Path
) -> None:
    file_server.stall(PATH, after_bytes=0, delay_seconds=30)  # headers, then nothing
    started = time.monotonic()
    process = spawn(["install"], project=model.project, home=isolated_env)
    while not _gets(file_server) and not has_exited(process.pid):
        time.sleep(0.002)
    time.sleep(0.2)
    signal_unreaped(process.pid, signal.SIGINT)
    stopped = finish(process, ["install"], started, 30)

    assert stopped.returncode == 130, stopped.describe()
    assert stopped.error_lines == ["error: interrupted"], stopped.describe()
    assert not list((store_dir / "tmp").glob("dl-*"))


# --- a server that cannot continue what was kept ----------------------------------------------


def test_a_file_with_a_new_etag_on_the_server_is_downloaded_again_from_the_start(
    model: Model, file_server: FileServer, store_dir: Path, zoopm: Zoopm
) -> None:
    _interrupt(model, file_server, 0.5)
    kept = _kept(store_dir)[0].stat().st_size
    # Uploaded again: the same bytes, but the server cannot promise that (a new ETag).
    file_server.add_bytes(PATH, model.data, etag='"uploaded-again"')
    file_server.clear_log()
    sent_before = file_server.bytes_sent(PATH)

    _install(zoopm, model, store_dir)

    [request] = _gets(file_server)
    assert _range_start(request) == kept
    assert request.headers["if-range"] != '"uploaded-again"'
    assert request.status == 200
    assert file_server.bytes_sent(PATH) - sent_before == SIZE


def test_a_server_that_ignores_range_gets_a_clean_start(
    model: Model, file_server: FileServer, store_dir: Path, zoopm: Zoopm
) -> None:
    _interrupt(model, file_server, 0.5)
    file_server.ignore_range(PATH)
    file_server.clear_log()

    _install(zoopm, model, store_dir)

    [request] = _gets(file_server)
    assert _range_start(request) is not None
    assert request.status == 200


@pytest.mark.parametrize(
    ("etag", "last_modified"),
    [('W/"weak"', True), ('W/"weak"', False), (None, False)],
    ids=["weak-etag", "weak-etag-only", "no-validator"],
)
def test_without_a_strong_validator_nothing_is_kept_or_resumed(
    model: Model,
    file_server: FileServer,
    store_dir: Path,
    zoopm: Zoopm,
    etag: str | None,
    last_modified: bool,
) -> None:
    file_server.add_bytes(PATH, model.data, etag=etag, last_modified=last_modified)
    _interrupt(model, file_server, 0.5)
    assert not list((store_dir / "tmp").glob("dl-*"))
    file_server.clear_log()

    _install(zoopm, model, store_dir)

    assert [_range_start(r) for r in _gets(file_server)] == [None]


def test_a_last_modified_date_alone_guards_a_resume(
    model: Model, file_server: FileServer, store_dir: Path, zoopm: Zoopm
) -> None:
    file_server.add_bytes(PATH, model.data, etag=None)
    _interrupt(model, file_server, 0.5)
    kept = _kept(store_dir)[0].stat().st_size
    file_server.clear_log()

    _install(zoopm, model, store_dir)

    [request] = _gets(file_server)
    assert (_range_start(request), request.status) == (kept, 206)
    assert request.headers["if-range"].endswith("GMT")


def test_a_kept_download_that_is_already_whole_needs_no_byte_sent_again(
    model: Model, file_server: FileServer, store_dir: Path, zoopm: Zoopm
) -> None:
    _interrupt(model, file_server, 0.5)
    part, _ = _kept(store_dir)
    kept = part.stat().st_size
    with part.open("ab") as stream:
        stream.write(model.data[kept:])  # as if killed after the last byte, before storing
    file_server.clear_log()
    sent_before = file_server.bytes_sent(PATH)

    _install(zoopm, model, store_dir)

    [request] = _gets(file_server)
    assert (_range_start(request), request.status) == (SIZE, 416)
    assert file_server.bytes_sent(PATH) == sent_before


def test_a_download_interrupted_while_locking_goes_on_in_the_next_lock(
    model: Model, file_server: FileServer, store_dir: Path, zoopm: Zoopm
) -> None:
    (model.project / "zoo.lock").unlink()
    locked_before = (model.project / "zoo.toml").read_bytes()
    _interrupt(model, file_server, 0.5, lock=True)
    kept = sorted((store_dir / "tmp").glob("dl-*-sha1-*.part"))
    assert len(kept) == 1
    size = kept[0].stat().st_size
    file_server.clear_log()

    run = zoopm("lock", project=model.project)

    assert run.exit_code == 0, run.stderr
    assert (model.project / "zoo.toml").read_bytes() == locked_before
    [request] = _gets(file_server)
    assert (_range_start(request), request.status) == (size, 206)
    _install(zoopm, model, store_dir)


# --- what was kept is never trusted ------------------------------------------------------------


def test_a_kept_prefix_tampered_with_between_runs_is_caught_and_downloaded_from_the_start(
    model: Model, file_server: FileServer, store_dir: Path, zoopm: Zoopm
) -> None:
    _interrupt(model, file_server, 0.5)
    part, _ = _kept(store_dir)
    with part.open("r+b") as stream:
        stream.seek(1000)
        stream.write(b"\x00" * 64)
    file_server.clear_log()

    run = zoopm("install", project=model.project)

    assert run.exit_code == 0, run.stderr
    assert "downloading again from the start" in run.stderr
    starts = [_range_start(r) for r in _gets(file_server)]
    assert starts[0] is not None and starts[1:] == [None]
    _installed(model, store_dir)
    assert not (store_dir / "quarantine").exists()


def test_a_kept_partial_longer_than_the_pinned_size_is_dropped(
    model: Model, file_server: FileServer, store_dir: Path, zoopm: Zoopm
) -> None:
    _interrupt(model, file_server, 0.5)
    part, _ = _kept(store_dir)
    with part.open("ab") as stream:
        stream.write(b"x" * SIZE)
    file_server.clear_log()

    _install(zoopm, model, store_dir)

    assert [_range_start(r) for r in _gets(file_server)] == [None]


def _sidecar_garbage(sidecar: Path, outside: Path) -> None:
    sidecar.write_bytes(b"{not json")


def _sidecar_huge(sidecar: Path, outside: Path) -> None:
    data = json.loads(sidecar.read_text())
    data["pad"] = "x" * (1 << 20)
    sidecar.write_text(json.dumps(data))


def _sidecar_other_url(sidecar: Path, outside: Path) -> None:
    data = json.loads(sidecar.read_text())
    data["url"] = data["url"].replace("big_net", "other_net")
    sidecar.write_text(json.dumps(data))


def _sidecar_size_past_the_part(sidecar: Path, outside: Path) -> None:
    data = json.loads(sidecar.read_text())
    data["size"] = SIZE * 10
    sidecar.write_text(json.dumps(data))


def _sidecar_header_injection(sidecar: Path, outside: Path) -> None:
    data = json.loads(sidecar.read_text())
    data["validator"] = '"x"\r\nX-Evil: 1'
    sidecar.write_text(json.dumps(data))


def _sidecar_other_pins(sidecar: Path, outside: Path) -> None:
    # The lock moved on to other bytes at the same URL: what was kept is of the old ones.
    data = json.loads(sidecar.read_text())
    data["pins"]["sha256"] = "0" * 64
    sidecar.write_text(json.dumps(data))


def _sidecar_weak_validator(sidecar: Path, outside: Path) -> None:
    data = json.loads(sidecar.read_text())
    data["validator"] = "W/" + data["validator"]
    sidecar.write_text(json.dumps(data))


def _sidecar_symlink(sidecar: Path, outside: Path) -> None:
    # A perfectly good sidecar, but reached through a symlink: never followed.
    outside.write_bytes(sidecar.read_bytes())
    sidecar.unlink()
    sidecar.symlink_to(outside)


def _sidecar_fifo(sidecar: Path, outside: Path) -> None:
    sidecar.unlink()
    os.mkfifo(sidecar)


def _sidecar_directory(sidecar: Path, outside: Path) -> None:
    sidecar.unlink()
    sidecar.mkdir()
    (sidecar / "inside").write_text("x")


@pytest.mark.parametrize(
    "tamper",
    [
        _sidecar_garbage,
        _sidecar_huge,
        _sidecar_other_url,
        _sidecar_size_past_the_part,
        _sidecar_header_injection,
        _sidecar_other_pins,
        _sidecar_weak_validator,
        _sidecar_symlink,
        _sidecar_fifo,
        _sidecar_directory,
    ],
)
def test_a_sidecar_that_is_not_exactly_what_zoopm_wrote_means_a_start_from_zero(
    model: Model,
    file_server: FileServer,
    store_dir: Path,
    zoopm: Zoopm,
    tmp_path: Path,
    tamper: Callable[[Path, Path], None],
) -> None:
    _interrupt(model, file_server, 0.5)
    _, sidecar = _kept(store_dir)
    outside = tmp_path / "outside.json"
    tamper(sidecar, outside)
    outside_before = outside.read_bytes() if outside.exists() else None
    file_server.clear_log()

    run = zoopm("install", project=model.project)

    assert run.exit_code == 0, run.stderr
    assert (model.project / "models" / "big" / BINARY).read_bytes() == model.data
    assert [_range_start(r) for r in _gets(file_server)] == [None]
    assert store_problems(store_dir.parent) == []
    if outside_before is not None:
        assert outside.read_bytes() == outside_before


def _part_symlink(part: Path, outside: Path) -> None:
    outside.write_bytes(part.read_bytes())
    part.unlink()
    part.symlink_to(outside)


def _part_hardlink(part: Path, outside: Path) -> None:
    outside.write_bytes(part.read_bytes())
    part.unlink()
    os.link(outside, part)


def _part_fifo(part: Path, outside: Path) -> None:
    part.unlink()
    os.mkfifo(part)


def _part_directory(part: Path, outside: Path) -> None:
    part.unlink()
    part.mkdir()


@pytest.mark.parametrize("plant", [_part_symlink, _part_hardlink, _part_fifo, _part_directory])
def test_a_symlink_hard_link_fifo_or_directory_at_the_partials_name_is_never_followed(
    model: Model,
    file_server: FileServer,
    store_dir: Path,
    zoopm: Zoopm,
    tmp_path: Path,
    plant: Callable[[Path, Path], None],
) -> None:
    _interrupt(model, file_server, 0.5)
    part, _ = _kept(store_dir)
    outside = tmp_path / "outside.part"
    plant(part, outside)
    outside_before = outside.read_bytes() if outside.exists() else None
    file_server.clear_log()

    run = zoopm("install", project=model.project)

    assert run.exit_code == 0, run.stderr
    assert (model.project / "models" / "big" / BINARY).read_bytes() == model.data
    assert [_range_start(r) for r in _gets(file_server)] == [None]
    assert store_problems(store_dir.parent) == []
    if outside_before is not None:
        assert outside.read_bytes() == outside_before
