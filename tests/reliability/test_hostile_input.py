"""Hostile input through the real CLI: a right result or one clear error, and nothing outside.

Every test ends the same way: zoopm exited 0 with the right result, or exited 1 or 2 with one
`error:` line and a `hint:` line and no traceback; and nothing outside the project and the
zoopm home changed (an outside sentinel file included: bytes, mode and mtime).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.reliability._support import (
    FileState,
    Outcome,
    assert_clean_failure,
    locked_files,
    models_problems,
    run,
    sha256_of,
    stand_in_binary,
    store_problems,
    write_local_model,
)
from tests.reliability.conftest import World
from tests.support.fileserver import FileServer
from tests.support.github import GitHubEmulator
from tests.support.projects import TINY_NET

OWNER = "mallory"
ALLOWED_TOP_LEVEL = {"zoo.toml", "zoo.lock", "models"}


@pytest.fixture
def emulator() -> Iterator[GitHubEmulator]:
    with GitHubEmulator() as github:
        yield github


def _project(world: World, models: dict[str, str], extra: str = "") -> Path:
    lines = ["[project]", 'models-dir = "models"', "", "[models]"]
    lines += [f"{name} = {spec}" for name, spec in models.items()]
    (world.project / "zoo.toml").write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return world.project


def _tiny(world: World) -> Path:
    """A writable copy of the real tiny model (its binary included), outside the project."""
    target = world.root / "src" / "tiny_net"
    if not target.exists():
        shutil.copytree(TINY_NET, target)
    return target


def _info_only_model(world: World, name: str = "plain") -> Path:
    return write_local_model(world.root / "src" / name, name, None, None)


def _zoopm(world: World, *args: str, env: dict[str, str] | None = None) -> Outcome:
    return run(list(args), project=world.project, home=world.home, env=env, timeout=60)


def _settled(world: World, before: Mapping[str, FileState], outcome: Outcome) -> bool:
    """Checks the ending every hostile input shares; True when zoopm said it succeeded."""
    assert world.untouched_state() == before, outcome.describe()
    assert world.sentinel.read_bytes().startswith(b"the user's own file"), outcome.describe()
    assert not outcome.has_traceback, outcome.describe()
    assert "internal error" not in outcome.stderr, outcome.describe()
    assert store_problems(world.home) == [], outcome.describe()
    stray = {p.name for p in world.project.iterdir()} - ALLOWED_TOP_LEVEL
    assert not stray, f"written into the project outside models/: {stray}\n{outcome.describe()}"
    if outcome.returncode == 0:
        return True
    assert_clean_failure(outcome)
    return False


def _installed_as_locked(world: World, outcome: Outcome) -> None:
    assert models_problems(world.project, locked_files(world.project), complete=True) == [], (
        outcome.describe()
    )


# --- model names ---------------------------------------------------------------------------

HOSTILE_NAMES = {
    "dot-dot": '"../x"',
    "absolute": '"/abs"',
    "backslash": '"a\\\\b"',
    "nul": '"a\\u0000b"',
    "bell": '"bell\\u0007"',
    "newline": '"new\\nline"',
    "escape-sequence": '"esc\\u001b[2J"',
    "dot": '"."',
}


@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
def test_a_hostile_model_name_is_refused_with_one_error_and_nothing_is_written(
    name: str, world: World
) -> None:
    source = _info_only_model(world)
    _project(world, {name: f'{{ path = "{source}", binary = false }}'})
    before = world.untouched_state()

    outcome = _zoopm(world, "install")

    assert not _settled(world, before, outcome), "a hostile model name was accepted"
    assert not (world.project / "zoo.lock").exists(), outcome.describe()
    assert not (world.project / "models").exists() or not any(
        p for p in (world.project / "models").rglob("*") if p.is_file()
    ), outcome.describe()


def test_two_models_whose_names_differ_only_in_case_install_both_or_are_refused(
    world: World,
) -> None:
    upper = write_local_model(world.root / "src" / "upper", "Net", None, None, body="upper\n")
    lower = write_local_model(world.root / "src" / "lower", "net", None, None, body="lower\n")
    _project(
        world,
        {
            "Net": f'{{ path = "{upper}", binary = false }}',
            "net": f'{{ path = "{lower}", binary = false }}',
        },
    )
    before = world.untouched_state()

    outcome = _zoopm(world, "install")

    if _settled(world, before, outcome):
        _installed_as_locked(world, outcome)
        assert (world.project / "models" / "Net" / "readme.md").read_bytes() == (
            upper / "readme.md"
        ).read_bytes()
        assert (world.project / "models" / "net" / "readme.md").read_bytes() == (
            lower / "readme.md"
        ).read_bytes()


# --- file names from a local model and from a gist ---------------------------------------

LOCAL_FILE_NAMES = {
    "backslash": b"a\\b.prototxt",
    "not-utf-8": b"caf\xe9.prototxt",
    "control": b"bell\x07.prototxt",
    "newline": b"two\nlines.prototxt",
}


@pytest.mark.parametrize("raw", LOCAL_FILE_NAMES.values(), ids=LOCAL_FILE_NAMES.keys())
def test_a_hostile_file_name_in_a_local_model_is_installed_faithfully_or_refused(
    raw: bytes, world: World
) -> None:
    source = _info_only_model(world)
    with open(os.path.join(os.fsencode(source), raw), "wb") as stream:
        stream.write(b"# a solver with an odd name\n")
    _project(world, {"odd": f'{{ path = "{source}", binary = false }}'})
    before = world.untouched_state()

    outcome = _zoopm(world, "install")

    if _settled(world, before, outcome):
        _installed_as_locked(world, outcome)
        # The tool accepted its own lock: a second install agrees with the first.
        again = _zoopm(world, "install", "--frozen")
        assert again.returncode == 0, again.describe()


def _gist(emulator: GitHubEmulator, server: FileServer, files: dict[str, bytes]) -> str:
    """A one-revision gist with a readme naming a binary on server; returns its TOML spec."""
    binary = stand_in_binary("gist-binary", 4096)
    url = server.add_bytes("/gist/evil.caffemodel", binary)
    sha1 = hashlib.sha1(binary, usedforsecurity=False).hexdigest()
    readme = (
        files.pop("readme.md", None)
        or (
            f"---\nname: evil\ncaffemodel: evil.caffemodel\ncaffemodel_url: {url}\n"
            f"sha1: {sha1}\nlicense: unrestricted\n---\n\nA gist.\n"
        ).encode()
    )
    gist_id = "e" * 20
    (rev,) = emulator.add_gist(gist_id, OWNER, [{"readme.md": readme, **files}])
    return f'{{ gist = "{gist_id}", rev = "{rev}" }}'


def test_gist_files_whose_names_differ_only_in_case_install_both_or_are_refused(
    world: World, emulator: GitHubEmulator, file_server: FileServer
) -> None:
    spec = _gist(
        emulator,
        file_server,
        {"deploy.prototxt": b"name: 'lower'\n", "Deploy.prototxt": b"name: 'upper'\n"},
    )
    _project(world, {"evil": spec})
    before = world.untouched_state()

    outcome = _zoopm(world, "install", env={"ZOOPM_GITHUB_API": emulator.api_url})

    if _settled(world, before, outcome):
        _installed_as_locked(world, outcome)
        model = world.project / "models" / "evil"
        assert (model / "deploy.prototxt").read_bytes() == b"name: 'lower'\n"
        assert (model / "Deploy.prototxt").read_bytes() == b"name: 'upper'\n"


def test_a_gist_listing_hostile_file_names_writes_nothing_outside_models(
    world: World, emulator: GitHubEmulator, file_server: FileServer
) -> None:
    emulator.hostile_filenames = True
    _project(world, {"evil": _gist(emulator, file_server, {"deploy.prototxt": b"name: 'x'\n"})})
    before = world.untouched_state()

    outcome = _zoopm(world, "install", env={"ZOOPM_GITHUB_API": emulator.api_url})

    if _settled(world, before, outcome):
        _installed_as_locked(world, outcome)
        assert not Path("/etc/zoopm-evil").exists()
        for path in (world.project / "models").rglob("*"):
            assert path.resolve().is_relative_to((world.project / "models").resolve())


def test_a_local_readme_whose_caffemodel_climbs_out_is_refused(
    world: World, file_server: FileServer
) -> None:
    binary = stand_in_binary("climber", 4096)
    url = file_server.add_bytes("/climb.caffemodel", binary)
    source = write_local_model(world.root / "src" / "climb", "climb", binary, url)
    readme = source / "readme.md"
    readme.write_text(
        readme.read_text().replace("caffemodel: climb.caffemodel", "caffemodel: ../../x")
    )
    _project(world, {"climb": f'{{ path = "{source}" }}'})
    before = world.untouched_state()

    outcome = _zoopm(world, "install")

    assert not _settled(world, before, outcome), "caffemodel: ../../x was accepted"
    assert not (world.project / "x").exists()
    assert not (world.root / "x").exists()


def test_a_gist_readme_whose_caffemodel_climbs_out_is_refused(
    world: World, emulator: GitHubEmulator, file_server: FileServer
) -> None:
    binary = stand_in_binary("gist-binary", 4096)
    url = file_server.add_bytes("/gist/evil.caffemodel", binary)
    sha1 = hashlib.sha1(binary, usedforsecurity=False).hexdigest()
    readme = (
        f"---\nname: evil\ncaffemodel: ../../x\ncaffemodel_url: {url}\n"
        f"sha1: {sha1}\nlicense: unrestricted\n---\n"
    ).encode()
    _project(world, {"evil": _gist(emulator, file_server, {"readme.md": readme})})
    before = world.untouched_state()

    outcome = _zoopm(world, "install", env={"ZOOPM_GITHUB_API": emulator.api_url})

    assert not _settled(world, before, outcome), "caffemodel: ../../x was accepted"
    assert not (world.project / "x").exists()


# --- symlinks planted below models/ and in the store ---------------------------------------


def _decoy_dir(world: World) -> Path:
    """An outside directory holding files named like the model's, with the user's own bytes."""
    decoy = world.outside / "decoy"
    decoy.mkdir()
    for name in ("deploy.prototxt", "readme.md", "expected_output.json", "tiny_net.caffemodel"):
        (decoy / name).write_bytes(b"the user's own " + name.encode() + b"\n")
    return decoy


@pytest.mark.parametrize("when", ["before-the-first-install", "after-an-install"])
def test_install_never_writes_through_a_symlink_planted_at_models_name(
    when: str, world: World
) -> None:
    _project(world, {"tiny": f'{{ path = "{_tiny(world)}" }}'})
    models = world.project / "models"
    if when == "after-an-install":
        first = _zoopm(world, "install")
        assert first.returncode == 0, first.describe()
        shutil.rmtree(models / "tiny")
    models.mkdir(exist_ok=True)
    (models / "tiny").symlink_to(_decoy_dir(world), target_is_directory=True)
    before = world.untouched_state()

    outcome = _zoopm(world, "install")

    if _settled(world, before, outcome):
        assert not (models / "tiny").is_symlink(), outcome.describe()
        _installed_as_locked(world, outcome)


@pytest.mark.parametrize("when", ["before-the-first-install", "after-an-install"])
def test_install_never_writes_through_a_symlink_planted_at_a_model_file(
    when: str, world: World
) -> None:
    _project(world, {"tiny": f'{{ path = "{_tiny(world)}" }}'})
    target = world.project / "models" / "tiny" / "deploy.prototxt"
    if when == "after-an-install":
        first = _zoopm(world, "install")
        assert first.returncode == 0, first.describe()
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(world.sentinel)
    before = world.untouched_state()

    outcome = _zoopm(world, "install")

    if _settled(world, before, outcome):
        _installed_as_locked(world, outcome)


def test_a_store_blob_replaced_by_a_symlink_is_never_linked_into_models(world: World) -> None:
    tiny = _tiny(world)
    _project(world, {"tiny": f'{{ path = "{tiny}" }}'})
    first = _zoopm(world, "install")
    assert first.returncode == 0, first.describe()
    pinned = locked_files(world.project)
    sha256 = pinned["tiny/deploy.prototxt"][0]
    blob = world.home / "store" / "sha256" / sha256[:2] / sha256
    decoy = world.outside / "decoy.prototxt"
    decoy.write_bytes(b"name: 'not the locked net'\n")
    blob.unlink()
    blob.symlink_to(decoy)
    # The blob is needed again: another project's install, or this one after models/ is gone.
    shutil.rmtree(world.project / "models")
    before = world.untouched_state()

    outcome = run(["install", "--link-mode", "hardlink"], project=world.project, home=world.home)

    assert world.untouched_state() == before, outcome.describe()
    assert not outcome.has_traceback, outcome.describe()
    if outcome.returncode == 0:
        _installed_as_locked(world, outcome)
        placed = world.project / "models" / "tiny" / "deploy.prototxt"
        assert placed.stat().st_ino != decoy.stat().st_ino
    else:
        assert_clean_failure(outcome)


# --- size and shape bombs -----------------------------------------------------------------


@pytest.mark.slow
def test_a_zoo_toml_with_10000_models_locks_within_30s(world: World) -> None:
    source = _info_only_model(world)
    models = {f"m{index:05}": f'{{ path = "{source}", binary = false }}' for index in range(10_000)}
    _project(world, models)
    before = world.untouched_state()

    locked = _zoopm(world, "lock")

    assert locked.seconds < 30, locked.describe()
    if _settled(world, before, locked):
        assert len(locked_files(world.project)) == 2 * 10_000


def _baseline_rss(world: World) -> float:
    """Peak memory of `zoopm lock` for an ordinary one-model project, measured on this machine."""
    scratch = world.root / "baseline"
    scratch.mkdir()
    source = _info_only_model(world, "baseline")
    (scratch / "zoo.toml").write_text(
        f'[models]\nbase = {{ path = "{source}", binary = false }}\n', encoding="utf-8"
    )
    outcome = run(["lock"], project=scratch, home=world.root / "baseline-home")
    assert outcome.returncode == 0, outcome.describe()
    return outcome.max_rss_mib


@pytest.mark.slow
def test_a_50_mb_readme_is_handled_or_refused_in_bounded_memory(world: World) -> None:
    size = 50 << 20
    source = _info_only_model(world, "huge")
    readme = source / "readme.md"
    with readme.open("ab") as stream:
        line = b"All work and no play makes a very long readme. " * 2 + b"\n"
        for _ in range(size // len(line)):
            stream.write(line)
    _project(world, {"huge": f'{{ path = "{source}", binary = false }}'})
    baseline = _baseline_rss(world)
    before = world.untouched_state()

    outcome = _zoopm(world, "install")

    # Holding the readme once (decoded or not) is fine; a copy per stage is not.
    assert outcome.max_rss_mib < baseline + 2 * size / (1 << 20), outcome.max_rss_mib
    assert outcome.seconds < 30, outcome.describe()
    if _settled(world, before, outcome):
        _installed_as_locked(world, outcome)


ALIAS_BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "license: *i",
    ]
)


def test_a_yaml_alias_bomb_in_the_frontmatter_is_refused_quickly_in_bounded_memory(
    world: World,
) -> None:
    source = _info_only_model(world, "bomb")
    readme = source / "readme.md"
    text = readme.read_text().replace("license: unrestricted\n", ALIAS_BOMB + "\n")
    readme.write_text(text)
    _project(world, {"bomb": f'{{ path = "{source}", binary = false }}'})
    baseline = _baseline_rss(world)
    before = world.untouched_state()

    outcome = _zoopm(world, "install")

    assert outcome.seconds < 10, outcome.describe()
    assert outcome.max_rss_mib < baseline + 64, outcome.max_rss_mib
    assert not _settled(world, before, outcome), "an alias bomb was accepted as a license"


# --- invalid UTF-8 -------------------------------------------------------------------------


def test_invalid_utf8_in_zoo_toml_is_one_clear_error(world: World) -> None:
    source = _info_only_model(world)
    _project(world, {"plain": f'{{ path = "{source}", binary = false }}'})
    toml = world.project / "zoo.toml"
    toml.write_bytes(toml.read_bytes().replace(b"[models]", b"# caf\xe9 \xff\xfe\n[models]"))
    before = world.untouched_state()

    outcome = _zoopm(world, "install")

    assert not _settled(world, before, outcome), "zoo.toml with invalid UTF-8 was accepted"
    assert "zoo.toml" in outcome.error_lines[0]


def test_invalid_utf8_in_zoo_lock_is_one_clear_error(world: World) -> None:
    source = _info_only_model(world)
    _project(world, {"plain": f'{{ path = "{source}", binary = false }}'})
    locked = _zoopm(world, "lock")
    assert locked.returncode == 0, locked.describe()
    lock = world.project / "zoo.lock"
    lock.write_bytes(lock.read_bytes().replace(b"version = 1", b"# \xc3\x28 \xff\nversion = 1", 1))
    before = world.untouched_state()

    outcome = _zoopm(world, "install", "--frozen")

    assert not _settled(world, before, outcome), "zoo.lock with invalid UTF-8 was accepted"
    assert "zoo.lock" in outcome.error_lines[0]


@pytest.mark.parametrize("where", ["frontmatter", "body"])
def test_invalid_utf8_in_a_readme_is_installed_byte_for_byte_or_one_clear_error(
    where: str, world: World
) -> None:
    source = _info_only_model(world)
    readme = source / "readme.md"
    data = readme.read_bytes()
    if where == "frontmatter":
        data = data.replace(b"license: unrestricted", b"license: caf\xe9 \xff")
    else:
        data += b"\nLatin-1 prose: caf\xe9, na\xefve \xff\n"
    readme.write_bytes(data)
    _project(world, {"plain": f'{{ path = "{source}", binary = false }}'})
    before = world.untouched_state()

    outcome = _zoopm(world, "install")

    if _settled(world, before, outcome):
        _installed_as_locked(world, outcome)
        installed = world.project / "models" / "plain" / "readme.md"
        assert sha256_of(installed) == hashlib.sha256(data).hexdigest()
