"""The Python API (docs/api.md): model_path, Project.find and the operations, as a script uses
them, against the emulated GitHub and a local model host."""

from __future__ import annotations

import dataclasses
import inspect
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import zoopm
from tests.support.cli import Zoopm
from tests.support.clones import cloned_project, user_config
from tests.support.fileserver import FileServer
from tests.support.github import FIXTURES, GitHubEmulator
from tests.support.projects import REPO, store_files, write_project
from zoopm import Project, RecordingReporter

GOOGLENET = "bvlc_googlenet"
BVLC_REV = "9b891540183ddc834a02b2bd81b31afae71b2153"
SOURCE = FIXTURES / "repos" / "BVLC" / "caffe" / BVLC_REV / "models" / GOOGLENET
BINARY = FIXTURES / "binaries" / "bvlc_googlenet.caffemodel"
BINARY_PATH = "/caffe/bvlc_googlenet.caffemodel"

# The Done-when script of issue 9: only the Python API, ten lines.
SCRIPT = """\
import sys

import zoopm

model = zoopm.model_path("bvlc_googlenet", project=sys.argv[1])
prototxt = (model / "deploy.prototxt").read_text()
assert 'name: "GoogleNet"' in prototxt
print(model)
print("requests" in sys.modules)
"""


@pytest.fixture
def clone(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A fresh clone pinning bvlc_googlenet; nothing installed, the store empty."""
    return cloned_project(tmp_path, model_host, monkeypatch, GOOGLENET)


@pytest.fixture
def cli() -> Zoopm:
    """The command line, to compare with (the module zoopm keeps its name here)."""
    return Zoopm()


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: a request there fails at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def cut_off_the_network(tmp_path: Path, github: GitHubEmulator, host: FileServer) -> None:
    """Points the GitHub API and every mirror at a closed port, and empties both logs."""
    dead = closed_port_url()
    os.environ["ZOOPM_GITHUB_API"] = dead.rstrip("/")
    user_config(tmp_path).write_text(
        f'[mirrors]\n"http://dl.caffe.berkeleyvision.org/" = ["{dead}"]\n', encoding="utf-8"
    )
    github.clear_log()
    host.clear_log()


def requests_made(github: GitHubEmulator, host: FileServer) -> list[str]:
    return [f"{r.method} {r.path}" for r in github.requests] + [
        f"{r.method} {r.path}" for r in host.requests
    ]


def python(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def entries(directory: Path) -> set[str]:
    if not directory.exists():
        return set()
    return {p.relative_to(directory).as_posix() for p in directory.rglob("*")}


# --- model_path ------------------------------------------------------------------------------


def test_a_ten_line_script_installs_a_model_from_zoo_lock_and_then_runs_with_no_network(
    tmp_path: Path, clone: Path, github: GitHubEmulator, model_host: FileServer
) -> None:
    first = python(SCRIPT, str(clone), cwd=tmp_path)

    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [str(clone / "models" / GOOGLENET), "True"]
    assert first.stderr == ""  # the library never prints
    assert model_host.count(BINARY_PATH) == 1
    model = clone / "models" / GOOGLENET
    assert (model / "bvlc_googlenet.caffemodel").read_bytes() == BINARY.read_bytes()
    assert (model / "deploy.prototxt").read_bytes() == (SOURCE / "deploy.prototxt").read_bytes()
    assert (clone / "zoo.lock").read_bytes() == (tmp_path / "origin" / "zoo.lock").read_bytes()

    cut_off_the_network(tmp_path, github, model_host)
    again = python(SCRIPT, str(clone), cwd=tmp_path)

    assert again.returncode == 0, again.stderr
    # The same answer, no request anywhere, and the HTTP library not even imported.
    assert again.stdout.splitlines() == [str(model), "False"]
    assert requests_made(github, model_host) == []


def test_model_path_of_an_installed_model_makes_no_request_however_the_project_is_given(
    tmp_path: Path, clone: Path, github: GitHubEmulator, model_host: FileServer
) -> None:
    model = zoopm.model_path(GOOGLENET, project=clone)
    cut_off_the_network(tmp_path, github, model_host)
    (clone / "src" / "train").mkdir(parents=True)
    script = clone / "src" / "train" / "train.py"
    script.write_text("# a training script\n", encoding="utf-8")

    with Project.find(clone) as project:
        given = [
            zoopm.model_path(GOOGLENET, project=clone),
            zoopm.model_path(GOOGLENET, project=str(clone)),
            zoopm.model_path(GOOGLENET, project=clone / "src" / "train"),
            zoopm.model_path(GOOGLENET, project=script),  # project=__file__
            zoopm.model_path(GOOGLENET, project=project),
            zoopm.model_path(GOOGLENET, project=clone, install=False),
        ]
        project.status()  # a Project passed in is the caller's: still open and usable

    assert given == [model] * len(given)
    assert requests_made(github, model_host) == []


class Transfers(RecordingReporter):
    """Keeps the label of every download as well."""

    def __init__(self) -> None:
        super().__init__()
        self.labels: list[str] = []

    def transfer(self, label: str, total: int | None) -> zoopm.Progress:
        self.labels.append(label)
        return super().transfer(label, total)


def test_model_path_reports_the_install_to_the_reporter_given(
    clone: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    reporter = Transfers()
    capfd.readouterr()

    zoopm.model_path(GOOGLENET, project=clone, reporter=reporter)
    with Project.find(clone) as project, pytest.raises(zoopm.UsageError):
        zoopm.model_path(GOOGLENET, project=project, reporter=reporter)

    assert capfd.readouterr() == ("", "")
    assert f"downloading {GOOGLENET}/bvlc_googlenet.caffemodel" in reporter.labels


def test_model_path_finds_the_project_from_the_working_directory(
    clone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clone / "notebooks").mkdir()
    monkeypatch.chdir(clone / "notebooks")

    path = zoopm.model_path(GOOGLENET)

    assert path == clone / "models" / GOOGLENET
    assert (path / "deploy.prototxt").is_file()


def test_model_path_installs_every_locked_model_as_install_frozen_does(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    clone = cloned_project(tmp_path, model_host, monkeypatch, GOOGLENET, "bvlc_alexnet")
    lock_before = (clone / "zoo.lock").read_bytes()

    path = zoopm.model_path("bvlc_alexnet", project=clone)

    assert path == clone / "models" / "bvlc_alexnet"
    assert (clone / "models" / GOOGLENET / "bvlc_googlenet.caffemodel").is_file()
    assert (clone / "zoo.lock").read_bytes() == lock_before


def test_with_install_false_a_model_not_in_place_is_an_error_naming_zoopm_install(
    tmp_path: Path, clone: Path, github: GitHubEmulator, model_host: FileServer
) -> None:
    github.clear_log()
    store = tmp_path / "this-machine" / "store"
    store_before = store_files(store)

    with pytest.raises(zoopm.NotInstalledError) as raised:
        zoopm.model_path(GOOGLENET, project=clone, install=False)

    directory = clone / "models" / GOOGLENET
    assert raised.value.message.startswith(f"{directory}: {GOOGLENET} is not installed (")
    assert "zoopm install" in raised.value.hint
    assert raised.value.exit_code == 1
    assert not (clone / "models").exists()
    assert store_files(store) == store_before
    assert requests_made(github, model_host) == []


def test_with_install_false_one_missing_file_is_named(clone: Path) -> None:
    model = zoopm.model_path(GOOGLENET, project=clone)
    (model / "solver.prototxt").unlink()

    with pytest.raises(zoopm.NotInstalledError) as raised:
        zoopm.model_path(GOOGLENET, project=clone, install=False)

    assert "(solver.prototxt is not in place)" in raised.value.message
    # Installing puts it back.
    assert zoopm.model_path(GOOGLENET, project=clone) == model
    assert (model / "solver.prototxt").read_bytes() == (SOURCE / "solver.prototxt").read_bytes()


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(
            lambda text: text.replace(GOOGLENET + " =", "googlenet ="), id="model renamed"
        ),
        pytest.param(lambda text: text.replace(BVLC_REV, "0" * 40), id="rev changed"),
    ],
)
def test_a_stale_lock_is_an_error_naming_zoopm_lock_and_nothing_is_resolved_or_written(
    tmp_path: Path,
    clone: Path,
    github: GitHubEmulator,
    model_host: FileServer,
    cli: Zoopm,
    edit: object,
) -> None:
    assert callable(edit)
    manifest = clone / "zoo.toml"
    manifest.write_text(edit(manifest.read_text(encoding="utf-8")), encoding="utf-8")
    lock_before = (clone / "zoo.lock").read_bytes()
    github.clear_log()

    with pytest.raises(zoopm.StaleLockError) as raised:
        zoopm.model_path(GOOGLENET, project=clone)
    run = cli("install", "--frozen", project=clone)

    assert f"error: {raised.value.message}" == run.error_line
    assert "run 'zoopm lock'" in raised.value.hint
    assert (clone / "zoo.lock").read_bytes() == lock_before
    assert not (clone / "models").exists()
    assert requests_made(github, model_host) == []


def test_a_stale_lock_is_an_error_even_with_the_model_in_place(
    tmp_path: Path, clone: Path, github: GitHubEmulator, model_host: FileServer
) -> None:
    model = zoopm.model_path(GOOGLENET, project=clone)
    installed = {p.name: p.read_bytes() for p in model.iterdir()}
    manifest = clone / "zoo.toml"
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace(BVLC_REV, "0" * 40), encoding="utf-8"
    )
    cut_off_the_network(tmp_path, github, model_host)

    # zoo.toml now asks for another revision: the files in place are not what it declares.
    with pytest.raises(zoopm.StaleLockError) as raised:
        zoopm.model_path(GOOGLENET, project=clone)

    assert raised.value.message == f"zoo.lock does not match zoo.toml: {GOOGLENET} changed"
    assert raised.value.hint.startswith("run 'zoopm lock'")
    assert {p.name: p.read_bytes() for p in model.iterdir()} == installed
    assert requests_made(github, model_host) == []


# --- the same failure, the same words, through the CLI and the API ---------------------------


def api_lines(error: zoopm.ZoopmError) -> list[str]:
    return [f"error: {error.message}", f"hint: {error.hint}"]


def cli_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(("error: ", "hint: "))]


def test_no_zoo_toml_fails_alike(tmp_path: Path, cli: Zoopm) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()

    with pytest.raises(zoopm.ManifestError) as raised:
        zoopm.model_path(GOOGLENET, project=bare)
    run = cli("install", "--frozen", project=bare)

    assert api_lines(raised.value) == cli_lines(run.stderr)
    assert run.exit_code == raised.value.exit_code == 2


def test_a_malformed_zoo_toml_fails_alike(tmp_path: Path, cli: Zoopm) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "zoo.toml").write_text("[models]\nbroken = {gist = }\n", encoding="utf-8")

    with pytest.raises(zoopm.ManifestError) as raised:
        zoopm.model_path("broken", project=project)
    run = cli("install", "--frozen", project=project)

    assert api_lines(raised.value) == cli_lines(run.stderr)


def test_a_missing_zoo_lock_fails_alike(clone: Path, cli: Zoopm) -> None:
    (clone / "zoo.lock").unlink()

    with pytest.raises(zoopm.StaleLockError) as raised:
        zoopm.model_path(GOOGLENET, project=clone)
    run = cli("install", "--frozen", project=clone)

    assert api_lines(raised.value) == cli_lines(run.stderr)
    assert "zoopm lock" in raised.value.hint
    assert run.exit_code == raised.value.exit_code == 1
    assert not (clone / "zoo.lock").exists()


def test_a_model_zoo_lock_does_not_pin_fails_as_zoopm_show_does(clone: Path, cli: Zoopm) -> None:
    with pytest.raises(zoopm.UsageError) as raised:
        zoopm.model_path("vgg16", project=clone)
    run = cli("show", "vgg16", project=clone)

    assert api_lines(raised.value) == cli_lines(run.stderr)


def test_a_dead_model_host_fails_alike(
    tmp_path: Path, clone: Path, model_host: FileServer, cli: Zoopm
) -> None:
    model_host.fail(BINARY_PATH, 404, times=2)

    with pytest.raises(zoopm.NetworkError) as raised:
        zoopm.model_path(GOOGLENET, project=clone)
    run = cli("install", "--frozen", project=clone)

    assert api_lines(raised.value) == cli_lines(run.stderr)
    assert not (clone / "models" / GOOGLENET / "bvlc_googlenet.caffemodel").exists()


def test_a_file_of_the_users_in_the_way_fails_alike_and_stays(clone: Path, cli: Zoopm) -> None:
    mine = clone / "models" / GOOGLENET / "deploy.prototxt"
    mine.parent.mkdir(parents=True)
    mine.write_text("my own net\n", encoding="utf-8")

    with pytest.raises(zoopm.ZoopmError) as raised:
        zoopm.model_path(GOOGLENET, project=clone)
    run = cli("install", "--frozen", project=clone)

    assert api_lines(raised.value) == cli_lines(run.stderr)
    assert mine.read_text(encoding="utf-8") == "my own net\n"


# --- hostile input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["", ".", "..", "../zoo.toml", f"{GOOGLENET}/..", f"../clone/models/{GOOGLENET}"]
)
def test_a_name_is_only_ever_a_locked_model_never_a_path(
    clone: Path, github: GitHubEmulator, model_host: FileServer, name: str
) -> None:
    github.clear_log()

    with pytest.raises(zoopm.UsageError):
        zoopm.model_path(name, project=clone)

    assert not (clone / "models").exists()
    assert requests_made(github, model_host) == []


def test_a_zoo_lock_naming_a_model_outside_the_models_directory_is_refused(
    tmp_path: Path, clone: Path, cli: Zoopm
) -> None:
    lock = clone / "zoo.lock"
    lock.write_text(
        lock.read_text(encoding="utf-8").replace(f'name = "{GOOGLENET}"', 'name = "../escape"'),
        encoding="utf-8",
    )
    assert "../escape" in lock.read_text(encoding="utf-8")

    with pytest.raises(zoopm.ZoopmError) as raised:
        zoopm.model_path("../escape", project=clone)
    run = cli("install", "--frozen", project=clone)

    assert api_lines(raised.value) == cli_lines(run.stderr)
    assert "zoo.lock" in raised.value.message
    assert not (clone / "models").exists()
    assert not (tmp_path / "escape").exists()


def test_a_models_directory_replaced_by_a_link_is_not_taken_for_the_installed_model(
    tmp_path: Path, clone: Path
) -> None:
    model = zoopm.model_path(GOOGLENET, project=clone)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(model, elsewhere)
    for path in elsewhere.iterdir():
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    shutil.rmtree(model)
    model.symlink_to(elsewhere, target_is_directory=True)
    before = {p.name: p.read_bytes() for p in elsewhere.iterdir()}

    with pytest.raises(zoopm.NotInstalledError):
        zoopm.model_path(GOOGLENET, project=clone, install=False)
    with pytest.raises(zoopm.ZoopmError):
        zoopm.model_path(GOOGLENET, project=clone)

    assert model.is_symlink()
    assert {p.name: p.read_bytes() for p in elsewhere.iterdir()} == before


def test_a_project_path_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(zoopm.UsageError) as raised:
        zoopm.model_path(GOOGLENET, project=tmp_path / "typo")

    assert raised.value.message == f"{tmp_path / 'typo'}: no such directory"
    assert not (tmp_path / "typo").exists()


TWO_AT_ONCE = """\
import sys, time
import zoopm
while time.time() < float(sys.argv[2]):
    time.sleep(0.005)
print(zoopm.model_path("bvlc_googlenet", project=sys.argv[1]))
"""


def test_two_processes_asking_at_once_both_get_the_model_downloaded_once(
    tmp_path: Path, clone: Path, model_host: FileServer
) -> None:
    start = str(time.time() + 1.5)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    children = [
        subprocess.Popen(
            [sys.executable, "-c", TWO_AT_ONCE, str(clone), start],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [child.communicate(timeout=120) for child in children]

    for child, (out, err) in zip(children, results, strict=True):
        assert child.returncode == 0, err
        assert out.strip() == str(clone / "models" / GOOGLENET)
    assert model_host.count(BINARY_PATH) == 1
    model = clone / "models" / GOOGLENET
    assert (model / "bvlc_googlenet.caffemodel").read_bytes() == BINARY.read_bytes()


# Python turns SIGINT into KeyboardInterrupt unless it started with SIGINT ignored, as a child
# of a background job does; a script run from a terminal has the handler set below.
INTERRUPTED = """\
import signal, sys
import zoopm
signal.signal(signal.SIGINT, signal.default_int_handler)
try:
    zoopm.model_path("bvlc_googlenet", project=sys.argv[1])
except KeyboardInterrupt:
    print("KeyboardInterrupt")
"""


def test_ctrl_c_during_the_download_leaves_nothing_half_done_and_the_next_call_finishes(
    clone: Path, model_host: FileServer
) -> None:
    model_host.stall(BINARY_PATH, after_bytes=2048, delay_seconds=30)
    sent_before = model_host.bytes_sent(BINARY_PATH)  # the other machine's download, when locking
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED, str(clone)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while model_host.bytes_sent(BINARY_PATH) < sent_before + 2048 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert child.poll() is None, child.communicate()
    interrupted = time.monotonic()
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=30)

    assert (child.returncode, out.strip()) == (0, "KeyboardInterrupt"), err
    assert time.monotonic() - interrupted < 5
    model = clone / "models" / GOOGLENET
    assert not (model / "bvlc_googlenet.caffemodel").exists()
    assert not any(".tmp" in name or "zoopm-" in name for name in entries(clone / "models"))

    model_host.clear_log()
    assert zoopm.model_path(GOOGLENET, project=clone) == model
    assert (model / "bvlc_googlenet.caffemodel").read_bytes() == BINARY.read_bytes()
    # The bytes that had come were kept: the next call asked only for the rest.
    (resumed,) = [r for r in model_host.requests if r.path == BINARY_PATH]
    ranges = {k.lower(): v for k, v in resumed.headers.items()}.get("range", "")
    assert ranges.startswith("bytes=") and not ranges.startswith("bytes=0-"), ranges


# --- Project.find and the operations ---------------------------------------------------------


def test_project_find_finds_the_enclosing_project_as_the_cli_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = write_project(tmp_path / "proj", {})
    (project / "a" / "b").mkdir(parents=True)
    (project / "a" / "b" / "run.py").write_text("", encoding="utf-8")
    monkeypatch.chdir(project / "a")

    assert Project.find().root == project
    assert Project.find(project / "a" / "b").root == project
    assert Project.find(str(project / "a" / "b" / "run.py")).root == project
    reporter = RecordingReporter()
    assert Project.find(project, reporter=reporter).reporter is reporter
    # With no zoo.toml above, the project is rooted where the search started, as for 'zoopm -C'.
    bare = tmp_path / "bare"
    bare.mkdir()
    assert Project.find(bare).root == bare


def test_a_whole_session_through_the_api_prints_nothing_and_returns_frozen_results(
    tmp_path: Path,
    github: GitHubEmulator,
    model_host: FileServer,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    clone = cloned_project(tmp_path, model_host, monkeypatch, GOOGLENET)
    capfd.readouterr()

    with Project.find(clone) as project:
        results: list[object] = [
            project.lock(),
            project.install(),
            project.add("bvlc_alexnet"),
            project.lock(check=True),
            project.verify(),
            project.verify(store=True),
            project.show(GOOGLENET),
            project.remove("bvlc_alexnet"),
            project.gc(dry_run=True),
            project.gc(),
        ]
        results += project.status()
    path = zoopm.model_path(GOOGLENET, project=clone)

    assert capfd.readouterr() == ("", "")
    assert (path / "deploy.prototxt").is_file()
    assert not (clone / "models" / "bvlc_alexnet").exists()
    for result in results:
        assert dataclasses.is_dataclass(result) and not isinstance(result, type), result
        fields = dataclasses.fields(result)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(result, fields[0].name, None)
        for field in fields:
            assert not isinstance(getattr(result, field.name), (dict, list, set)), field
    verified = results[4]
    assert isinstance(verified, zoopm.VerifyResult) and verified.ok
    gc = results[9]
    assert isinstance(gc, zoopm.GcResult) and gc.removed_blobs  # alexnet's blobs went


def test_warnings_go_to_the_reporter_not_to_the_terminal(
    tmp_path: Path, tiny_net: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    project_dir = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})
    (tiny_net / "old.caffemodel").write_bytes(b"weights left over")
    reporter = RecordingReporter()
    capfd.readouterr()

    with Project.find(project_dir, reporter=reporter) as project:
        project.install()

    assert capfd.readouterr() == ("", "")
    assert any("old.caffemodel" in warning for warning in reporter.warnings), reporter.warnings


# --- what `zoopm` exports ---------------------------------------------------------------------


def test_every_exported_name_resolves_and_says_what_it_is() -> None:
    assert zoopm.__all__ == sorted(set(zoopm.__all__), key=zoopm.__all__.index)
    for name in zoopm.__all__:
        value = getattr(zoopm, name)
        if name == "__version__":
            assert isinstance(value, str) and value
            continue
        doc = value.__doc__ or ""
        # A dataclass without a docstring gets its signature as one.
        assert doc.strip() and not doc.startswith(f"{name}("), name
        assert getattr(value, "__module__", "").startswith("zoopm."), name
    namespace: dict[str, object] = {}
    exec("from zoopm import *", namespace)
    assert set(zoopm.__all__) <= set(namespace)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        zoopm.no_such_thing  # noqa: B018


def test_importing_zoopm_loads_nothing_else_of_it() -> None:
    probe = (
        "import sys, zoopm\n"
        "heavy = ('requests', 'rich', 'typer', 'yaml', 'tomlkit', 'tomllib')\n"
        "print(sorted(m for m in sys.modules if m.startswith('zoopm') or m in heavy))\n"
    )
    run = python(probe, cwd=REPO)

    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "['zoopm']"


def test_model_path_and_project_carry_type_information() -> None:
    signature = inspect.signature(zoopm.model_path)
    assert list(signature.parameters) == ["name", "project", "install", "reporter"]
    assert signature.return_annotation == "Path"
    assert inspect.signature(Project.find).return_annotation == "Project"


def test_py_typed_ships_with_the_package(tmp_path: Path) -> None:
    """What setuptools puts into the wheel's package (build_py), from a copy of the checkout."""
    setuptools = pytest.importorskip("setuptools")
    assert setuptools is not None
    source = tmp_path / "checkout"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "zoopm", source / "zoopm", ignore=shutil.ignore_patterns("__pycache__"))
    built = tmp_path / "built"

    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "from setuptools import setup; setup()",
            "-q",
            "build_py",
            "--build-lib",
            str(built),
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert run.returncode == 0, run.stderr
    assert (built / "zoopm" / "py.typed").is_file()
    assert (built / "zoopm" / "api.py").is_file()
