"""zoopm publish DIR: a model directory's info files to a gist, against the emulated GitHub."""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.request
from pathlib import Path

import pytest

from tests.support.cli import Run, Zoopm
from tests.support.fileserver import FileServer
from tests.support.github import GitHubEmulator
from tests.support.projects import TINY_NET, write_project
from zoopm.network.github_api import GitHubClient

TOKEN = "ghp_AUTHORtoken0123456789abcdefABCDEF"
NIN = "d802a5849de39225bcc6"  # owned by mavenlin, not by the author
INFO_FILES = ("deploy.prototxt", "expected_output.json", "readme.md")
ADD_LINE = re.compile(r"^zoopm add gist:([0-9a-f]{32})@([0-9a-f]{40})$", re.MULTILINE)


@pytest.fixture
def author(github: GitHubEmulator, monkeypatch: pytest.MonkeyPatch) -> GitHubEmulator:
    """The emulator with the author's token registered, and GITHUB_TOKEN set to it."""
    github.allow_token(TOKEN, login="author")
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    return github


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """A writable copy of the tiny model directory (readme.md, prototxt, json, caffemodel)."""
    target = tmp_path / "author" / "tiny_net"
    shutil.copytree(TINY_NET, target)
    return target


def published(run: Run) -> tuple[str, str]:
    """(gist id, revision) from the exact add line publish prints."""
    assert run.exit_code == 0, run.stderr
    found = ADD_LINE.search(run.stdout)
    assert found is not None, run.stdout
    assert f"revision {found.group(2)}\n" in run.stdout
    return found.group(1), found.group(2)


def gist_files(github: GitHubEmulator, gist_id: str) -> dict[str, bytes]:
    state = github.gist_state(gist_id)
    assert state is not None
    return state[2]


def api_writes(github: GitHubEmulator) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in github.requests if r.method in ("POST", "PATCH")]


def info_files(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in INFO_FILES}


# --- the round trip (the "Done when") --------------------------------------------------


