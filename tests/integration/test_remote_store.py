"""The shared remote store: machine A installs and pushes, machine B installs from the remote
with the origin gone, every byte proven by the hash zoo.lock pins.

S3 is a real S3 API on 127.0.0.1 (moto in server mode, reached through AWS_ENDPOINT_URL as a
MinIO user would); the static-HTTP remote is the tests' file server; file:// needs no server.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Zoopm, ok, refused
from tests.support.fileserver import FileServer
from tests.support.github import FIXTURES, GitHubEmulator
from tests.support.projects import mirrors_for, serve_binary_elsewhere, tree, write_project
from tests.support.s3 import Bucket, S3Server, use_endpoint, use_s3
from zoopm import Project
from zoopm.remote_store.location import blob_key
from zoopm.reporting import NullProgress, NullReporter, Progress

NIN = "d802a5849de39225bcc6"
NIN_REV = "8df5fd6b236eb157bc7c1f1aca9eb11c5e86576a"
BVLC_REV = "9b891540183ddc834a02b2bd81b31afae71b2153"
MiB = 1024 * 1024
NIN_BINARY = (FIXTURES / "binaries" / "nin_imagenet.caffemodel").read_bytes()


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


@pytest.fixture
def bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Bucket:
    return use_s3(s3_server, monkeypatch, tmp_path)


def machine(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """From here on, zoopm runs as on another machine: its own ZOOPM_HOME, an empty store."""
    monkeypatch.setenv("ZOOPM_HOME", str(home))


def three_models(root: Path, tiny_net: Path, host: FileServer) -> Path:
    """A gist model, a repository model and a directory of the project's own."""
    models = {
        "nin": f'{{ gist = "{NIN}", rev = "{NIN_REV}" }}',
        "googlenet": f'{{ github = "BVLC/caffe", path = "models/bvlc_googlenet", '
        f'rev = "{BVLC_REV}" }}',
        "tiny": '{ path = "src/tiny" }',
    }
    project = write_project(root, models, mirrors_for(host))
    shutil.copytree(tiny_net, project / "src" / "tiny")
    return project


def checkout(project: Path, where: Path) -> Path:
    """A clone on another machine: zoo.toml and zoo.lock only (src/tiny is not committed)."""
    where.mkdir(parents=True)
    for name in ("zoo.toml", "zoo.lock"):
        shutil.copyfile(project / name, where / name)
    return where


