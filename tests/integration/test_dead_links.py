"""Dead links: when the origin and every mirror fail, a verified copy from the web archive.

The archive is a local stand-in (a second file server): its availability API answers JSON at
/wayback/available?url=…, and its snapshot URLs serve the captured bytes under /web/<ts>id_/….
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import Zoopm
from tests.support.fileserver import FileServer
from tests.support.projects import serve_binary_elsewhere, write_project

ORIGIN = "http://dl.caffe.invalid/tiny_net.caffemodel"
BINARY = "tiny_net.caffemodel"
API = "/wayback/available"
STAMP = "20160315000000"


@pytest.fixture
def archive(monkeypatch: pytest.MonkeyPatch) -> Iterator[FileServer]:
    with FileServer() as server:
        monkeypatch.setenv("ZOOPM_ARCHIVE_API", server.url(API))
        yield server


def answer(
    archive: FileServer,
    *,
    timestamp: str | None = None,
    status: str = "200",
    capture: bool = True,
) -> None:
    """The availability API's answer about ORIGIN (asked with timestamp, if given)."""
    params = {"url": ORIGIN} | ({"timestamp": timestamp} if timestamp else {})
    closest = {
        "status": status,
        "available": True,
        "url": archive.url(f"/web/{STAMP}/{ORIGIN}"),
        "timestamp": STAMP,
    }
    body = {"url": ORIGIN, "archived_snapshots": {"closest": closest} if capture else {}}
    path = f"{API}?{urllib.parse.urlencode(params)}"
    archive.add_bytes(path, json.dumps(body).encode(), "application/json")


def dead_origin_project(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, extra: str = ""
) -> tuple[Path, bytes]:
    """A project whose binary's origin and mirror both answer 404."""
    data = serve_binary_elsewhere(tiny_net, ORIGIN)
    mirror = f'\n[mirrors]\n"http://dl.caffe.invalid/" = ["{file_server.url("/mirror/")}"]\n'
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'}, mirror)
    if extra:
        text = (project / "zoo.toml").read_text()
        (project / "zoo.toml").write_text(text.replace("[project]\n", f"[project]\n{extra}\n"))
    return project, data


def test_a_dead_binary_is_installed_from_the_archive_and_verified(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, archive: FileServer, zoopm: Zoopm
) -> None:
    project, data = dead_origin_project(tmp_path, tiny_net, file_server)
    answer(archive)
    archive.add_bytes(f"/web/{STAMP}id_/{ORIGIN}", data)

    run = zoopm("install", project=project)

    assert run.exit_code == 0, run.stderr
    assert (project / "models" / "tiny" / BINARY).read_bytes() == data
    assert (
        "tiny_net.caffemodel: 2 URL(s) failed; served from the Internet Archive capture of "
        "2016-03-15, sha1 verified" in run.stderr
    )
    # The archive was asked about the origin URL, never the mirror's, and sent no credential.
    asked = [r for r in archive.requests if r.path == API]
    assert [urllib.parse.parse_qs(r.query)["url"] for r in asked] == [[ORIGIN]]
    assert all("cookie" not in r.headers and "authorization" not in r.headers for r in asked)
    # The lock pins the origin URL, not the archive's.
    assert f'urls = ["{ORIGIN}"]' in (project / "zoo.lock").read_text()


