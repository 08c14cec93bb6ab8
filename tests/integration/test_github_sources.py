"""Gists and repository directories as sources, against an emulated GitHub, through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import Zoopm
from tests.support.fileserver import FileServer
from tests.support.github import FIXTURES, GitHubEmulator
from tests.support.projects import mirrors_for, write_project

BVLC_REV = "9b891540183ddc834a02b2bd81b31afae71b2153"
NIN = "d802a5849de39225bcc6"
NIN_REVS = [
    "24f213c3a4317a61e03f223759704b8b09b931b0",
    "8df5fd6b236eb157bc7c1f1aca9eb11c5e86576a",
    "df938067a04ed42e98e00277eea599e8c45b3f86",
]
TOKEN = "ghp_SECRETtoken0123456789abcdefABCDEF"


def project_with(tmp_path: Path, host: FileServer, models: dict[str, str] | None = None) -> Path:
    return write_project(tmp_path / "proj", models or {}, mirrors_for(host))


def nin_at(rev: str) -> str:
    return f'{{ gist = "{NIN}", rev = "{rev}" }}'


def test_add_bvlc_googlenet_then_install_gives_the_real_file_names(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    project = project_with(tmp_path, model_host)

    added = zoopm("add", "bvlc_googlenet", "--no-install", project=project)
    installed = zoopm("install", project=project)

    assert added.exit_code == 0, added.stderr
    assert installed.exit_code == 0, installed.stderr
    model = project / "models" / "bvlc_googlenet"
    assert sorted(p.name for p in model.iterdir()) == [
        "bvlc_googlenet.caffemodel",
        "deploy.prototxt",
        "quick_solver.prototxt",
        "readme.md",
        "solver.prototxt",
        "train_val.prototxt",
    ]
    assert (model / "bvlc_googlenet.caffemodel").read_bytes() == (
        FIXTURES / "binaries" / "bvlc_googlenet.caffemodel"
    ).read_bytes()
    source = FIXTURES / "repos" / "BVLC" / "caffe" / BVLC_REV / "models" / "bvlc_googlenet"
    assert (model / "deploy.prototxt").read_bytes() == (source / "deploy.prototxt").read_bytes()
    toml = (project / "zoo.toml").read_text()
    assert (
        f'bvlc_googlenet = {{github = "BVLC/caffe", path = "models/bvlc_googlenet", '
        f'rev = "{BVLC_REV}"}}' in toml
    )
    assert "[mirrors]" in toml  # the edit kept the rest of the file


def test_a_gist_pinned_to_an_old_revision_installs_that_revision(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    project = project_with(tmp_path, model_host, {"nin": nin_at(NIN_REVS[0])})

    run = zoopm("install", project=project)

    assert run.exit_code == 0, run.stderr
    r1 = FIXTURES / "gists" / NIN / "r1"
    for name in ("deploy.prototxt", "readme.md"):
        assert (project / "models" / "nin" / name).read_bytes() == (r1 / name).read_bytes()
    assert f'rev = "{NIN_REVS[0]}"' in (project / "zoo.lock").read_text()


def test_update_moves_a_gist_to_its_newest_revision_and_says_from_what_to_what(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    project = project_with(tmp_path, model_host, {"nin": nin_at(NIN_REVS[0]) + "  # the paper's"})
    assert zoopm("install", project=project).exit_code == 0

    run = zoopm("update", project=project)
    install = zoopm("install", project=project)

    assert run.exit_code == 0, run.stderr
    assert f"nin: {NIN_REVS[0][:12]} → {NIN_REVS[2][:12]}" in run.stderr
    toml = (project / "zoo.toml").read_text()
    assert f'rev = "{NIN_REVS[2]}"' in toml and "# the paper's" in toml
    assert f'rev = "{NIN_REVS[2]}"' in (project / "zoo.lock").read_text()
    assert install.exit_code == 0, install.stderr
    r3 = FIXTURES / "gists" / NIN / "r3" / "readme.md"
    assert (project / "models" / "nin" / "readme.md").read_bytes() == r3.read_bytes()


def test_update_with_nothing_newer_says_so(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    project = project_with(tmp_path, model_host, {"nin": nin_at(NIN_REVS[2])})

    run = zoopm("update", "nin", project=project)

    assert run.exit_code == 0, run.stderr
    assert "Every gist and repository model is at its newest revision" in run.stderr


def test_a_second_lock_with_zoo_toml_unchanged_costs_no_rate_limit(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    project = project_with(
        tmp_path,
        model_host,
        {
            "nin": nin_at(NIN_REVS[1]),
            "googlenet": f'{{ github = "BVLC/caffe", path = "models/bvlc_googlenet", '
            f'rev = "{BVLC_REV}" }}',
            "newest": f'{{ gist = "{NIN}" }}',
        },
    )
    assert zoopm("lock", project=project).exit_code == 0
    first = (project / "zoo.lock").read_bytes()
    github.clear_log()

    run = zoopm("lock", project=project)

    assert run.exit_code == 0, run.stderr
    assert github.counted_requests() == 0
    assert (project / "zoo.lock").read_bytes() == first


def test_locking_a_pinned_gist_costs_one_api_request(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    project = project_with(tmp_path, model_host, {"nin": nin_at(NIN_REVS[1])})

    run = zoopm("lock", project=project)

    assert run.exit_code == 0, run.stderr
    assert github.counted_requests() == 1
    assert [r.path for r in github.requests if r.server == "api"] == [f"/gists/{NIN}/{NIN_REVS[1]}"]


def test_install_from_a_lock_makes_no_api_request(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    project = project_with(tmp_path, model_host, {"nin": nin_at(NIN_REVS[1])})
    assert zoopm("lock", project=project).exit_code == 0
    for blob in list((store_dir / "sha256").rglob("*")):
        if blob.is_file():
            blob.chmod(0o644)
            blob.unlink()
    github.clear_log()

    run = zoopm("install", "--frozen", project=project)

    assert run.exit_code == 0, run.stderr
    assert [r for r in github.requests if r.server == "api"] == []
    assert len([r for r in github.requests if r.server == "raw"]) == 2


def test_a_rate_limited_lock_says_when_the_limit_resets_and_suggests_a_token(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    project = project_with(tmp_path, model_host, {"nin": nin_at(NIN_REVS[1])})
    github.exhaust_rate_limit(status=403)

    run = zoopm("lock", project=project)

    assert run.exit_code == 1
    assert "GitHub API rate limit exceeded (60 requests an hour); it resets at " in run.error_line
    assert "UTC" in run.error_line
    assert "hint: set GITHUB_TOKEN" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 2
    assert not (project / "zoo.lock").exists()


def test_a_secondary_rate_limit_is_waited_out(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    project = project_with(tmp_path, model_host, {"nin": nin_at(NIN_REVS[1])})
    github.secondary_limit(times=1, status=429, retry_after=1)

    run = zoopm("lock", project=project)

    assert run.exit_code == 0, run.stderr
    statuses = [r.status for r in github.requests if r.server == "api"]
    assert statuses == [429, 200]


def test_the_token_goes_to_the_api_only_and_appears_in_no_output_or_file(
    tmp_path: Path,
    github: GitHubEmulator,
    model_host: FileServer,
    zoopm: Zoopm,
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    github.allow_token(TOKEN)
    project = project_with(tmp_path, model_host)

    runs = [
        zoopm("-v", "add", "gist:" + NIN, project=project),
        zoopm("-v", "update", project=project),
        zoopm("-v", "list", project=project),
    ]

    for run in runs:
        assert run.exit_code == 0, run.stderr
        assert TOKEN not in run.stdout + run.stderr
    api = [r for r in github.requests if r.server == "api"]
    assert api and all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in api)
    assert all("authorization" not in r.headers for r in github.requests if r.server == "raw")
    assert all("authorization" not in r.headers for r in model_host.requests)
    for root in (project, isolated_env):
        for path in root.rglob("*"):
            if path.is_file():
                assert TOKEN.encode() not in path.read_bytes(), path


def test_bytes_that_do_not_match_their_blob_sha1_install_nothing(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    project = project_with(tmp_path, model_host, {"nin": nin_at(NIN_REVS[1])})
    github.corrupt_raw("/deploy.prototxt", times=10)

    run = zoopm("install", project=project)

    assert run.exit_code == 1
    assert "deploy.prototxt: git blob mismatch: expected" in run.error_line
    assert not (project / "models").exists()
    assert not (project / "zoo.lock").exists()


def test_a_binary_whose_sha1_differs_from_the_frontmatter_names_both_values(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    model_host.add_bytes("/caffe/bvlc_googlenet.caffemodel", b"not the googlenet weights")
    project = project_with(tmp_path, model_host)

    run = zoopm("add", "bvlc_googlenet", project=project)

    assert run.exit_code == 1
    assert "sha1 mismatch: expected b1eab7c32691985c4c55311ed40bd8e17d484377, got " in (
        run.error_line
    )
    assert "bvlc_googlenet" not in (project / "zoo.toml").read_text()
    assert not (project / "models").exists()


def test_add_takes_gist_urls_and_ids_and_names_the_model_after_its_binary(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    project = project_with(tmp_path, model_host)

    by_url = zoopm(
        "add",
        f"https://gist.github.com/mavenlin/{NIN}/{NIN_REVS[0]}",
        "--no-install",
        project=project,
    )
    by_id = zoopm("add", f"gist:{NIN}", "--name", "nin_newest", "--no-install", project=project)

    assert by_url.exit_code == 0, by_url.stderr
    assert by_id.exit_code == 0, by_id.stderr
    toml = (project / "zoo.toml").read_text()
    assert f'nin_imagenet = {{gist = "{NIN}", rev = "{NIN_REVS[0]}"}}' in toml
    assert f'nin_newest = {{gist = "{NIN}", rev = "{NIN_REVS[2]}"}}' in toml


def test_add_refuses_a_name_that_is_taken(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    project = project_with(tmp_path, model_host, {"nin_imagenet": nin_at(NIN_REVS[0])})
    before = (project / "zoo.toml").read_bytes()

    run = zoopm("add", f"gist:{NIN}", project=project)

    assert run.exit_code == 2
    assert "already has a model named 'nin_imagenet'" in run.error_line
    assert (project / "zoo.toml").read_bytes() == before


def test_add_of_an_unknown_name_suggests_search(tmp_path: Path, zoopm: Zoopm) -> None:
    project = write_project(tmp_path / "proj", {})

    run = zoopm("add", "no_such_model", project=project)

    assert run.exit_code == 2
    assert "no model named 'no_such_model' in the indexes" in run.error_line
    assert "zoopm search" in run.stderr


def test_remove_takes_a_model_out_of_zoo_toml_the_lock_and_models(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    project = project_with(tmp_path, model_host, {"nin": nin_at(NIN_REVS[0])})
    assert zoopm("install", project=project).exit_code == 0

    run = zoopm("remove", "nin", project=project)

    assert run.exit_code == 0, run.stderr
    assert "nin =" not in (project / "zoo.toml").read_text()
    assert "[[model]]" not in (project / "zoo.lock").read_text()
    assert not (project / "models" / "nin").exists()


def test_search_finds_models_in_the_built_in_index(tmp_path: Path, zoopm: Zoopm) -> None:
    run = zoopm("search", "googlenet", project=tmp_path)

    assert run.exit_code == 0, run.stderr
    assert "bvlc_googlenet" in run.stdout
    assert "googlenet_cars" in run.stdout


def test_an_unknown_gist_is_a_clear_error(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    project = project_with(tmp_path, model_host, {"ghost": f'{{ gist = "{"0" * 20}" }}'})

    run = zoopm("lock", project=project)

    assert run.exit_code == 1
    assert f"gist {'0' * 20}: not found on GitHub" in run.error_line


def test_hostile_file_names_in_a_gist_are_refused(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    github.hostile_filenames = True
    project = project_with(tmp_path, model_host, {"nin": nin_at(NIN_REVS[0])})

    run = zoopm("install", project=project)

    assert run.exit_code == 1
    assert "is not usable" in run.error_line
    assert not (project / "models").exists()
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        (["caf\u00e9.txt", "cafe\u0301.txt"], "differ only in case or Unicode normalisation"),
        (["evil\u202etxt.prototxt"], "control or format character"),
        ([".zoopm-installed.json"], "which zoopm keeps for its own files"),
    ],
)
def test_names_that_collide_deceive_or_pose_as_zoopms_own_are_refused(
    tmp_path: Path,
    github: GitHubEmulator,
    model_host: FileServer,
    zoopm: Zoopm,
    names: list[str],
    problem: str,
) -> None:
    gist = "ab" * 10
    files = {"readme.md": b"---\nname: odd\n---\n"} | {name: b"x\n" for name in names}
    (rev,) = github.add_gist(gist, "someone", [files])
    project = project_with(tmp_path, model_host, {"odd": f'{{ gist = "{gist}", rev = "{rev}" }}'})

    run = zoopm("install", project=project)

    assert run.exit_code == 1
    assert problem in run.error_line
    assert not (project / "models").exists()


def test_a_file_beside_a_directory_of_the_same_name_in_another_case_is_refused(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    commit = "cd" * 20
    github.add_repo_tree(
        "someone",
        "zoo",
        commit,
        {"net/readme.md": b"---\nname: n\n---\n", "net/a": b"1", "net/A/b": b"2"},
    )
    project = project_with(
        tmp_path, model_host, {"n": f'{{ github = "someone/zoo", path = "net", rev = "{commit}" }}'}
    )

    run = zoopm("install", project=project)

    assert run.exit_code == 1
    assert "'A' and 'a' differ only in case" in run.error_line


def test_github_enterprise_api_prefixes_work(
    tmp_path: Path, model_host: FileServer, zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    with GitHubEmulator(api_prefix="/api/v3") as enterprise:
        enterprise.load_fixtures()
        monkeypatch.setenv("ZOOPM_GITHUB_API", enterprise.api_url)
        project = project_with(tmp_path, model_host)

        run = zoopm("add", "bvlc_alexnet", project=project)

        assert run.exit_code == 0, run.stderr
        assert (project / "models" / "bvlc_alexnet" / "bvlc_alexnet.caffemodel").is_file()
        assert all(r.path.startswith("/api/v3/") for r in enterprise.requests if r.server == "api")


def test_a_readme_in_upper_case_is_found(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    project = project_with(tmp_path, model_host)

    run = zoopm("add", "gist:509111f8a00a9ece2c3d5dde6a750129", project=project)

    assert run.exit_code == 0, run.stderr
    installed = project / "models"
    assert any(p.name == "README.md" for p in installed.rglob("*"))


def test_a_gist_over_the_api_file_limit_is_a_clear_error(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    files = {f"layer{i:03d}.prototxt": b"layer {}\n" for i in range(301)}
    (rev,) = github.add_gist("aaaaaaaaaaaaaaaaaaaa", "someone", [files])
    project = project_with(
        tmp_path, model_host, {"big": f'{{ gist = "{"a" * 20}", rev = "{rev}" }}'}
    )

    run = zoopm("lock", project=project)

    assert run.exit_code == 1
    assert "more than 300 files" in run.error_line


def test_a_gist_file_over_10_mb_is_a_clear_error(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    readme = (FIXTURES / "gists" / NIN / "r1" / "readme.md").read_bytes()
    files = {"readme.md": readme, "mean.binaryproto": b"\0" * (10 * 1024 * 1024 + 1)}
    (rev,) = github.add_gist("bbbbbbbbbbbbbbbbbbbb", "someone", [files])
    project = project_with(
        tmp_path, model_host, {"big": f'{{ gist = "{"b" * 20}", rev = "{rev}" }}'}
    )

    run = zoopm("lock", project=project)

    assert run.exit_code == 1
    assert "mean.binaryproto is 10485761 bytes; GitHub serves files of at most 10 MB" in (
        run.error_line
    )


def test_a_failing_api_answer_is_retried(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    github.fail_api(f"/gists/{NIN}/{NIN_REVS[1]}", status=502, times=1)
    project = project_with(tmp_path, model_host, {"nin": nin_at(NIN_REVS[1])})

    run = zoopm("lock", project=project)

    assert run.exit_code == 0, run.stderr
    assert [r.status for r in github.requests if r.server == "api"] == [502, 200]


def test_an_index_named_in_zoo_toml_is_searched_before_the_built_in_one(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    project = project_with(tmp_path, model_host)
    (project / "lab-index.toml").write_text(
        f'version = 1\n\n[models.bvlc_googlenet]\ngist = "{NIN}"\n'
        'description = "our lab\'s model under a famous name"\n'
    )
    with (project / "zoo.toml").open("a") as toml:
        toml.write('\n[[index]]\npath = "lab-index.toml"\n')

    found = zoopm("search", "famous", project=project)
    added = zoopm("add", "bvlc_googlenet", "--no-install", project=project)

    assert "bvlc_googlenet" in found.stdout
    assert added.exit_code == 0, added.stderr
    assert (
        f'bvlc_googlenet = {{gist = "{NIN}", rev = "{NIN_REVS[2]}"}}'
        in (project / "zoo.toml").read_text()
    )
