"""Commands that only read: search, list, show."""

from __future__ import annotations

from typing import Annotated

import typer

from zoopm import jsondoc
from zoopm.cli.app import JsonOption, app, emit, run
from zoopm.project import ModelStatus, Project
from zoopm.ui import ConsoleReporter, human_size, print_table, printable


@app.command(short_help="Search the model indexes.")
def search(
    ctx: typer.Context,
    term: Annotated[
        str, typer.Argument(help="Text to look for in names and descriptions.", metavar="TERM")
    ],
    as_json: JsonOption = False,
) -> None:
    """Search the model indexes (the built-in one and those in zoo.toml).

    Examples:

    \b
      zoopm search googlenet
      zoopm search vgg
    """

    def action(project: Project, reporter: ConsoleReporter) -> jsondoc.Document | None:
        found = project.search(term)
        if as_json:
            return jsondoc.search(found)
        if not found:
            reporter.info(f"No model matches {term!r}")
            return None
        table = [[e.name, e.source.describe(), e.description] for e in found]
        print_table(["name", "source", "description"], table, project.settings.no_color)
        return None

    emit(run(ctx, action, as_json=as_json))


@app.command("list", short_help="List the locked models and whether they are installed.")
def list_models(
    ctx: typer.Context,
    as_json: JsonOption = False,
) -> None:
    """List the locked models and whether they are installed.

    Examples:

    \b
      zoopm list
      zoopm list --json
    """

    def action(project: Project, reporter: ConsoleReporter) -> jsondoc.Document | None:
        statuses = project.status()
        if as_json:
            return [jsondoc.model_status(s) for s in statuses]
        rows = [
            [
                s.model.name,
                _source_text(s),
                s.model.license or "-",
                human_size(s.model.size),
                "installed" if s.installed else f"{s.installed_files}/{len(s.model.files)} files",
            ]
            for s in statuses
        ]
        if not rows:
            reporter.info("No models in zoo.lock")
            return None
        print_table(["name", "source", "license", "size", "state"], rows, project.settings.no_color)
        return None

    emit(run(ctx, action, as_json=as_json))


@app.command(short_help="Show one locked model: source, model info, files.")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The model's name in zoo.toml.", metavar="NAME")],
    as_json: JsonOption = False,
) -> None:
    """Show one locked model: its source, model info and files.

    Examples:

    \b
      zoopm show bvlc_googlenet
    """

    def action(project: Project, reporter: ConsoleReporter) -> jsondoc.Document | None:
        status = project.show(name)
        if as_json:
            return jsondoc.model_status(status)
        model = status.model
        print(f"name:          {model.name}")
        print(f"source:        {printable(_source_text(status))}")
        for label, value in (
            ("caffemodel", model.caffemodel),
            ("license", model.license),
            ("caffe_commit", model.caffe_commit),
            ("caffe_version", model.caffe_version),
        ):
            if value is not None:
                print(f"{label + ':':<15}{printable(value)}")
        print(f"installed:     {'yes' if status.installed else 'no'}")
        print(f"files:         {len(model.files)} ({human_size(model.size)})")
        for f in model.files:
            kind = "  (binary)" if f.binary else ""
            print(f"  {printable(f.path)}  {f.size} bytes{kind}")
            # In full: Caffe users compare the sha1 (frontmatter, OpenCV's lists) by eye or grep.
            print(f"      sha1    {f.sha1}")
            print(f"      sha256  {f.sha256}")
            for url in f.urls:
                print(f"      from    {printable(url)}")
        return None

    emit(run(ctx, action, as_json=as_json))


def _source_text(status: ModelStatus) -> str:
    source = status.model.source_dict()
    if "gist" in source:
        return f"gist:{source['gist']}@{source.get('rev', '?')[:12]}"
    if "github" in source:
        where = "/".join(part for part in (source["github"], source.get("path", "")) if part)
        return f"github:{where}@{source.get('rev', '?')[:12]}"
    return source.get("path", "?")
