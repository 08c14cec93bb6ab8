"""What a person sees: help, usage errors and tables, in an 80-column terminal and in a pipe."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from tests.support.cli import Zoopm
from zoopm.cli import app

COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def zoopm_process(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed entry point, as a shell runs it (stdout is a pipe unless env says not)."""
    return subprocess.run(
        [sys.executable, "-m", "zoopm", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_a_summary_and_an_example_in_plain_help(
    zoopm: Zoopm, command: str
) -> None:
    run = zoopm(command, "--help")

    assert run.exit_code == 0, run.stderr
    assert run.stdout.startswith(f"Usage: zoopm {command} ")
    assert "Example" in run.stdout
    assert "<str>" not in run.stdout and "<bool>" not in run.stdout
    assert "╭" not in run.stdout  # no box drawing


def test_a_usage_error_is_an_error_line_and_a_hint_not_a_box() -> None:
    run = zoopm_process("install", "--jobs", "x")

    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        "error: Invalid value for '--jobs' / '-j': 'x' is not a valid int range.",
        "hint: run 'zoopm install --help' for its arguments and options",
    ]


def test_an_unknown_command_points_to_the_list_of_commands(zoopm: Zoopm) -> None:
    run = zoopm("frobnicate")

    assert run.exit_code == 2
    assert run.error_line == "error: No such command 'frobnicate'."
    assert "hint: run 'zoopm --help' for its commands and options" in run.stderr


def test_quiet_says_what_it_keeps(zoopm: Zoopm) -> None:
    assert "Print only warnings and errors." in zoopm("--help").stdout


def test_search_into_a_pipe_is_one_line_per_model_with_nothing_cut() -> None:
    run = zoopm_process("search", "googlenet")

    lines = run.stdout.splitlines()
    assert run.returncode == 0, run.stderr
    assert lines[0].split() == ["name", "source", "description"]
    assert len(lines) == 1 + 5
    row = next(line for line in lines if line.startswith("salient_proposal_googlenet "))
    assert "gist 339fd0a938ed026692267a60b44c0c58" in row
    assert row.endswith("GoogleNet (CNN Object Proposal Models for Salient Object Detection)")
    assert all(line == line.rstrip() for line in lines)


def test_search_in_an_80_column_terminal_fits_and_breaks_only_between_words() -> None:
    terminal = {"TTY_COMPATIBLE": "1", "NO_COLOR": "1", "COLUMNS": "80"}

    run = zoopm_process("search", "googlenet", env=terminal)

    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in run.stdout.splitlines()]
    assert run.returncode == 0, run.stderr
    assert all(len(line) <= 80 for line in lines), lines
    names = [line.split()[0] for line in lines[1:] if not line.startswith(" ")]
    assert names == [
        "bvlc_googlenet",
        "bvlc_googlenet_gist",
        "googlenet_cars",
        "salient_proposal_googlenet",
        "subitizing_googlenet",
    ]
    text = " ".join(line[50:].strip() for line in lines[1:])
    for word in [
        "GoogleNet",
        "(CNN",
        "Object",
        "Proposal",
        "Models",
        "for",
        "Salient",
        "Object",
        "Detection)",
    ]:
        assert word in text.split(), (word, lines)


def test_help_fits_an_80_column_terminal(tmp_path: Path) -> None:
    run = zoopm_process("--help", env={"COLUMNS": "80"})

    assert run.returncode == 0
    assert all(len(line) <= 80 for line in run.stdout.splitlines())
    commands = run.stdout.split("Commands:", 1)[1].splitlines()
    assert not any(line.endswith("...") for line in commands)  # every summary whole


def test_a_terminal_too_narrow_for_names_and_descriptions_gets_whole_lines_not_cut_names() -> None:
    terminal = {"TTY_COMPATIBLE": "1", "NO_COLOR": "1", "COLUMNS": "40"}

    run = zoopm_process("search", "vgg_cnn", env=terminal)

    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in run.stdout.splitlines()]
    assert run.returncode == 0, run.stderr
    assert [line.split()[0] for line in lines[1:]] == [
        "vgg_cnn_f",
        "vgg_cnn_m",
        "vgg_cnn_m_1024",
        "vgg_cnn_m_128",
        "vgg_cnn_m_2048",
        "vgg_cnn_s",
    ]
    assert "…" not in run.stdout


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("bash", "complete -o"), ("zsh", "#compdef zoopm"), ("fish", "complete --command zoopm")],
)
def test_completion_scripts_exist_for_bash_zsh_and_fish(shell: str, marker: str) -> None:
    run = zoopm_process(env={"_ZOOPM_COMPLETE": f"source_{shell}"})

    assert run.returncode == 0, run.stderr
    assert marker in run.stdout


def test_bash_completion_completes_a_command_and_its_options() -> None:
    command = zoopm_process(
        env={"_ZOOPM_COMPLETE": "complete_bash", "COMP_WORDS": "zoopm ins", "COMP_CWORD": "1"}
    )
    option = zoopm_process(
        env={
            "_ZOOPM_COMPLETE": "complete_bash",
            "COMP_WORDS": "zoopm install --fr",
            "COMP_CWORD": "2",
        }
    )

    assert command.stdout.split() == ["install"]
    assert set(option.stdout.split()) == {"--frozen", "--from-bundle"}
