"""Offline bundles through the CLI: `zoopm bundle FILE` and `zoopm install --from-bundle FILE`."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import socket
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cli import Zoopm, ok, refused
from tests.support.fileserver import FileServer
from tests.support.github import FIXTURES, GitHubEmulator
from tests.support.memory import peak_rss_mib
from tests.support.projects import REPO, mirrors_for, tree, write_project
from zoopm import Project
from zoopm.errors import BundleError
from zoopm.reporting import NullReporter, Progress

NIN = "d802a5849de39225bcc6"
NIN_REV = "8df5fd6b236eb157bc7c1f1aca9eb11c5e86576a"
BVLC_REV = "9b891540183ddc834a02b2bd81b31afae71b2153"
MiB = 1024 * 1024


# --- helpers ------------------------------------------------------------------------------------


def use_home(monkeypatch: pytest.MonkeyPatch, home: Path) -> Path:
    monkeypatch.setenv("ZOOPM_HOME", str(home))
    return home


def local_project(root: Path, tiny_net: Path) -> Path:
    return write_project(root, {"tiny": f'{{ path = "{tiny_net}" }}'})


def listing(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*"))


def store_problems(home: Path) -> list[str]:
    """Blobs that do not hash to their names, and files left in the store's tmp/."""
    store = home / "store"
    wrong = [
        p.name
        for p in (store / "sha256").rglob("*")
        if p.is_file() and hashlib.sha256(p.read_bytes()).hexdigest() != p.name
    ]
    leftovers = [p.name for p in (store / "tmp").glob("*")] if (store / "tmp").exists() else []
    return wrong + leftovers


