"""zoopm download-binary DIR: Caffe's download_model_binary.py, through the store.

As the script: the binary DIR/readme.md names, checked by its SHA-1, and `Model already
exists.` when it is there already. Unlike it: nothing but the verified binary ever reaches the
final path, and every error says which file, key or host.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.cli import Zoopm
from tests.support.fileserver import FileServer
from tests.support.projects import TINY_NET, mirrors_for, serve_binary_elsewhere

BINARY = "tiny_net.caffemodel"


@pytest.fixture
def model(tmp_path: Path, file_server: FileServer) -> tuple[Path, bytes]:
    """A Caffe model directory (no zoo.toml anywhere) whose binary is on the file server."""
    directory = tmp_path / "models" / "tiny_net"
    shutil.copytree(TINY_NET, directory)
    url = file_server.url("/models/tiny_net.caffemodel")
    data = serve_binary_elsewhere(directory, url)
    file_server.add_bytes("/models/tiny_net.caffemodel", data)
    return directory, data


def test_a_missing_binary_is_downloaded_verified_and_placed(
    model: tuple[Path, bytes], zoopm: Zoopm, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, data = model
    monkeypatch.chdir(directory.parent.parent)

    run = zoopm("download-binary", "models/tiny_net")

    assert run.exit_code == 0, run.stderr
    assert (directory / BINARY).read_bytes() == data
    assert "Downloaded models/tiny_net/tiny_net.caffemodel" in run.stderr
    assert not [p for p in directory.iterdir() if p.name.startswith(".")]


def test_a_present_binary_with_the_right_sha1_is_left_alone_as_the_script_says(
    model: tuple[Path, bytes], zoopm: Zoopm, file_server: FileServer
) -> None:
    directory, data = model
    (directory / BINARY).write_bytes(data)
    inode = (directory / BINARY).stat().st_ino
    file_server.clear_log()

    run = zoopm("download-binary", directory)

    assert run.exit_code == 0, run.stderr
    assert run.stdout == "Model already exists.\n"
    assert (directory / BINARY).stat().st_ino == inode
    assert file_server.requests == []


def test_a_present_binary_with_the_wrong_sha1_is_replaced_by_the_right_one(
    model: tuple[Path, bytes], zoopm: Zoopm
) -> None:
    directory, data = model
    (directory / BINARY).write_bytes(b"a truncated download")

    run = zoopm("download-binary", directory)

    assert run.exit_code == 0, run.stderr
    assert (directory / BINARY).read_bytes() == data


def test_wrong_bytes_from_the_server_never_reach_the_final_path(
    model: tuple[Path, bytes], zoopm: Zoopm, file_server: FileServer
) -> None:
    directory, data = model
    file_server.add_bytes("/models/tiny_net.caffemodel", data[:-1] + b"!")

    missing = zoopm("download-binary", directory)
    (directory / BINARY).write_bytes(b"the user's old file")
    present = zoopm("download-binary", directory)

    assert missing.exit_code == 1
    assert "sha1 mismatch" in missing.error_line
    assert present.exit_code == 1
    assert (directory / BINARY).read_bytes() == b"the user's old file"
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [*(p.name for p in TINY_NET.iterdir() if p.name != BINARY), BINARY]
    )


def test_a_directory_without_a_readme_names_the_file_it_tried(tmp_path: Path, zoopm: Zoopm) -> None:
    run = zoopm("download-binary", tmp_path)

    assert run.exit_code == 2
    assert run.error_line == f"error: {tmp_path / 'readme.md'}: not found"


@pytest.mark.parametrize("key", ["caffemodel_url", "sha1", "caffemodel"])
def test_a_readme_without_a_required_key_names_the_key(
    model: tuple[Path, bytes], zoopm: Zoopm, key: str
) -> None:
    directory, _ = model
    readme = directory / "readme.md"
    lines = readme.read_text().splitlines(keepends=True)
    readme.write_text("".join(line for line in lines if not line.startswith(f"{key}:")))

    run = zoopm("download-binary", directory)

    assert run.exit_code == 2
    assert f"readme.md: no {key} in the frontmatter" in run.error_line
    assert not (directory / BINARY).exists()


def test_a_dead_host_is_named_with_the_reason(
    model: tuple[Path, bytes], zoopm: Zoopm, file_server: FileServer
) -> None:
    directory, _ = model
    file_server.stop()

    run = zoopm("download-binary", directory)

    assert run.exit_code == 1
    assert "127.0.0.1" in run.error_line
    assert "refused the connection" in run.error_line
    assert not (directory / BINARY).exists()


def test_mirrors_from_the_user_configuration_are_used_outside_any_project(
    tmp_path: Path, zoopm: Zoopm, file_server: FileServer
) -> None:
    directory = tmp_path / "bvlc"
    shutil.copytree(TINY_NET, directory)
    data = serve_binary_elsewhere(
        directory, "http://dl.caffe.berkeleyvision.org/tiny_net.caffemodel"
    )
    file_server.add_bytes("/caffe/tiny_net.caffemodel", data)
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "zoopm" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(mirrors_for(file_server))

    run = zoopm("download-binary", directory)

    assert run.exit_code == 0, run.stderr
    assert (directory / BINARY).read_bytes() == data


def test_a_symlink_at_the_final_path_is_refused_and_never_followed(
    model: tuple[Path, bytes], zoopm: Zoopm, tmp_path: Path
) -> None:
    directory, _ = model
    elsewhere = tmp_path / "elsewhere.bin"
    elsewhere.write_bytes(b"not yours to overwrite")
    (directory / BINARY).symlink_to(elsewhere)

    run = zoopm("download-binary", directory)

    assert run.exit_code == 1
    assert "is not a regular file" in run.error_line
    assert elsewhere.read_bytes() == b"not yours to overwrite"
    assert (directory / BINARY).is_symlink()


@pytest.mark.parametrize("name", ["../outside.caffemodel", "sub/x.caffemodel", "/etc/x"])
def test_a_caffemodel_that_is_not_a_file_name_here_is_refused(
    model: tuple[Path, bytes], zoopm: Zoopm, tmp_path: Path, name: str
) -> None:
    directory, _ = model
    readme = directory / "readme.md"
    lines = readme.read_text().splitlines(keepends=True)
    readme.write_text(
        "".join(
            f"caffemodel: {name}\n" if line.startswith("caffemodel:") else line for line in lines
        )
    )

    run = zoopm("download-binary", directory)

    assert run.exit_code == 2
    assert "caffemodel" in run.error_line
    assert not (tmp_path / "models" / "outside.caffemodel").exists()
    assert not (directory / "sub").exists()


def test_a_file_url_in_a_readme_is_refused(
    model: tuple[Path, bytes], zoopm: Zoopm, tmp_path: Path
) -> None:
    from zoopm.formats.modelinfo import set_frontmatter_key

    directory, data = model
    secret = tmp_path / "secret.bin"
    secret.write_bytes(data)
    readme = directory / "readme.md"
    url = secret.as_uri()
    readme.write_bytes(set_frontmatter_key(readme.read_bytes(), "caffemodel_url", url, "r"))

    run = zoopm("download-binary", directory)

    assert run.exit_code == 1
    assert "refused" in run.error_line
    assert not (directory / BINARY).exists()


def test_ctrl_c_leaves_nothing_at_the_final_path_and_the_next_run_resumes(
    tmp_path: Path, file_server: FileServer
) -> None:
    import hashlib
    import signal
    import subprocess
    import sys
    import time

    from zoopm.formats.modelinfo import set_frontmatter_key

    directory = tmp_path / "big"
    shutil.copytree(TINY_NET, directory)
    (directory / BINARY).unlink()
    data = os.urandom(3 << 20)
    file_server.add_bytes("/big.caffemodel", data)
    file_server.throttle(1 << 20)  # 1 MiB/s: the download takes about 3 s
    readme = directory / "readme.md"
    text = set_frontmatter_key(
        readme.read_bytes(), "caffemodel_url", file_server.url("/big.caffemodel"), "r"
    )
    readme.write_bytes(set_frontmatter_key(text, "sha1", hashlib.sha1(data).hexdigest(), "r"))
    argv = [sys.executable, "-m", "zoopm", "--no-progress", "download-binary", str(directory)]

    process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    # Ctrl-C once a MiB has arrived (a fixed sleep raced a slow start on a loaded machine).
    deadline = time.monotonic() + 30
    while file_server.bytes_sent("/big.caffemodel") < (1 << 20) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)  # and it has been written to the partial file
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    stopped_at = (directory / BINARY).exists()
    file_server.throttle(None)
    again = subprocess.run(
        argv, check=False, capture_output=True, text=True, env=os.environ.copy(), timeout=60
    )

    assert process.returncode == 130, stderr
    assert "kept" in stderr and "Traceback" not in stderr
    assert not stopped_at
    assert again.returncode == 0, again.stderr
    assert (directory / BINARY).read_bytes() == data
    assert any(r.headers.get("range", "").startswith("bytes=") for r in file_server.requests)


def _set_caffemodel(directory: Path, name: str) -> None:
    readme = directory / "readme.md"
    lines = readme.read_text().splitlines(keepends=True)
    readme.write_text(
        "".join(
            f"caffemodel: {name}\n" if line.startswith("caffemodel:") else line for line in lines
        )
    )


@pytest.mark.parametrize("name", ["readme.md", "README.MD", "deploy.prototxt"])
def test_a_caffemodel_naming_one_of_the_models_own_files_is_refused(
    model: tuple[Path, bytes], zoopm: Zoopm, name: str
) -> None:
    directory, _ = model
    _set_caffemodel(directory, name)
    before = {p.name: p.read_bytes() for p in directory.iterdir()}

    run = zoopm("download-binary", directory)

    assert run.exit_code == 2
    assert "names one of the model's own files" in run.error_line
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == before


def test_a_long_binary_name_is_placed_the_temp_name_does_not_overflow(
    model: tuple[Path, bytes], zoopm: Zoopm
) -> None:
    directory, data = model
    name = "y" * 240 + ".caffemodel"
    _set_caffemodel(directory, name)

    run = zoopm("download-binary", directory)

    assert run.exit_code == 0, run.stderr
    assert (directory / name).read_bytes() == data


def test_temp_files_of_a_killed_run_are_swept_and_a_live_ones_kept(
    model: tuple[Path, bytes], zoopm: Zoopm
) -> None:
    from zoopm.storage.locks import host_tag

    directory, _ = model
    dead = directory / f".zoopm-{host_tag()}-999999999-abcd.tmp"
    dead.write_bytes(b"half a binary")
    live = directory / f".zoopm-{host_tag()}-{os.getpid()}-abcd.tmp"
    live.write_bytes(b"being written")

    run = zoopm("download-binary", directory)

    assert run.exit_code == 0, run.stderr
    assert not dead.exists()
    assert live.exists()


def test_a_present_binary_needs_no_download_so_its_url_is_not_judged(
    model: tuple[Path, bytes], zoopm: Zoopm
) -> None:
    directory, data = model
    (directory / BINARY).write_bytes(data)
    readme = directory / "readme.md"
    lines = readme.read_text().splitlines(keepends=True)
    readme.write_text(
        "".join(
            "caffemodel_url: file:///etc/passwd\n" if line.startswith("caffemodel_url:") else line
            for line in lines
        )
    )

    run = zoopm("download-binary", directory)

    assert run.exit_code == 0, run.stderr
    assert run.stdout == "Model already exists.\n"


def test_a_readme_too_large_says_so(tmp_path: Path, zoopm: Zoopm) -> None:
    directory = tmp_path / "huge"
    shutil.copytree(TINY_NET, directory)
    with (directory / "readme.md").open("ab") as readme:
        readme.write(b"x" * (2 << 20))

    run = zoopm("download-binary", directory)

    assert run.exit_code == 2
    assert "larger than 1 MiB" in run.error_line


def test_readme_md_in_upper_case_is_found_as_fetch_gist_leaves_it(
    tmp_path: Path, zoopm: Zoopm
) -> None:
    directory = tmp_path / "jimmie33-509111f8a00a9ece2c3d5dde6a750129"
    shutil.copytree(TINY_NET, directory)
    (directory / "readme.md").rename(directory / "README.md")

    run = zoopm("download-binary", directory)

    assert run.exit_code == 0, run.stderr
    assert run.stdout == "Model already exists.\n"


def test_a_readme_without_sha1_is_refused_as_the_script_did_and_points_to_zoopm_add(
    tmp_path: Path, zoopm: Zoopm
) -> None:
    directory = tmp_path / "vgg16"
    directory.mkdir()
    vgg = Path(__file__).parents[2] / "fixtures" / "github" / "gists" / "211839e770f7b538e2d8"
    shutil.copyfile(vgg / "r1" / "README.md", directory / "README.md")

    run = zoopm("download-binary", directory)

    assert run.exit_code == 2
    assert run.error_line.startswith(f"error: {directory / 'README.md'}: no sha1")
    assert "zoopm add" in run.stderr
    assert sorted(p.name for p in directory.iterdir()) == ["README.md"]
