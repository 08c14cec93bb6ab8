"""Drop-ins for Caffe's own scripts: download-binary (download_model_binary.py)."""

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