def stored_blobs(home: Path) -> set[str]:
    folder = home / "store" / "sha256"
    return {p.name for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def refuse_every_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request zoopm could make goes to a port nothing listens on."""
    dead = f"http://127.0.0.1:{closed_port()}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, dead)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("ZOOPM_GITHUB_API", dead)


def entries(bundle: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(bundle) as tar:
        found = []
        for member in tar.getmembers():
            data = tar.extractfile(member)
            assert data is not None
            found.append((member.name, data.read()))
        return found


def info(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    item = tarfile.TarInfo(name)
    item.size = size if kind == tarfile.REGTYPE else 0
    item.type = kind
    item.mode = 0o644
    return item


def craft(path: Path, items: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    """A tar of exactly these headers and bytes, written as tar writes them."""
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for item, data in items:
            tar.addfile(item, io.BytesIO(data) if item.isreg() else None)
    return path


def files(good: list[tuple[str, bytes]]) -> list[tuple[tarfile.TarInfo, bytes]]:
    return [(info(name, len(data)), data) for name, data in good]


# --- the Done-when check ------------------------------------------------------------------------


def test_a_bundle_made_with_one_home_installs_into_a_fresh_home_with_every_request_refused(
    tmp_path: Path,
    github: GitHubEmulator,
    model_host: FileServer,
    zoopm: Zoopm,
    tiny_net: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_home(monkeypatch, tmp_path / "home-one")
    models = {
        "nin": f'{{ gist = "{NIN}", rev = "{NIN_REV}" }}',
        "googlenet": f'{{ github = "BVLC/caffe", path = "models/bvlc_googlenet", '
        f'rev = "{BVLC_REV}" }}',
        "tiny": '{ path = "src/tiny" }',  # a directory of the project's own, not carried along
    }
    project = write_project(tmp_path / "proj", models, mirrors_for(model_host))
    shutil.copytree(tiny_net, project / "src" / "tiny")
    ok(zoopm("install", project=project))
    bundle = tmp_path / "carry" / "models.tar"
    bundle.parent.mkdir()

    made = ok(zoopm("bundle", bundle, project=project))

    assert "Wrote" in made.stderr and "3 models" in made.stderr
    # The air-gapped machine: another store, every host unreachable, an empty directory.
    use_home(monkeypatch, tmp_path / "home-two")
    refuse_every_host(monkeypatch)
    github.clear_log()
    model_host.clear_log()
    target = tmp_path / "offline"
    target.mkdir()

    run = ok(zoopm("install", "--from-bundle", bundle, project=target))

    assert github.requests == [] and model_host.requests == []
    assert (target / "zoo.toml").read_bytes() == (project / "zoo.toml").read_bytes()
    assert (target / "zoo.lock").read_bytes() == (project / "zoo.lock").read_bytes()
    assert tree(target / "models") == tree(project / "models")
    assert set(tree(target / "models")) >= {
        "nin/nin_imagenet.caffemodel",
        "googlenet/bvlc_googlenet.caffemodel",
        "tiny/tiny_net.caffemodel",
    }
    assert (target / "models" / "nin" / "nin_imagenet.caffemodel").read_bytes() == (
        FIXTURES / "binaries" / "nin_imagenet.caffemodel"
    ).read_bytes()
    assert "wrote zoo.toml and zoo.lock" in run.stderr
    assert "warning" not in run.stderr  # the local model's directory stayed behind: no noise
    ok(zoopm("verify", project=target))
    ok(zoopm("install", "--frozen", "--offline", project=target))
    # The second machine's store gives the very same bundle back.
    again = tmp_path / "again.tar"
    ok(zoopm("bundle", again, project=target))
    assert again.read_bytes() == bundle.read_bytes()
    assert github.requests == [] and model_host.requests == []


# --- writing ------------------------------------------------------------------------------------


def test_the_same_lock_gives_byte_identical_bundles_of_plain_files_in_a_fixed_order(
    tmp_path: Path, zoopm: Zoopm, tiny_net: Path
) -> None:
    project = local_project(tmp_path / "proj", tiny_net)
    ok(zoopm("lock", project=project))

    ok(zoopm("bundle", tmp_path / "a.tar", project=project))
    os.utime(project / "zoo.lock", (1, 1))  # times on disk play no part
    ok(zoopm("bundle", tmp_path / "b.tar", project=project))

    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    assert len((tmp_path / "a.tar").read_bytes()) % 10240 == 0
    with tarfile.open(tmp_path / "a.tar") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names[:3] == ["zoopm-bundle.json", "zoo.toml", "zoo.lock"]
    assert names[3:] == sorted(names[3:]) and all(n.startswith("blobs/sha256/") for n in names[3:])
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {
        (0, 0, 0, "", "", 0o644)
    }
    assert all(m.isreg() for m in members)
    blobs = dict(entries(tmp_path / "a.tar"))
    for name, data in blobs.items():
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]


def test_bundle_fetches_what_the_store_lacks_and_offline_names_what_is_missing(
    tmp_path: Path,
    github: GitHubEmulator,
    model_host: FileServer,
    zoopm: Zoopm,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    models = {"nin": f'{{ gist = "{NIN}", rev = "{NIN_REV}" }}'}
    project = write_project(tmp_path / "proj", models, mirrors_for(model_host))
    ok(zoopm("lock", project=project))
    use_home(monkeypatch, tmp_path / "empty-home")

    monkeypatch.setenv("ZOOPM_OFFLINE", "1")
    offline = zoopm("bundle", tmp_path / "off.tar", project=project)
    monkeypatch.delenv("ZOOPM_OFFLINE")

    refused(offline, "not in the store")
    assert not (tmp_path / "off.tar").exists()
    model_host.clear_log()
    ok(zoopm("bundle", tmp_path / "on.tar", project=project))
    assert model_host.count() >= 1
    names = [name for name, _ in entries(tmp_path / "on.tar")]
    binary = (FIXTURES / "binaries" / "nin_imagenet.caffemodel").read_bytes()
    assert f"blobs/sha256/{hashlib.sha256(binary).hexdigest()}" in names


def test_a_stale_or_missing_lock_is_refused_and_nothing_is_written(
    tmp_path: Path, zoopm: Zoopm, tiny_net: Path
) -> None:
    project = local_project(tmp_path / "proj", tiny_net)

    missing = zoopm("bundle", tmp_path / "b.tar", project=project)
    ok(zoopm("lock", project=project))
    with (project / "zoo.toml").open("a") as toml:
        toml.write(f'other = {{ path = "{tiny_net}" }}\n')
    stale = zoopm("bundle", tmp_path / "b.tar", project=project)

    refused(missing, "zoo.lock: missing")
    refused(stale, "zoo.lock does not match zoo.toml: other added")
    assert not (tmp_path / "b.tar").exists()


def test_an_existing_file_is_replaced_only_with_force_and_a_symlink_there_is_never_followed(
    tmp_path: Path, zoopm: Zoopm, tiny_net: Path
) -> None:
    project = local_project(tmp_path / "proj", tiny_net)
    ok(zoopm("lock", project=project))
    existing = tmp_path / "b.tar"
    existing.write_bytes(b"keep me")
    precious = tmp_path / "precious.txt"
    precious.write_bytes(b"not a bundle")
    link = tmp_path / "link.tar"
    link.symlink_to(precious)
    (tmp_path / "dir.tar").mkdir()

    kept = zoopm("bundle", existing, project=project)
    link_kept = zoopm("bundle", link, project=project)
    directory = zoopm("bundle", tmp_path / "dir.tar", "--force", project=project)
    no_parent = zoopm("bundle", tmp_path / "nowhere" / "b.tar", project=project)

    refused(kept, "b.tar: already exists", code=2)
    assert "--force" in kept.stderr
    assert existing.read_bytes() == b"keep me"
    refused(link_kept, "link.tar: already exists", code=2)
    refused(directory, "dir.tar: is a directory", code=2)
    refused(no_parent, "does not exist", code=2)
    ok(zoopm("bundle", existing, "--force", project=project))
    ok(zoopm("bundle", link, "--force", project=project))
    assert not link.is_symlink() and link.read_bytes() == existing.read_bytes()
    assert precious.read_bytes() == b"not a bundle"
    assert listing(tmp_path) == listing(tmp_path)  # no temp file left beside them
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_blob_that_rotted_in_the_store_is_never_bundled_it_is_fetched_again(
    tmp_path: Path,
    github: GitHubEmulator,
    model_host: FileServer,
    zoopm: Zoopm,
    isolated_env: Path,
) -> None:
    models = {"nin": f'{{ gist = "{NIN}", rev = "{NIN_REV}" }}'}
    project = write_project(tmp_path / "proj", models, mirrors_for(model_host))
    ok(zoopm("install", "--link-mode", "copy", project=project))
    binary = (FIXTURES / "binaries" / "nin_imagenet.caffemodel").read_bytes()
    blob = isolated_env / "store" / "sha256" / hashlib.sha256(binary).hexdigest()[:2]
    blob = blob / hashlib.sha256(binary).hexdigest()
    # Same size, same mode, same stamp: only the bytes can tell.
    info = blob.stat()
    blob.chmod(0o644)
    blob.write_bytes(b"X" * len(binary))
    blob.chmod(0o444)
    os.utime(blob, ns=(info.st_atime_ns, info.st_mtime_ns))

    run = ok(zoopm("bundle", tmp_path / "b.tar", project=project))

    assert "quarantine" in run.stderr
    assert dict(entries(tmp_path / "b.tar"))[f"blobs/sha256/{blob.name}"] == binary
    assert blob.read_bytes() == binary


# --- reading: where the bundle goes -------------------------------------------------------------


@pytest.fixture
def good_bundle(
    tmp_path: Path, zoopm: Zoopm, tiny_net: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A bundle of a local model made with its own store; the test then uses a fresh one."""
    use_home(monkeypatch, tmp_path / "maker-home")
    project = local_project(tmp_path / "maker", tiny_net)
    ok(zoopm("install", project=project))
    bundle = tmp_path / "good.tar"
    ok(zoopm("bundle", bundle, project=project))
    use_home(monkeypatch, tmp_path / "home")
    refuse_every_host(monkeypatch)
    return bundle


def test_a_project_with_the_same_lock_installs_from_the_bundle(
    tmp_path: Path, zoopm: Zoopm, good_bundle: Path
) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("zoo.toml", "zoo.lock"):
        (checkout / name).write_bytes((tmp_path / "maker" / name).read_bytes())
    (checkout / "zoo.toml").write_text(
        "# my comment\n" + (checkout / "zoo.toml").read_text(), encoding="utf-8"
    )

    run = ok(zoopm("install", "--from-bundle", good_bundle, project=checkout))

    assert "wrote" not in run.stderr
    assert (checkout / "zoo.toml").read_text().startswith("# my comment")
    assert tree(checkout / "models") == tree(tmp_path / "maker" / "models")
    again = ok(zoopm("install", "--from-bundle", good_bundle, project=checkout))
    assert "0 new blobs" in again.stderr


def test_a_project_with_only_zoo_toml_gets_the_bundles_lock_when_it_pins_that_zoo_toml(
    tmp_path: Path, zoopm: Zoopm, good_bundle: Path
) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "zoo.toml").write_bytes((tmp_path / "maker" / "zoo.toml").read_bytes())

    run = ok(zoopm("install", "--from-bundle", good_bundle, project=checkout))

    assert "wrote zoo.lock" in run.stderr
    assert (checkout / "zoo.lock").read_bytes() == (tmp_path / "maker" / "zoo.lock").read_bytes()


