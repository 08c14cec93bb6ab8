"""The documentation site says what the code does: the getting-started page followed literally,
the command reference generated from the code, and an explained section for every error."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import Zoopm
from tests.support.fileserver import FileServer
from tests.support.github import FIXTURES, GitHubEmulator
from tests.support.projects import REPO, mirrors_for

DOCS = REPO / "docs"
FENCE = re.compile(r"^```(\S*)\n(.*?)^```$", flags=re.MULTILINE | re.DOTALL)


def fenced(page: Path, language: str) -> list[str]:
    """The bodies of the page's code blocks fenced as ```language, in order."""
    text = page.read_text(encoding="utf-8")
    return [body for lang, body in FENCE.findall(text) if lang == language]


def shell_commands(page: Path) -> list[str]:
    """Every command of the page's ```sh blocks, in order (comments and blank lines dropped)."""
    commands = []
    for block in fenced(page, "sh"):
        for line in block.splitlines():
            command = line.split(" #", 1)[0].strip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def test_getting_started_followed_literally_installs_a_model_and_uses_it(
    tmp_path: Path, github: GitHubEmulator, model_host: FileServer
) -> None:
    page = DOCS / "getting-started.md"
    # The ```bash block is the installation: pip install from the checkout, which this test
    # environment is (README's set-up command); its zoopm is the one the page's commands run.
    (install,) = fenced(page, "bash")
    assert "pip install ." in install
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "zoopm").is_file(), f"no zoopm script beside {sys.executable}"
    # What the page says the test sets: the GitHub emulator, and [mirrors] to the model host.
    config = tmp_path / "config.toml"
    config.write_text(mirrors_for(model_host), encoding="utf-8")
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "ZOOPM_GITHUB_API": github.api_url,
        "ZOOPM_CONFIG": str(config),
    }
    work = tmp_path / "work"
    work.mkdir()
    commands = shell_commands(page)
    script = "set -eu\n" + "".join(f"echo '$ '{_quote(c)}\n{c}\n" for c in commands)

    run = subprocess.run(
        ["bash", "-c", script],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
        check=False,
    )

    transcript = run.stdout
    assert run.returncode == 0, transcript
    assert commands[0] == "zoopm --version"
    printed = {line.strip() for line in transcript.splitlines()}
    for block in fenced(page, "text"):
        for line in block.splitlines():
            assert line.strip() in printed, (
                f"the page shows {line!r}; the run printed:\n{transcript}"
            )
    project = work / "my-experiment"
    model = project / "models" / "bvlc_googlenet"
    (listing,) = [b for b in fenced(page, "text") if "deploy.prototxt" in b.split()]
    assert sorted(p.name for p in model.iterdir()) == listing.split()
    binary = FIXTURES / "binaries" / "bvlc_googlenet.caffemodel"
    assert (model / "bvlc_googlenet.caffemodel").read_bytes() == binary.read_bytes()
    # The zoo.toml line the page shows is the one add wrote.
    (toml,) = fenced(page, "toml")
    models_line = toml.splitlines()[-1]
    assert models_line in (project / "zoo.toml").read_text(encoding="utf-8")
    assert (project / "zoo.lock").is_file()


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def test_the_command_reference_is_what_the_code_declares_today() -> None:
    from zoopm.cli.reference import REGENERATE, render

    current = (DOCS / "cli.md").read_text(encoding="utf-8")

    assert current == render(), f"docs/cli.md is not current: run `{REGENERATE}`"


def test_the_command_reference_has_every_command_with_its_usage_options_and_examples() -> None:
    from typer.testing import CliRunner

    from zoopm.cli import app

    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    help_text = CliRunner().invoke(app, ["--help"]).stdout
    for name in ("init", "lock", "install", "add", "verify", "gc", "fetch-gist", "publish"):
        assert name in help_text
        assert f"\n## zoopm {name}\n" in page
    assert "- `--frozen`, `--locked`: Install zoo.lock as it is; exit 1 if it is stale." in page
    assert "zoopm fetch-gist [OPTIONS] ID[@REV] [DIR]" in page
    assert "zoopm download-binary models/bvlc_googlenet" in "".join(fenced(DOCS / "cli.md", "sh"))


def test_every_error_class_has_a_section_saying_what_it_means_and_the_fix() -> None:
    from zoopm.cli.troubleshooting import error_classes, missing_sections, stray_sections

    page = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    classes = error_classes()

    assert {"ZoopmError", "UsageError", "Refused", "GitHubNotFound"} <= set(classes)
    assert missing_sections(page, classes) == [], "add '## Name': what it means, and the fix"
    assert stray_sections(page, classes) == [], "a section names an error class that is gone"
    for name in classes:
        prose = _section(page, name).split("<!-- generated:")[0]
        assert len(prose.split()) >= 20, f"## {name} needs words of its own: meaning and fix"


