"""--json: one JSON document on stdout and nothing else, matching its schema in
zoopm/data/schemas/ (docs/json.md), for every command that takes it, when it works and when it
fails; a failure keeps the exit code it has without --json."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.support.cli import Run, Zoopm
from tests.support.fileserver import FileServer
from tests.support.github import GitHubEmulator
from tests.support.projects import TINY_NET, serve_binary_elsewhere, write_project

SCHEMAS = Path(__file__).resolve().parents[2] / "zoopm" / "data" / "schemas"
COMMANDS = sorted(p.stem for p in SCHEMAS.glob("*.json"))
TOKEN = "ghp_AUTHORtoken0123456789abcdefABCDEF"
NIN = "d802a5849de39225bcc6"


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


def document(run: Run, name: str) -> Any:
    """The one JSON document run printed on stdout, checked against schema name."""
    parsed = json.loads(run.stdout)  # fails on anything but exactly one document
    jsonschema.Draft202012Validator(schema(name)).validate(parsed)
    return parsed


def failed(run: Run, exit_code: int) -> dict[str, Any]:
    """The error document of a failed run, which says on stderr what it says on stdout."""
    assert run.exit_code == exit_code, (run.stdout, run.stderr)
    error: dict[str, Any] = document(run, "error")
    assert error["exit_code"] == exit_code
    assert run.error_line == f"error: {error['error']}"
    assert f"hint: {error['hint']}" in run.stderr.splitlines()
    return error


@pytest.fixture
def project(tmp_path: Path, tiny_net: Path) -> Path:
    return write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})


@pytest.fixture
def installed(project: Path, zoopm: Zoopm) -> Path:
    assert zoopm("install", project=project).exit_code == 0
    return project


# --- the schemas -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", COMMANDS)
def test_every_schema_is_a_draft_2020_12_schema_that_refuses_unknown_fields(name: str) -> None:
    loaded = schema(name)
    assert loaded["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(loaded)
    top = loaded["items"] if loaded["type"] == "array" else loaded
    assert top["additionalProperties"] is False


def test_list_prints_each_model_as_show_does() -> None:
    show = {k: v for k, v in schema("show").items() if k not in ("title", "description")}
    assert schema("list")["items"] == {k: v for k, v in show.items() if k != "$schema"}


def test_a_document_missing_or_renaming_a_field_fails_its_schema(
    installed: Path, zoopm: Zoopm
) -> None:
    good = document(zoopm("install", "--json", project=installed), "install")
    validator = jsonschema.Draft202012Validator(schema("install"))
    missing = {k: v for k, v in good.items() if k != "placed"}
    renamed = {**missing, "files_placed": good["placed"]}
    wrong_type = {**good, "placed": "0"}

    for bad in (missing, renamed, wrong_type):
        assert not validator.is_valid(bad), bad
    assert validator.is_valid(good)


def test_every_schema_is_documented_with_a_sample() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "json.md").read_text(encoding="utf-8")
    for name in COMMANDS:
        assert f"zoopm/data/schemas/{name}.json" in page, name


# --- each command, when it works ---------------------------------------------------------------


def test_lock_then_lock_check(project: Path, zoopm: Zoopm) -> None:
    wrote = document(zoopm("lock", "--json", project=project), "lock")
    checked = document(zoopm("lock", "--check", "--json", project=project), "lock")

    assert wrote["written"] and wrote["created"] and wrote["models"] == ["tiny"]
    assert wrote["lock"] == str(project / "zoo.lock")
    assert not checked["written"] and checked["changes"] == []


def test_install_then_a_no_op_install_then_dry_run(project: Path, zoopm: Zoopm) -> None:
    first = document(zoopm("install", "--json", project=project), "install")
    again = document(zoopm("install", "--json", project=project), "install")
    (project / "models" / "tiny" / "deploy.prototxt").unlink()
    plan = document(zoopm("install", "--dry-run", "--json", project=project), "install-dry-run")

    assert (first["placed"], first["fetched_blobs"], first["nothing_to_do"]) == (4, 4, False)
    assert (again["placed"], again["kept"], again["nothing_to_do"]) == (0, 4, True)
    assert plan["place"] == [{"model": "tiny", "path": "deploy.prototxt"}]
    assert plan["keep"] == 3
    assert not (project / "models" / "tiny" / "deploy.prototxt").exists()


def test_list_show_verify_gc(installed: Path, zoopm: Zoopm) -> None:
    listed = document(zoopm("list", "--json", project=installed), "list")
    shown = document(zoopm("show", "tiny", "--json", project=installed), "show")
    verified = document(zoopm("verify", "--store", "--json", project=installed), "verify")
    collected = document(zoopm("gc", "--dry-run", "--json", project=installed), "gc")

    assert listed == [shown]
    assert shown["installed"] and len(shown["files"]) == 4
    assert verified["ok"] and verified["store"]["blobs"] == 4
    assert collected["dry_run"] and collected["blobs"]["kept"] == 4


def test_push_then_push_again(
    installed: Path, zoopm: Zoopm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZOOPM_REMOTE", (tmp_path / "shared").as_uri())
    first = document(zoopm("push", "--json", project=installed), "push")
    again = document(zoopm("push", "--all", "--json", project=installed), "push")

    assert len(first["uploaded"]["blobs"]) == 4 and first["present"]["blobs"] == 0
    assert again["all"] and again["uploaded"] == {"blobs": [], "bytes": 0}
    assert again["present"] == {"blobs": 4, "bytes": first["uploaded"]["bytes"]}


def test_verify_finding_a_problem_exits_1_with_its_document_not_an_error(
    installed: Path, zoopm: Zoopm
) -> None:
    (installed / "models" / "tiny" / "deploy.prototxt").unlink()

    run = zoopm("verify", "--json", project=installed)

    assert run.exit_code == 1
    found = document(run, "verify")
    assert not found["ok"]
    assert [(p["path"], p["kind"]) for p in found["problems"]] == [("deploy.prototxt", "missing")]


def test_search(tmp_path: Path, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    found = document(zoopm("search", "googlenet", "--json"), "search")
    nothing = document(zoopm("search", "no-such-model-anywhere", "--json"), "search")

    assert "bvlc_googlenet" in [entry["name"] for entry in found]
    assert nothing == []


def test_a_warning_goes_into_the_document_and_stays_on_stderr(
    project: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    (tiny_net / "old.caffemodel").write_bytes(b"older weights")

    run = zoopm("lock", "--json", project=project)

    said = document(run, "lock")["warnings"]
    assert len(said) == 1 and "old.caffemodel" in said[0]
    assert run.stderr.splitlines() == [f"warning: {said[0]}"]


def test_the_closing_summary_is_the_document_not_a_line_on_stderr(
    installed: Path, zoopm: Zoopm
) -> None:
    for args in (["install"], ["gc"], ["verify"], ["lock"]):
        run = zoopm(*args, "--json", project=installed)
        assert run.exit_code == 0
        assert run.stderr == "", args
        json.loads(run.stdout)


# --- the Caffe commands ------------------------------------------------------------------------


def test_download_binary(tmp_path: Path, file_server: FileServer, zoopm: Zoopm) -> None:
    directory = tmp_path / "models" / "tiny_net"
    shutil.copytree(TINY_NET, directory)
    url = file_server.url("/models/tiny_net.caffemodel")
    file_server.add_bytes("/models/tiny_net.caffemodel", serve_binary_elsewhere(directory, url))

    fetched = document(zoopm("download-binary", directory, "--json"), "download-binary")
    there = document(zoopm("download-binary", directory, "--json"), "download-binary")

    assert not fetched["existed"]
    assert fetched["sha1"] == "0e667a4b306f07d7b35ff680847fe0db329955da"
    assert there["existed"] and there["sha1"] is None
    failed(zoopm("download-binary", tmp_path / "empty-nothing", "--json"), 2)


def test_fetch_gist(
    tmp_path: Path, github: GitHubEmulator, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    fetched = document(zoopm("fetch-gist", f"mavenlin/{NIN}", "--json"), "fetch-gist")

    assert fetched["gist"] == NIN and fetched["asked_rev"] is None
    assert Path(fetched["directory"]).name == f"mavenlin-{NIN}"
    assert "readme.md" in fetched["files"]
    failed(zoopm("fetch-gist", "https://example.com/x", "--json"), 2)


def test_import(
    tmp_path: Path, github: GitHubEmulator, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(TINY_NET, tmp_path / "work" / "models" / "tiny_net")
    monkeypatch.chdir(tmp_path / "work")

    planned = document(zoopm("import", "--dry-run", "--json"), "import")
    done = document(zoopm("import", "--json"), "import")

    assert planned["dry_run"] and not planned["written"]
    assert [d["directory"] for d in done["directories"]] == ["tiny_net"]
    assert done["written"] and done["created"]
    failed(zoopm("import", tmp_path / "no-such-dir", "--json"), 2)


def test_publish(
    tmp_path: Path, github: GitHubEmulator, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "author" / "tiny_net"
    shutil.copytree(TINY_NET, model)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    failed(zoopm("publish", model, "--json"), 2)
    github.allow_token(TOKEN, login="author")
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)

    sent = document(zoopm("publish", model, "--json"), "publish")

    assert sent["created"] and sent["readme_updated"]
    assert {"name": "tiny_net.caffemodel", "reason": sent["left_out"][0]["reason"]} in sent[
        "left_out"
    ]
    assert sent["gist"] in (model / "readme.md").read_text(encoding="utf-8")


# --- failures: the same exit code as without --json, and the same words ------------------------


def _broken_manifest(project: Path) -> None:
    (project / "zoo.toml").write_text("[models\n", encoding="utf-8")


def _stale(project: Path) -> None:
    """zoo.toml declares a second model zoo.lock does not have."""
    text = (project / "zoo.toml").read_text(encoding="utf-8")
    tiny = next(line for line in text.splitlines() if line.startswith("tiny = "))
    (project / "zoo.toml").write_text(f"{text}other{tiny.removeprefix('tiny')}\n")


def _nothing(project: Path) -> None:
    pass


def _unreadable_lock(project: Path) -> None:
    (project / "zoo.lock").write_text("not a lock", encoding="utf-8")


FAILURES: list[tuple[list[str], Callable[[Path], None], int]] = [
    (["lock"], _broken_manifest, 2),
    (["lock", "--check"], _stale, 1),
    (["install"], _broken_manifest, 2),
    (["install", "--frozen"], _stale, 1),
    (["install", "--dry-run"], _stale, 1),
    (["list"], _unreadable_lock, 2),
    (["show", "nope"], _nothing, 2),
    (["search", "x"], _broken_manifest, 2),
    (["verify", "nope"], _nothing, 2),
    (["gc"], _unreadable_lock, 1),
    (["install", "--link-mode", "sideways"], _nothing, 2),
]


@pytest.mark.parametrize(
    ("args", "spoil", "code"),
    FAILURES,
    ids=[f"{' '.join(args)}{spoil.__name__}" for args, spoil, _ in FAILURES],
)
def test_a_failure_is_an_error_document_with_the_exit_code_it_has_without_json(
    installed: Path,
    zoopm: Zoopm,
    args: list[str],
    spoil: Callable[[Path], None],
    code: int,
) -> None:
    spoil(installed)

    plain = zoopm(*args, project=installed)
    as_json = zoopm(*args, "--json", project=installed)

    assert plain.exit_code == code, plain.stderr
    error = failed(as_json, code)
    assert plain.error_line == f"error: {error['error']}"


@pytest.mark.parametrize(
    "args",
    [
        ["list", "--json", "--bogus"],
        ["show", "--json"],
        ["--json", "no-such-command"],
        ["verify", "--json", "--jobs", "3"],
        ["install", "--json", "--jobs", "0"],
    ],
)
def test_a_usage_error_with_json_is_an_error_document_with_exit_2(
    installed: Path, zoopm: Zoopm, args: list[str]
) -> None:
    error = failed(zoopm(*args, project=installed), 2)

    assert error["kind"] == "UsageError"


def test_help_with_json_is_still_help(zoopm: Zoopm) -> None:
    run = zoopm("list", "--json", "--help")

    assert run.exit_code == 0
    assert "--json" in run.stdout


# --- the real entry point: the fast install, Ctrl-C --------------------------------------------


def zoopm_process(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zoopm", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_entry_point_prints_one_document_for_a_usage_error_and_for_a_failure(
    installed: Path,
) -> None:
    usage = zoopm_process(["list", "--json", "--bogus"], installed)
    _broken_manifest(installed)
    broken = zoopm_process(["install", "--json"], installed)

    assert usage.returncode == 2
    assert json.loads(usage.stdout)["kind"] == "UsageError"
    assert broken.returncode == 2
    assert json.loads(broken.stdout)["kind"] == "ManifestError"


def _downloading_install(
    tmp_path: Path, tiny_net: Path, file_server: FileServer
) -> subprocess.Popen[str]:
    """`zoopm install --json` started on a binary the server answers only after 5 s."""
    url = file_server.url("/models/tiny_net.caffemodel")
    file_server.add_bytes("/models/tiny_net.caffemodel", serve_binary_elsewhere(tiny_net, url))
    file_server.slow("/models/tiny_net.caffemodel", 5.0, times=5)
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})
    return subprocess.Popen(
        [sys.executable, "-m", "zoopm", "-C", str(project), "install", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_ctrl_c_with_json_is_an_error_document_with_exit_130(
    tmp_path: Path, tiny_net: Path, file_server: FileServer
) -> None:
    started = _downloading_install(tmp_path, tiny_net, file_server)
    deadline = time.monotonic() + 30
    while not file_server.requests and time.monotonic() < deadline:
        time.sleep(0.02)  # the download has begun: zoopm is well past its start
    started.send_signal(signal.SIGINT)
    stdout, stderr = started.communicate(timeout=30)

    assert started.returncode == 130, stderr
    error = json.loads(stdout)
    jsonschema.Draft202012Validator(schema("error")).validate(error)
    assert (error["kind"], error["exit_code"]) == ("Interrupted", 130)


# --- signals and pipes: stdout stays one whole document -----------------------------------------


def _big_index(project: Path, entries: int = 2000) -> None:
    """An index whose `search ''` answer is far larger than a pipe's buffer."""
    lines = ["version = 1"]
    for i in range(entries):
        lines += [
            f"[models.m{i:05}]",
            f'gist = "{i:020x}"',
            f'description = "model {i} ' + "x" * 60 + '"',
        ]
    (project / "big-index.toml").write_text("\n".join(lines) + "\n")
    manifest = project / "zoo.toml"
    manifest.write_text(manifest.read_text() + '\n[[index]]\npath = "big-index.toml"\n')


