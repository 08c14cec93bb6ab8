"""Third-party text names only http(s) URLs; zoo.lock agrees with what zoo.toml pins (issue 6)."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Zoopm
from tests.support.fileserver import FileServer
from tests.support.github import FIXTURES, GitHubEmulator, git_blob_sha1
from tests.support.projects import mirrors_for, write_project
from zoopm.formats.lockfile import Lock, LockedModel, parse_lock, render_lock

NIN = "d802a5849de39225bcc6"
NIN_REV = "8df5fd6b236eb157bc7c1f1aca9eb11c5e86576a"
NIN_SHA1 = "1ea20b61f0959e7b0de6dcf8a7ebc3284cdd4479"
BVLC_REV = "9b891540183ddc834a02b2bd81b31afae71b2153"
GOOGLENET = f'{{ github = "BVLC/caffe", path = "models/bvlc_googlenet", rev = "{BVLC_REV}" }}'
GOOGLENET_SHA1 = "b1eab7c32691985c4c55311ed40bd8e17d484377"
EVIL = b"not the weights the readme pins " * 64
EVIL_SHA1 = hashlib.sha1(EVIL).hexdigest()
SECRET = b"-----BEGIN OPENSSH PRIVATE KEY-----\nzoopm test secret\n"


def readme(url: str, sha1: str | None = None) -> bytes:
    lines = ["---", "name: Hostile model", "caffemodel: weights.caffemodel"]
    lines += [f"caffemodel_url: {url}", *([f"sha1: {sha1}"] if sha1 else []), "---", ""]
    return "\n".join(lines).encode()


def hostile_gist(github: GitHubEmulator, url: str) -> str:
    """A gist whose readme names url as its binary; returns its pinned source for zoo.toml."""
    gist = "e1e1e1e1e1e1e1e1e1e1"
    (rev,) = github.add_gist(gist, "mallory", [{"readme.md": readme(url)}])
    return f'{{ gist = "{gist}", rev = "{rev}" }}'


def project_with(tmp_path: Path, host: FileServer, models: dict[str, str]) -> Path:
    return write_project(tmp_path / "proj", models, mirrors_for(host))


def files_holding(root: Path, data: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and data in p.read_bytes()]


def edit_file(project: Path, name: str, path: str | None, **changes: Any) -> None:
    """Rewrites zoo.lock by hand: the entry of path (None: the binary) of model name changes."""
    lock_path = project / "zoo.lock"
    lock = parse_lock(lock_path.read_text(encoding="utf-8"))

    def edited(model: LockedModel) -> LockedModel:
        if model.name != name:
            return model
        files = tuple(
            dataclasses.replace(f, **changes)
            if (f.binary if path is None else f.path == path)
            else f
            for f in model.files
        )
        return dataclasses.replace(model, files=files)

    new = Lock(lock.manifest_hash, tuple(edited(m) for m in lock.models))
    lock_path.write_text(render_lock(new), encoding="utf-8")


def locked_nin(tmp_path: Path, host: FileServer, zoopm: Zoopm) -> Path:
    """A project with the NIN gist pinned and locked."""
    project = project_with(tmp_path, host, {"nin": f'{{ gist = "{NIN}", rev = "{NIN_REV}" }}'})
    assert zoopm("lock", project=project).exit_code == 0
    return project


def swap_in_evil_binary(project: Path, name: str, host: FileServer) -> str:
    """What a hostile pull request does: the binary's pins and URL point at other bytes."""
    url = host.url("/evil.caffemodel")
    host.add_bytes("/evil.caffemodel", EVIL)
    edit_file(
        project,
        name,
        None,
        size=len(EVIL),
        sha1=EVIL_SHA1,
        sha256=hashlib.sha256(EVIL).hexdigest(),
        urls=(url,),
    )
    return url


def wipe_store(store_dir: Path) -> None:
    for blob in (store_dir / "sha256").rglob("*"):
        if blob.is_file():
            blob.chmod(0o644)
            blob.unlink()


# --- 4. third-party text may name http(s) URLs only ---------------------------------------------


