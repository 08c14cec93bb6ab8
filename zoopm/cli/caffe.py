"""Drop-ins for Caffe's own scripts: download-binary (download_model_binary.py), fetch-gist
(download_model_from_gist.sh)."""

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


@app.command("fetch-gist")
def fetch_gist(
    ctx: typer.Context,
    gist: Annotated[
        str,
        typer.Argument(
            help="The gist: ID, OWNER/ID or its URL, optionally @REV (a commit; the newest "
            "if none).",
            metavar="ID[@REV]",
        ),
    ],
    directory: Annotated[
        Path | None,
        typer.Argument(
            help="Where the model directory goes: DIR/<ID with / replaced by -> (default: models).",
            metavar="[DIR]",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace a non-empty model directory (files added there go)."),
    ] = False,
    archive: Annotated[
        bool,
        typer.Option("--archive", help="Read the gist's zip download instead of each file."),
    ] = False,
    archive_format: Annotated[
        str | None,
        typer.Option(
            "--archive-format",
            help="zip or tar.gz: which archive download to read (implies --archive).",
            metavar="FORMAT",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Fetch a model-info gist into DIR/<ID>, every file verified (download_model_from_gist.sh).

    Example: zoopm fetch-gist mavenlin/d802a5849de39225bcc6
    """
    form = archive_format if archive_format is not None else ("zip" if archive else None)

    def action(project: Project, reporter: ConsoleReporter) -> None:
        result = project.fetch_gist(gist, directory, force=force, archive=form)
        ref = result.ref
        verb = "Replaced" if result.replaced else "Fetched"
        print(
            f"{verb} {printable(relative(result.target))}: gist {ref.gist} at {result.rev} "
            f"({len(result.files)} files, {human_size(result.size)})"
        )
        if ref.rev is None or ref.rev != result.rev:
            where = f" {printable(str(directory))}" if directory is not None else ""
            said = "the newest revision" if ref.rev is None else f"revision {ref.rev}"
            print(f"That is {said}; to get exactly these files again:")
            print(f"  zoopm fetch-gist {ref.pinned(result.rev)}{where}")
            print(f"  zoopm add gist:{ref.gist}@{result.rev}")

    run(ctx, action)
