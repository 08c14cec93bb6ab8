"""The user configuration (config.toml) and --jobs: defaults for every project, zoo.toml wins."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from tests.support.cli import Zoopm
from tests.support.fileserver import FileServer
from tests.support.github import GitHubEmulator
from tests.support.loopback import LoopbackServer, QuietHandler
from tests.support.projects import TINY_NET, mirrors_for, write_project
from zoopm import Project
from zoopm.errors import ConfigError, UsageError
from zoopm.settings import DEFAULT_JOBS, Settings

BVLC_REV = "9b891540183ddc834a02b2bd81b31afae71b2153"
BVLC = f'{{ github = "BVLC/caffe", path = "models/bvlc_googlenet", rev = "{BVLC_REV}" }}'


def write_config(tmp_path: Path, text: str) -> Path:
    """config.toml where the isolated test environment's XDG_CONFIG_HOME points."""
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "zoopm" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_mirrors_in_the_user_configuration_serve_a_project_that_names_none(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    # The origin host of the BVLC binaries does not resolve here; only the mirror can serve it.
    write_config(tmp_path, mirrors_for(model_host))
    project = write_project(tmp_path / "proj", {"googlenet": BVLC})

    run = zoopm("install", project=project)

    assert run.exit_code == 0, run.stderr
    assert (project / "models" / "googlenet" / "bvlc_googlenet.caffemodel").stat().st_size > 0
    assert any(r.path.startswith("/caffe/") for r in model_host.requests)


def test_a_mirror_in_zoo_toml_wins_over_the_same_prefix_in_the_user_configuration(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    with FileServer() as decoy:
        write_config(tmp_path, mirrors_for(decoy))
        project = write_project(tmp_path / "proj", {"googlenet": BVLC}, mirrors_for(model_host))

        run = zoopm("install", project=project)

        assert run.exit_code == 0, run.stderr
        assert decoy.requests == []  # the user's mirror for that prefix was never asked


def test_the_user_configuration_sets_the_link_mode_and_zoo_toml_overrides_it(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    write_config(tmp_path, '[defaults]\nlink-mode = "symlink"\n')
    by_config = write_project(tmp_path / "a", {"tiny": '{ path = "../src/tiny_net" }'})
    by_project = write_project(tmp_path / "b", {"tiny": '{ path = "../src/tiny_net" }'})
    text = (
        (by_project / "zoo.toml")
        .read_text()
        .replace("[project]\n", '[project]\nlink-mode = "copy"\n')
    )
    (by_project / "zoo.toml").write_text(text)

    assert zoopm("install", project=by_config).exit_code == 0
    assert zoopm("install", project=by_project).exit_code == 0

    assert (by_config / "models" / "tiny" / "deploy.prototxt").is_symlink()
    copied = by_project / "models" / "tiny" / "deploy.prototxt"
    assert not copied.is_symlink()
    assert copied.stat().st_nlink == 1


def test_jobs_come_from_the_option_then_the_environment_then_the_configuration(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, "[defaults]\njobs = 7\n")
    env = {"ZOOPM_HOME": str(tmp_path / "home"), "ZOOPM_CONFIG": str(config)}

    assert Settings.from_env(env).jobs == 7
    assert Settings.from_env({**env, "ZOOPM_JOBS": "3"}).jobs == 3
    assert Settings.from_env({"ZOOPM_HOME": str(tmp_path / "home")}).jobs == DEFAULT_JOBS


def test_commands_outside_a_project_see_the_user_configurations_mirrors(tmp_path: Path) -> None:
    write_config(tmp_path, '[mirrors]\n"http://a.invalid/" = "https://b.example/"\n')
    outside = tmp_path / "nowhere"
    outside.mkdir()

    project = Project.discover(outside)

    assert project.mirrors() == {"http://a.invalid/": ("https://b.example/",)}


class _SlowServer(LoopbackServer):
    """Serves distinct payloads, each after a pause, and remembers how many were served at once."""

    def __init__(self, payloads: dict[str, bytes]) -> None:
        self.payloads = payloads
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_at_once = 0
        super().__init__(_SlowHandler)


class _SlowHandler(QuietHandler):
    server: _SlowServer

    def do_GET(self) -> None:
        server = self.server
        with server.lock:
            server.in_flight += 1
            server.most_at_once = max(server.most_at_once, server.in_flight)
        try:
            time.sleep(0.3)
            body = server.payloads[self.path]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            self.wfile.write(body)
        finally:
            with server.lock:
                server.in_flight -= 1


def _four_models_behind(tmp_path: Path, base: str) -> tuple[Path, dict[str, bytes]]:
    """A project of four local models whose distinct binaries are downloaded from base."""
    from zoopm.formats.modelinfo import set_frontmatter_key

    payloads: dict[str, bytes] = {}
    models: dict[str, str] = {}
    for number in range(4):
        source = tmp_path / "src" / f"m{number}"
        shutil.copytree(TINY_NET, source)
        binary = source / "tiny_net.caffemodel"
        data = binary.read_bytes() + bytes([number]) * 64
        binary.unlink()
        payloads[f"/m{number}.caffemodel"] = data
        readme = source / "readme.md"
        text = readme.read_bytes()
        text = set_frontmatter_key(text, "caffemodel_url", f"{base}/m{number}.caffemodel", "r")
        text = set_frontmatter_key(text, "sha1", hashlib.sha1(data).hexdigest(), "r")
        readme.write_bytes(text)
        models[f"m{number}"] = f'{{ path = "../src/m{number}" }}'
    return write_project(tmp_path / "proj", models), payloads


@pytest.mark.parametrize(("jobs", "parallel"), [("1", False), ("4", True)])
def test_jobs_option_sets_how_many_downloads_run_at_once(
    tmp_path: Path, zoopm: Zoopm, jobs: str, parallel: bool
) -> None:
    server = _SlowServer({})
    server.serve_in_thread("slow-server")
    try:
        host, port = server.server_address[:2]
        project, payloads = _four_models_behind(tmp_path, f"http://{host!s}:{port}")
        server.payloads.update(payloads)
        # Locking stores each binary; a fresh store makes install download them again.
        assert zoopm("lock", "--jobs", jobs, project=project).exit_code == 0
        shutil.rmtree(os.environ["ZOOPM_HOME"])
        server.most_at_once = 0

        run = zoopm("install", "--jobs", jobs, project=project)

        assert run.exit_code == 0, run.stderr
        assert (server.most_at_once > 1) is parallel, server.most_at_once
    finally:
        server.stop()


@pytest.mark.parametrize("value", ["0", "65", "many", "-3"])
def test_a_bad_jobs_value_is_a_usage_error(tmp_path: Path, value: str, zoopm: Zoopm) -> None:
    project = write_project(tmp_path / "proj", {})

    run = zoopm("install", "--jobs", value, project=project)

    assert run.exit_code == 2
    assert "--jobs" in run.stderr
    assert not (project / "zoo.lock").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[defaults]\njobs = 0\n", "defaults.jobs: 0 is not a whole number from 1 to 64"),
        ("[defaults]\njobs = true\n", "defaults.jobs: true is not a whole number"),
        ('[defaults]\nlink-mode = "teleport"\n', "defaults.link-mode: 'teleport' is not one of"),
        ("[defaults]\nthreads = 4\n", "defaults.threads: unknown key"),
        ("[proxy]\nurl = 1\n", "proxy: unknown table"),
        ('[mirrors]\n"ftp://x/" = "https://y/"\n', "a mirror key is a URL prefix"),
        ('[mirrors]\n"https://x/" = "javascript:alert(1)"\n', "is not an http, https or file URL"),
        ("[defaults\njobs = 2\n", "not valid TOML"),
        ("defaults = 3\n", "defaults: expected a table"),
    ],
)
def test_a_bad_configuration_is_one_line_naming_the_file_and_key(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, text: str, expected: str
) -> None:
    config = write_config(tmp_path, text)
    project = write_project(tmp_path / "proj", {"tiny": '{ path = "../src/tiny_net" }'})

    run = zoopm("install", project=project)

    assert run.exit_code == 2, run.stderr
    assert run.error_line.startswith(f"error: {config}"), run.stderr
    assert expected in run.error_line
    assert "hint: " in run.stderr
    assert "Traceback" not in run.stderr
    assert not (project / "models").exists()


def test_a_configuration_that_is_a_directory_or_a_fifo_is_refused_without_hanging(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "dir.toml"
    directory.mkdir()
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)

    for path in (directory, fifo):
        with pytest.raises(ConfigError, match=str(path)):
            Settings.from_env({"ZOOPM_HOME": str(tmp_path), "ZOOPM_CONFIG": str(path)})


def test_a_missing_configuration_is_an_empty_one(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"ZOOPM_HOME": str(tmp_path), "ZOOPM_CONFIG": str(tmp_path / "absent.toml")}
    )

    assert settings.config.mirrors == ()
    assert settings.jobs == DEFAULT_JOBS


def test_a_relative_xdg_config_home_is_ignored_as_the_spec_says(tmp_path: Path) -> None:
    from zoopm.locations import config_path

    path = config_path({"XDG_CONFIG_HOME": "relative/dir"})

    assert path == Path.home() / ".config" / "zoopm" / "config.toml"
    with pytest.raises(UsageError):
        Settings.from_env({"ZOOPM_HOME": str(tmp_path), "ZOOPM_JOBS": "x"})


def test_the_jobs_option_wins_even_over_a_malformed_environment_variable(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})
    monkeypatch.setenv("ZOOPM_JOBS", "0")

    assert zoopm("install", "-j", "3", project=project).exit_code == 0
    assert zoopm("install", project=project).exit_code == 2  # without -j it is still an error


def test_dev_null_as_the_configuration_is_no_configuration(tmp_path: Path) -> None:
    settings = Settings.from_env({"ZOOPM_HOME": str(tmp_path), "ZOOPM_CONFIG": os.devnull})

    assert settings.config.mirrors == ()