def test_a_gist_readme_naming_a_local_file_is_refused_and_the_file_goes_nowhere(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    secret = tmp_path / "home" / ".ssh" / "id_rsa"
    secret.parent.mkdir(parents=True)
    secret.write_bytes(SECRET)
    project = project_with(tmp_path, model_host, {"evil": hostile_gist(github, secret.as_uri())})

    run = zoopm("install", project=project)

    assert run.exit_code == 1, run.stderr
    assert "gist e1e1e1e1e1e1e1e1e1e1@" in run.error_line
    assert "readme.md: caffemodel_url" in run.error_line
    assert secret.as_uri() in run.error_line
    assert "third-party" in run.error_line
    assert "hint: " in run.stderr
    assert not (project / "zoo.lock").exists()
    assert files_holding(tmp_path, SECRET) == [secret]


def test_a_gist_readme_naming_dev_zero_is_refused_before_a_byte_is_read(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    project = project_with(tmp_path, model_host, {"evil": hostile_gist(github, "file:///dev/zero")})
    started = time.monotonic()

    run = zoopm("lock", project=project)

    assert run.exit_code == 1, run.stderr
    assert "'file:///dev/zero'" in run.error_line
    assert time.monotonic() - started < 10
    assert not (store_dir / "tmp").exists() or not any((store_dir / "tmp").iterdir())


def test_a_repository_readme_naming_a_local_file_is_refused(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(SECRET)
    commit = "c" * 40
    github.add_repo_tree(
        "mallory", "models", commit, {"net/readme.md": readme(secret.as_uri()), "net/a.txt": b"a"}
    )
    project = project_with(
        tmp_path,
        model_host,
        {"net": f'{{ github = "mallory/models", path = "net", rev = "{commit}" }}'},
    )

    run = zoopm("lock", project=project)

    assert run.exit_code == 1, run.stderr
    assert f"github mallory/models/net@{commit[:12]}/readme.md: caffemodel_url" in run.error_line
    assert secret.as_uri() in run.error_line
    assert files_holding(tmp_path, SECRET) == [secret]


def test_a_local_model_readme_may_name_a_local_file(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm
) -> None:
    weights = tmp_path / "weights" / "tiny_net.caffemodel"
    weights.parent.mkdir()
    (tiny_net / "tiny_net.caffemodel").rename(weights)
    text = (tiny_net / "readme.md").read_text(encoding="utf-8")
    url_line = next(line for line in text.splitlines() if line.startswith("caffemodel_url:"))
    (tiny_net / "readme.md").write_text(
        text.replace(url_line, f"caffemodel_url: {weights.as_uri()}"), encoding="utf-8"
    )
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})

    run = zoopm("install", project=project)

    assert run.exit_code == 0, run.stderr
    installed = project / "models" / "tiny" / "tiny_net.caffemodel"
    assert installed.read_bytes() == weights.read_bytes()
    assert weights.as_uri() in (project / "zoo.lock").read_text(encoding="utf-8")


@pytest.mark.parametrize("where", ["binary", "readme.md"])
def test_a_hand_edited_lock_giving_a_gist_model_a_file_url_is_refused_naming_the_key(
    tmp_path: Path,
    github: GitHubEmulator,
    model_host: FileServer,
    zoopm: Zoopm,
    store_dir: Path,
    where: str,
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(SECRET)
    project = locked_nin(tmp_path, model_host, zoopm)
    wipe_store(store_dir)
    if where == "binary":
        edit_file(project, "nin", None, urls=(secret.as_uri(),))
    else:
        edit_file(project, "nin", "readme.md", urls=(secret.as_uri(),))
    index = 1 if where == "binary" else 2  # files are sorted: deploy, nin_imagenet, readme

    run = zoopm("install", "--frozen", project=project)

    assert run.exit_code == 2, run.stderr
    assert run.error_line.startswith(f"error: zoo.lock: model[nin].file[{index}].urls: ")
    assert secret.as_uri() in run.error_line
    assert "hint: " in run.stderr
    assert not (project / "models").exists()
    assert files_holding(tmp_path, SECRET) == [secret]


@pytest.mark.parametrize(
    "url",
    [
        "http:///tiny_net.caffemodel",
        "javascript:alert(1)",
        "data:application/octet-stream;base64,AAAA",
        "file://fileserver.example/share/tiny_net.caffemodel",
        "ftp://example.org/tiny_net.caffemodel",
    ],
)
def test_a_lock_url_with_no_host_or_another_scheme_is_refused_even_for_a_local_model(
    tmp_path: Path, tiny_net: Path, zoopm: Zoopm, url: str
) -> None:
    project = write_project(tmp_path / "proj", {"tiny": f'{{ path = "{tiny_net}" }}'})
    assert zoopm("lock", project=project).exit_code == 0
    edit_file(project, "tiny", None, urls=(url,))

    run = zoopm("install", "--frozen", project=project)

    assert run.exit_code == 2, run.stderr
    assert run.error_line.startswith("error: zoo.lock: model[tiny].file[3].urls: ")
    assert not (project / "models").exists()


# --- 7. zoo.lock must agree with the readme at the pinned revision ----------------------------


def test_lock_check_fails_when_the_locked_binary_is_not_the_one_the_pinned_gist_readme_names(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    project = locked_nin(tmp_path, model_host, zoopm)
    swap_in_evil_binary(project, "nin", model_host)
    github.clear_log()

    run = zoopm("lock", "--check", project=project)

    assert run.exit_code == 1, run.stderr
    assert "nin" in run.error_line
    assert "model[nin].file[1].sha1" in run.error_line
    assert EVIL_SHA1 in run.error_line and NIN_SHA1 in run.error_line
    assert "hint: " in run.stderr
    assert github.requests == []


def test_lock_check_fails_for_a_repository_model_whose_binary_was_swapped(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    project = project_with(tmp_path, model_host, {"googlenet": GOOGLENET})
    assert zoopm("lock", project=project).exit_code == 0
    swap_in_evil_binary(project, "googlenet", model_host)
    github.clear_log()

    run = zoopm("lock", "--check", project=project)

    assert run.exit_code == 1, run.stderr
    assert "model[googlenet].file[0].sha1" in run.error_line
    assert EVIL_SHA1 in run.error_line and GOOGLENET_SHA1 in run.error_line
    assert github.counted_requests() == 0


def test_lock_check_on_a_fresh_machine_reads_the_readme_from_the_raw_host_not_the_api(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    project = locked_nin(tmp_path, model_host, zoopm)
    swap_in_evil_binary(project, "nin", model_host)
    wipe_store(store_dir)
    github.clear_log()
    model_host.clear_log()

    run = zoopm("lock", "--check", project=project)

    assert run.exit_code == 1, run.stderr
    assert EVIL_SHA1 in run.error_line and NIN_SHA1 in run.error_line
    assert [r.server for r in github.requests] == ["raw"]
    assert github.requests[0].path.endswith("/readme.md")
    assert model_host.count() == 0


def test_lock_check_passes_for_an_untouched_lock_without_api_requests(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    project = project_with(
        tmp_path,
        model_host,
        {"nin": f'{{ gist = "{NIN}", rev = "{NIN_REV}" }}', "googlenet": GOOGLENET},
    )
    assert zoopm("lock", project=project).exit_code == 0
    wipe_store(store_dir)
    github.clear_log()

    run = zoopm("lock", "--check", project=project)

    assert run.exit_code == 0, run.stderr
    assert [r for r in github.requests if r.server == "api"] == []


def test_lock_check_catches_a_readme_entry_whose_bytes_are_not_the_locked_ones(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    project = locked_nin(tmp_path, model_host, zoopm)
    wipe_store(store_dir)
    edit_file(project, "nin", "readme.md", sha256="0" * 64)

    run = zoopm("lock", "--check", project=project)

    assert run.exit_code == 1, run.stderr
    assert "model[nin].file[2].sha256" in run.error_line
    assert "0" * 64 in run.error_line


def test_lock_check_catches_a_gist_readme_url_that_is_not_the_readme_blob(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    project = locked_nin(tmp_path, model_host, zoopm)
    lock = parse_lock((project / "zoo.lock").read_text(encoding="utf-8"))
    nin = lock.model("nin")
    assert nin is not None
    entry = nin.file("readme.md")
    assert entry is not None
    real_blob = git_blob_sha1((FIXTURES / "gists" / NIN / "r2" / "readme.md").read_bytes())
    edit_file(project, "nin", "readme.md", urls=(entry.urls[0].replace(real_blob, "f" * 40),))

    run = zoopm("lock", "--check", project=project)

    assert run.exit_code == 1, run.stderr
    assert "model[nin].file[2].urls" in run.error_line
    assert real_blob in run.error_line and "f" * 40 in run.error_line


def test_lock_check_catches_a_repository_readme_taken_from_another_commit(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    project = project_with(tmp_path, model_host, {"googlenet": GOOGLENET})
    assert zoopm("lock", project=project).exit_code == 0
    other = "d" * 40
    forged = readme("http://dl.caffe.berkeleyvision.org/bvlc_googlenet.caffemodel", EVIL_SHA1)
    github.add_repo_tree("BVLC", "caffe", other, {"models/bvlc_googlenet/readme.md": forged})
    lock = parse_lock((project / "zoo.lock").read_text(encoding="utf-8"))
    googlenet = lock.model("googlenet")
    assert googlenet is not None
    entry = googlenet.file("readme.md")
    assert entry is not None
    edit_file(
        project,
        "googlenet",
        "readme.md",
        urls=(entry.urls[0].replace(BVLC_REV, other),),
        size=len(forged),
        sha1=hashlib.sha1(forged).hexdigest(),
        sha256=hashlib.sha256(forged).hexdigest(),
    )
    swap_in_evil_binary(project, "googlenet", model_host)

    run = zoopm("lock", "--check", project=project)

    assert run.exit_code == 1, run.stderr
    assert "model[googlenet].file[3].urls" in run.error_line
    assert BVLC_REV in run.error_line


def test_install_frozen_refuses_a_lock_that_disagrees_before_downloading_anything(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm, store_dir: Path
) -> None:
    project = locked_nin(tmp_path, model_host, zoopm)
    swap_in_evil_binary(project, "nin", model_host)
    model_host.clear_log()

    run = zoopm("install", "--frozen", project=project)

    assert run.exit_code == 1, run.stderr
    assert EVIL_SHA1 in run.error_line and NIN_SHA1 in run.error_line
    assert model_host.count() == 0
    assert not (project / "models").exists()
    assert files_holding(store_dir, EVIL) == []


def test_plain_lock_resolves_a_model_whose_lock_entry_disagrees_again(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    project = locked_nin(tmp_path, model_host, zoopm)
    honest = (project / "zoo.lock").read_bytes()
    swap_in_evil_binary(project, "nin", model_host)

    run = zoopm("lock", project=project)

    assert run.exit_code == 0, run.stderr
    assert (project / "zoo.lock").read_bytes() == honest
    assert "nin" in run.stderr and EVIL_SHA1 in run.stderr


def test_plain_install_with_a_lock_that_disagrees_locks_again_and_installs_the_pinned_binary(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    project = locked_nin(tmp_path, model_host, zoopm)
    honest = (project / "zoo.lock").read_bytes()
    swap_in_evil_binary(project, "nin", model_host)
    model_host.clear_log()

    run = zoopm("install", project=project)

    assert run.exit_code == 0, run.stderr
    assert (project / "zoo.lock").read_bytes() == honest
    installed = project / "models" / "nin" / "nin_imagenet.caffemodel"
    assert (
        installed.read_bytes() == (FIXTURES / "binaries" / "nin_imagenet.caffemodel").read_bytes()
    )
    assert model_host.count("/evil.caffemodel") == 0


def test_a_lock_for_a_binary_false_model_may_not_carry_a_binary(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    project = project_with(
        tmp_path, model_host, {"nin": f'{{ gist = "{NIN}", rev = "{NIN_REV}", binary = false }}'}
    )
    assert zoopm("lock", project=project).exit_code == 0
    edit_file(project, "nin", "deploy.prototxt", binary=True)

    run = zoopm("lock", "--check", project=project)

    assert run.exit_code == 1, run.stderr
    assert "model[nin].file[0].binary" in run.error_line