def test_a_bundle_whose_lock_differs_from_the_projects_is_refused_before_a_byte_is_stored(
    tmp_path: Path, zoopm: Zoopm, good_bundle: Path, tiny_net: Path
) -> None:
    other = write_project(tmp_path / "other", {"tiny": f'{{ path = "{tiny_net}" }}'})
    (tiny_net / "notes.txt").write_text("a new file, so the lock differs\n")
    ok(zoopm("lock", project=other))
    before = {name: (other / name).read_bytes() for name in ("zoo.toml", "zoo.lock")}
    home = tmp_path / "home"
    blobs_before = stored_blobs(home)

    run = zoopm("install", "--from-bundle", good_bundle, project=other)
    only_toml = tmp_path / "only-toml"
    only_toml.mkdir()
    (only_toml / "zoo.toml").write_bytes(before["zoo.toml"].replace(b"tiny =", b"small ="))
    unpinned = zoopm("install", "--from-bundle", good_bundle, project=only_toml)
    lock_only = tmp_path / "lock-only"
    lock_only.mkdir()
    (lock_only / "zoo.lock").write_bytes(before["zoo.lock"])
    orphan = zoopm("install", "--from-bundle", good_bundle, project=lock_only)

    refused(run, "its zoo.lock differs from")
    assert "tiny: notes.txt" in run.error_line
    assert {name: (other / name).read_bytes() for name in before} == before
    assert not (other / "models").exists()
    assert stored_blobs(home) == blobs_before
    refused(unpinned, "its zoo.lock does not pin")
    assert listing(only_toml) == ["zoo.toml"]
    refused(orphan, "exists, but zoo.toml does not", code=2)
    assert listing(lock_only) == ["zoo.lock"]


