"""Drop-ins for Caffe's own scripts: download-binary (download_model_binary.py), publish
(upload_model_to_gist.sh)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zoopm.cli.app import app, run
from zoopm.project import Project
from zoopm.ui import ConsoleReporter, human_size, printable, relative


@app.command("download-binary")
def download_binary(
    ctx: typer.Context,
    directory: Annotated[
        Path,
        typer.Argument(
            help="A Caffe model directory: its readme.md names the binary.", metavar="DIR"
        ),
    ],
) -> None:
    """Download and SHA-1-check the binary a model's readme.md names (download_model_binary.py).

    Example: zoopm download-binary models/bvlc_googlenet
    """

    def action(project: Project, reporter: ConsoleReporter) -> None:
        result = project.download_binary(directory)
        if result.existed:
            print("Model already exists.")  # the Caffe script's words, for scripts that grep it
            return
        assert result.digest is not None
        reporter.info(
            f"Downloaded {printable(relative(result.path))} ({human_size(result.digest.size)}, "
            f"sha1 {result.digest.sha1})"
        )

    run(ctx, action)


@app.command("publish")
def publish(
    ctx: typer.Context,
    directory: Annotated[
        Path,
        typer.Argument(help="A Caffe model directory with its readme.md.", metavar="DIR"),
    ],
    public: Annotated[
        bool, typer.Option("--public", help="Make a new gist public (default: secret).")
    ] = False,
    description: Annotated[
        str | None,
        typer.Option(
            "--description",
            help="The gist's description (default for a new gist: the readme's name).",
            metavar="TEXT",
        ),
    ] = None,
) -> None:
    """Publish a model directory's info files to a gist (upload_model_to_gist.sh).

    Creates a secret gist (public with --public), or updates the gist readme.md's gist_id
    names; writes gist_id into readme.md. Needs GITHUB_TOKEN with the 'gist' scope.

    Example: zoopm publish models/my_net
    """

    def action(project: Project, reporter: ConsoleReporter) -> None:
        result = project.publish(directory, public=public, description=description)
        for skipped in result.skipped:
            if skipped.binary:
                reporter.info(f"Left out {printable(skipped.name)}: a binary")
        for name in result.deleted:
            reporter.info(f"Deleted {printable(name)} from the gist")
        if result.created:
            kind = "public" if result.public else "secret"
            reporter.info(f"Created {kind} gist {result.gist_id}; wrote its gist_id into readme.md")
        elif result.changed:
            reporter.info(f"Updated gist {result.gist_id}")
        elif result.described:
            reporter.info(f"Updated the description of gist {result.gist_id}; it held these files")
        else:
            reporter.info(f"Gist {result.gist_id} already holds these files; nothing was sent")
        print(f"revision {result.revision}")
        print(f"zoopm add gist:{result.gist_id}@{result.revision}")

    run(ctx, action)