def test_publish_add_elsewhere_edit_delete_publish_again_and_update_follows(
    tmp_path: Path,
    author: GitHubEmulator,
    file_server: FileServer,
    model: Path,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original_readme = (model / "readme.md").read_bytes()
    first = zoopm("publish", model)
    gist_id, rev1 = published(first)

    readme = (model / "readme.md").read_bytes()
    assert readme == original_readme.replace(
        b"---\n\nA tiny", f"gist_id: {gist_id}\n---\n\nA tiny".encode()
    )
    assert gist_files(author, gist_id) == info_files(model)  # the binary stays at home
    state = author.gist_state(gist_id)
    assert state is not None and state[:2] == (False, "tiny_net test model")  # secret; name
    assert author.gist_commits(gist_id)[-1] == rev1
    assert "Left out tiny_net.caffemodel: a binary" in first.stderr

    # A consumer: another project, another store; GITHUB_TOKEN stays set on purpose.
    monkeypatch.setenv("ZOOPM_HOME", str(tmp_path / "consumer-home"))
    file_server.add_file("/tiny/tiny_net.caffemodel", model / "tiny_net.caffemodel")
    mirror = (
        f'\n[mirrors]\n"http://models.zoopm.invalid/tiny_net/" = ["{file_server.url("/tiny/")}"]\n'
    )
    project = write_project(tmp_path / "consumer", {}, mirror)
    added = zoopm("add", f"gist:{gist_id}@{rev1}", "--name", "tiny", project=project)
    assert added.exit_code == 0, added.stderr
    installed = project / "models" / "tiny"
    for name in (*INFO_FILES, "tiny_net.caffemodel"):
        assert (installed / name).read_bytes() == (model / name).read_bytes(), name

    # The author edits one file and deletes another, and publishes again.
    monkeypatch.setenv("ZOOPM_HOME", str(tmp_path / "author-home"))
    deploy = (model / "deploy.prototxt").read_bytes().replace(b"tiny", b"tinier", 1)
    (model / "deploy.prototxt").write_bytes(deploy)
    (model / "expected_output.json").unlink()
    second = zoopm("publish", model)
    same_id, rev2 = published(second)
    assert (same_id, rev2 != rev1) == (gist_id, True)
    assert "Deleted expected_output.json from the gist" in second.stderr
    assert gist_files(author, gist_id) == {
        "deploy.prototxt": deploy,
        "readme.md": readme,
    }
    assert (model / "readme.md").read_bytes() == readme  # gist_id was there already

    monkeypatch.setenv("ZOOPM_HOME", str(tmp_path / "consumer-home"))
    updated = zoopm("update", project=project)
    assert updated.exit_code == 0, updated.stderr
    assert f"tiny: {rev1[:12]} → {rev2[:12]}" in updated.stderr
    assert zoopm("install", project=project).exit_code == 0
    assert (installed / "deploy.prototxt").read_bytes() == deploy
    assert not (installed / "expected_output.json").exists()
    # The token went to the API only: no raw download carried it.
    raw = [r for r in author.requests if r.server == "raw"]
    assert raw and all("authorization" not in r.headers for r in raw)


def test_publishing_an_unchanged_directory_sends_nothing_and_prints_the_same_revision(
    author: GitHubEmulator, model: Path, zoopm: Zoopm
) -> None:
    gist_id, rev = published(zoopm("publish", model))
    author.clear_log()

    again = zoopm("publish", model)

    assert published(again) == (gist_id, rev)
    assert "already holds these files; nothing was sent" in again.stderr
    assert api_writes(author) == []
    assert len(author.gist_commits(gist_id)) == 2  # the create, then the readme with gist_id


def test_public_and_description(author: GitHubEmulator, model: Path, zoopm: Zoopm) -> None:
    gist_id, _ = published(zoopm("publish", model, "--public", "--description", "Tiny net"))

    state = author.gist_state(gist_id)
    assert state is not None and state[:2] == (True, "Tiny net")
    run = zoopm("publish", model, "--public")
    assert run.exit_code == 0
    assert "--public applies to a new gist only" in run.stderr


def test_a_readme_without_frontmatter_gets_one_holding_only_gist_id(
    author: GitHubEmulator, model: Path, zoopm: Zoopm
) -> None:
    text = b"# My net\r\n\r\nNo frontmatter here.\r\n"
    (model / "readme.md").write_bytes(text)

    gist_id, _ = published(zoopm("publish", model))

    readme = (model / "readme.md").read_bytes()
    assert readme == f"---\r\ngist_id: {gist_id}\r\n---\r\n".encode() + text
    assert gist_files(author, gist_id)["readme.md"] == readme


def test_user_slash_id_in_gist_id_updates_that_gist(
    author: GitHubEmulator, model: Path, zoopm: Zoopm
) -> None:
    gist_id, _ = published(zoopm("publish", model))
    readme = model / "readme.md"
    readme.write_bytes(readme.read_bytes().replace(b"gist_id: ", b"gist_id: author/"))
    (model / "notes.txt").write_text("more\n")

    run = zoopm("publish", model)

    assert published(run)[0] == gist_id
    assert gist_files(author, gist_id)["notes.txt"] == b"more\n"
    assert b"gist_id: author/" + gist_id.encode() in readme.read_bytes()  # left as written


# --- refused before anything is sent or written ------------------------------------------------


def test_without_github_token_nothing_is_sent(
    github: GitHubEmulator, model: Path, zoopm: Zoopm
) -> None:
    before = info_files(model)
    run = zoopm("publish", model)

    assert run.exit_code == 2
    assert "publish needs GITHUB_TOKEN" in run.error_line
    assert "'gist' scope" in run.stderr
    assert github.requests == []
    assert info_files(model) == before


@pytest.mark.parametrize(
    ("token", "scopes", "words"),
    [
        ("ghp_wrong", None, "the token was refused (Bad credentials)"),
        ("ghp_noGistScope", ("repo",), "gists: not found"),
    ],
)
def test_a_token_github_refuses_stops_before_any_local_write(
    github: GitHubEmulator,
    model: Path,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
    token: str,
    scopes: tuple[str, ...] | None,
    words: str,
) -> None:
    github.allow_token(TOKEN, login="author")
    if scopes is not None:
        github.allow_token(token, login="author", scopes=scopes)
    monkeypatch.setenv("GITHUB_TOKEN", token)
    before = info_files(model)

    run = zoopm("publish", model)

    assert run.exit_code == 1
    assert words in run.error_line
    assert "'gist' scope" in run.stderr
    assert token not in run.stderr + run.stdout
    assert info_files(model) == before
    assert sorted(os.listdir(model)) == sorted(os.listdir(TINY_NET))


def test_gist_id_of_another_owners_gist_is_refused_and_the_readme_kept(
    author: GitHubEmulator, model: Path, zoopm: Zoopm
) -> None:
    readme = model / "readme.md"
    readme.write_bytes(readme.read_bytes().replace(b"---\n\n", f"gist_id: {NIN}\n---\n\n".encode()))
    before = info_files(model)
    commits = author.gist_commits(NIN)

    run = zoopm("publish", model)

    assert run.exit_code == 1
    assert f"PATCH {author.api_url}/gists/{NIN}: not found" in run.error_line
    assert "not yours" in run.stderr
    assert info_files(model) == before
    assert author.gist_commits(NIN) == commits


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("empty.prototxt", b"", "empty.prototxt: empty; GitHub refuses"),
        ("blank.prototxt", b" \n\t\n", "blank.prototxt: only white space"),
        ("latin1.txt", b"caf\xe9\n", "latin1.txt: not UTF-8 text (byte 3 is 0xe9)"),
        ("bell\x07.prototxt", b"x\n", "contains a control"),
        ("gistfile1.txt", b"x\n", "'gistfile' and a number"),
        ("C:evil.txt", b"x\n", "is absolute"),
        ("a\\b.txt", b"x\n", "backslash"),
    ],
)
def test_a_file_github_or_a_consumer_would_refuse_is_refused_before_sending(
    author: GitHubEmulator, model: Path, zoopm: Zoopm, name: str, data: bytes, words: str
) -> None:
    (model / name).write_bytes(data)
    before = info_files(model)

    run = zoopm("publish", model)

    assert run.exit_code == 2
    assert words in run.error_line
    if name.isprintable():  # the path as it is, not model/'gistfile1.txt'
        assert run.error_line.startswith(f"error: {model}/{name}: ")
    assert author.requests == []
    assert info_files(model) == before


