"""docs/cli.md, the command reference, rendered from the typer app: python -m zoopm.cli.reference.

It reads the app from outside, as `--help` does, so the page says exactly what the code
declares: each command's usage, summary, further help, arguments, options and examples.
"""

from __future__ import annotations

import inspect
import re
import sys
from typing import Any

import typer

from zoopm.cli import app

REGENERATE = "python -m zoopm.cli.reference > docs/cli.md"

_EXAMPLES = re.compile(r"^(?:Examples?):\s*(.*)$")


def render() -> str:
    """docs/cli.md as the code declares it today."""
    # Typed Any: typer 0.12 to 0.28 hand back click's classes or typer's own copy of them.
    root: Any = typer.main.get_command(app)
    context = root.context_class(root, info_name="zoopm")
    names = root.list_commands(context)
    lines = [
        "# Command reference",
        "",
        f"<!-- Generated from the code by `{REGENERATE}`; do not edit by hand. -->",
        "",
        _escape(_summary(root.help)),
        "",
        "```",
        "zoopm [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGUMENTS]",
        "```",
        "",
        "Every command accepts `--help`. Exit codes: 0 success, 1 a failure, 2 a usage error or a",
        "malformed project file, 130 after Ctrl-C, 143 after SIGTERM; each error is explained in",
        "[Troubleshooting](troubleshooting.md).",
        "",
        "## Global options",
        "",
        "Given before the command: `zoopm -C other/project install`.",
        "",
        *_options(root),
        "",
        "## Commands",
        "",
    ]
    for name in names:
        command = root.get_command(context, name)
        if command is None or command.hidden:
            continue
        lines.append(f"- [`zoopm {name}`](#zoopm-{name}): {_escape(_summary(command.help))}")
    for name in names:
        command = root.get_command(context, name)
        if command is None or command.hidden:
            continue
        lines += ["", *_command(name, command)]
    return "\n".join(lines).rstrip("\n") + "\n"


def _command(name: str, command: Any) -> list[str]:
    body, examples = _split_help(command.help)
    if command.epilog:
        summary, more, extra = _parse_help(command.epilog)
        body += [*([""] if body else []), *([" ".join(summary)] if summary else []), *more]
        examples += extra
    lines = [
        f"## zoopm {name}",
        "",
        _escape(_summary(command.help)),
        "",
        "```",
        _usage(name, command),
        "```",
    ]
    if body:
        lines += ["", *(_escape(line) for line in body)]
    arguments = [p for p in command.params if _is_argument(p)]
    if arguments:
        lines += ["", "Arguments:", ""]
        for argument in arguments:
            text = _escape(getattr(argument, "help", None) or "")
            lines.append(f"- `{_argument_metavar(argument)}`: {text}".rstrip(": "))
    options = _options(command)
    if options:
        lines += ["", "Options:", "", *options]
    if examples:
        lines += ["", "Examples:", "", "```sh", *examples, "```"]
    return lines


def _options(command: Any) -> list[str]:
    lines = []
    for option in command.params:
        if _is_argument(option) or option.hidden:
            continue
        names = ", ".join(f"`{flag}{_option_metavar(option)}`" for flag in option.opts)
        text = _escape(option.help or "")
        default = option.default
        shown = option.show_default is not False and not option.is_flag
        if shown and default is not None and not callable(default) and "default" not in text:
            text += f" (default: `{default}`)"
        lines.append(f"- {names}: {text}".rstrip(": "))
    lines.append("- `--help`: Show the command's help and exit.")
    return lines


def _is_argument(param: Any) -> bool:
    return bool(param.param_type_name == "argument")


def _usage(name: str, command: Any) -> str:
    words = ["zoopm", name]
    if any(not _is_argument(p) and not p.hidden for p in command.params):
        words.append("[OPTIONS]")
    for argument in command.params:
        if _is_argument(argument):
            words.append(_argument_metavar(argument))
    return " ".join(words)


def _argument_metavar(argument: Any) -> str:
    metavar = str(argument.metavar or argument.name or "ARG").upper()
    metavar = metavar.strip("{}")
    bracketed = metavar.startswith("[") and metavar.endswith("]")
    if argument.nargs == -1:
        metavar = f"{metavar.strip('[]')}..."
    if not argument.required and not bracketed:
        metavar = f"[{metavar}]"
    return metavar


def _option_metavar(option: Any) -> str:
    if option.is_flag or option.count:
        return ""
    return f" {option.metavar or (option.name or 'value').upper()}"


def _summary(help_text: str | None) -> str:
    """The help's first paragraph, up to its examples: one line."""
    return " ".join(_parse_help(help_text)[0])


def _split_help(help_text: str | None) -> tuple[list[str], list[str]]:
    """The help after its summary (as Markdown lines), and the example commands in it."""
    _, body, examples = _parse_help(help_text)
    return body, examples


def _parse_help(help_text: str | None) -> tuple[list[str], list[str], list[str]]:
    """The summary's lines, the further paragraphs (blank-separated) and the example commands.

    An `Example:` or `Examples:` line starts examples: the rest of that line and every
    following non-blank line of its paragraph is one command; an `Examples:` line alone in its
    paragraph makes the next paragraph (click's `\\b` block) the commands.
    """
    summary: list[str] = []
    body: list[str] = []
    examples: list[str] = []
    text = inspect.cleandoc(help_text or "").replace("\b\n", "")
    in_examples = False
    for index, paragraph in enumerate(text.split("\n\n")):
        prose: list[str] = []
        # A heading alone in its paragraph hands its examples to the next one.
        in_examples = in_examples and not examples
        for raw in paragraph.splitlines():
            line = raw.strip()
            found = _EXAMPLES.match(line)
            if found:
                in_examples = True
                if found.group(1):
                    examples.append(found.group(1))
            elif in_examples and line:
                examples.append(line)
            elif line:
                prose.append(line)
        if index == 0:
            summary = prose
        elif prose:
            body += [*([""] if body else []), " ".join(prose)]
    return summary, body, examples


def _escape(text: str) -> str:
    """Text that Markdown shows as written (no stray tags or emphasis)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("*", r"\*")


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
