"""Server faults, one each, while installing a model whose binary comes from a file server.

Each run either installs the right bytes (after retries or a resume) or fails with exit 1, one
`error:` line and one `hint:` line, no traceback, no partial blob in the store and nothing
under models/.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cli import Run, Zoopm
from tests.support.fileserver import FileServer
from tests.support.projects import TINY_NET, store_files, write_project

BINARY = "big_net.caffemodel"
PATH = f"/models/{BINARY}"
SIZE = 3 * 1024 * 1024 + 17


@dataclass(frozen=True)
class Model:
    project: Path
    data: bytes
    url: str


@pytest.fixture
def model(tmp_path: Path, file_server: FileServer) -> Model:
    """A local model directory whose 3 MiB binary is only on the file server."""
    data = random.Random(6).randbytes(SIZE)
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
    return Model(project, data, url)


@pytest.fixture(autouse=True)
def short_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOOPM_READ_TIMEOUT", "0.5")


def assert_installed(run: Run, model: Model, store_dir: Path) -> None:
    assert run.exit_code == 0, run.stderr
    assert (model.project / "models" / "big" / BINARY).read_bytes() == model.data
    for name in store_files(store_dir):
        assert not name.startswith("tmp/"), f"left behind: {name}"
        if name.startswith("sha256/"):
            digest = hashlib.sha256((store_dir / name).read_bytes()).hexdigest()
            assert digest == name.rsplit("/", 1)[1]


def assert_failed_cleanly(run: Run, model: Model, store_dir: Path, *words: str) -> None:
    assert run.exit_code == 1, run.stderr
    lines = run.stderr.strip().splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["error", "hint"], run.stderr
    assert model.url in lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    assert "internal error" not in run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    left = store_files(store_dir)
    assert not any(p.startswith(("sha256/", "tmp/blob-")) for p in left), left
    assert not (model.project / "models").exists()
    assert not (model.project / "zoo.lock").exists()


def gets(server: FileServer) -> list[int]:
    return [r.status for r in server.requests if r.path == PATH]


def test_a_body_cut_mid_way_is_resumed_from_where_it_broke(
    model: Model, file_server: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    file_server.cut(PATH, after_bytes=1_000_000)

    run = zoopm("install", project=model.project)

    assert_installed(run, model, store_dir)
    assert gets(file_server) == [200, 206]
    assert file_server.requests[-1].headers["range"] == "bytes=1000000-"


def test_a_burst_of_5xx_answers_is_retried_through(
    model: Model, file_server: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    file_server.fail(PATH, status=502, times=2)
    file_server.fail(PATH, status=503, times=1, headers={"Retry-After": "0"})

    run = zoopm("install", project=model.project)

    assert_installed(run, model, store_dir)
    assert gets(file_server) == [502, 502, 503, 200]


def test_a_5xx_burst_longer_than_the_retries_is_a_clear_error(
    model: Model, file_server: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    file_server.fail(PATH, status=503, times=10, headers={"Retry-After": "0"})

    run = zoopm("install", project=model.project)

    assert_failed_cleanly(run, model, store_dir, "HTTP 503", "gave up after 4 attempts")


def test_a_server_that_never_answers_times_out_after_the_read_timeout(
    model: Model, file_server: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    file_server.slow(PATH, delay_seconds=30, times=10)
    started = time.monotonic()

    run = zoopm("install", project=model.project)

    assert_failed_cleanly(run, model, store_dir, "timed out")
    # Four attempts of 0.5 s plus backoff: far from the 30 s the server would take.
    assert time.monotonic() - started < 10


def test_a_server_that_stalls_mid_body_is_given_up_on_and_resumed(
    model: Model, file_server: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    file_server.stall(PATH, after_bytes=1_000_000, delay_seconds=30)
    started = time.monotonic()

    run = zoopm("install", project=model.project)

    assert_installed(run, model, store_dir)
    assert time.monotonic() - started < 10
    assert gets(file_server) == [200, 206]


def test_a_content_length_larger_than_the_body_is_resumed(
    model: Model, file_server: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    file_server.misstate_length(PATH, by=+4096)

    run = zoopm("install", project=model.project)

    assert_installed(run, model, store_dir)


def test_a_content_length_smaller_than_the_body_is_a_clear_error(
    model: Model, file_server: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    file_server.misstate_length(PATH, by=-4096, times=10)

    run = zoopm("install", project=model.project)

    assert_failed_cleanly(run, model, store_dir, "mismatch")


def test_wrong_bytes_are_a_clear_error_and_never_stored(
    model: Model, file_server: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    file_server.corrupt(PATH, times=10)

    run = zoopm("install", project=model.project)

    assert_failed_cleanly(run, model, store_dir, "sha1 mismatch")


def test_an_html_page_instead_of_the_binary_is_a_clear_error(
    model: Model, file_server: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    file_server.html(PATH, times=10)

    run = zoopm("install", project=model.project)

    assert_failed_cleanly(run, model, store_dir, "HTML page")


def test_a_redirect_loop_is_a_clear_error(
    model: Model, file_server: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    file_server.redirect_loop(PATH)

    run = zoopm("install", project=model.project)

    assert_failed_cleanly(run, model, store_dir, "redirect")


def test_enormous_response_headers_are_a_clear_error(
    model: Model, file_server: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    file_server.huge_headers(PATH, size=100_000, times=10)

    run = zoopm("install", project=model.project)

    assert_failed_cleanly(run, model, store_dir, "header")


def test_enormous_headers_once_are_retried_through(
    model: Model, file_server: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    file_server.huge_headers(PATH, size=100_000)

    run = zoopm("install", project=model.project)

    assert_installed(run, model, store_dir)
