"""zoopm import [MODELS_DIR]: a models/ tree that Caffe's scripts filled, adopted into zoo.toml
and zoo.lock without changing a byte of it.

The trees here are built as the old scripts left them: download_model_from_gist.sh unpacked a
gist's files into models/<owner>-<id>/ (or models/<id>/), a checkout of BVLC/caffe holds
models/bvlc_*/, and download_model_binary.py put the binary beside each readme.md.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from tests.support.cli import Zoopm
from tests.support.fileserver import FileServer
from tests.support.github import GitHubEmulator
from tests.support.locks import hold, project_lock
from tests.support.projects import REPO, fresh_checkout, mirrors_for, write_project
from zoopm.formats.manifest import TEMPLATE

FIXTURES = REPO / "fixtures" / "github"
BINARIES = FIXTURES / "binaries"
NIN = "d802a5849de39225bcc6"
NIN_DIR = f"mavenlin-{NIN}"
NIN_BINARY = "nin_imagenet.caffemodel"
VGG = "509111f8a00a9ece2c3d5dde6a750129"
LENET = "4012587"
BVLC_REV = "9b891540183ddc834a02b2bd81b31afae71b2153"
BVLC_MODELS = FIXTURES / "repos" / "BVLC" / "caffe" / BVLC_REV / "models"
RECORD = ".zoopm-installed.json"


def from_gist(models: Path, gist: str, revision: int, directory: str | None = None) -> Path:
    """What download_model_from_gist.sh left: the gist's files at one revision, in DIR/<id>."""
    target = models / (directory or gist)
    shutil.copytree(FIXTURES / "gists" / gist / f"r{revision}", target)
    return target


def from_bvlc(models: Path, name: str) -> Path:
    """A model directory of a BVLC/caffe checkout."""
    target = models / name
    shutil.copytree(BVLC_MODELS / name, target)
    return target


def with_binary(model: Path, binary: str) -> Path:
    """What download_model_binary.py left: the binary beside readme.md."""
    shutil.copyfile(BINARIES / binary, model / binary)
    return model / binary


def unknown_to_github(models: Path, name: str) -> Path:
    """A model directory no gist or index entry has: its gist_id names no gist."""
    mine = from_gist(models, NIN, 2, name)
    readme = mine / "readme.md"
    readme.write_text(readme.read_text().replace(NIN, "0123456789abcdef0123"))
    return mine


def models_of(project: Path) -> dict[str, dict[str, str]]:
    with (project / "zoo.toml").open("rb") as stream:
        models: dict[str, dict[str, str]] = tomllib.load(stream)["models"]
    return models


def listing(models: Path) -> dict[str, tuple[str, int, int]]:
    """Every entry below models (its record aside): bytes, mode and mtime, links not followed."""
    found: dict[str, tuple[str, int, int]] = {}
    for directory, dirs, files in os.walk(models, followlinks=False):
        for name in [*dirs, *files]:
            path = Path(directory) / name
            rel = path.relative_to(models).as_posix()
            if rel == RECORD:
                continue
            info = path.lstat()
            if path.is_symlink():
                content = "-> " + os.readlink(path)
            elif path.is_file():
                content = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                content = "dir"
            found[rel] = (content, info.st_mode, info.st_mtime_ns)
    return found


@pytest.fixture
def project(tmp_path: Path, model_host: FileServer) -> Path:
    """A project whose zoo.toml sends the fixtures' model hosts to the local file server."""
    root = write_project(tmp_path / "proj", {}, mirrors_for(model_host))
    (root / "models").mkdir()
    return root


