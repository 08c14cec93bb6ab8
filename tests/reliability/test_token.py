"""GITHUB_TOKEN goes to the GitHub API origin and nowhere else: no output, no file, no log.

Every command that talks to GitHub runs with a distinctive token, quiet and with -v, and so do
failing runs (an unknown gist, a rejected token, an API that keeps failing). Afterwards the
token's bytes are searched for in every output and in every file the run could have written.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest

from tests.reliability._support import Outcome, assert_clean_failure, run
from tests.reliability.conftest import World
from tests.support.fileserver import FileServer
from tests.support.github import GitHubEmulator
from tests.support.projects import mirrors_for

TOKEN = "ghp_ZOOPMreliabilityTOKEN4f9c2a7e1b"
NIN = "d802a5849de39225bcc6"
FORMS = (TOKEN.encode(), base64.b64encode(TOKEN.encode()), TOKEN[4:].encode())


def _zoopm(world: World, github: GitHubEmulator, *args: str) -> Outcome:
    env = {"GITHUB_TOKEN": TOKEN, "ZOOPM_GITHUB_API": github.api_url}
    return run(list(args), project=world.project, home=world.home, env=env)


def _files_holding_the_token(root: Path, forms: tuple[bytes, ...]) -> list[str]:
    found = []
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            data = path.read_bytes()
            if any(form in data for form in forms):
                found.append(str(path.relative_to(root)))
    return found


def _assert_token_nowhere(
    world: World, outcomes: list[Outcome], forms: tuple[bytes, ...] = FORMS
) -> None:
    for outcome in outcomes:
        text = (outcome.stdout + outcome.stderr).encode()
        assert not any(form in text for form in forms), outcome.describe()
        assert not outcome.has_traceback, outcome.describe()
    assert _files_holding_the_token(world.root, forms) == []


def _project(world: World, host: FileServer, models: str) -> None:
    text = '[project]\nmodels-dir = "models"\n\n[models]\n' + models + mirrors_for(host)
    (world.project / "zoo.toml").write_text(text, encoding="utf-8")


def test_the_token_appears_in_no_output_and_no_file_of_lock_install_list_show_and_add(
    world: World, github: GitHubEmulator, model_host: FileServer
) -> None:
    github.allow_token(TOKEN)
    rev = github.gist_commits(NIN)[-1]
    _project(world, model_host, f'nin = {{ gist = "{NIN}", rev = "{rev}" }}\n')
    commands = [
        ["lock"],
        ["-v", "lock", "--check"],
        ["install"],
        ["list"],
        ["-v", "list"],
        ["show", "nin"],
        ["-v", "show", "nin"],
        ["-v", "add", "bvlc_googlenet"],
        ["-v", "install"],
    ]

    outcomes = [_zoopm(world, github, *command) for command in commands]

    for outcome in outcomes:
        assert outcome.returncode == 0, outcome.describe()
    _assert_token_nowhere(world, outcomes)
    assert (world.project / "zoo.lock").is_file()
    assert (world.project / "models" / "bvlc_googlenet" / "deploy.prototxt").is_file()
    sent = [r for r in github.requests if r.server == "api" and TOKEN in str(r.headers)]
    assert sent, "the token never reached the API: this test would prove nothing"


@pytest.mark.parametrize("failure", ["unknown-gist", "rejected-token", "api-down"])
def test_the_token_appears_in_no_output_and_no_file_when_github_fails(
    failure: str, world: World, github: GitHubEmulator, model_host: FileServer
) -> None:
    gist = NIN
    if failure == "unknown-gist":
        github.allow_token(TOKEN)
        gist = "0123456789abcdef0123"
    elif failure == "rejected-token":
        github.allow_token("ghp_someoneElsesToken")
    else:
        github.allow_token(TOKEN)
        github.fail_api("/gists/*", status=502, times=1000)
    _project(world, model_host, f'nin = {{ gist = "{gist}", rev = "{"a" * 40}" }}\n')

    # Retries with backoff make the failing API slow to give up: one verbose run is enough there.
    runs = [["-v", "install"]] if failure == "api-down" else [["install"], ["-v", "install"]]
    outcomes = [_zoopm(world, github, *command) for command in runs]

    for outcome in outcomes:
        assert_clean_failure(outcome, codes=(1, 2))
    _assert_token_nowhere(world, outcomes)
    assert not (world.project / "zoo.lock").exists()


def test_the_token_is_sent_to_the_api_origin_only(
    world: World, github: GitHubEmulator, model_host: FileServer
) -> None:
    github.allow_token(TOKEN)
    rev = github.gist_commits(NIN)[-1]
    _project(world, model_host, f'nin = {{ gist = "{NIN}", rev = "{rev}" }}\n')

    outcome = _zoopm(world, github, "install")

    assert outcome.returncode == 0, outcome.describe()
    raw = [r for r in github.requests if r.server == "raw"]
    assert raw, "no raw-host request: the test would prove nothing about it"
    assert model_host.requests, "no binary download: the test would prove nothing about it"
    assert all(TOKEN not in str(r.headers) for r in raw)
    assert all(TOKEN not in str(r.headers) for r in model_host.requests)


def test_a_private_repositorys_raw_download_token_is_never_written_and_its_expiry_is_survived(
    world: World, github: GitHubEmulator, model_host: FileServer
) -> None:
    github.allow_token(TOKEN)
    raw_token = github.make_private("BVLC", "caffe")
    _project(world, model_host, "")
    forms: tuple[bytes, ...] = (*FORMS, raw_token.encode())
    commands = [["-v", "add", "bvlc_googlenet"], ["-v", "lock", "--check"], ["list"]]

    outcomes = [_zoopm(world, github, *command) for command in commands]
    # A fresh machine, later: nothing in the store, and the old raw token has expired.
    shutil.rmtree(world.project / "models")
    shutil.rmtree(world.home)
    forms = (*forms, github.expire_raw_tokens("BVLC", "caffe").encode())
    outcomes.append(_zoopm(world, github, "-v", "install"))

    for outcome in outcomes:
        assert outcome.returncode == 0, outcome.describe()
    _assert_token_nowhere(world, outcomes, forms)
    assert (world.project / "models" / "bvlc_googlenet" / "deploy.prototxt").is_file()
    fetched = [r for r in github.requests if r.server == "raw" and raw_token in r.query.values()]
    assert fetched, "no raw download used the raw token: this test would prove nothing"