@pytest.mark.parametrize(
    ("first", "second", "words"),
    [
        (
            "Deploy.prototxt",
            "deploy.prototxt",
            "'Deploy.prototxt' and 'deploy.prototxt' differ only in case",
        ),
        # The same name on screen: composed (NFC, as Linux tools write it) and decomposed (NFD,
        # as macOS wrote it); the message shows them escaped.
        (
            "caf\u00e9.txt",
            "cafe\u0301.txt",
            "'cafe\\u0301.txt' and 'caf\\xe9.txt' differ only in Unicode normalisation",
        ),
        ("CAF\u00c9.txt", "cafe\u0301.txt", "differ only in case and Unicode normalisation"),
    ],
)
def test_names_that_would_be_one_file_on_macos_or_windows_are_refused_saying_how_they_differ(
    author: GitHubEmulator, model: Path, zoopm: Zoopm, first: str, second: str, words: str
) -> None:
    for name in (first, second):
        (model / name).write_bytes(b"other\n")
    run = zoopm("publish", model)
    assert run.exit_code == 2
    assert words in run.error_line
    assert "rename one" in run.stderr
    assert author.requests == []


def test_a_malformed_frontmatter_is_refused_before_sending(
    author: GitHubEmulator, model: Path, zoopm: Zoopm
) -> None:
    readme = model / "readme.md"
    readme.write_bytes(readme.read_bytes().replace(b"sha1: 0e66", b"sha1: zz66"))
    run = zoopm("publish", model)
    assert run.exit_code == 2
    assert "sha1 must be 40 hex digits" in run.error_line
    assert author.requests == []


def test_no_readme_is_refused(author: GitHubEmulator, model: Path, zoopm: Zoopm) -> None:
    (model / "readme.md").unlink()
    run = zoopm("publish", model)
    assert run.exit_code == 2
    assert "readme.md: not found" in run.error_line
    assert author.requests == []


# --- left out, with a warning -------------------------------------------------------------------


