"""Drop-ins for Caffe's own scripts: download-binary (download_model_binary.py), fetch-gist
(download_model_from_gist.sh), publish (upload_model_to_gist.sh), and import (adopting the
models/ tree those scripts filled)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zoopm import jsondoc
from zoopm.cli.app import JsonOption, app, emit, run
from zoopm.project import Project
from zoopm.ui import ConsoleReporter, files_text, human_size, models_text, printable, relative


@app.command(
    "download-binary", short_help="Download a model's binary, SHA-1-checked (Caffe's script)."
)
def download_binary(
    ctx: typer.Context,
    directory: Annotated[
        Path,
        typer.Argument(
            help="A Caffe model directory: its readme.md names the binary.", metavar="DIR"
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Download and SHA-1-check the binary a model's readme.md names (download_model_binary.py).

    Example: zoopm download-binary models/bvlc_googlenet
    """

    def action(project: Project, reporter: ConsoleReporter) -> jsondoc.Document | None:
        result = project.download_binary(directory)
        if as_json:
            return jsondoc.download_binary(result, reporter.warnings)
        if result.existed:
            print("Model already exists.")  # the Caffe script's words, for scripts that grep it
            return None
        assert result.digest is not None
        reporter.info(
            f"Downloaded {printable(relative(result.path))} ({human_size(result.digest.size)}, "
            f"sha1 {result.digest.sha1})"
        )
        return None

    emit(run(ctx, action, as_json=as_json))


@app.command("fetch-gist", short_help="Fetch a model-info gist into DIR/<ID>, verified.")
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
    as_json: JsonOption = False,
) -> None:
    """Fetch a model-info gist into DIR/<ID>, every file verified (download_model_from_gist.sh).

    Example: zoopm fetch-gist mavenlin/d802a5849de39225bcc6
    """
    form = archive_format if archive_format is not None else ("zip" if archive else None)

    def action(project: Project, reporter: ConsoleReporter) -> jsondoc.Document | None:
        result = project.fetch_gist(gist, directory, force=force, archive=form)
        if as_json:
            return jsondoc.fetch_gist(result, reporter.warnings)
        ref = result.ref
        verb = "Replaced" if result.replaced else "Fetched"
        print(
            f"{verb} {printable(relative(result.target))}: gist {ref.gist} at {result.rev} "
            f"({files_text(len(result.files))}, {human_size(result.size)})"
        )
        if ref.rev is None or ref.rev != result.rev:
            where = f" {printable(str(directory))}" if directory is not None else ""
            said = "the newest revision" if ref.rev is None else f"revision {ref.rev}"
            print(f"That is {said}; to get exactly these files again:")
            print(f"  zoopm fetch-gist {ref.pinned(result.rev)}{where}")
            print(f"  zoopm add gist:{ref.gist}@{result.rev}")
        return None

    emit(run(ctx, action, as_json=as_json))


@app.command("import", short_help="Adopt a Caffe models/ tree into zoo.toml and zoo.lock.")
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
    as_json: JsonOption = False,
) -> None:
    """Adopt a models/ tree Caffe's scripts filled into zoo.toml and zoo.lock.

    Each directory with a readme.md becomes a gist source at the matching revision, a
    repository source when an index entry has the same files, or else a local path source.
    Example: zoopm import models
    """

    def action(project: Project, reporter: ConsoleReporter) -> jsondoc.Document | None:
        result = project.import_models(directory, dry_run=dry_run)
        if as_json:
            return jsondoc.import_models(
                result.verdicts,
                dry_run=dry_run,
                written=result.written,
                created=result.created,
                adopted=result.adopted,
                warnings=reporter.warnings,
            )
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
                f"{files_text(result.adopted)} already in place recorded as installed"
            )
        return None

    emit(run(ctx, action, as_json=as_json))


@app.command("publish", short_help="Publish a model directory's info files to a gist.")
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
    as_json: JsonOption = False,
) -> None:
    """Publish a model directory's info files to a gist (upload_model_to_gist.sh).

    Creates a secret gist (public with --public), or updates the gist readme.md's gist_id
    names; writes gist_id into readme.md. Needs GITHUB_TOKEN with the 'gist' scope.

    Example: zoopm publish models/my_net
    """

    def action(project: Project, reporter: ConsoleReporter) -> jsondoc.Document | None:
        result = project.publish(directory, public=public, description=description)
        if as_json:
            return jsondoc.publish(result, reporter.warnings)
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
        return None

    emit(run(ctx, action, as_json=as_json))
