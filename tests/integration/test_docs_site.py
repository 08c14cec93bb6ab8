"""The documentation site says what the code does: the getting-started page followed literally,
the command reference generated from the code, and an explained section for every error."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

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
