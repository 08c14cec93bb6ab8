"""Drop-ins for Caffe's own scripts: download-binary (download_model_binary.py) and import
(adopting the models/ tree those scripts filled)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zoopm.cli.app import app, run
from zoopm.project import Project
from zoopm.ui import ConsoleReporter, human_size, models_text, printable, relative


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


@app.command("import")
def import_models(
    ctx: typer.Context,
    directory: Annotated[
        Path | None,
        typer.Argument(
            help="The directory holding the model directories (default: the project's models-dir).",
            metavar="MODELS_DIR",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the verdicts; write nothing.")
    ] = False,
) -> None:
    """Adopt a models/ tree Caffe's scripts filled into zoo.toml and zoo.lock.

    Each directory with a readme.md becomes a gist source at the matching revision, a
    repository source when an index entry has the same files, or else a local path source.
    Example: zoopm import models
    """

    def action(project: Project, reporter: ConsoleReporter) -> None:
        result = project.import_models(directory, dry_run=dry_run)
        for verdict in result.verdicts:
            print(f"{printable(verdict.directory)}: {printable(verdict.where)} ({verdict.reason})")
        taken = sum(1 for v in result.verdicts if not v.skipped)
        skipped = len(result.verdicts) - taken
        tail = f" ({skipped} skipped)" if skipped else ""
        if not result.verdicts:
            reporter.info("No model directories found; nothing imported")
        elif dry_run:
            reporter.info(f"Dry run: would import {models_text(taken)}{tail}; wrote nothing")
        elif not result.written:
            reporter.info(f"Nothing imported{tail}")
        else:
            created = "created zoo.toml, " if result.created else ""
            reporter.info(
                f"Imported {models_text(taken)}{tail}: {created}wrote zoo.toml and zoo.lock; "
                f"{result.adopted} files already in place recorded as installed"
            )

    run(ctx, action)