def test_symlinks_directories_dotfiles_and_big_files_are_left_out(
    tmp_path: Path, author: GitHubEmulator, model: Path, zoopm: Zoopm
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the world\n")
    (model / "linked.txt").symlink_to(secret)
    (model / "sub").mkdir()
    (model / "sub" / "x.txt").write_text("x\n")
    os.mkfifo(model / "pipe")
    (model / ".zoopm-1234.tmp").write_text("zoopm's own\n")
    (model / ".DS_Store").write_bytes(b"\0\1")
    (model / "big.prototxt").write_bytes(b"layer\n" * (10 * 1024 * 1024 // 6 + 1))
    (model / "snapshot_iter_10.solverstate").write_bytes(b"\x00state")

    run = zoopm("publish", model)

    gist_id, _ = published(run)
    assert set(gist_files(author, gist_id)) == set(INFO_FILES)
    for words in (
        "linked.txt: not published: a symbolic link",
        "sub: not published: a directory",
        "pipe: not published: not a regular file",
        "big.prototxt: not published: larger than 10 MiB",
        ".DS_Store: not published: a hidden file",
    ):
        assert words in run.stderr
    assert "Left out snapshot_iter_10.solverstate: a binary" in run.stderr
    assert secret.read_text() == "not for the world\n"


def test_a_file_left_out_locally_is_not_deleted_from_the_gist(
    author: GitHubEmulator, model: Path, zoopm: Zoopm
) -> None:
    gist_id, _ = published(zoopm("publish", model))
    # The gist got big.prototxt some other way; here it is over 10 MB, so publish leaves it out.
    edit = json.dumps({"files": {"big.prototxt": {"content": "small there\n"}}}).encode()
    headers = {"Authorization": f"token {TOKEN}", "Content-Type": "application/json"}
    request = urllib.request.Request(
        f"{author.api_url}/gists/{gist_id}", edit, headers, method="PATCH"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
    (model / "big.prototxt").write_bytes(b"layer\n" * (10 * 1024 * 1024 // 6 + 1))
    (model / "notes.txt").write_text("notes\n")

    run = zoopm("publish", model)

    assert published(run)[0] == gist_id
    files = gist_files(author, gist_id)
    assert (files["big.prototxt"], files["notes.txt"]) == (b"small there\n", b"notes\n")
    assert "Deleted" not in run.stderr


# --- GitHub failing part way --------------------------------------------------------------------


def test_a_failed_create_leaves_the_readme_as_it_was(
    author: GitHubEmulator, model: Path, zoopm: Zoopm
) -> None:
    author.fail_api("/gists", status=502, method="POST")
    before = info_files(model)

    run = zoopm("publish", model)

    assert run.exit_code == 1
    assert f"POST {author.api_url}/gists: HTTP 502" in run.error_line
    assert info_files(model) == before
    assert sorted(os.listdir(model)) == sorted(os.listdir(TINY_NET))


def test_a_refused_update_leaves_the_readme_as_it_was(
    author: GitHubEmulator, model: Path, zoopm: Zoopm
) -> None:
    gist_id, rev = published(zoopm("publish", model))
    (model / "deploy.prototxt").write_text("changed\n")
    before = info_files(model)
    author.fail_api(f"/gists/{gist_id}", status=422, method="PATCH")

    run = zoopm("publish", model)

    assert run.exit_code == 1
    assert "HTTP 422" in run.error_line
    assert info_files(model) == before
    assert author.gist_commits(gist_id)[-1] == rev


def test_failing_after_the_create_tells_what_happened_and_a_rerun_finishes(
    author: GitHubEmulator, model: Path, zoopm: Zoopm
) -> None:
    author.fail_api("/gists/*", status=502, method="PATCH")

    run = zoopm("publish", model)

    assert run.exit_code == 1
    created = re.search(r"created gist ([0-9a-f]{32}) and wrote its gist_id", run.error_line)
    assert created is not None, run.stderr
    gist_id = created.group(1)
    assert f"gist_id: {gist_id}".encode() in (model / "readme.md").read_bytes()
    assert "run publish again" in run.stderr

    again = zoopm("publish", model)

    assert published(again)[0] == gist_id
    assert gist_files(author, gist_id) == info_files(model)


def test_an_answer_that_does_not_hold_what_was_sent_is_an_error(
    author: GitHubEmulator, model: Path, zoopm: Zoopm
) -> None:
    author.hostile_filenames = True  # every answer lists extra files nobody sent
    before = info_files(model)

    run = zoopm("publish", model)

    assert run.exit_code == 1
    assert "GitHub's answer does not hold what was sent" in run.error_line
    assert info_files(model) == before


def test_description_of_an_existing_gist_changes_without_a_new_revision(
    author: GitHubEmulator, model: Path, zoopm: Zoopm
) -> None:
    gist_id, rev = published(zoopm("publish", model))

    run = zoopm("publish", model, "--description", "Renamed")

    assert published(run) == (gist_id, rev)
    assert "Updated the description of gist" in run.stderr
    state = author.gist_state(gist_id)
    assert state is not None and state[1] == "Renamed"


def test_gist_id_naming_no_gist_is_refused_and_the_readme_kept(
    author: GitHubEmulator, model: Path, zoopm: Zoopm
) -> None:
    readme = model / "readme.md"
    missing = "0000deadbeef0000dead"  # well formed (20 hex digits), but no such gist
    readme.write_bytes(
        readme.read_bytes().replace(b"---\n\n", f"gist_id: {missing}\n---\n\n".encode())
    )
    before = info_files(model)

    run = zoopm("publish", model)

    assert run.exit_code == 1
    assert f"gist {missing} (readme.md's gist_id): not found on GitHub" in run.error_line
    assert "remove it to publish to a new gist" in run.stderr
    assert info_files(model) == before
    assert api_writes(author) == []


@pytest.mark.parametrize(
    ("frontmatter", "words"),
    [
        ("name: tiny\ngist_id: [1, 2]\n", "gist_id holds a list ('[1, 2]')"),
        ("name: tiny\ngist_id:\n  - 1\n  - 2\n", "gist_id holds a list ('[1, 2]')"),
        ("name: tiny\ngist_id: {a: b}\n", "gist_id holds a mapping ('{a: b}')"),
        ("gist_id: [1, 2]\n", "gist_id holds a list ('[1, 2]')"),  # no other model information
        ("name: tiny\ngist_id: null\n", "gist_id 'null' is not a gist id"),
        ("name: tiny\ngist_id: true\n", "gist_id 'true' is not a gist id"),
        ("name: tiny\ngist_id: ~\n", "gist_id '~' is not a gist id"),
        ("name: tiny\ngist_id: 0000deadbeef\n", "gist_id '0000deadbeef' is not a gist id"),
        (
            "name: tiny\ngist_id: A/B/d802a5849de39225bcc6\n",
            "gist_id 'A/B/d802a5849de39225bcc6' is not",
        ),
        (
            "name: tiny\ngist_id: https://gist.github.com/me/d802a5849de39225bcc6\n",
            "gist_id 'https://gist.github.com/me/d802a5849de39225bcc6' is not a gist id",
        ),
    ],
)
def test_a_gist_id_that_is_not_a_gist_id_is_refused_before_anything_is_sent(
    author: GitHubEmulator, model: Path, zoopm: Zoopm, frontmatter: str, words: str
) -> None:
    (model / "readme.md").write_text(f"---\n{frontmatter}---\n\n# tiny\n")
    before = info_files(model)

    run = zoopm("publish", model)

    assert run.exit_code == 2
    assert f"{model}/readme.md" in run.error_line
    assert words in run.error_line
    assert "remove the gist_id line to publish to a new gist" in run.stderr
    assert author.requests == []
    assert info_files(model) == before


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ("symlink", "became a symbolic link while publishing"),
        ("edit", "changed while publishing"),
        ("remove", "was removed while publishing"),
    ],
)
def test_a_readme_changed_while_the_gist_is_created_is_left_alone_and_the_gist_named(
    tmp_path: Path,
    author: GitHubEmulator,
    model: Path,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
    change: str,
    words: str,
) -> None:
    readme = model / "readme.md"
    elsewhere = tmp_path / "elsewhere.md"
    elsewhere.write_bytes(b"---\nname: not this one\n---\n")
    send = GitHubClient.send

    def send_then_change(self: GitHubClient, method: str, url: str, payload: object) -> object:
        answer = send(self, method, url, payload)  # type: ignore[arg-type]
        if method == "POST":  # GitHub made the gist; now someone else changes readme.md
            readme.unlink()
            if change == "symlink":
                readme.symlink_to(elsewhere)
            elif change == "edit":
                readme.write_bytes(b"---\nname: edited meanwhile\n---\n")
        return answer

    monkeypatch.setattr(GitHubClient, "send", send_then_change)

    run = zoopm("publish", model)

    assert run.exit_code == 2
    created = re.search(r"created gist ([0-9a-f]{32}), but ", run.error_line)
    assert created is not None, run.stderr
    gist_id = created.group(1)
    assert f"{readme} {words}; nothing was written to it" in run.error_line
    assert "Errno" not in run.stderr
    assert f"add 'gist_id: {gist_id}' to the frontmatter" in run.stderr
    assert author.gist_state(gist_id) is not None
    assert elsewhere.read_bytes() == b"---\nname: not this one\n---\n"
    if change == "edit":
        assert readme.read_bytes() == b"---\nname: edited meanwhile\n---\n"


def test_a_symlinked_readme_is_not_followed(
    tmp_path: Path, author: GitHubEmulator, model: Path, zoopm: Zoopm
) -> None:
    elsewhere = tmp_path / "elsewhere.md"
    (model / "readme.md").rename(elsewhere)
    (model / "readme.md").symlink_to(elsewhere)
    before = elsewhere.read_bytes()

    run = zoopm("publish", model)

    assert run.exit_code == 2
    assert "readme.md: a symbolic link (publish sends regular files only)" in run.error_line
    assert elsewhere.read_bytes() == before
    assert author.requests == []


def test_the_token_goes_with_api_writes_only_and_is_written_nowhere(
    tmp_path: Path, author: GitHubEmulator, model: Path, zoopm: Zoopm
) -> None:
    first = zoopm("publish", model)
    (model / "notes.txt").write_text("notes\n")
    second = zoopm("-v", "publish", model)

    published(first), published(second)
    writes = [r for r in author.requests if r.method in ("POST", "PATCH")]
    assert writes and all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in writes)
    assert all(r.server == "api" for r in author.requests)
    for run in (first, second):
        assert TOKEN not in run.stdout + run.stderr
    leaked = [
        path
        for path in tmp_path.rglob("*")
        if path.is_file() and not path.is_symlink() and TOKEN.encode() in path.read_bytes()
    ]
    assert leaked == []


# --- a model directory zoopm installed ----------------------------------------------------------


@pytest.fixture
def installed(tmp_path: Path, model: Path, zoopm: Zoopm) -> Path:
    """models/tiny of a project, installed by zoopm from the author's directory as its source."""
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{model}" }}'})
    run = zoopm("install", project=project)
    assert run.exit_code == 0, run.stderr
    return project / "models" / "tiny"


@pytest.mark.parametrize("given", ["models/tiny", "models/tiny/", ".", "../tiny", "link"])
def test_a_model_directory_zoopm_installed_is_refused_and_the_project_stays_intact(
    author: GitHubEmulator, installed: Path, zoopm: Zoopm, given: str
) -> None:
    project = installed.parent.parent
    cwd = {".": installed, "../tiny": installed}.get(given, project)
    (project / "link").symlink_to("models/tiny")
    readme = installed / "readme.md"
    before = (readme.read_bytes(), readme.stat().st_ino, readme.stat().st_mode)

    run = zoopm("publish", given, project=cwd)

    assert run.exit_code == 2
    assert "installed by zoopm from its source" in run.error_line
    assert "cp -r " in run.stderr and "publish that" in run.stderr
    assert author.requests == []
    assert (readme.read_bytes(), readme.stat().st_ino, readme.stat().st_mode) == before
    assert zoopm("verify", project=project).exit_code == 0
    assert zoopm("install", project=project).exit_code == 0


def test_a_copy_of_an_installed_model_and_a_model_kept_in_place_may_be_published(
    tmp_path: Path, author: GitHubEmulator, installed: Path, zoopm: Zoopm
) -> None:
    copy = tmp_path / "my-models" / "tiny"
    shutil.copytree(installed, copy)
    copied = published(zoopm("publish", copy))
    assert set(gist_files(author, copied[0])) == set(INFO_FILES)

    # A model kept in its own directory: zoopm adopts its files, which stay the user's own.
    project = installed.parent.parent
    mine = project / "models" / "mine"
    shutil.copytree(TINY_NET, mine)
    (project / "zoo.toml").write_text(
        (project / "zoo.toml").read_text() + 'mine = { path = "models/mine" }\n'
    )
    assert zoopm("install", project=project).exit_code == 0
    record = json.loads((project / "models" / ".zoopm-installed.json").read_text())
    assert {e["how"] for e in record["models"]["mine"].values()} == {"adopted"}

    gist_id, _ = published(zoopm("publish", "models/mine", project=project))
    assert gist_files(author, gist_id) == info_files(mine)
