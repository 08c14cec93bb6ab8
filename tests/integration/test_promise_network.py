"""The network side of the promise (issue 6): every failure is a clear error, memory stays bounded,
mirrors are tried in turn, and a private repository's short-lived raw token is never written."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from tests.support.cli import Zoopm
from tests.support.fileserver import FileServer
from tests.support.github import GitHubEmulator
from tests.support.memory import peak_rss_mib
from tests.support.projects import REPO, TINY_NET, serve_binary_elsewhere, write_project
from zoopm.errors import Cancelled
from zoopm.network.net import HttpClient
from zoopm.reporting import NullProgress
from zoopm.tasks import CancelToken

BINARY = "tiny_net.caffemodel"
GIST = "d802a5849de39225bcc6"
REV = "24f213c3a4317a61e03f223759704b8b09b931b0"
REPO_REV = "5f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c"
TOKEN = "ghp_PRIVATEtoken0123456789abcdefABCDEF"
MiB = 1024 * 1024


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    return env


def baseline_rss_mib() -> float:
    """What a zoopm process weighs once everything a lock imports is loaded."""
    code = "import requests, yaml, zoopm.cli, zoopm.network.net, zoopm.operations.resolve"
    peak, run = peak_rss_mib(["-c", code], child_env())
    assert run.returncode == 0, run.stderr
    return peak


# --- defect 15: every requests failure is a NetworkError, so the next mirror is tried ------------


def test_mirrors_that_redirect_in_a_loop_or_to_ftp_are_skipped_for_the_next_url(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm
) -> None:
    data = serve_binary_elsewhere(tiny_net, f"http://dl.caffe.invalid/{BINARY}")
    file_server.redirect_loop(f"/loop/{BINARY}")
    file_server.redirect(f"/ftp/{BINARY}", f"ftp://127.0.0.1/{BINARY}")
    file_server.add_bytes(f"/good/{BINARY}", data)
    mirrors = ", ".join(f'"{file_server.url(p)}"' for p in ("/loop/", "/ftp/", "/good/"))
    extra = f'\n[mirrors]\n"http://dl.caffe.invalid/" = [{mirrors}]\n'
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'}, extra)

    run = zoopm("install", project=project)

    assert run.exit_code == 0, run.stderr
    assert (project / "models" / "tiny" / BINARY).read_bytes() == data
    assert "internal error" not in run.stderr
    assert "redirect" in run.stderr and "trying the next URL" in run.stderr
    assert "ftp" in run.stderr


def test_a_binary_url_that_redirects_in_a_loop_is_an_error_naming_the_url(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, zoopm: Zoopm
) -> None:
    url = file_server.redirect_loop(f"/loop/{BINARY}")
    serve_binary_elsewhere(tiny_net, url)
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})

    run = zoopm("install", project=project)

    assert run.exit_code == 1
    assert run.error_line.startswith(f"error: {url}: ")
    assert "redirect" in run.error_line
    assert len(run.stderr.strip().splitlines()) == 2  # error and hint, no traceback


# --- defect 16: settings from the environment are checked where they are read -------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ZOOPM_GITHUB_API", "notaurl"),
        ("ZOOPM_GITHUB_API", "ftp://api.example.com"),
        ("ZOOPM_GITHUB_API", "https://"),
        ("ZOOPM_GITHUB_API", "http:///api/v3"),
        ("ZOOPM_GITHUB_API", "https://exa mple.com"),
        ("ZOOPM_READ_TIMEOUT", "soon"),
        ("ZOOPM_READ_TIMEOUT", "0"),
        ("ZOOPM_READ_TIMEOUT", "nan"),
        ("ZOOPM_READ_TIMEOUT", "inf"),
        ("ZOOPM_LOCK_TIMEOUT", "soon"),
        ("ZOOPM_LOCK_TIMEOUT", "-1"),
        ("ZOOPM_LOCK_TIMEOUT", "inf"),
        ("ZOOPM_JOBS", "\u00b2"),
        ("ZOOPM_JOBS", "100000"),
        ("GITHUB_TOKEN", "ghp_two\nlines"),
    ],
)
def test_an_unusable_environment_value_is_a_usage_error_naming_the_variable(
    tmp_path: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    project = write_project(tmp_path / "proj", {"nin": f'{{ gist = "{GIST}", rev = "{REV}" }}'})

    run = zoopm("lock", project=project)

    assert run.exit_code == 2, run.stderr
    assert name in run.error_line
    assert "internal error" not in run.stderr
    assert run.stderr.splitlines()[-1].startswith("hint: ")
    if name == "GITHUB_TOKEN":
        assert "ghp_two" not in run.stderr  # a token never reaches the output, not even a bad one


def test_a_github_api_url_with_a_prefix_and_a_trailing_slash_is_accepted(
    tmp_path: Path, github: GitHubEmulator, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZOOPM_GITHUB_API", github.api_url + "/")
    project = write_project(
        tmp_path / "proj", {"nin": f'{{ gist = "{GIST}", rev = "{REV}", binary = false }}'}
    )

    run = zoopm("lock", project=project)

    assert run.exit_code == 0, run.stderr


# --- defect 20: no answer and no file is held whole in memory -----------------------------------


def oversized_api_answer(tmp_path: Path, server: FileServer, size: int) -> str:
    """A gist revision whose API answer is `size` bytes (a sparse file: no disk, no RAM)."""
    answer = tmp_path / "answer.json"
    with answer.open("wb") as stream:
        stream.truncate(size)
    path = f"/api/gists/{GIST}/{REV}"
    server.add_file(path, answer, content_type="application/json")
    return path


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "no-length"])
def test_an_api_answer_over_the_size_bound_is_refused_and_says_so(
    tmp_path: Path,
    file_server: FileServer,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
    announced: bool,
) -> None:
    path = oversized_api_answer(tmp_path, file_server, 40 * MiB)
    if not announced:
        file_server.unannounced(path, times=10)
    monkeypatch.setenv("ZOOPM_GITHUB_API", file_server.url("/api"))
    project = write_project(tmp_path / "proj", {"nin": f'{{ gist = "{GIST}", rev = "{REV}" }}'})

    run = zoopm("lock", project=project)

    assert run.exit_code == 1, run.stderr
    assert file_server.url(path) in run.error_line
    assert "larger than 32 MiB" in run.error_line
    assert run.stderr.splitlines()[-1].startswith("hint: ")
    assert file_server.count(path) == 1  # a size is not a transient failure: no retry
    assert not (project / "zoo.lock").exists()


def test_an_endless_api_answer_is_cut_off_at_the_bound_with_memory_to_match(
    tmp_path: Path, file_server: FileServer
) -> None:
    path = oversized_api_answer(tmp_path, file_server, 400 * MiB)
    file_server.unannounced(path)
    project = write_project(tmp_path / "proj", {"nin": f'{{ gist = "{GIST}", rev = "{REV}" }}'})
    env = child_env() | {"ZOOPM_GITHUB_API": file_server.url("/api")}
    baseline = baseline_rss_mib()

    peak, run = peak_rss_mib(["-m", "zoopm", "-C", str(project), "lock"], env)

    assert run.returncode == 1, run.stderr
    assert "larger than 32 MiB" in run.stderr
    print(f"baseline {baseline:.0f} MiB, lock against a 400 MiB answer {peak:.0f} MiB")
    assert peak < baseline + 80, f"peak RSS {peak:.0f} MiB, baseline {baseline:.0f} MiB"


def test_locking_a_model_of_many_large_info_files_keeps_memory_bounded(
    tmp_path: Path, github: GitHubEmulator
) -> None:
    # 20 files of 9 MiB: 180 MiB of info files. They share one blob in the emulator; a client
    # that keeps each download in memory holds 20 copies.
    big = b"# padding\n" * (9 * MiB // 10)
    files = {f"models/big/part{i:02}.prototxt": big for i in range(20)}
    files["models/big/readme.md"] = (TINY_NET / "readme.md").read_bytes()
    github.add_repo_tree("acme", "big-models", REPO_REV, files)
    spec = (
        f'{{ github = "acme/big-models", path = "models/big", rev = "{REPO_REV}", binary = false}}'
    )
    project = write_project(tmp_path / "proj", {"big": spec})
    baseline = baseline_rss_mib()

    peak, run = peak_rss_mib(["-m", "zoopm", "-C", str(project), "lock"], child_env())

    assert run.returncode == 0, run.stderr
    lock = (project / "zoo.lock").read_text()
    assert all(f'path = "part{i:02}.prototxt"' in lock for i in range(20)), lock
    print(f"baseline {baseline:.0f} MiB, lock of 180 MiB of info files {peak:.0f} MiB")
    assert peak < baseline + 60, f"peak RSS {peak:.0f} MiB, baseline {baseline:.0f} MiB"


def test_an_info_file_that_is_not_what_the_api_listed_leaves_no_blob(
    tmp_path: Path, github: GitHubEmulator, zoopm: Zoopm, store_dir: Path
) -> None:
    files = {
        "models/m/readme.md": (TINY_NET / "readme.md").read_bytes(),
        "models/m/deploy.prototxt": (TINY_NET / "deploy.prototxt").read_bytes(),
    }
    github.add_repo_tree("acme", "models", REPO_REV, files)
    github.corrupt_raw("deploy.prototxt")
    spec = f'{{ github = "acme/models", path = "models/m", rev = "{REPO_REV}", binary = false }}'
    project = write_project(tmp_path / "proj", {"m": spec})

    run = zoopm("lock", project=project)

    assert run.exit_code == 1
    assert "deploy.prototxt: git blob mismatch" in run.error_line
    leftovers = [p for p in store_dir.rglob("*") if p.is_file() and "locks" not in p.parts]
    assert [p.name for p in leftovers if "sha256" in p.parts or p.name.startswith("blob-")] == []


# --- defect 8: a private repository's raw token is used, never written --------------------------


def private_model(github: GitHubEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    files = {
        "models/tiny/readme.md": (TINY_NET / "readme.md").read_bytes(),
        "models/tiny/deploy.prototxt": (TINY_NET / "deploy.prototxt").read_bytes(),
    }
    github.add_repo_tree("acme", "private-models", REPO_REV, files)
    raw_token = github.make_private("acme", "private-models")
    github.allow_token(TOKEN)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    return raw_token


PRIVATE_SPEC = (
    f'{{ github = "acme/private-models", path = "models/tiny", rev = "{REPO_REV}", '
    "binary = false }"
)


def files_holding(root: Path, secret: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_a_private_repository_raw_token_is_used_for_the_download_but_never_written(
    tmp_path: Path,
    github: GitHubEmulator,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
    isolated_env: Path,
) -> None:
    raw_token = private_model(github, monkeypatch)
    project = write_project(tmp_path / "proj", {"tiny": PRIVATE_SPEC})

    run = zoopm("-v", "install", project=project)

    assert run.exit_code == 0, run.stderr
    installed = project / "models" / "tiny" / "deploy.prototxt"
    assert installed.read_bytes() == (TINY_NET / "deploy.prototxt").read_bytes()
    raw = [r for r in github.requests if r.server == "raw"]
    assert raw and all(r.query.get("token") == raw_token for r in raw)
    lock = (project / "zoo.lock").read_text()
    assert "token" not in lock
    assert f'/acme/private-models/{REPO_REV}/models/tiny/deploy.prototxt"' in lock
    assert files_holding(project, raw_token) == []
    assert files_holding(isolated_env, raw_token) == []
    assert raw_token not in run.stdout + run.stderr


def test_a_private_model_installs_on_a_machine_without_its_files_only_with_a_token(
    tmp_path: Path, github: GitHubEmulator, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    private_model(github, monkeypatch)
    project = write_project(tmp_path / "proj", {"tiny": PRIVATE_SPEC})
    assert zoopm("lock", project=project).exit_code == 0
    locked = (project / "zoo.lock").read_bytes()
    # Another machine: an empty store, and the raw token of the first lock long expired.
    monkeypatch.setenv("ZOOPM_HOME", str(tmp_path / "other-home"))
    github.expire_raw_tokens("acme", "private-models")
    monkeypatch.delenv("GITHUB_TOKEN")

    without_token = zoopm("install", project=project)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    with_token = zoopm("install", project=project)

    assert without_token.exit_code == 1, without_token.stderr
    assert "acme/private-models" in without_token.error_line
    assert "GITHUB_TOKEN" in without_token.stderr
    assert "internal error" not in without_token.stderr
    assert with_token.exit_code == 0, with_token.stderr
    assert (project / "zoo.lock").read_bytes() == locked
    installed = project / "models" / "tiny" / "deploy.prototxt"
    assert installed.read_bytes() == (TINY_NET / "deploy.prototxt").read_bytes()


# --- the cancellation hook Ctrl-C needs (defect 10) ---------------------------------------------


class _Collect:
    def __init__(self) -> None:
        self.written = 0

    def write(self, chunk: bytes) -> None:
        self.written += len(chunk)

    def reset(self) -> None:
        self.written = 0


def test_a_cancelled_token_stops_a_download_between_chunks(file_server: FileServer) -> None:
    url = file_server.add_bytes("/big.bin", os.urandom(8 * MiB))
    file_server.stall("/big.bin", after_bytes=2 * MiB, delay_seconds=1.0)
    token = CancelToken()
    client = HttpClient(cancel=token)
    sink = _Collect()
    threading.Timer(0.3, token.cancel).start()

    with pytest.raises(Cancelled):
        client.download(url, sink, NullProgress())

    assert sink.written < 8 * MiB


def test_a_cancelled_token_ends_a_retry_wait_at_once(file_server: FileServer) -> None:
    url = file_server.add_bytes("/flaky.bin", b"x" * 100)
    file_server.fail("/flaky.bin", status=503, times=5, headers={"Retry-After": "30"})
    token = CancelToken()
    client = HttpClient(cancel=token)
    threading.Timer(0.3, token.cancel).start()
    started = time.monotonic()

    with pytest.raises(Cancelled):
        client.download(url, _Collect(), NullProgress())

    assert time.monotonic() - started < 2
    assert file_server.count("/flaky.bin") == 1


def test_a_cancelled_token_makes_no_request(file_server: FileServer) -> None:
    url = file_server.add_bytes("/a.bin", b"x")
    token = CancelToken()
    token.cancel("stopped by the test")

    with pytest.raises(Cancelled):
        HttpClient(cancel=token).get(url, {})
    with pytest.raises(Cancelled):
        HttpClient(cancel=token).download(url, _Collect(), NullProgress())

    assert file_server.count() == 0