def test_sigterm_while_the_document_is_written_waits_for_its_end(project: Path) -> None:
    _big_index(project)
    started = subprocess.Popen(
        [sys.executable, "-m", "zoopm", "-C", str(project), "search", "", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,  # read(1) takes one byte, not a buffer's worth communicate() would not see
    )
    assert started.stdout is not None
    first = started.stdout.read(1)  # the document has begun; the rest waits in a full pipe
    time.sleep(0.3)
    started.send_signal(signal.SIGTERM)
    rest, stderr = started.communicate(timeout=60)

    assert started.returncode == 143, stderr
    found = json.loads(first + rest)  # one whole document: the answer, not cut short
    assert {"m00000", "m01999"} <= {entry["name"] for entry in found}


def test_a_second_signal_while_stopping_changes_nothing(
    tmp_path: Path, tiny_net: Path, file_server: FileServer
) -> None:
    started = _downloading_install(tmp_path, tiny_net, file_server)
    deadline = time.monotonic() + 30
    while not file_server.requests and time.monotonic() < deadline:
        time.sleep(0.02)
    started.send_signal(signal.SIGTERM)
    for _ in range(20):  # a supervisor (or a hand on Ctrl-C) insisting
        time.sleep(0.001)
        started.send_signal(signal.SIGINT)
    stdout, stderr = started.communicate(timeout=30)

    # Python runs pending handlers in signal-number order, so a SIGINT landing before the
    # SIGTERM was handled may be the one that stops zoopm (130): either way, one stop only.
    error = json.loads(stdout)
    assert started.returncode in (130, 143), stderr
    assert (error["kind"], error["exit_code"]) == ("Interrupted", started.returncode)
    assert "Traceback" not in stderr
    assert stderr.count("error: ") == 1


def test_a_reader_that_stops_early_ends_zoopm_quietly(project: Path) -> None:
    _big_index(project)
    piped = subprocess.run(
        f"{sys.executable} -m zoopm -C {project} search '' | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
        executable="/bin/bash",
        check=False,
    )

    assert piped.stdout.split() == ["name", "source", "description"]
    assert piped.stderr == ""