def origin_gone(github: GitHubEmulator, host: FileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The gist and raw hosts and the model host stop answering: only the remote store is left."""
    dead = github.api_url
    github.stop()
    host.stop()
    monkeypatch.setenv("ZOOPM_GITHUB_API", dead)


def push_json(zoopm: Zoopm, project: Path, *args: str) -> dict[str, Any]:
    run = ok(zoopm("push", "--json", *args, project=project))
    document = json.loads(run.stdout)
    assert isinstance(document, dict)
    return document


# --- the check: machine A pushes, machine B installs with the origin gone --------------


def test_machine_b_installs_everything_from_s3_with_the_origin_unreachable(
    tmp_path: Path,
    github: GitHubEmulator,
    model_host: FileServer,
    tiny_net: Path,
    bucket: Bucket,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ZOOPM_REMOTE", bucket.url())
    machine(monkeypatch, tmp_path / "machine-a")
    project = three_models(tmp_path / "a", tiny_net, model_host)
    ok(zoopm("install", project=project))
    pushed = push_json(zoopm, project)
    blobs = len(pushed["uploaded"]["blobs"])
    assert blobs >= 9 and pushed["present"] == {"blobs": 0, "bytes": 0}
    # The local store's layout: each blob by its sha256, each sha1 alias naming one.
    keys = sorted(bucket.objects())
    assert len([k for k in keys if k.startswith("team/zoopm/sha256/")]) == blobs
    assert len([k for k in keys if k.startswith("team/zoopm/sha1/")]) == blobs
    assert len(keys) == 2 * blobs
    assert push_json(zoopm, project)["uploaded"] == {"blobs": [], "bytes": 0}

    machine(monkeypatch, tmp_path / "machine-b")
    origin_gone(github, model_host, monkeypatch)
    clone = checkout(project, tmp_path / "b")

    run = ok(zoopm("-v", "install", "--frozen", project=clone))

    assert tree(clone / "models") == tree(project / "models")
    assert (clone / "models" / "nin" / "nin_imagenet.caffemodel").read_bytes() == NIN_BINARY
    assert f"nin/nin_imagenet.caffemodel: from the remote store {bucket.url()}" in run.stderr
    # The only warning: the project's own directory did not come along with the clone.
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: tiny: src/tiny changed since zoo.lock was written (src/tiny cannot be read); "
        "install places what zoo.lock pins (run 'zoopm lock' to pin the new contents)"
    ]
    ok(zoopm("verify", "--store", project=clone))
    again = push_json(zoopm, clone)
    assert again["uploaded"] == {"blobs": [], "bytes": 0}
    assert again["present"]["blobs"] == blobs


def nin_project(root: Path, host: FileServer) -> Path:
    return write_project(
        root, {"nin": f'{{ gist = "{NIN}", rev = "{NIN_REV}" }}'}, mirrors_for(host)
    )


def locked_on_a_then_b(
    tmp_path: Path, host: FileServer, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The nin project, locked on machine A; from here on zoopm runs on machine B, whose store
    is empty."""
    project = nin_project(tmp_path / "a", host)
    ok(zoopm("lock", project=project))
    machine(monkeypatch, tmp_path / "machine-b")
    return project


def nin_key(bucket_prefix: str = "team/zoopm") -> str:
    sha = hashlib.sha256(NIN_BINARY).hexdigest()
    return f"{bucket_prefix}/sha256/{sha[:2]}/{sha}"


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[:-1] + bytes([data[-1] ^ 1]), id="same-size"),
        pytest.param(lambda data: data[:100], id="truncated"),
        pytest.param(lambda data: data + b"more", id="longer"),
    ],
)
def test_a_corrupted_remote_blob_is_detected_skipped_and_fetched_from_the_origin(
    damage: object,
    tmp_path: Path,
    github: GitHubEmulator,
    model_host: FileServer,
    bucket: Bucket,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ZOOPM_REMOTE", bucket.url())
    project = nin_project(tmp_path / "a", model_host)
    ok(zoopm("install", project=project))
    ok(zoopm("push", project=project))
    assert callable(damage)
    bucket.put(nin_key(), damage(NIN_BINARY))
    machine(monkeypatch, tmp_path / "machine-b")
    clone = checkout(project, tmp_path / "b")
    model_host.clear_log()

    run = ok(zoopm("-v", "install", "--frozen", project=clone))

    assert (clone / "models" / "nin" / "nin_imagenet.caffemodel").read_bytes() == NIN_BINARY
    warned = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "skipped, fetching from the origin" in warned[0], run.stderr
    assert "nin/nin_imagenet.caffemodel: from http://127.0.0.1:" in run.stderr
    assert [r.path for r in model_host.requests] == ["/nin/nin_imagenet.caffemodel"]
    # Nothing of the wrong copy stayed in machine B's store; the other files came from S3.
    ok(zoopm("verify", "--store", project=clone))
    assert "nin/deploy.prototxt: from the remote store" in run.stderr
    # The remote keeps its wrong copy (install never writes to it); push replaces one whose
    # size is wrong, and the next install takes the binary from the remote store.
    if len(damage(NIN_BINARY)) != len(NIN_BINARY):
        assert len(push_json(zoopm, clone)["uploaded"]["blobs"]) == 1
        assert bucket.get(nin_key()) == NIN_BINARY


def test_a_blob_the_remote_lacks_comes_from_the_origin_and_v_says_where_each_came_from(
    tmp_path: Path,
    github: GitHubEmulator,
    model_host: FileServer,
    bucket: Bucket,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ZOOPM_REMOTE", bucket.url())
    project = locked_on_a_then_b(tmp_path, model_host, zoopm, monkeypatch)

    run = ok(zoopm("-v", "install", "--frozen", project=project))

    assert "nin/nin_imagenet.caffemodel: not in the remote store " + bucket.url() in run.stderr
    assert "nin/nin_imagenet.caffemodel: from http://127.0.0.1:" in run.stderr
    assert "warning" not in run.stderr
    assert bucket.objects() == {}  # install never writes to the remote store


def test_an_unreachable_remote_is_said_once_and_the_origin_serves_the_rest(
    tmp_path: Path,
    github: GitHubEmulator,
    model_host: FileServer,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with FileServer() as gone:
        dead = gone.url("/zoopm")
    monkeypatch.setenv("ZOOPM_REMOTE", dead)
    project = locked_on_a_then_b(tmp_path, model_host, zoopm, monkeypatch)

    run = ok(zoopm("install", "--frozen", project=project))

    assert (project / "models" / "nin" / "nin_imagenet.caffemodel").read_bytes() == NIN_BINARY
    warned = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1, run.stderr
    assert "refused the connection" in warned[0]
    assert "the remote store is not asked again in this run" in warned[0]


def test_offline_never_contacts_the_remote_store(
    tmp_path: Path,
    github: GitHubEmulator,
    model_host: FileServer,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    remote = FileServer()
    with remote:
        monkeypatch.setenv("ZOOPM_REMOTE", remote.url("/zoopm"))
        project = nin_project(tmp_path / "a", model_host)
        ok(zoopm("lock", project=project))
        remote.clear_log()
        machine(monkeypatch, tmp_path / "machine-b")

        run = zoopm("install", "--frozen", "--offline", project=project)

        assert run.exit_code == 1 and "not in the store" in run.error_line, run.stderr
        monkeypatch.setenv("ZOOPM_OFFLINE", "1")
        refused(zoopm("push", "--all", project=project), "zoopm is offline")
        assert remote.requests == []


# --- the static-HTTP remote: read-only -----------------------------------------------------------


def serve_directory(server: FileServer, directory: Path, prefix: str) -> None:
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            server.add_file(f"{prefix}/{path.relative_to(directory).as_posix()}", path)


def test_a_static_web_server_serves_a_pushed_directory_as_a_read_only_remote(
    tmp_path: Path,
    github: GitHubEmulator,
    model_host: FileServer,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shared = tmp_path / "shared" / "zoopm"
    monkeypatch.setenv("ZOOPM_REMOTE", shared.as_uri())
    project = nin_project(tmp_path / "a", model_host)
    ok(zoopm("install", project=project))
    pushed = push_json(zoopm, project)
    assert len(pushed["uploaded"]["blobs"]) == 3
    # Whole files only: no temp file is left beside them.
    assert sorted(p.name for p in (shared / "sha256").rglob("*") if p.is_file()) == sorted(
        pushed["uploaded"]["blobs"]
    )
    assert not list(shared.rglob("*.part"))
    with FileServer() as web:
        serve_directory(web, shared, "/cache/zoopm")
        monkeypatch.setenv("ZOOPM_REMOTE", web.url("/cache/zoopm/"))
        machine(monkeypatch, tmp_path / "machine-b")
        origin_gone(github, model_host, monkeypatch)
        clone = checkout(project, tmp_path / "b")

        run = ok(zoopm("-v", "install", "--frozen", project=clone))

        assert tree(clone / "models") == tree(project / "models")
        assert f"nin/nin_imagenet.caffemodel: from the remote store {web.url('/cache/zoopm')}" in (
            run.stderr
        )
        web.clear_log()
        refused(zoopm("push", project=clone), "is read-only")
        assert web.requests == []


# --- push: what it sends, and what it refuses ------------------------------------------------


def test_push_all_sends_every_blob_of_the_local_store_and_push_needs_them_all_first(
    tmp_path: Path,
    github: GitHubEmulator,
    model_host: FileServer,
    tiny_net: Path,
    bucket: Bucket,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ZOOPM_REMOTE", bucket.url("cache"))
    nin = nin_project(tmp_path / "nin", model_host)
    tiny = write_project(tmp_path / "tiny", {"tiny": f'{{ path = "{tiny_net}" }}'})
    ok(zoopm("install", project=nin))
    ok(zoopm("install", project=tiny))

    one = push_json(zoopm, tiny)
    everything = push_json(zoopm, tmp_path, "--all")  # outside any project: the whole store

    assert everything["all"] is True
    stored = sorted(p.name for p in (tmp_path / "zoopm-home" / "store" / "sha256").rglob("*"))
    stored = [name for name in stored if len(name) == 64]
    pushed = set(one["uploaded"]["blobs"]) | set(everything["uploaded"]["blobs"])
    assert sorted(pushed) == stored
    assert everything["present"]["blobs"] == len(one["uploaded"]["blobs"])
    blob_keys = sorted(k for k in bucket.objects() if k.startswith("cache/sha256/"))
    assert blob_keys == sorted(f"cache/sha256/{s[:2]}/{s}" for s in stored)
    aliases = list((tmp_path / "zoopm-home" / "store" / "sha1").rglob("*"))
    alias_keys = [k for k in bucket.objects() if k.startswith("cache/sha1/")]
    assert sorted(k.rsplit("/", 1)[1] for k in alias_keys) == sorted(
        p.name for p in aliases if p.is_file()
    )

    # A project whose lock pins what this store lacks: nothing is sent, the files are named.
    machine(monkeypatch, tmp_path / "machine-b")
    before = bucket.objects()
    refused(zoopm("push", project=nin), "3 file(s) zoo.lock pins are not in the local store")
    assert bucket.objects() == before


def test_a_local_blob_changed_on_disk_is_never_pushed(
    tmp_path: Path,
    tiny_net: Path,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shared = tmp_path / "shared"
    monkeypatch.setenv("ZOOPM_REMOTE", shared.as_uri())
    project = write_project(tmp_path / "p", {"tiny": f'{{ path = "{tiny_net}" }}'})
    ok(zoopm("install", "--link-mode", "copy", project=project))
    sha = hashlib.sha256((tiny_net / "tiny_net.caffemodel").read_bytes()).hexdigest()
    blob = tmp_path / "zoopm-home" / "store" / "sha256" / sha[:2] / sha
    blob.chmod(0o644)
    blob.write_bytes(b"\0" * blob.stat().st_size)

    run = zoopm("push", project=project)

    refused(run, "1 file(s) zoo.lock pins are not in the local store, or were changed there")
    assert "tiny/tiny_net.caffemodel" in run.error_line
    assert not blob.exists()  # moved to quarantine
    assert not any(p.name == blob.name for p in shared.rglob("*"))
    assert not [p for p in shared.rglob("*") if p.is_file() and p.name.startswith(".")]


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ("bucket/prefix", "not a URL with a scheme"),
        ("s3://key:secret@bucket/prefix", "holds an '@'"),
        ("s3://AKIAKEY:wJal/K7MDENG/secretKEY@bucket/prefix", "holds an '@'"),
        ("https://user:s3cr/secret@host/zoopm", "holds an '@'"),
        ("https://cache.example/zoopm?X-Amz-Signature=abc", "query or fragment"),
        ("file://relative/dir", "absolute path"),
        ("s3://", "names no bucket or host"),
        ("memory://team/zoopm", "lasts only as long as one zoopm process"),
        ("https://acct.blob.core.windows.net/zoo?sv=1&sig=secretSIG", "query or fragment"),
        ("https://cache.example/zoo#token=secret", "query or fragment"),
        ("s3://AKIAKEY:secretKEY:bucket/prefix", "host or port cannot be read"),
        ("s3://AKIAKEY:secretKEY\uff20bucket/prefix", "holds an '@'"),
        ("s3://team//zoopm", "empty, '.' or '..' part"),
        ("s3://team/../other", "empty, '.' or '..' part"),
        ("file:///srv/x/../zoopm", "empty, '.' or '..' part"),
    ],
)
def test_a_remote_url_zoopm_cannot_use_is_refused_naming_where_it_was_set(
    where: str, problem: str, tmp_path: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = write_project(tmp_path / "p", {}, f'\n[store]\nremote = "{where}"\n')
    run = refused(zoopm("push", project=project), problem, code=2)
    assert run.error_line.startswith("error: zoo.toml:"), run.stderr
    assert "secret" not in run.stderr  # a key in the URL is never printed

    monkeypatch.setenv("ZOOPM_REMOTE", where)
    run = refused(zoopm("list", project=project), problem, code=2)
    assert "ZOOPM_REMOTE" in run.error_line
    assert "secret" not in run.stderr


def test_zoopm_remote_wins_over_zoo_toml_which_wins_over_config_toml_and_off_turns_it_off(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "xdg-config" / "zoopm" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[store]\nremote = "{(tmp_path / "from-config").as_uri()}"\n')
    plain = write_project(tmp_path / "plain", {"tiny": f'{{ path = "{tiny_net}" }}'})
    ok(zoopm("install", project=plain))
    named = write_project(
        tmp_path / "named",
        {"tiny": f'{{ path = "{tiny_net}" }}'},
        f'\n[store]\nremote = "{(tmp_path / "from-toml").as_uri()}"\n',
    )
    ok(zoopm("install", project=named))

    assert push_json(zoopm, plain)["remote"] == (tmp_path / "from-config").as_uri()
    assert push_json(zoopm, named)["remote"] == (tmp_path / "from-toml").as_uri()
    monkeypatch.setenv("ZOOPM_REMOTE", (tmp_path / "from-env").as_uri())
    assert push_json(zoopm, named)["remote"] == (tmp_path / "from-env").as_uri()
    monkeypatch.setenv("ZOOPM_REMOTE", "off")
    refused(zoopm("push", project=named), "no remote store is configured")


# --- the optional extra ---------------------------------------------------------------------


def test_without_the_extra_an_s3_remote_is_one_clear_error_naming_it(
    tmp_path: Path, tiny_net: Path, file_server: FileServer
) -> None:
    """A Python where fsspec cannot be imported, as after 'pip install zoopm' alone."""
    blocker = tmp_path / "no-fsspec"
    (blocker / "fsspec").mkdir(parents=True)
    (blocker / "fsspec" / "__init__.py").write_text("raise ImportError('No module named fsspec')\n")
    url = file_server.url("/tiny_net.caffemodel")
    file_server.add_bytes("/tiny_net.caffemodel", serve_binary_elsewhere(tiny_net, url))
    project = write_project(tmp_path / "p", {"tiny": f'{{ path = "{tiny_net}" }}'})
    env = dict(os.environ, PYTHONPATH=f"{blocker}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")

    def zoopm(*args: str, remote: str | None) -> subprocess.CompletedProcess[str]:
        run_env = dict(env) | ({"ZOOPM_REMOTE": remote} if remote else {})
        return subprocess.run(
            [sys.executable, "-m", "zoopm", "-C", str(project), *args],
            env=run_env,
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )

    # No remote configured: nothing changes, and fsspec is never imported.
    assert zoopm("install", remote=None).returncode == 0
    pushed = zoopm("push", remote="s3://team-models/zoopm")
    assert pushed.returncode == 1, pushed.stderr
    lines = pushed.stderr.strip().splitlines()
    assert lines == [
        "error: remote store s3://team-models/zoopm (ZOOPM_REMOTE) needs fsspec, which is not "
        "installed",
        "hint: install the extra: pip install 'zoopm[remote]' (fsspec and s3fs)",
    ]
    # install needs nothing from the remote (the store has it all), so it never opens it.
    assert zoopm("install", remote="s3://team-models/zoopm").returncode == 0
    shutil.rmtree(project / "models")
    shutil.rmtree(tmp_path / "zoopm-home" / "store")  # now the binary must be fetched
    failed = zoopm("install", remote="s3://team-models/zoopm")
    assert failed.returncode == 1 and "needs fsspec" in failed.stderr, failed.stderr
    assert "Traceback" not in failed.stderr


# --- interruptions and two pushes at once ------------------------------------------------------


class _CtrlCAfter(NullReporter):
    """Presses Ctrl-C once `after` bytes of an upload went by."""

    def __init__(self, after: int) -> None:
        self.after = after

    def transfer(self, label: str, total: int | None) -> Progress:
        reporter = self

        class _Bar(NullProgress):
            def advance(self, nbytes: int) -> None:
                reporter.after -= nbytes
                if label.startswith("uploading") and reporter.after <= 0:
                    raise KeyboardInterrupt

        return _Bar()


def big_project(root: Path, size: int) -> tuple[Path, bytes]:
    """A project whose one model is a directory with a large binary of its own."""
    weights = os.urandom(size)
    model = root / "src" / "big"
    model.mkdir(parents=True)
    (model / "deploy.prototxt").write_text('name: "big"\n')
    (model / "big.caffemodel").write_bytes(weights)
    (model / "readme.md").write_text(
        "---\ncaffemodel: big.caffemodel\n"
        "caffemodel_url: http://models.zoopm.invalid/big.caffemodel\n"
        f"sha1: {hashlib.sha1(weights).hexdigest()}\n---\n"
    )
    return write_project(root, {"big": '{ path = "src/big" }'}), weights


def test_ctrl_c_in_the_middle_of_an_upload_leaves_no_object_and_no_open_upload(
    tmp_path: Path, bucket: Bucket, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZOOPM_REMOTE", bucket.url())
    monkeypatch.setenv("ZOOPM_JOBS", "1")
    project, weights = big_project(tmp_path / "p", 24 * MiB)  # three parts of a multipart upload
    ok(zoopm("install", project=project))
    big = blob_key(hashlib.sha256(weights).hexdigest())

    with Project(project, reporter=_CtrlCAfter(12 * MiB)) as api, pytest.raises(KeyboardInterrupt):
        api.push()

    assert f"team/zoopm/{big}" not in bucket.objects()
    assert bucket.uploads_in_progress() == []  # the parts sent were thrown away
    again = push_json(zoopm, project)
    assert again["uploaded"]["bytes"] >= len(weights)
    assert bucket.get(f"team/zoopm/{big}") == weights


def test_two_pushes_at_once_both_succeed_and_every_object_is_whole(
    tmp_path: Path, bucket: Bucket, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZOOPM_REMOTE", bucket.url())
    project, weights = big_project(tmp_path / "p", 12 * MiB)
    ok(zoopm("install", project=project))
    command = [sys.executable, "-m", "zoopm", "-C", str(project), "push", "--json"]

    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in "ab"]
    results = [run.communicate(timeout=120) for run in runs]

    assert [run.returncode for run in runs] == [0, 0], results
    documents = [json.loads(out) for out, _ in results]
    assert all(d["uploaded"]["bytes"] + d["present"]["bytes"] > len(weights) for d in documents)
    big = blob_key(hashlib.sha256(weights).hexdigest())
    assert bucket.get(f"team/zoopm/{big}") == weights
    assert push_json(zoopm, project)["uploaded"]["blobs"] == []


# --- found by a hostile user (each failed before its fix) ---------------------------------------


def interrupt_when(
    command: list[str], ready: Callable[[], bool], env: dict[str, str]
) -> tuple[int, str, float]:
    """Runs command, presses Ctrl-C as soon as ready() (polled), and returns its exit code,
    stderr and how long it took to stop after the signal."""
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not ready():
        assert process.poll() is None, "it ended before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    sent = time.monotonic()
    _, stderr = process.communicate(timeout=30)
    return process.returncode, stderr, time.monotonic() - sent


def two_big_models(root: Path) -> tuple[Path, list[bytes]]:
    """A project of two directory models, each with a 24 MiB binary: pushed side by side."""
    weights = []
    models = {}
    for name in ("big", "bigger"):
        data = os.urandom(24 * MiB)
        model = root / "src" / name
        model.mkdir(parents=True)
        (model / f"{name}.caffemodel").write_bytes(data)
        (model / "readme.md").write_text(
            f"---\ncaffemodel: {name}.caffemodel\n"
            f"caffemodel_url: http://models.zoopm.invalid/{name}.caffemodel\n"
            f"sha1: {hashlib.sha1(data).hexdigest()}\n---\n"
        )
        weights.append(data)
        models[name] = f'{{ path = "src/{name}" }}'
    return write_project(root, models), weights


def test_ctrl_c_while_several_uploads_run_leaves_no_open_upload_on_s3(
    tmp_path: Path, bucket: Bucket, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZOOPM_REMOTE", bucket.url())
    project, weights = two_big_models(tmp_path / "p")
    ok(zoopm("install", project=project))
    command = [sys.executable, "-m", "zoopm", "-C", str(project), "push"]

    code, stderr, took = interrupt_when(
        command, lambda: bool(bucket.uploads_in_progress()), dict(os.environ)
    )

    assert code == 130, stderr
    assert took < 5, took
    assert bucket.uploads_in_progress() == []
    whole = {f"team/zoopm/{blob_key(hashlib.sha256(w).hexdigest())}": len(w) for w in weights}
    assert all(whole.get(key, size) == size for key, size in bucket.objects().items())
    ok(zoopm("push", project=project))
    assert all(bucket.objects()[key] == size for key, size in whole.items())


def test_ctrl_c_while_several_uploads_run_leaves_no_temp_file_in_a_directory(
    tmp_path: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    monkeypatch.setenv("ZOOPM_REMOTE", shared.as_uri())
    project, weights = two_big_models(tmp_path / "p")
    ok(zoopm("install", project=project))
    command = [sys.executable, "-m", "zoopm", "-C", str(project), "push"]

    def sending() -> bool:
        return any(p.name.endswith(".part") for p in shared.rglob("*"))

    code, stderr, _ = interrupt_when(command, sending, dict(os.environ))

    assert code == 130, stderr
    assert [p.name for p in shared.rglob("*.part")] == []
    names = {hashlib.sha256(w).hexdigest(): len(w) for w in weights}
    for blob in (p for p in shared.rglob("*") if p.is_file()):
        assert names.get(blob.name, blob.stat().st_size) == blob.stat().st_size


@pytest.mark.parametrize("odd", ["directory", "symlink", "fifo"])
def test_something_else_at_a_blob_name_in_a_directory_remote_is_no_copy(
    odd: str,
    tmp_path: Path,
    github: GitHubEmulator,
    model_host: FileServer,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shared = tmp_path / "shared"
    monkeypatch.setenv("ZOOPM_REMOTE", shared.as_uri())
    project = nin_project(tmp_path / "a", model_host)
    ok(zoopm("install", project=project))
    ok(zoopm("push", project=project))
    blob = shared / nin_key("").lstrip("/")
    blob.unlink()
    if odd == "directory":
        blob.mkdir()
    elif odd == "symlink":
        blob.symlink_to(FIXTURES / "binaries" / "nin_imagenet.caffemodel")
    else:
        os.mkfifo(blob)
    machine(monkeypatch, tmp_path / "machine-b")
    clone = checkout(project, tmp_path / "b")

    run = ok(zoopm("-v", "install", "--frozen", project=clone))

    assert "nin/nin_imagenet.caffemodel: not in the remote store" in run.stderr
    assert "nin/deploy.prototxt: from the remote store" in run.stderr  # still asked for the rest
    assert "warning" not in run.stderr
    assert (clone / "models" / "nin" / "nin_imagenet.caffemodel").read_bytes() == NIN_BINARY
    if odd == "directory":  # push names it and leaves it; a link or FIFO it replaces
        refused(zoopm("push", project=clone), "a directory stands at the blob's name")
        assert blob.is_dir()
    else:
        ok(zoopm("push", project=clone))
        assert blob.read_bytes() == NIN_BINARY and not blob.is_symlink()


def test_a_bucket_that_does_not_exist_is_a_warning_not_an_empty_store(
    tmp_path: Path,
    github: GitHubEmulator,
    model_host: FileServer,
    bucket: Bucket,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ZOOPM_REMOTE", f"s3://{bucket.name}-typo/zoopm")
    project = locked_on_a_then_b(tmp_path, model_host, zoopm, monkeypatch)

    run = ok(zoopm("install", "--frozen", project=project))

    warned = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1, run.stderr
    assert "bucket does not exist" in warned[0]
    refused(zoopm("push", project=project), "bucket does not exist")


def test_when_nothing_else_has_a_file_the_error_says_what_the_remote_store_did(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    monkeypatch.setenv("ZOOPM_REMOTE", shared.as_uri())
    project = write_project(tmp_path / "p", {"tiny": '{ path = "src/tiny" }'})
    shutil.copytree(tiny_net, project / "src" / "tiny")
    ok(zoopm("install", project=project))
    ok(zoopm("push", project=project))
    data = (tiny_net / "deploy.prototxt").read_bytes()
    wrong = shared / blob_key(hashlib.sha256(data).hexdigest())
    wrong.write_bytes(data[:-1] + b"?")
    machine(monkeypatch, tmp_path / "machine-b")
    clone = checkout(project, tmp_path / "b")  # src/tiny is not in the clone

    run = refused(zoopm("install", "--frozen", project=clone), "tiny/deploy.prototxt")

    assert f"the remote store {shared.as_uri()} has a wrong copy" in run.error_line
    assert "there is no URL to download it from" in run.error_line


# --- found by a data-safety review (each failed before its fix) ----------------------------------


def test_a_file_url_with_localhost_names_the_absolute_directory(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    monkeypatch.setenv("ZOOPM_REMOTE", f"file://localhost{shared}")
    project = write_project(tmp_path / "p", {"tiny": f'{{ path = "{tiny_net}" }}'})
    ok(zoopm("install", project=project))

    pushed = push_json(zoopm, project)

    assert len(pushed["uploaded"]["blobs"]) == 4
    assert sorted(p.name for p in (shared / "sha256").rglob("*") if p.is_file()) == sorted(
        pushed["uploaded"]["blobs"]
    )
    assert not (project / "localhost").exists()


def test_a_link_below_a_directory_remote_is_never_written_through_or_read_through(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone else who can write to the shared directory plants links at the fan-outs."""
    shared, outside = tmp_path / "shared", tmp_path / "outside"
    (shared / "sha256").mkdir(parents=True)
    outside.mkdir()
    for fan in range(256):
        (shared / "sha256" / f"{fan:02x}").symlink_to(outside)
    monkeypatch.setenv("ZOOPM_REMOTE", shared.as_uri())
    project = write_project(tmp_path / "p", {"tiny": '{ path = "src/tiny" }'})
    shutil.copytree(tiny_net, project / "src" / "tiny")
    ok(zoopm("install", project=project))

    refused(zoopm("push", project=project), "a directory on its way is a link or a file")

    assert list(outside.iterdir()) == []
    # Reads do not go through them either: the right bytes planted there are no copies.
    data = (tiny_net / "readme.md").read_bytes()
    (outside / hashlib.sha256(data).hexdigest()).write_bytes(data)
    machine(monkeypatch, tmp_path / "machine-b")
    clone = checkout(project, tmp_path / "b")
    refused(zoopm("install", "--frozen", project=clone), "has no copy")
    assert not (clone / "models").exists()


def silent_endpoint() -> tuple[socket.socket, str]:
    """A server that accepts connections and never answers a byte."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.listen(64)
    return listener, f"http://127.0.0.1:{listener.getsockname()[1]}"


class Accepting:
    """Accepts every connection to listener (and never answers), counting them."""

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.connections.append(self.listener.accept()[0])


def test_a_silent_s3_endpoint_costs_seconds_and_one_warning_then_the_origin(
    tmp_path: Path,
    github: GitHubEmulator,
    model_host: FileServer,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = locked_on_a_then_b(tmp_path, model_host, zoopm, monkeypatch)
    listener, endpoint = silent_endpoint()
    with listener:
        use_endpoint(endpoint, monkeypatch, tmp_path)
        monkeypatch.setenv("ZOOPM_REMOTE", "s3://team/zoopm")
        monkeypatch.setenv("ZOOPM_READ_TIMEOUT", "1")
        monkeypatch.setenv("ZOOPM_JOBS", "1")
        accepting = Accepting(listener)
        started = time.monotonic()

        run = ok(zoopm("install", "--frozen", project=project))

    assert time.monotonic() - started < 30
    assert len(accepting.connections) == 2  # two attempts in all, then the origin
    warned = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "not asked again in this run" in warned[0], run.stderr
    assert (project / "models" / "nin" / "nin_imagenet.caffemodel").read_bytes() == NIN_BINARY


def test_a_remote_store_that_cannot_be_opened_sends_install_to_the_origin(
    tmp_path: Path,
    github: GitHubEmulator,
    model_host: FileServer,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listener, endpoint = silent_endpoint()
    listener.close()  # nothing listens there now: the FTP connection is refused
    monkeypatch.setenv("ZOOPM_REMOTE", endpoint.replace("http", "ftp") + "/zoopm")
    project = locked_on_a_then_b(tmp_path, model_host, zoopm, monkeypatch)

    run = ok(zoopm("install", "--frozen", project=project))

    warned = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "Connection refused" in warned[0], run.stderr
    assert "Traceback" not in run.stderr and "Exception ignored" not in run.stderr


def test_push_offline_says_push_needs_the_network(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZOOPM_REMOTE", (tmp_path / "shared").as_uri())
    monkeypatch.setenv("ZOOPM_OFFLINE", "1")
    project = write_project(tmp_path / "p", {"tiny": f'{{ path = "{tiny_net}" }}'})

    run = refused(zoopm("push", project=project), "zoopm is offline")

    assert "push uploads over the network" in run.stderr


# --- lock finds a binary by its Caffe sha1 through the remote store's alias -------------------


def pushed_then_origin_gone(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, str, bytes]:
    """Machine A installs tiny_net, its binary served from an origin, and pushes it to a
    file:// remote store; then the origin goes away and zoopm runs on machine B. Returns the
    store's directory, the origin URL and the binary's bytes."""
    shared = tmp_path / "shared"
    monkeypatch.setenv("ZOOPM_REMOTE", shared.as_uri())
    with FileServer() as origin:
        url = origin.url("/tiny_net.caffemodel")
        data = serve_binary_elsewhere(tiny_net, url)
        origin.add_bytes("/tiny_net.caffemodel", data)
        first = write_project(tmp_path / "a", {"tiny": f'{{ path = "{tiny_net}" }}'})
        ok(zoopm("install", project=first))
        ok(zoopm("push", project=first))
    machine(monkeypatch, tmp_path / "machine-b")
    return shared, url, data


def test_lock_on_another_machine_finds_a_dead_binary_by_its_sha1_in_the_remote_store(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared, url, data = pushed_then_origin_gone(tmp_path, tiny_net, zoopm, monkeypatch)
    sha1 = hashlib.sha1(data).hexdigest()
    alias = shared / "sha1" / sha1[:2] / sha1
    assert alias.read_text() == hashlib.sha256(data).hexdigest()
    # Machine B, the origin gone: a new project that declares the same model.
    second = write_project(tmp_path / "b", {"tiny": f'{{ path = "{tiny_net}" }}'})

    run = ok(zoopm("-v", "install", project=second))

    assert (second / "models" / "tiny" / "tiny_net.caffemodel").read_bytes() == data
    assert f"from the remote store {shared.as_uri()}" in run.stderr
    assert f'urls = ["{url}"]' in (second / "zoo.lock").read_text()  # the origin, as always


def test_an_alias_that_names_another_blob_is_refused_by_the_sha1_check(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared, _, data = pushed_then_origin_gone(tmp_path, tiny_net, zoopm, monkeypatch)
    sha1 = hashlib.sha1(data).hexdigest()
    readme = (tiny_net / "readme.md").read_bytes()
    (shared / "sha1" / sha1[:2] / sha1).write_text(hashlib.sha256(readme).hexdigest())
    second = write_project(tmp_path / "b", {"tiny": f'{{ path = "{tiny_net}" }}'})

    run = zoopm("install", project=second)

    assert run.exit_code == 1, run.stderr
    warned = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert any("sha1" in line and "skipped, fetching from the origin" in line for line in warned)
    assert "refused the connection" in run.error_line  # then the origin, which is gone
    assert not (second / "zoo.lock").exists()


def test_a_link_at_the_alias_directory_is_never_written_through(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared, outside = tmp_path / "shared", tmp_path / "outside"
    shared.mkdir()
    outside.mkdir()
    (shared / "sha1").symlink_to(outside)
    monkeypatch.setenv("ZOOPM_REMOTE", shared.as_uri())
    project = write_project(tmp_path / "p", {"tiny": f'{{ path = "{tiny_net}" }}'})
    ok(zoopm("install", project=project))

    refused(zoopm("push", project=project), "a directory on its way is a link or a file")

    assert list(outside.iterdir()) == []