def test_a_caffe_scripts_tree_becomes_pinned_sources_without_a_byte_changed(
    project: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    models = project / "models"
    with_binary(from_gist(models, NIN, 2, NIN_DIR), NIN_BINARY)
    with_binary(from_bvlc(models, "bvlc_googlenet"), "bvlc_googlenet.caffemodel")
    with_binary(from_gist(models, VGG, 1, f"jimmie33-{VGG}"), "vgg16.caffemodel")
    (models / "notes").mkdir()
    (models / "notes" / "todo.txt").write_text("not a model\n")
    before = listing(models)
    revs = github.gist_commits(NIN)

    run = zoopm("import", project=project)

    assert run.exit_code == 0, run.stderr
    assert run.stdout.splitlines() == [
        f"bvlc_googlenet: github BVLC/caffe/models/bvlc_googlenet@{BVLC_REV[:12]} "
        "(files equal the built-in index entry bvlc_googlenet)",
        f"jimmie33-{VGG}: gist {VGG}@{github.gist_commits(VGG)[0][:12]} "
        "(revision 1 of 1 matches, the newest)",
        f"{NIN_DIR}: gist {NIN}@{revs[1][:12]} (revision 2 of 3 matches; newer revisions differ)",
        "notes: skipped (no readme.md)",
    ]
    declared = models_of(project)
    assert declared[NIN_DIR] == {"gist": NIN, "rev": revs[1]}
    assert declared["bvlc_googlenet"] == {
        "github": "BVLC/caffe",
        "path": "models/bvlc_googlenet",
        "rev": BVLC_REV,
    }
    assert "[mirrors]" in (project / "zoo.toml").read_text()
    assert (project / "zoo.lock").is_file()
    assert listing(models) == before
    assert model_host.requests == []  # both binaries were taken from disk

    install = zoopm("install", "--frozen", project=project)

    assert install.exit_code == 0, install.stderr
    assert "Nothing to do: 12 files already in place" in install.stderr, install.stderr
    assert listing(models) == before
    assert model_host.requests == []
    assert zoopm("verify", project=project).exit_code == 0


def test_after_import_a_fresh_checkout_installs_the_same_tree_byte_for_byte(
    project: Path,
    github: GitHubEmulator,
    model_host: FileServer,
    zoopm: Zoopm,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    models = project / "models"
    with_binary(from_gist(models, NIN, 2, NIN_DIR), NIN_BINARY)
    with_binary(from_bvlc(models, "bvlc_alexnet"), "bvlc_alexnet.caffemodel")
    with_binary(from_gist(models, LENET, 1), "lenet_digits.caffemodel")
    assert zoopm("import", project=project).exit_code == 0
    fresh = fresh_checkout(project, tmp_path / "fresh")
    monkeypatch.setenv("ZOOPM_HOME", str(tmp_path / "another-home"))

    run = zoopm("install", "--frozen", project=fresh)

    assert run.exit_code == 0, run.stderr
    assert listing(fresh / "models").keys() == listing(models).keys()
    for rel, (content, _, _) in listing(models).items():
        assert listing(fresh / "models")[rel][0] == content, rel


def test_dry_run_prints_the_verdicts_and_writes_nothing_anywhere(
    tmp_path: Path,
    github: GitHubEmulator,
    model_host: FileServer,
    zoopm: Zoopm,
    store_dir: Path,
) -> None:
    root = tmp_path / "caffe"
    models = root / "models"
    models.mkdir(parents=True)
    with_binary(from_gist(models, NIN, 3, NIN_DIR), NIN_BINARY)
    before = listing(root)

    run = zoopm("import", "--dry-run", project=root)

    assert run.exit_code == 0, run.stderr
    rev = github.gist_commits(NIN)[2]
    assert run.stdout == f"{NIN_DIR}: gist {NIN}@{rev[:12]} (revision 3 of 3 matches, the newest)\n"
    assert "wrote nothing" in run.stderr
    assert listing(root) == before
    assert not (root / "zoo.toml").exists()
    assert not (models / RECORD).exists()
    assert not store_dir.exists() or not any((store_dir / "sha256").glob("*/*"))


def test_without_zoo_toml_import_creates_it_as_init_would(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    root = tmp_path / "caffe"
    with_binary(from_gist(root / "models", NIN, 1), NIN_BINARY)

    run = zoopm("import", project=root)

    assert run.exit_code == 0, run.stderr
    assert "created zoo.toml" in run.stderr
    assert models_of(root) == {NIN: {"gist": NIN, "rev": github.gist_commits(NIN)[0]}}
    assert (root / "zoo.toml").read_text().startswith(TEMPLATE.split("[models]")[0])
    assert model_host.requests == []


def test_a_directory_matching_no_source_is_adopted_in_place_and_installs_as_it_is(
    project: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    models = project / "models"
    mine = unknown_to_github(models, "mine")
    with_binary(mine, NIN_BINARY)
    before = listing(models)

    run = zoopm("import", project=project)

    assert run.exit_code == 0, run.stderr
    assert run.stdout == (
        "mine: local models/mine (gist_id 0123456789abcdef0123 not found on GitHub)\n"
    )
    assert models_of(project) == {"mine": {"path": "models/mine"}}
    install = zoopm("install", project=project)
    assert install.exit_code == 0, install.stderr
    assert listing(models) == before

    # Edited and locked again, the user's file stays the user's: never replaced by a link.
    deploy = mine / "deploy.prototxt"
    inode = deploy.stat().st_ino
    deploy.write_text(deploy.read_text() + "# tuned\n")
    assert zoopm("lock", project=project).exit_code == 0
    again = zoopm("install", project=project)
    assert again.exit_code == 0, again.stderr
    assert deploy.stat().st_ino == inode
    assert deploy.stat().st_nlink == 1
    assert os.access(deploy, os.W_OK)


def test_a_model_kept_in_its_own_directory_is_never_written_to_nor_removed(
    project: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    models = project / "models"
    mine = unknown_to_github(models, "mine")
    readme = mine / "readme.md"
    with_binary(mine, NIN_BINARY)
    assert zoopm("import", project=project).exit_code == 0
    # New weights saved over the binary as a new file (as training scripts do), readme updated.
    weights = os.urandom(4096)
    (mine / "new.tmp").write_bytes(weights)
    os.replace(mine / "new.tmp", mine / NIN_BINARY)
    sha1 = hashlib.sha1(weights).hexdigest()
    text = readme.read_text()
    readme.write_text(re.sub(r"sha1: [0-9a-f]{40}", f"sha1: {sha1}", text))

    locked = zoopm("lock", project=project)
    installed = zoopm("install", project=project)
    removed = zoopm("remove", "mine", project=project)
    collected = zoopm("gc", project=project)

    assert [r.exit_code for r in (locked, installed, removed, collected)] == [0, 0, 0, 0], [
        r.stderr for r in (locked, installed, removed, collected)
    ]
    assert (mine / NIN_BINARY).read_bytes() == weights  # the user's, after all four
    assert os.access(mine / NIN_BINARY, os.W_OK)
    assert sorted(p.name for p in mine.iterdir()) == ["deploy.prototxt", NIN_BINARY, "readme.md"]


def test_zoopm_writes_nothing_into_a_model_kept_in_place_not_even_its_missing_binary(
    project: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    mine = from_gist(project / "models", NIN, 2, "mine")
    manifest = project / "zoo.toml"
    manifest.write_text(manifest.read_text() + '\n[models.mine]\npath = "models/mine"\n')

    locked = zoopm("lock", project=project)  # downloads the binary into the store
    installed = zoopm("install", project=project)

    assert locked.exit_code == 0, locked.stderr
    assert installed.exit_code != 0
    assert f"{NIN_BINARY}: is missing" in installed.stderr
    assert "zoopm download-binary models/mine" in installed.stderr
    assert sorted(p.name for p in mine.iterdir()) == ["deploy.prototxt", "readme.md"]


def test_an_edited_file_of_a_model_kept_in_place_asks_for_a_lock_and_is_left_alone(
    project: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    models = project / "models"
    mine = unknown_to_github(models, "mine")
    with_binary(mine, NIN_BINARY)
    assert zoopm("import", project=project).exit_code == 0
    deploy = mine / "deploy.prototxt"
    deploy.write_text("# edited, not locked yet\n")
    (mine / "readme.md").unlink()

    run = zoopm("install", project=project)

    assert run.exit_code != 0
    assert "is the model's own directory" in run.stderr
    assert "zoopm lock" in run.stderr
    assert "URL" not in run.stderr and "mirrors" not in run.stderr
    assert deploy.read_text() == "# edited, not locked yet\n"
    assert not (mine / "readme.md").exists()  # nothing placed into the user's directory


def test_an_installed_models_directory_named_as_its_own_source_is_refused_not_taken_over(
    project: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    assert zoopm("add", f"gist:{NIN}", "--name", "nin", project=project).exit_code == 0
    manifest = project / "zoo.toml"
    text = manifest.read_text()
    manifest.write_text(re.sub(r"nin = \{[^}]*\}", 'nin = { path = "models/nin" }', text))
    deploy = project / "models" / "nin" / "deploy.prototxt"
    (deploy.parent / "edited.tmp").write_text("# the user's own edit\n")
    os.replace(deploy.parent / "edited.tmp", deploy)  # as editors save: a new file

    locked = zoopm("lock", project=project)
    installed = zoopm("install", project=project)
    removed = zoopm("remove", "nin", project=project)

    assert locked.exit_code == 0, locked.stderr
    assert installed.exit_code != 0
    assert "zoopm placed files here from another source" in installed.stderr
    assert "cp -r models/nin" in installed.stderr
    # The refused install made nothing of the edit zoopm's: removing the model leaves it.
    assert removed.exit_code == 0, removed.stderr
    assert deploy.read_text() == "# the user's own edit\n"


def test_a_directory_kept_in_place_without_its_binary_is_skipped_with_the_fix(
    project: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    models = project / "models"
    mine = unknown_to_github(models, "mine")

    run = zoopm("import", project=project)

    assert run.exit_code == 0, run.stderr
    assert run.stdout.startswith("mine: skipped (")
    assert "its binary nin_imagenet.caffemodel is not here" in run.stdout
    assert "zoopm download-binary models/mine" in run.stdout
    assert sorted(p.name for p in mine.iterdir()) == ["deploy.prototxt", "readme.md"]


def test_files_that_match_no_revision_say_so_and_stay_local(
    project: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    nin = from_gist(project / "models", NIN, 2, NIN_DIR)
    with_binary(nin, NIN_BINARY)
    (nin / "deploy.prototxt").write_text("layer { name: 'mine' }\n")

    run = zoopm("import", project=project)

    assert run.exit_code == 0, run.stderr
    assert run.stdout == (
        f"{NIN_DIR}: local models/{NIN_DIR} (gist_id {NIN}: none of its 3 revisions has these "
        "files)\n"
    )


def test_a_bvlc_directory_with_an_edited_file_says_what_differs(
    project: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    googlenet = from_bvlc(project / "models", "bvlc_googlenet")
    with_binary(googlenet, "bvlc_googlenet.caffemodel")
    (googlenet / "solver.prototxt").unlink()

    run = zoopm("import", "--dry-run", project=project)

    assert run.stdout == (
        "bvlc_googlenet: local models/bvlc_googlenet (differs from the built-in index entry "
        "bvlc_googlenet (solver.prototxt only there))\n"
    )


def test_a_renamed_bvlc_directory_is_found_by_its_files(
    project: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    shutil.copytree(BVLC_MODELS / "bvlc_alexnet", project / "models" / "alexnet")

    run = zoopm("import", "--dry-run", project=project)

    assert run.stdout.startswith(
        f"alexnet: github BVLC/caffe/models/bvlc_alexnet@{BVLC_REV[:12]} "
        "(files equal the built-in index entry bvlc_alexnet)"
    )


# --- hostile trees ---------------------------------------------------------------------------


def test_symlinks_are_never_adopted_nor_followed(
    project: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm, tmp_path: Path
) -> None:
    models = project / "models"
    elsewhere = from_gist(tmp_path / "elsewhere", NIN, 2)
    (models / "linked").symlink_to(elsewhere)
    nin = from_gist(models, NIN, 2, NIN_DIR)
    (nin / "deploy.prototxt").unlink()
    (nin / "deploy.prototxt").symlink_to(elsewhere / "deploy.prototxt")
    before = listing(models)

    run = zoopm("import", project=project)

    assert run.exit_code == 0, run.stderr
    assert run.stdout.splitlines() == [
        "linked: skipped (a symbolic link; import adopts only real directories)",
        f"{NIN_DIR}: skipped (deploy.prototxt is a symbolic link; import adopts only regular "
        "files)",
    ]
    assert "Nothing imported (2 skipped)" in run.stderr
    assert "[models]\n" in (project / "zoo.toml").read_text()
    assert not (project / "zoo.lock").exists()
    assert listing(models) == before


def test_a_binary_that_is_not_the_one_readme_names_is_skipped(
    project: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    nin = from_gist(project / "models", NIN, 2, NIN_DIR)
    (nin / NIN_BINARY).write_bytes(b"a truncated download")
    before = listing(project / "models")

    run = zoopm("import", project=project)

    assert run.exit_code == 0, run.stderr
    assert run.stdout.startswith(
        f"{NIN_DIR}: skipped ({NIN_BINARY} is not the binary readme.md names: its sha1 is "
    )
    assert "'zoopm download-binary' fetches the right one" in run.stdout
    assert NIN_DIR not in (project / "zoo.toml").read_text()
    assert listing(project / "models") == before


def test_an_unreadable_directory_is_skipped(
    project: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every directory")
    locked = from_gist(project / "models", LENET, 1)
    locked.chmod(0)
    try:
        run = zoopm("import", project=project)
    finally:
        locked.chmod(0o755)

    assert run.exit_code == 0, run.stderr
    assert run.stdout == f"{LENET}: skipped (cannot read the directory: Permission denied)\n"


def test_a_directory_name_that_cannot_be_a_model_name_is_skipped_with_a_suggestion(
    project: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    from_gist(project / "models", LENET, 1, "my lenet")

    run = zoopm("import", project=project)

    assert run.exit_code == 0, run.stderr
    assert run.stdout.startswith("my lenet: skipped ('my lenet' is not a model name")
    assert "rename the directory (say to 'my_lenet') and import again)" in run.stdout


def test_an_accented_directory_name_gets_a_suggestion_without_the_accent(
    project: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    from_gist(project / "models", LENET, 1, "café")

    run = zoopm("import", "--dry-run", project=project)

    assert "rename the directory (say to 'cafe')" in run.stdout


def test_a_readme_that_names_no_binary_is_imported_with_binary_false_not_a_failure(
    project: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    with_binary(from_bvlc(project / "models", "bvlc_alexnet"), "bvlc_alexnet.caffemodel")
    notes = project / "models" / "notes_only"
    notes.mkdir()
    (notes / "readme.md").write_text("---\nname: Notes\nlicense: CC0\n---\nNo weights here.\n")

    dry = zoopm("import", "--dry-run", project=project)
    run = zoopm("import", project=project)

    assert run.exit_code == 0, run.stderr
    assert run.stdout == dry.stdout
    assert "notes_only: local models/notes_only (" in run.stdout
    assert "names no caffemodel, so binary = false" in run.stdout
    assert models_of(project)["notes_only"] == {"path": "models/notes_only", "binary": False}
    assert "bvlc_alexnet" in models_of(project)
    assert zoopm("install", "--frozen", project=project).exit_code == 0


def test_a_rerun_after_a_kill_before_locking_says_to_lock(
    project: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    lenet = from_gist(project / "models", LENET, 1)
    with_binary(lenet, "lenet_digits.caffemodel")
    # What a SIGKILL between writing zoo.toml and locking leaves: the entry, no zoo.lock.
    manifest = project / "zoo.toml"
    manifest.write_text(manifest.read_text() + f'\n[models."{LENET}"]\ngist = "{LENET}"\n')

    run = zoopm("import", project=project)

    assert run.exit_code == 0, run.stderr
    assert f"declares models.{LENET}, which zoo.lock does not pin" in run.stderr
    assert "run 'zoopm lock'" in run.stderr


def test_a_name_zoo_toml_declares_already_is_left_as_it_is(
    project: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    with_binary(from_gist(project / "models", NIN, 2, NIN_DIR), NIN_BINARY)
    assert zoopm("import", project=project).exit_code == 0
    toml, lock = (project / "zoo.toml").read_bytes(), (project / "zoo.lock").read_bytes()

    run = zoopm("import", project=project)

    assert run.exit_code == 0, run.stderr
    assert run.stdout == (
        f"{NIN_DIR}: skipped (zoo.toml already declares models.{NIN_DIR}; left as it is)\n"
    )
    assert (project / "zoo.toml").read_bytes() == toml
    assert (project / "zoo.lock").read_bytes() == lock


def test_a_directory_inside_the_models_dir_is_refused_as_models_dir(
    project: Path, zoopm: Zoopm
) -> None:
    from_gist(project / "models", LENET, 1)

    run = zoopm("import", "models/4012587", project=project)

    assert run.exit_code == 2
    assert "inside the models directory 'models'" in run.error_line


def test_a_second_zoopm_waits_for_the_project_lock_then_gives_up(
    project: Path,
    github: GitHubEmulator,
    model_host: FileServer,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from_gist(project / "models", LENET, 1)
    holder = hold(project_lock(project))
    try:
        monkeypatch.setenv("ZOOPM_LOCK_TIMEOUT", "1")
        run = zoopm("import", project=project)
    finally:
        holder.kill()
        holder.wait()

    assert run.exit_code == 1
    assert f"zoopm process {holder.pid}" in run.error_line
    assert "[models]\n" in (project / "zoo.toml").read_text()
    assert LENET not in (project / "zoo.toml").read_text()


def test_ctrl_c_while_locking_leaves_no_zoo_toml_no_lock_and_the_tree_as_it_was(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer, zoopm: Zoopm
) -> None:
    root = tmp_path / "caffe"
    models = root / "models"
    from_gist(models, NIN, 2, NIN_DIR)  # no binary: locking downloads it, slowly
    config = tmp_path / "xdg-config" / "zoopm" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(mirrors_for(model_host))
    model_host.stall(f"/nin/{NIN_BINARY}", after_bytes=100, delay_seconds=30)
    before = listing(models)
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "zoopm", "-C", str(root), "import"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while model_host.bytes_sent(f"/nin/{NIN_BINARY}") == 0:
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=10)

    assert process.returncode == 130, stderr
    assert not (root / "zoo.toml").exists()
    assert not (root / "zoo.lock").exists()
    assert listing(models) == before
    assert not (models / RECORD).exists()