def test_install_from_a_bundle_takes_the_full_cli_even_where_a_no_op_witness_holds(
    tmp_path: Path, zoopm: Zoopm, tiny_net: Path, good_bundle: Path
) -> None:
    other = write_project(tmp_path / "other", {"tiny": f'{{ path = "{tiny_net}" }}'})
    (tiny_net / "notes.txt").write_text("so the lock differs from the bundle's\n")
    ok(zoopm("install", project=other))
    ok(zoopm("install", project=other))  # a no-op: its witness is written
    env = dict(os.environ, PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "zoopm", "-C", str(other), "install"]

    witnessed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    from_bundle = subprocess.run(
        [*command, "--from-bundle", str(good_bundle)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert witnessed.returncode == 0 and "Nothing to do" in witnessed.stderr
    assert from_bundle.returncode == 1, from_bundle.stderr
    assert "its zoo.lock differs from" in from_bundle.stderr


def test_usage_errors_of_from_bundle_write_nothing(
    tmp_path: Path, zoopm: Zoopm, good_bundle: Path
) -> None:
    target = tmp_path / "t"
    target.mkdir()

    run = zoopm("install", "--from-bundle", good_bundle, "--dry-run", project=target)
    missing = zoopm("install", "--from-bundle", tmp_path / "nothing.tar", project=target)
    directory = zoopm("install", "--from-bundle", tmp_path, project=target)
    mode = zoopm("install", "--from-bundle", good_bundle, "--link-mode", "wormhole", project=target)

    refused(run, "cannot be combined with --dry-run", code=2)
    refused(missing, "nothing.tar: no such file", code=2)
    refused(directory, "not a regular file", code=2)
    refused(mode, "--link-mode: 'wormhole'", code=2)
    assert listing(target) == []


# --- hostile bundles ----------------------------------------------------------------------------

Good = list[tuple[str, bytes]]


def _blob_names(good: Good) -> list[str]:
    return [name for name, _ in good if name.startswith("blobs/")]


def _absolute(good: Good) -> list[tuple[tarfile.TarInfo, bytes]]:
    return [*files(good[:3]), (info("/etc/zoopm-owned", 3), b"bad"), *files(good[3:])]


def _climbing(good: Good) -> list[tuple[tarfile.TarInfo, bytes]]:
    return [*files(good[:3]), (info("blobs/../../evil", 3), b"bad"), *files(good[3:])]


def _kind(kind: bytes) -> Callable[[Good], list[tuple[tarfile.TarInfo, bytes]]]:
    def make(good: Good) -> list[tuple[tarfile.TarInfo, bytes]]:
        item = info(_blob_names(good)[0], 0, kind)
        item.linkname = "/etc/passwd"
        rest = [(n, d) for n, d in good[3:] if n != item.name]
        return [*files(good[:3]), (item, b""), *files(rest)]

    return make


def _duplicate(good: Good) -> list[tuple[tarfile.TarInfo, bytes]]:
    return [*files(good[:4]), *files(good[3:])]


def _wrong_bytes(good: Good) -> list[tuple[tarfile.TarInfo, bytes]]:
    name, data = good[4]
    return [
        *files(good[:4]),
        (info(name, len(data)), bytes([data[0] ^ 1]) + data[1:]),
        *files(good[5:]),
    ]


def _larger(good: Good) -> list[tuple[tarfile.TarInfo, bytes]]:
    name, data = good[3]
    return [*files(good[:3]), (info(name, len(data) + 1), data + b"!"), *files(good[4:])]


def _missing_blob(good: Good) -> list[tuple[tarfile.TarInfo, bytes]]:
    return files(good[:3] + good[4:])


def _not_in_lock(good: Good) -> list[tuple[tarfile.TarInfo, bytes]]:
    import json

    manifest = json.loads(good[0][1])
    drop = manifest["blobs"].pop(0)
    data = json.dumps(manifest).encode()
    rest = [(n, d) for n, d in good[3:] if n != f"blobs/sha256/{drop['sha256']}"]
    return files([("zoopm-bundle.json", data), *good[1:3], *rest])


def _lock_not_toml(good: Good) -> list[tuple[tarfile.TarInfo, bytes]]:
    toml = good[1][1].replace(b"tiny =", b"renamed =")
    return files([good[0], ("zoo.toml", toml), *good[2:]])


def _unexpected(good: Good) -> list[tuple[tarfile.TarInfo, bytes]]:
    return [*files(good), (info("models/tiny/extra.txt", 3), b"bad")]


def _head_out_of_order(good: Good) -> list[tuple[tarfile.TarInfo, bytes]]:
    return files([good[1], good[0], *good[2:]])


HOSTILE: dict[str, tuple[Callable[[Good], list[tuple[tarfile.TarInfo, bytes]]], str]] = {
    "absolute path": (_absolute, "'/etc/zoopm-owned' is an absolute path"),
    "dot-dot": (_climbing, "climbs out with '..'"),
    "symlink": (_kind(tarfile.SYMTYPE), "is a symbolic link"),
    "hard link": (_kind(tarfile.LNKTYPE), "is a hard link"),
    "character device": (_kind(tarfile.CHRTYPE), "is a character device"),
    "FIFO": (_kind(tarfile.FIFOTYPE), "is a FIFO"),
    "directory": (_kind(tarfile.DIRTYPE), "is a directory"),
    "duplicate": (_duplicate, "comes twice"),
    "bytes not matching the name": (_wrong_bytes, "sha256 mismatch"),
    "entry larger than listed": (_larger, "declares"),
    "blob the lock needs left out": (_missing_blob, "lacks blobs/sha256/"),
    "manifest short of the lock": (_not_in_lock, "which its zoo.lock pins"),
    "zoo.lock not of its zoo.toml": (_lock_not_toml, "its zoo.lock does not match its zoo.toml"),
    "an entry a bundle has not": (_unexpected, "is not an entry a zoopm bundle has"),
    "head out of order": (_head_out_of_order, "comes where zoopm-bundle.json belongs"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_bundle_is_refused_in_one_line_and_nothing_is_half_written(
    tmp_path: Path, zoopm: Zoopm, good_bundle: Path, case: str
) -> None:
    make, phrase = HOSTILE[case]
    bundle = craft(tmp_path / "hostile.tar", make(entries(good_bundle)))
    target = tmp_path / "target"
    target.mkdir()

    run = zoopm("install", "--from-bundle", bundle, project=target)

    refused(run, phrase)
    assert len([line for line in run.stderr.splitlines() if line.startswith("error:")]) == 1
    assert listing(target) == []
    assert store_problems(tmp_path / "home") == []
    assert not Path("/etc/zoopm-owned").exists()
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize(
    ("cut", "phrase"),
    [
        (lambda data: data[: len(data) // 2], "ends in the middle of"),
        (lambda data: data[:1536], "ends in the middle of"),
        (lambda data: data[:1124], "ends in the middle of a tar header"),
        (lambda data: data.rstrip(b"\0"), "ends"),
        (lambda data: b"", "ends without"),
        (lambda data: b"not a tar" * 100, "wrong checksum"),
        (lambda data: __import__("gzip").compress(data), "is gzip-compressed"),
    ],
    ids=["half", "after the head", "mid header", "no end marker", "empty", "garbage", "gzip"],
)
def test_a_truncated_or_foreign_file_is_refused_and_nothing_is_half_written(
    tmp_path: Path,
    zoopm: Zoopm,
    good_bundle: Path,
    cut: Callable[[bytes], bytes],
    phrase: str,
) -> None:
    bundle = tmp_path / "cut.tar"
    bundle.write_bytes(cut(good_bundle.read_bytes()))
    target = tmp_path / "target"
    target.mkdir()

    run = zoopm("install", "--from-bundle", bundle, project=target)

    refused(run, phrase)
    assert listing(target) == []
    assert store_problems(tmp_path / "home") == []


# --- interruptions ------------------------------------------------------------------------------


class _StopAfter:
    """A progress bar that presses Ctrl-C once some bytes went by."""

    def __init__(self, after: int) -> None:
        self.after = after

    def advance(self, nbytes: int) -> None:
        self.after -= nbytes
        if self.after <= 0:
            raise KeyboardInterrupt

    def restart(self) -> None:
        pass

    def close(self) -> None:
        pass


class _CtrlC(NullReporter):
    def transfer(self, label: str, total: int | None) -> Progress:
        return (
            _StopAfter(1)
            if label.startswith(("writing", "reading"))
            else super().transfer(label, total)
        )


def test_ctrl_c_while_bundling_leaves_no_file_and_no_temp(
    tmp_path: Path, zoopm: Zoopm, tiny_net: Path
) -> None:
    project = local_project(tmp_path / "proj", tiny_net)
    ok(zoopm("install", project=project))
    out = tmp_path / "out"
    out.mkdir()

    with Project(project, reporter=_CtrlC()) as api, pytest.raises(KeyboardInterrupt):
        api.bundle(out / "b.tar")

    assert listing(out) == []


def test_ctrl_c_while_installing_from_a_bundle_writes_nothing_and_the_next_run_completes(
    tmp_path: Path, zoopm: Zoopm, good_bundle: Path
) -> None:
    target = tmp_path / "target"
    target.mkdir()

    with Project(target, reporter=_CtrlC()) as api, pytest.raises(KeyboardInterrupt):
        api.install_from_bundle(good_bundle)

    assert listing(target) == []
    assert store_problems(tmp_path / "home") == []
    ok(zoopm("install", "--from-bundle", good_bundle, project=target))
    assert tree(target / "models") == tree(tmp_path / "maker" / "models")


class _Meanwhile(NullReporter):
    """Someone writes the bundle's file while zoopm writes the bundle."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def transfer(self, label: str, total: int | None) -> Progress:
        self.path.write_bytes(b"written meanwhile")
        return super().transfer(label, total)


def test_a_file_that_appears_while_bundling_is_left_alone_without_force(
    tmp_path: Path, zoopm: Zoopm, tiny_net: Path
) -> None:
    from zoopm.errors import UsageError

    project = local_project(tmp_path / "proj", tiny_net)
    ok(zoopm("lock", project=project))
    out = tmp_path / "out"
    out.mkdir()

    meanwhile = _Meanwhile(out / "b.tar")
    appeared = pytest.raises(UsageError, match="appeared while the bundle was written")
    with Project(project, reporter=meanwhile) as api, appeared:
        api.bundle(out / "b.tar")

    assert listing(out) == ["b.tar"]
    assert (out / "b.tar").read_bytes() == b"written meanwhile"


def test_temp_files_of_a_killed_bundle_run_are_swept_and_a_live_ones_kept(
    tmp_path: Path, zoopm: Zoopm, tiny_net: Path
) -> None:
    from zoopm.storage.locks import host_tag

    project = local_project(tmp_path / "proj", tiny_net)
    ok(zoopm("lock", project=project))
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    killed = tmp_path / f".zoopm-bundle-{host_tag()}-{dead.stdout.strip()}-00ab.tmp"
    live = tmp_path / f".zoopm-bundle-{host_tag()}-{os.getppid()}-00cd.tmp"
    killed.write_bytes(b"half")
    live.write_bytes(b"half")

    ok(zoopm("bundle", tmp_path / "b.tar", project=project))

    assert not killed.exists() and live.exists()


# --- bounds -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_bundling_and_installing_a_large_model_keeps_memory_bounded(
    tmp_path: Path, tiny_net: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tiny_net / "weights.bin"
    with big.open("wb") as out:
        block = hashlib.sha256(b"zoopm").digest() * (MiB // 32)
        for _ in range(192):
            out.write(block)
    project = local_project(tmp_path / "proj", tiny_net)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    baseline, _ = peak_rss_mib(["-c", "import zoopm.cli, zoopm.operations.bundle"], env)
    zoopm_cli = ["-m", "zoopm", "--no-progress"]
    lock = subprocess.run(
        [sys.executable, *zoopm_cli, "-C", str(project), "lock"], env=env, check=False
    )
    assert lock.returncode == 0

    made, run = peak_rss_mib([*zoopm_cli, "-C", str(project), "bundle", "big.tar"], env)
    assert run.returncode == 0, run.stderr
    target = tmp_path / "target"
    target.mkdir()
    env["ZOOPM_HOME"] = str(tmp_path / "other-home")
    bundle = str(project / "big.tar")
    read, run = peak_rss_mib(
        [*zoopm_cli, "-C", str(target), "install", "--from-bundle", bundle], env
    )

    assert run.returncode == 0, run.stderr
    assert (target / "models" / "tiny" / "weights.bin").stat().st_size == 192 * MiB
    print(f"baseline {baseline:.0f} MiB, bundle {made:.0f} MiB, install {read:.0f} MiB")
    assert made < baseline + 80 and read < baseline + 80


# --- review mends -------------------------------------------------------------------------------


def _with_size_field(data: bytes, field: bytes) -> bytes:
    """data's first tar header with its size field set to field, and its checksum made right."""
    block = bytearray(data[:512])
    block[124:136] = field.ljust(12, b"\0")
    block[148:156] = b" " * 8
    block[148:156] = f"{sum(block):06o}\0 ".encode()
    return bytes(block) + data[512:]


@pytest.mark.parametrize("field", [b"-0000000001", b"-2", b"+0000000001", b"0_1"])
def test_a_size_with_a_sign_or_underscore_is_refused_in_one_line_not_read_to_the_end(
    tmp_path: Path, zoopm: Zoopm, good_bundle: Path, field: bytes
) -> None:
    bundle = tmp_path / "signed.tar"
    bundle.write_bytes(_with_size_field(good_bundle.read_bytes(), field) + b"junk" * 4096)
    target = tmp_path / "target"
    target.mkdir()

    run = zoopm("install", "--from-bundle", bundle, project=target)

    refused(run, "has an unreadable size")
    assert "internal error" not in run.stderr
    assert listing(target) == []


def test_a_zoo_toml_written_while_the_bundle_is_read_is_left_alone(
    tmp_path: Path, zoopm: Zoopm, good_bundle: Path
) -> None:
    target = tmp_path / "target"
    target.mkdir()
    mine = b'# my own project file\n[project]\nmodels-dir = "mine"\n'

    class _WritesMeanwhile(NullReporter):
        def transfer(self, label: str, total: int | None) -> Progress:
            if label.startswith("reading") and not (target / "zoo.toml").exists():
                (target / "zoo.toml").write_bytes(mine)
            return super().transfer(label, total)

    with Project(target, reporter=_WritesMeanwhile()) as api, pytest.raises(BundleError) as caught:
        api.install_from_bundle(good_bundle)

    assert "appeared while" in caught.value.message
    assert (target / "zoo.toml").read_bytes() == mine
    assert not (target / "models").exists()


def test_a_model_kept_in_its_own_directory_travels_in_a_bundle_and_installs_again(
    tmp_path: Path, zoopm: Zoopm, tiny_net: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    maker = tmp_path / "maker"
    (maker / "models").mkdir(parents=True)
    tiny_net.rename(maker / "models" / "tiny")
    write_project(maker, {"tiny": '{ path = "models/tiny" }'})
    ok(zoopm("install", project=maker))
    ok(zoopm("bundle", tmp_path / "b.tar", project=maker))
    use_home(monkeypatch, tmp_path / "offline-home")
    refuse_every_host(monkeypatch)
    target = tmp_path / "target"
    target.mkdir()

    ok(zoopm("install", "--from-bundle", tmp_path / "b.tar", project=target))
    again = zoopm("install", project=target)
    removed = zoopm("remove", "tiny", project=target)

    assert again.exit_code == 0, again.stderr
    assert tree(target / "models" / "tiny") == tree(maker / "models" / "tiny")
    weights = target / "models" / "tiny" / "tiny_net.caffemodel"
    assert weights.stat().st_nlink == 1 and os.access(weights, os.W_OK)  # a copy, the user's
    assert removed.exit_code == 0, removed.stderr
    assert weights.exists()  # the model's own directory: never removed


def test_a_bundle_file_name_as_long_as_the_disk_allows_is_written(
    tmp_path: Path, zoopm: Zoopm, tiny_net: Path
) -> None:
    project = local_project(tmp_path / "proj", tiny_net)
    ok(zoopm("lock", project=project))
    name = "a" * 251 + ".tar"

    ok(zoopm("bundle", tmp_path / name, project=project))

    assert (tmp_path / name).is_file()


def test_install_from_a_bundle_with_json_counts_what_the_bundle_added_to_the_store(
    tmp_path: Path, zoopm: Zoopm, good_bundle: Path
) -> None:
    target = tmp_path / "target"
    target.mkdir()

    run = zoopm("install", "--from-bundle", good_bundle, "--json", project=target)

    document = __import__("json").loads(run.stdout)
    assert run.exit_code == 0, run.stderr
    assert document["fetched_blobs"] == len(stored_blobs(tmp_path / "home")) > 0
    assert document["fetched_bytes"] > 0


def test_bundle_offline_names_what_the_store_lacks(
    tmp_path: Path, zoopm: Zoopm, tiny_net: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = local_project(tmp_path / "proj", tiny_net)
    ok(zoopm("lock", project=project))
    use_home(monkeypatch, tmp_path / "empty-home")
    shutil.rmtree(tiny_net)

    run = zoopm("bundle", "--offline", tmp_path / "b.tar", project=project)

    assert run.exit_code == 1
    assert "offline" in run.error_line
    assert not (tmp_path / "b.tar").exists()