def test_the_troubleshooting_message_lists_are_what_the_code_raises_today() -> None:
    from zoopm.cli.troubleshooting import REGENERATE, regenerate

    page = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")

    assert page == regenerate(page), f"docs/troubleshooting.md is not current: run `{REGENERATE}`"


def test_the_regenerator_refuses_a_page_without_a_section_for_a_class(tmp_path: Path) -> None:
    from zoopm.cli.troubleshooting import main

    page = tmp_path / "troubleshooting.md"
    text = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    text = text.replace("\n## BusyError\n", "\n## Busy processes\n")
    page.write_text(text, encoding="utf-8")

    code = main([str(page)])

    assert code == 1
    assert page.read_text(encoding="utf-8") == text


@pytest.mark.parametrize(
    ("section", "args", "files"),
    [
        ("ManifestError", ["install"], {}),
        ("ManifestError", ["lock"], {"zoo.toml": '[models]\nx = { gist = "abc", rev = "1" }\n'}),
        ("UsageError", ["show", "nothing"], {"zoo.toml": "[models]\n", "zoo.lock": None}),
        ("UsageError", ["add", "no such thing!"], {"zoo.toml": "[models]\n"}),
        ("ConfigError", ["list"], {"zoo.toml": "[models]\n", "config.toml": "[defaults]\nx=1\n"}),
    ],
)
def test_errors_zoopm_prints_are_listed_under_their_class(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    zoopm: Zoopm,
    section: str,
    args: list[str],
    files: dict[str, str | None],
) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    for name, text in files.items():
        if name == "config.toml":
            (tmp_path / name).write_text(text or "", encoding="utf-8")
            monkeypatch.setenv("ZOOPM_CONFIG", str(tmp_path / name))
        elif text is not None:
            (project / name).write_text(text, encoding="utf-8")
    if "zoo.lock" in files:
        assert zoopm("lock", project=project).exit_code == 0

    run = zoopm(*args, project=project)

    message = run.error_line.removeprefix("error: ")
    assert run.exit_code != 0 and message, run.stderr
    page = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    templates = re.findall(r"^- `(.+?)`(?: — hint|$)", _section(page, section), re.MULTILINE)
    patterns = [re.escape(t) for t in templates]
    patterns = [re.sub(r"\\\{.*?\\\}", ".+", p) for p in patterns]
    assert any(re.fullmatch(p, message) for p in patterns), (message, section)


def _section(page: str, name: str) -> str:
    """The text of the page's '## name' section, up to the next '## ' heading."""
    start = page.index(f"\n## {name}\n")
    end = page.find("\n## ", start + 1)
    return page[start : end if end != -1 else len(page)]


NIN = "d802a5849de39225bcc6"


@pytest.mark.parametrize("rescued_is_right", [True, False])
def test_a_model_whose_host_is_gone_installs_from_a_rescued_copy_as_mirrors_md_says(
    tmp_path: Path, github: GitHubEmulator, zoopm: Zoopm, rescued_is_right: bool
) -> None:
    # The NIN gist's readme names http://models.zoopm.invalid/nin/…, a host that never answers.
    rescued = tmp_path / "rescued"
    rescued.mkdir()
    binary = (FIXTURES / "binaries" / "nin_imagenet.caffemodel").read_bytes()
    (rescued / "nin_imagenet.caffemodel").write_bytes(
        binary if rescued_is_right else binary[:-1] + b"!"
    )
    project = tmp_path / "proj"
    project.mkdir()
    (project / "zoo.toml").write_text(
        f'[models]\n\n[mirrors]\n"http://models.zoopm.invalid/nin/" = "{rescued.as_uri()}/"\n',
        encoding="utf-8",
    )

    run = zoopm("add", f"gist:{NIN}", "--name", "nin", project=project)

    placed = project / "models" / "nin" / "nin_imagenet.caffemodel"
    if rescued_is_right:
        assert run.exit_code == 0, run.stderr
        assert placed.read_bytes() == binary
    else:
        assert run.exit_code == 1, run.stderr
        assert "all 2 URLs failed; first: file:" in run.error_line
        assert "sha1 mismatch" in run.error_line
        assert not placed.exists()
        assert "nin =" not in (project / "zoo.toml").read_text(encoding="utf-8")


def test_the_site_builds_with_no_warning_and_every_page_in_the_nav(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="the docs extra is not installed: pip install -e .[docs]")

    # Not -q: mkdocs then stops logging the warnings --strict counts, and passes.
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert run.returncode == 0, run.stderr
    assert (tmp_path / "site" / "troubleshooting" / "index.html").is_file()