def test_a_locked_binary_lost_everywhere_is_installed_from_the_archive(
    tmp_path: Path,
    tiny_net: Path,
    file_server: FileServer,
    archive: FileServer,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project, data = dead_origin_project(tmp_path, tiny_net, file_server)
    file_server.add_bytes(f"/mirror/{BINARY}", data)
    assert zoopm("lock", project=project).exit_code == 0
    assert archive.count() == 0
    # Another machine: an empty store, and the mirror is gone too.
    monkeypatch.setenv("ZOOPM_HOME", str(tmp_path / "machine-b"))
    file_server.fail(f"/mirror/{BINARY}", status=404, times=10)
    answer(archive)
    archive.add_bytes(f"/web/{STAMP}id_/{ORIGIN}", data)

    run = zoopm("install", "--frozen", project=project)

    assert run.exit_code == 0, run.stderr
    assert (project / "models" / "tiny" / BINARY).read_bytes() == data
    assert "served from the Internet Archive capture of 2016-03-15, sha256 verified" in run.stderr


def test_a_wrong_archived_copy_is_refused_and_the_error_names_every_source(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, archive: FileServer, zoopm: Zoopm
) -> None:
    project, data = dead_origin_project(tmp_path, tiny_net, file_server)
    answer(archive)
    archive.add_bytes(f"/web/{STAMP}id_/{ORIGIN}", data[:-1] + b"\0")

    run = zoopm("install", project=project)

    assert run.exit_code == 1
    line = run.error_line
    assert "every source failed" in line
    assert file_server.url(f"/mirror/{BINARY}") in line
    assert f"{ORIGIN}: " in line
    assert f"the Internet Archive: {archive.url(f'/web/{STAMP}id_/{ORIGIN}')}" in line
    assert not (project / "models").exists()


@pytest.mark.parametrize("where", ["zoo.toml", "config.toml"])
def test_with_the_fallback_off_the_archive_is_never_contacted(
    tmp_path: Path,
    tiny_net: Path,
    file_server: FileServer,
    archive: FileServer,
    zoopm: Zoopm,
    where: str,
) -> None:
    extra = "archive-fallback = false" if where == "zoo.toml" else ""
    project, data = dead_origin_project(tmp_path, tiny_net, file_server, extra)
    if where == "config.toml":
        config = tmp_path / "xdg-config" / "zoopm" / "config.toml"
        config.parent.mkdir(parents=True)
        config.write_text("[defaults]\narchive-fallback = false\n")
    answer(archive)
    archive.add_bytes(f"/web/{STAMP}id_/{ORIGIN}", data)

    run = zoopm("install", project=project)

    assert run.exit_code == 1
    assert "all 2 URLs failed" in run.error_line
    assert archive.requests == []


def test_zoo_toml_turns_the_fallback_on_over_config_toml(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, archive: FileServer, zoopm: Zoopm
) -> None:
    project, data = dead_origin_project(tmp_path, tiny_net, file_server, "archive-fallback = true")
    config = tmp_path / "xdg-config" / "zoopm" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[defaults]\narchive-fallback = false\n")
    answer(archive)
    archive.add_bytes(f"/web/{STAMP}id_/{ORIGIN}", data)

    run = zoopm("install", project=project)

    assert run.exit_code == 0, run.stderr


def test_offline_never_contacts_the_archive(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, archive: FileServer, zoopm: Zoopm
) -> None:
    project, data = dead_origin_project(tmp_path, tiny_net, file_server)
    answer(archive)
    archive.add_bytes(f"/web/{STAMP}id_/{ORIGIN}", data)

    run = zoopm("install", "--offline", project=project)

    assert run.exit_code != 0
    assert archive.requests == []
    assert file_server.requests == []


def test_a_capture_of_a_404_is_not_used(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, archive: FileServer, zoopm: Zoopm
) -> None:
    project, data = dead_origin_project(tmp_path, tiny_net, file_server)
    answer(archive, status="404")
    answer(archive, timestamp="2016", status="404")
    archive.add_bytes(f"/web/{STAMP}id_/{ORIGIN}", data)

    run = zoopm("install", project=project)

    assert run.exit_code == 1
    assert f"the Internet Archive ({archive.url(API)}): no capture of {ORIGIN}" in run.error_line
    assert archive.count(f"/web/{STAMP}id_/{ORIGIN}") == 0


def test_an_empty_first_answer_is_asked_again_with_a_timestamp(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, archive: FileServer, zoopm: Zoopm
) -> None:
    project, data = dead_origin_project(tmp_path, tiny_net, file_server)
    answer(archive, capture=False)
    answer(archive, timestamp="2016")
    archive.add_bytes(f"/web/{STAMP}id_/{ORIGIN}", data)

    run = zoopm("install", project=project)

    assert run.exit_code == 0, run.stderr
    assert (project / "models" / "tiny" / BINARY).read_bytes() == data
    asked = [urllib.parse.parse_qs(r.query) for r in archive.requests if r.path == API]
    assert asked == [{"url": [ORIGIN]}, {"url": [ORIGIN], "timestamp": ["2016"]}]


def test_a_snapshot_url_that_is_not_http_is_refused(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, archive: FileServer, zoopm: Zoopm
) -> None:
    project, _ = dead_origin_project(tmp_path, tiny_net, file_server)
    closest = {"status": "200", "available": True, "timestamp": STAMP}
    closest["url"] = f"file:///web/{STAMP}/{tiny_net}/readme.md"
    body = {"url": ORIGIN, "archived_snapshots": {"closest": closest}}
    query = urllib.parse.urlencode({"url": ORIGIN})
    archive.add_bytes(f"{API}?{query}", json.dumps(body).encode(), "application/json")

    run = zoopm("install", project=project)

    assert run.exit_code == 1
    assert "the archive's snapshot URL is refused" in run.error_line


def test_an_oversized_archive_answer_is_refused(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, archive: FileServer, zoopm: Zoopm
) -> None:
    project, _ = dead_origin_project(tmp_path, tiny_net, file_server)
    query = urllib.parse.urlencode({"url": ORIGIN})
    archive.add_bytes(f"{API}?{query}", b" " * (1024 * 1024), "application/json")

    run = zoopm("install", project=project)

    assert run.exit_code == 1
    assert "is larger than" in run.error_line
    assert "Traceback" not in run.stderr


def test_a_readme_without_sha1_is_not_pinned_from_the_archive(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, archive: FileServer, zoopm: Zoopm
) -> None:
    project, data = dead_origin_project(tmp_path, tiny_net, file_server)
    readme = tiny_net / "readme.md"
    text = readme.read_text()
    kept = [line for line in text.splitlines(keepends=True) if not line.startswith("sha1:")]
    readme.write_text("".join(kept))
    answer(archive)
    archive.add_bytes(f"/web/{STAMP}id_/{ORIGIN}", data)

    run = zoopm("install", project=project)

    assert run.exit_code == 1
    assert "the Internet Archive not asked: there is no sha1" in run.error_line
    assert archive.requests == []


def test_download_binary_recovers_a_dead_link_from_the_archive(
    tmp_path: Path,
    tiny_net: Path,
    archive: FileServer,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The drop-in for Caffe's download_model_binary.py, outside any project."""
    data = serve_binary_elsewhere(tiny_net, ORIGIN)
    answer(archive)
    archive.add_bytes(f"/web/{STAMP}id_/{ORIGIN}", data)
    monkeypatch.chdir(tiny_net.parent)

    run = zoopm("download-binary", tiny_net.name)

    assert run.exit_code == 0, run.stderr
    assert (tiny_net / BINARY).read_bytes() == data
    assert "served from the Internet Archive capture of 2016-03-15, sha1 verified" in run.stderr


def test_a_capture_that_redirects_is_followed_and_still_verified(
    tmp_path: Path, tiny_net: Path, file_server: FileServer, archive: FileServer, zoopm: Zoopm
) -> None:
    """The Wayback Machine answers a raw capture with a 302 to the closest stored timestamp."""
    project, data = dead_origin_project(tmp_path, tiny_net, file_server)
    answer(archive)
    closest = f"/web/20160316120000id_/{ORIGIN}"
    archive.redirect(f"/web/{STAMP}id_/{ORIGIN}", archive.url(closest))
    archive.add_bytes(closest, data)

    run = zoopm("install", project=project)

    assert run.exit_code == 0, run.stderr
    assert (project / "models" / "tiny" / BINARY).read_bytes() == data
    assert [r.path for r in archive.requests if r.path.startswith("/web/")] == [
        f"/web/{STAMP}id_/{ORIGIN}",
        closest,
    ]
